"""Training augmentation and image normalisation for top-down crops.

An augmentation draw (half-body, scale, rotation, flip) becomes ``AugmentParams``, and
``crop_matrix`` folds all of it into the one 2x3 image -> input matrix of
``distilkit.geometry`` (the crop convention is stated there), so the image is resampled
once and its keypoints move by the very same matrix.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from distilkit.arrays import as_numpy
from distilkit.geometry import compose_affine, fix_aspect_ratio, flip_matrix, get_warp_matrix
from distilkit.keypoints import LOWER_BODY_IDS, UPPER_BODY_IDS

# ImageNet statistics for RGB images scaled to [0, 1].
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass
class AugmentConfig:
    """Training augmentation (the HRNet/MMPose COCO recipe; docs/ARCHITECTURE.md)."""

    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_total_keypoints: int = 8   # MMPose: half-body needs >= 8 visible joints
    half_body_min_part_keypoints: int = 2    # a half needs >= 2 visible joints to be chosen
    half_body_padding: float = 1.5
    half_body_upper_prob: float = 0.5
    scale_factor: float = 0.35               # scale multiplier in [1 - f, 1 + f]
    rotation: float = 45.0                   # degrees, rotation in [-r, r] (HRNet draws: [-2r, 2r])
    rot_prob: float = 0.6
    # The HRNet / MMPose 0.x draws the authors trained with: scale clip(N f + 1, 1 - f, 1 + f),
    # rotation clip(N r, -2r, 2r) at rot_prob, half-body when MORE than
    # half_body_min_total_keypoints joints are visible, the upper half when N < 0.5 (p 0.69) and
    # it has more than 2 joints. False: MMPose 1.x's normal truncated to [-1, 1] for both.
    hrnet_draws: bool = False
    # MMPose 0.x moves a training box's centre once, when the dataset is built: for
    # ``center_shift_prob`` of the instances, by U(-r, r) of the box's width and height (its
    # ``_xywh2cs``: p 0.3, r 0.2). 0: no shift (the cpu and smoke recipes).
    center_shift_prob: float = 0.0
    center_shift_range: float = 0.0

    def identity(self) -> dict:
        """The fields that decide the draws, for a config hash: the centre shift only when it is
        on, so recipes without it keep the hashes they had before it existed."""
        d = asdict(self)
        if not self.center_shift_prob:
            d.pop("center_shift_prob"), d.pop("center_shift_range")
        return d


@dataclass
class AugmentParams:
    """One draw of the augmentation for one instance (what was actually applied)."""

    center: np.ndarray
    scale: np.ndarray
    rot_deg: float = 0.0
    flip: bool = False
    half_body: bool = False


# ------------------------------------------------------------------- augmentation
def _truncated_normal(rng: np.random.Generator) -> float:
    """Standard normal truncated to [-1, 1] (MMPose 1.x RandomBBoxTransform)."""
    while True:
        z = float(rng.standard_normal())
        if -1.0 <= z <= 1.0:
            return z


def sample_scale_rotation(rng: np.random.Generator,
                          cfg: AugmentConfig) -> tuple[float, float]:
    """(scale multiplier in [1-f, 1+f], rotation in degrees or 0: within [-r, r], or
    [-2r, 2r] with ``hrnet_draws``)."""
    if cfg.hrnet_draws:
        f, r = cfg.scale_factor, cfg.rotation
        scale_mult = float(np.clip(rng.standard_normal() * f + 1.0, 1.0 - f, 1.0 + f))
        rot = float(np.clip(rng.standard_normal() * r, -2.0 * r, 2.0 * r))
        return scale_mult, (rot if rng.random() <= cfg.rot_prob else 0.0)
    scale_mult = 1.0 + cfg.scale_factor * _truncated_normal(rng)
    rot = 0.0
    if rng.random() < cfg.rot_prob:
        rot = cfg.rotation * _truncated_normal(rng)
    return scale_mult, rot


def half_body_center_scale(keypoints_xy, visible, rng: np.random.Generator,
                           cfg: AugmentConfig, aspect_ratio: float,
                           upper_ids=UPPER_BODY_IDS, lower_ids=LOWER_BODY_IDS,
                           ) -> tuple[np.ndarray, np.ndarray] | None:
    """A box around the upper or the lower body's visible joints, or None.

    Follows MMPose's RandomHalfBody: needs ``half_body_min_total_keypoints`` visible
    joints; a half with fewer than ``half_body_min_part_keypoints`` is never chosen.
    The probability draw is the caller's.
    """
    vis = np.asarray(visible) > 0
    upper = [i for i in upper_ids if vis[i]]
    lower = [i for i in lower_ids if vis[i]]
    if cfg.hrnet_draws:
        chosen = _hrnet_half(int(vis.sum()), upper, lower, rng, cfg)
        if chosen is None:
            return None
    else:
        if vis.sum() < cfg.half_body_min_total_keypoints:
            return None
        n_min = cfg.half_body_min_part_keypoints
        if len(upper) < n_min and len(lower) < n_min:
            return None
        if len(upper) < n_min:
            chosen = lower
        elif len(lower) < n_min:
            chosen = upper
        else:
            chosen = upper if rng.random() < cfg.half_body_upper_prob else lower
    pts = np.asarray(keypoints_xy, dtype=np.float64)[chosen]
    center = pts.mean(axis=0)
    wh = pts.max(axis=0) - pts.min(axis=0)
    scale = fix_aspect_ratio(wh * cfg.half_body_padding, aspect_ratio)
    if not np.all(scale > 0):
        return None
    return center, scale


def _hrnet_half(n_visible: int, upper: list[int], lower: list[int], rng: np.random.Generator,
                cfg: AugmentConfig) -> list[int] | None:
    """MMPose 0.x's choice of a half: upper when a standard normal is < 0.5 and it has more
    than 2 joints, else lower if it has more than 2, else upper; none below 2 joints."""
    if n_visible <= cfg.half_body_min_total_keypoints:
        return None
    if rng.standard_normal() < 0.5 and len(upper) > 2:
        chosen = upper
    elif len(lower) > 2:
        chosen = lower
    else:
        chosen = upper
    return chosen if len(chosen) >= 2 else None


def sample_augmentation(rng: np.random.Generator, cfg: AugmentConfig, center, scale,
                        keypoints_xy, visible, aspect_ratio: float) -> AugmentParams:
    """Draw half-body, scale, rotation and flip for one training instance."""
    params = AugmentParams(center=np.asarray(center, np.float64).copy(),
                           scale=np.asarray(scale, np.float64).copy())
    if rng.random() < cfg.half_body_prob:
        half = half_body_center_scale(keypoints_xy, visible, rng, cfg, aspect_ratio)
        if half is not None:
            params.center, params.scale = half
            params.half_body = True
    scale_mult, params.rot_deg = sample_scale_rotation(rng, cfg)
    params.scale = params.scale * scale_mult
    params.flip = bool(rng.random() < cfg.flip_prob)
    return params


def shifted_centers(centers: np.ndarray, box_wh: np.ndarray, cfg: AugmentConfig,
                    rng: np.random.Generator) -> np.ndarray:
    """(N, 2) box centres, ``cfg.center_shift_prob`` of them moved by U(-r, r)·(w, h): the draw
    MMPose 0.x makes once per dataset build. Draws are taken for every instance (shift or not),
    so an instance's shift does not depend on the ones before it."""
    centers = np.asarray(centers, np.float64).reshape(-1, 2)
    wh = np.asarray(box_wh, np.float64).reshape(-1, 2)
    chosen = rng.random(len(centers)) < cfg.center_shift_prob
    offsets = (rng.random((len(centers), 2)) * 2.0 - 1.0) * cfg.center_shift_range * wh
    return centers + offsets * chosen[:, None]


def crop_matrix(params: AugmentParams, output_size_hw) -> np.ndarray:
    """The one image -> input matrix for these parameters (box warp, then flip)."""
    matrix = get_warp_matrix(params.center, params.scale, params.rot_deg, output_size_hw)
    if params.flip:
        matrix = compose_affine(matrix, flip_matrix(int(output_size_hw[1])))
    return matrix


# ------------------------------------------------------------------- normalisation
def normalize_image(rgb_uint8: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32 ImageNet-normalised tensor."""
    img = rgb_uint8.astype(np.float32) / 255.0
    img = (img - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def denormalize_image(image) -> np.ndarray:
    """(3, H, W) normalised tensor/array -> (H, W, 3) float RGB in [0, 1]."""
    img = as_numpy(image, np.float32).transpose(1, 2, 0)
    return np.clip(img * IMAGENET_STD + IMAGENET_MEAN, 0.0, 1.0)
