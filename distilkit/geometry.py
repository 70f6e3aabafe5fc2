"""Top-down crop geometry: boxes -> crops, and the one affine between image and input px.

The data pipeline (training and test crops) and the evaluation (predictions back to the
image) both import this module, so a keypoint goes out and comes back through the same
convention (docs/CONTRACTS.md):

* A crop is ``center`` (cx, cy) and ``scale`` (w, h) in image pixels (MMPose 1.x
  ``bbox_scale``, no /200). ``get_warp_matrix`` maps the box
  [cx - w/2, cx + w/2] x [cy - h/2, cy + h/2] onto [0, W] x [0, H] of the input, so
  without rotation ``x_img = cx + (x_in / W - 0.5) * w``, which is the closed form
  ``keypoints_to_image`` applies. Do not switch to a pixel-centre-aligned variant.
* Positive ``rot_deg`` follows MMPose: the image vector R(rot) @ v maps to v, i.e. the
  crop content appears rotated by -rot (clockwise on screen for rot > 0).
* Flip happens *in the input crop*: after the box warp, x -> W - 1 - x in input pixels
  (the mirror ``cv2.flip``/``torch.flip`` applies to a W-pixel-wide array), and left/right
  keypoints swap through ``FLIP_INDEX``. The codecs' flip test undoes it the same way.
* An image is resampled once, by ``warp_image`` (cv2, bilinear, black border), with the
  same matrix that moves its keypoints (``apply_affine``).
"""
from __future__ import annotations

import cv2
import numpy as np

from distilkit.keypoints import FLIP_INDEX

BBOX_PADDING = 1.25


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


def keypoints_to_image(coords: np.ndarray, center: np.ndarray, scale: np.ndarray,
                       input_size: tuple[int, int]) -> np.ndarray:
    """coords (N, K, 2) input px -> (N, K, 2) image px, undoing an unrotated crop warp.

    center, scale (N, 2) image px; input_size (H, W). Test-time crops are never rotated,
    so the closed form x_img = cx + (x_in / W - 0.5) * w (``get_warp_matrix(...,
    inv=True)`` at rot 0) replaces a matrix per instance.
    """
    coords = np.asarray(coords, dtype=np.float64)
    center = np.asarray(center, dtype=np.float64).reshape(-1, 1, 2)
    scale = np.asarray(scale, dtype=np.float64).reshape(-1, 1, 2)
    H, W = input_size
    wh = np.array([W, H], dtype=np.float64)
    return center + (coords / wh - 0.5) * scale


__all__ = ["BBOX_PADDING", "clip_bbox_xywh", "fix_aspect_ratio", "bbox_to_center_scale",
           "get_warp_matrix", "flip_matrix", "compose_affine", "apply_affine", "warp_image",
           "flip_keypoints", "keypoints_to_image"]
