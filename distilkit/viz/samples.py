"""The crops the figures are drawn on: validation instances with their ground truth.

Every figure compares models "over the same images", so sample selection is one function
of (data root, input size, ids or count, seed) and never depends on the model.
Ground-truth boxes are used (not detector boxes) so each crop has an annotation, hence an
area and keypoints for the correctness rule of Fig. 6 and the red dot of Fig. 3b.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from distilkit.keypoints import KEYPOINT_NAMES
from distilkit.models.checkpoint import load_checkpoint


@dataclass
class Crops:
    """A batch of validation crops and what is known about each one."""

    images: torch.Tensor          # (N, 3, H, W) ImageNet-normalised
    keypoints: torch.Tensor       # (N, K, 2) GT in input px
    visible: torch.Tensor         # (N, K) 1 where labelled and inside the crop
    centers: np.ndarray           # (N, 2) image px
    scales: np.ndarray            # (N, 2) image px
    image_ids: np.ndarray         # (N,)
    ann_ids: np.ndarray           # (N,)
    areas: np.ndarray             # (N,) COCO annotation area, image px^2
    gt_image: np.ndarray          # (N, K, 3) GT x, y, v in image px (COCO annotation)
    indices: np.ndarray           # (N,) dataset indices

    def __len__(self) -> int:
        return len(self.images)


def keypoint_index(keypoint: int | str) -> int:
    """A joint by COCO name (``right_ankle``) or index."""
    if isinstance(keypoint, str):
        try:
            return KEYPOINT_NAMES.index(keypoint)
        except ValueError:
            raise ValueError(f"unknown keypoint {keypoint!r}; one of {KEYPOINT_NAMES}") from None
    k = int(keypoint)
    if not 0 <= k < len(KEYPOINT_NAMES):
        raise ValueError(f"keypoint index {k} is outside 0..{len(KEYPOINT_NAMES) - 1}")
    return k


def pick_indices(n_total: int, ids: Sequence[int] | None, num: int, seed: int) -> list[int]:
    """Explicit dataset indices, else ``num`` drawn without replacement by ``seed``."""
    if ids is not None:
        bad = [int(i) for i in ids if not 0 <= int(i) < n_total]
        if bad:
            raise ValueError(f"sample ids {bad} are outside 0..{n_total - 1}")
        return [int(i) for i in ids]
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(n_total, size=min(num, n_total), replace=False))


def load_val_crops(data_root: str | Path, input_size: tuple[int, int], *,
                   ids: Sequence[int] | None = None, num: int = 4, seed: int = 0,
                   min_visible: int = 8) -> Crops:
    """GT-box validation crops. Without ``ids``, instances with at least ``min_visible``
    labelled joints are preferred, since a figure of a mostly truncated person shows little."""
    from distilkit.data.topdown import TopDownCocoDataset

    dataset = TopDownCocoDataset(data_root, split="val", input_size=tuple(input_size),
                                 train=False, use_detections=False)
    if ids is None:
        # Annotation v-flags are read without decoding any image.
        good = [i for i, inst in enumerate(dataset.instances)
                if int((inst.keypoints[:, 2] > 0).sum()) >= min_visible]
        pool = good if len(good) >= num and min_visible > 0 else list(range(len(dataset)))
        chosen = [pool[i] for i in pick_indices(len(pool), None, num, seed)]
    else:
        chosen = pick_indices(len(dataset), ids, num, seed)
    samples = [dataset[i] for i in chosen]
    anns = [dataset.coco.anns[int(s["meta"]["ann_id"])] for s in samples]
    return Crops(
        images=torch.stack([s["image"] for s in samples]),
        keypoints=torch.stack([s["keypoints"] for s in samples]),
        visible=torch.stack([s["keypoints_visible"] for s in samples]),
        centers=np.stack([s["meta"]["center"].numpy() for s in samples]).astype(np.float64),
        scales=np.stack([s["meta"]["scale"].numpy() for s in samples]).astype(np.float64),
        image_ids=np.array([int(s["meta"]["image_id"]) for s in samples]),
        ann_ids=np.array([int(s["meta"]["ann_id"]) for s in samples]),
        areas=np.array([float(a.get("area", 0.0)) for a in anns]),
        gt_image=np.stack([np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
                           for a in anns]),
        indices=np.asarray(chosen),
    )


def data_root_of(checkpoint: str | Path, data_root: str | Path | None = None) -> Path:
    """The data a checkpoint was trained on (its synthetic set is regenerated if absent)."""
    from distilkit.engine.config import TrainConfig
    from distilkit.engine.data import resolve_data_root

    if data_root is not None:
        return resolve_data_root(data_root, None, progress=False)
    ckpt = load_checkpoint(checkpoint)
    config = TrainConfig.from_dict(ckpt["config"])
    saved = ckpt.get("data_root")
    if saved and Path(saved).is_dir():
        return Path(saved)
    return resolve_data_root(config.data_root, config.resolved_profile(),
                             seed=config.data_seed, progress=False)


__all__ = ["Crops", "keypoint_index", "pick_indices", "load_val_crops", "data_root_of"]
