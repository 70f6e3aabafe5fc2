"""Predictions of a checkpoint drawn on validation crops, ground truth beside them."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from distilkit.plots.skeleton import show_crop, draw_skeleton


def load_val_crops(checkpoint: str | Path, *, num: int = 6, seed: int = 0, data_root=None):
    """(model, crops dict batch, dataset) for ``num`` GT-box validation crops of the checkpoint's data."""
    from distilkit.checkpoint import load_model_from_checkpoint
    from distilkit.data.topdown import TopDownCocoDataset
    from distilkit.engine.config import TrainConfig
    from distilkit.engine.data import resolve_data_root

    model, ckpt = load_model_from_checkpoint(checkpoint)
    config = TrainConfig.from_dict(ckpt["config"])
    root = resolve_data_root(data_root or ckpt.get("data_root") or config.data_root,
                             config.resolved_profile(), seed=config.data_seed, progress=False)
    dataset = TopDownCocoDataset(root, split="val", input_size=tuple(model.input_size), train=False,
                                 use_detections=False)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(dataset), size=min(num, len(dataset)), replace=False)
    samples = [dataset[int(i)] for i in idx]
    images = torch.stack([s["image"] for s in samples])
    return model, images, samples


@torch.no_grad()
def plot_predictions(checkpoint: str | Path, *, num: int = 6, seed: int = 0, data_root=None):
    """Predicted skeleton (solid, hollow where score < 0.2) over GT (thin white) per crop."""
    model, images, samples = load_val_crops(checkpoint, num=num, seed=seed, data_root=data_root)
    out = model(images)
    h, w = model.input_size
    coords = out.coords.numpy() * np.array([w, h])
    scores = out.scores.numpy() if out.scores is not None else np.ones(coords.shape[:2])
    cols = min(6, len(samples))
    rows = int(np.ceil(len(samples) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for i, sample in enumerate(samples):
        ax = axes.ravel()[i]
        # predicted: filled where confident, hollow where the model itself doubts the joint
        vis = np.where(scores[i] >= 0.2, 2, 1)
        show_crop(ax, sample["image"], coords[i], vis, vflags=True, marker_size=3, linewidth=1.2)
        draw_skeleton(ax, sample["keypoints"], sample["keypoints_visible"] * 2, vflags=True,
                      marker_size=1.5, linewidth=0.6, alpha=0.6)
        ax.set_title(f"img {int(sample['meta']['image_id'])}  mean s={scores[i].mean():.2f}", fontsize=7)
    fig.suptitle(f"{getattr(model, 'name', 'model')}: prediction (bold) vs GT (thin)", fontsize=9)
    fig.tight_layout()
    return fig
