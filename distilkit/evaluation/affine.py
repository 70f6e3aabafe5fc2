"""Top-down crop geometry: image px <-> input px, without cv2.

Convention (MMPose 1.x `bbox_scale`, no /200): a crop is `center` (cx, cy) and `scale`
(sw, sh) in image px. The warp maps the box [cx - sw/2, cx + sw/2] onto [0, W] and
[cy - sh/2, cy + sh/2] onto [0, H] (input size (H, W)), centre to (W/2, H/2):

    x_in = (x_img - cx) * W / sw + W / 2      <=>      x_img = cx + (x_in / W - 0.5) * sw

`get_affine_points` builds the three point pairs that define this map (centre, top-edge
midpoint, left-edge midpoint), which cv2.getAffineTransform turns into the same matrix
as `affine_from_points`. When sh/sw == H/W (the data pipeline pads boxes to the input
aspect) this equals MMPose's `get_warp_matrix`, whose third point is built from sw only.
"""
from __future__ import annotations

import numpy as np


def _rotate(v: np.ndarray, rot_deg: float) -> np.ndarray:
    """Rotate 2-vectors (..., 2) by rot_deg; same sense as MMPose's _rotate_point."""
    r = np.deg2rad(rot_deg)
    c, s = np.cos(r), np.sin(r)
    return np.stack([v[..., 0] * c - v[..., 1] * s, v[..., 0] * s + v[..., 1] * c], axis=-1)


def get_affine_points(center: np.ndarray, scale: np.ndarray, output_size: tuple[int, int],
                      rot_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(src (3, 2) image px, dst (3, 2) input px) point pairs of the crop warp."""
    center = np.asarray(center, dtype=np.float64)
    sw, sh = np.asarray(scale, dtype=np.float64)
    H, W = output_size
    up = _rotate(np.array([0.0, -0.5 * sh]), rot_deg)
    left = _rotate(np.array([-0.5 * sw, 0.0]), rot_deg)
    src = np.stack([center, center + up, center + left])
    dst = np.array([[0.5 * W, 0.5 * H], [0.5 * W, 0.0], [0.0, 0.5 * H]])
    return src.astype(np.float32), dst.astype(np.float32)


def affine_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 affine A with A @ [src; 1] = dst for three point pairs (cv2-free)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    lhs = np.concatenate([src, np.ones((3, 1))], axis=1)          # (3, 3)
    return np.linalg.solve(lhs, dst).T                             # (2, 3)


def crop_affine(center: np.ndarray, scale: np.ndarray, output_size: tuple[int, int],
                rot_deg: float = 0.0, inv: bool = False) -> np.ndarray:
    """2x3 affine image px -> input px (inv=True: input px -> image px)."""
    src, dst = get_affine_points(center, scale, output_size, rot_deg)
    return affine_from_points(dst, src) if inv else affine_from_points(src, dst)


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """points (..., 2) through a 2x3 affine."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def keypoints_to_image(coords: np.ndarray, center: np.ndarray, scale: np.ndarray,
                       input_size: tuple[int, int]) -> np.ndarray:
    """coords (N, K, 2) input px -> (N, K, 2) image px, undoing an unrotated crop warp.

    center, scale (N, 2) image px; input_size (H, W). Test-time crops are never rotated,
    so this closed form replaces a matrix per instance.
    """
    coords = np.asarray(coords, dtype=np.float64)
    center = np.asarray(center, dtype=np.float64).reshape(-1, 1, 2)
    scale = np.asarray(scale, dtype=np.float64).reshape(-1, 1, 2)
    H, W = input_size
    wh = np.array([W, H], dtype=np.float64)
    return center + (coords / wh - 0.5) * scale
