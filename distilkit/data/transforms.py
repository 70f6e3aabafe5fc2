"""Top-down crop geometry and augmentation: boxes, affine warps, flip, half-body.

Conventions (docs/CONTRACTS.md):

* A crop is ``center`` (cx, cy) and ``scale`` (w, h) in image pixels (MMPose 1.x
  ``bbox_scale``, no /200). ``get_warp_matrix`` maps the box
  [cx - w/2, cx + w/2] x [cy - h/2, cy + h/2] onto [0, W] x [0, H] of the input, so
  without rotation ``x_img = cx + (x_in / W - 0.5) * w``. The evaluation code relies on
  exactly this; do not switch to a pixel-centre-aligned variant.
* Positive ``rot_deg`` follows MMPose: the image vector R(rot) @ v maps to v, i.e. the
  crop content appears rotated by -rot (clockwise on screen for rot > 0).
* Flip happens *in the input crop*: after the box warp, x -> W - 1 - x in input pixels
  (the mirror ``cv2.flip``/``torch.flip`` applies to a W-pixel-wide array), and left/right
  keypoints swap through ``FLIP_INDEX``. The codecs' flip test undoes it the same way.
* Every augmentation (half-body, scale, rotation, flip) is folded into one 2x3 matrix and
  applied with a single ``cv2.warpAffine`` (bilinear, constant black border), so the image
  is resampled once and keypoints are moved by the very same matrix.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from distilkit.keypoints import FLIP_INDEX, LOWER_BODY_IDS, UPPER_BODY_IDS

# ImageNet statistics for RGB images scaled to [0, 1].
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

BBOX_PADDING = 1.25


@dataclass
class AugmentConfig:
    """Training augmentation (DESIGN.md; the HRNet/MMPose COCO recipe)."""

    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_total_keypoints: int = 8   # MMPose: half-body needs >= 8 visible joints
    half_body_min_part_keypoints: int = 2    # a half needs >= 2 visible joints to be chosen
    half_body_padding: float = 1.5
    half_body_upper_prob: float = 0.5
    scale_factor: float = 0.35               # scale multiplier in [1 - f, 1 + f]
    rotation: float = 45.0                   # degrees, rotation in [-r, r]
    rot_prob: float = 0.6


@dataclass
class AugmentParams:
    """One draw of the augmentation for one instance (what was actually applied)."""

    center: np.ndarray
    scale: np.ndarray
    rot_deg: float = 0.0
    flip: bool = False
    half_body: bool = False


# --------------------------------------------------------------------------- boxes
def clip_bbox_xywh(bbox, img_w: float, img_h: float) -> np.ndarray | None:
    """Clip an [x, y, w, h] box to the image; None when nothing of it is left."""
    x, y, w, h = (float(v) for v in bbox)
    x1, y1 = np.clip(x, 0.0, img_w), np.clip(y, 0.0, img_h)
    x2, y2 = np.clip(x + w, 0.0, img_w), np.clip(y + h, 0.0, img_h)
    if not (x2 - x1 > 0 and y2 - y1 > 0):
        return None
    return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float64)


def fix_aspect_ratio(scale, aspect_ratio: float) -> np.ndarray:
    """Grow (w, h) along one axis so that w / h == aspect_ratio (input W / H)."""
    w, h = float(scale[0]), float(scale[1])
    if w > h * aspect_ratio:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    return np.array([w, h], dtype=np.float64)


def bbox_to_center_scale(bbox_xywh, aspect_ratio: float,
                         padding: float = BBOX_PADDING) -> tuple[np.ndarray, np.ndarray]:
    """Box -> (center, scale) at the input aspect ratio, padded (MMPose 1.x)."""
    x, y, w, h = (float(v) for v in bbox_xywh)
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float64)
    scale = fix_aspect_ratio((w * padding, h * padding), aspect_ratio)
    return center, scale


# -------------------------------------------------------------------------- affine
def get_warp_matrix(center, scale, rot_deg: float, output_size_hw,
                    inv: bool = False) -> np.ndarray:
    """2x3 affine from image pixels to input pixels (``inv=True``: input -> image).

    Closed form rather than cv2.getAffineTransform on three points, so the inverse is
    exact and non-square boxes map exactly onto [0, W] x [0, H].
    """
    out_h, out_w = float(output_size_hw[0]), float(output_size_hw[1])
    cx, cy = float(center[0]), float(center[1])
    sx, sy = out_w / float(scale[0]), out_h / float(scale[1])
    t = np.deg2rad(float(rot_deg))
    cos, sin = np.cos(t), np.sin(t)
    # forward: S @ R(-t) @ (p - c) + (W/2, H/2)
    lin = np.array([[sx * cos, sx * sin], [-sy * sin, sy * cos]])
    if inv:
        # backward: R(t) @ S^-1 @ (q - (W/2, H/2)) + c
        lin_inv = np.array([[cos / sx, -sin / sy], [sin / sx, cos / sy]])
        off = np.array([cx, cy]) - lin_inv @ np.array([out_w * 0.5, out_h * 0.5])
        return np.hstack([lin_inv, off[:, None]])
    off = np.array([out_w * 0.5, out_h * 0.5]) - lin @ np.array([cx, cy])
    return np.hstack([lin, off[:, None]])


def flip_matrix(width: int) -> np.ndarray:
    """Mirror in input pixels: x -> W - 1 - x (the flip a W-wide pixel array undergoes)."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]])


def compose_affine(first: np.ndarray, then: np.ndarray) -> np.ndarray:
    """The 2x3 affine that applies ``first`` and then ``then``."""
    a = np.vstack([first, [0.0, 0.0, 1.0]])
    b = np.vstack([then, [0.0, 0.0, 1.0]])
    return (b @ a)[:2]


def apply_affine(points, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to (..., 2) points."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def warp_image(image: np.ndarray, matrix: np.ndarray, output_size_hw) -> np.ndarray:
    """The single resampling of the pipeline: bilinear, constant (black) border."""
    out_h, out_w = int(output_size_hw[0]), int(output_size_hw[1])
    return cv2.warpAffine(image, matrix.astype(np.float64), (out_w, out_h),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(0, 0, 0))


def flip_keypoints(keypoints, visible, width: int,
                   flip_index=FLIP_INDEX) -> tuple[np.ndarray, np.ndarray]:
    """Mirror (K, 2) input-pixel keypoints (x -> W - 1 - x) and swap left/right."""
    kpts = np.asarray(keypoints, dtype=np.float64).copy()
    kpts[:, 0] = width - 1.0 - kpts[:, 0]
    index = list(flip_index)
    return kpts[index], np.asarray(visible)[index].copy()


# ------------------------------------------------------------------- augmentation
def _truncated_normal(rng: np.random.Generator) -> float:
    """Standard normal truncated to [-1, 1] (MMPose 1.x RandomBBoxTransform)."""
    while True:
        z = float(rng.standard_normal())
        if -1.0 <= z <= 1.0:
            return z


def sample_scale_rotation(rng: np.random.Generator,
                          cfg: AugmentConfig) -> tuple[float, float]:
    """(scale multiplier in [1-f, 1+f], rotation in [-r, r] degrees or 0)."""
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
    if vis.sum() < cfg.half_body_min_total_keypoints:
        return None
    upper = [i for i in upper_ids if vis[i]]
    lower = [i for i in lower_ids if vis[i]]
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
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    img = np.asarray(image, dtype=np.float32).transpose(1, 2, 0)
    return np.clip(img * IMAGENET_STD + IMAGENET_MEAN, 0.0, 1.0)
