"""Predictions of a checkpoint drawn on validation crops, ground truth beside them."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from distilkit.models.checkpoint import load_model_from_checkpoint
from distilkit.viz.samples import data_root_of, load_val_crops
from distilkit.viz.skeleton import draw_skeleton, show_crop


@torch.no_grad()
def plot_predictions(checkpoint: str | Path, *, num: int = 6, seed: int = 0, data_root=None):
    """Predicted skeleton (solid, hollow where score < 0.2) over GT (thin white) per crop."""
    model, _ = load_model_from_checkpoint(checkpoint)
    crops = load_val_crops(data_root_of(checkpoint, data_root), tuple(model.input_size), num=num, seed=seed)
    out = model(crops.images)
    h, w = model.input_size
    coords = out.coords.numpy() * np.array([w, h])
    scores = out.scores.numpy() if out.scores is not None else np.ones(coords.shape[:2])
    cols = min(6, len(crops))
    rows = int(np.ceil(len(crops) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for i in range(len(crops)):
        ax = axes.ravel()[i]
        # predicted: filled where confident, hollow where the model itself doubts the joint
        vis = np.where(scores[i] >= 0.2, 2, 1)
        show_crop(ax, crops.images[i], coords[i], vis, vflags=True, marker_size=3, linewidth=1.2)
        draw_skeleton(ax, crops.keypoints[i], crops.visible[i] * 2, vflags=True,
                      marker_size=1.5, linewidth=0.6, alpha=0.6)
        ax.set_title(f"img {int(crops.image_ids[i])}  mean s={scores[i].mean():.2f}", fontsize=7)
    fig.suptitle(f"{getattr(model, 'name', 'model')}: prediction (bold) vs GT (thin)", fontsize=9)
    fig.tight_layout()
    return fig
