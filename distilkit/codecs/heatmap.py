"""Gaussian heatmap targets for the teacher, and their decoding back to input pixels.

Pixel convention (shared with `simulated_heatmaps` and the flip helpers): a keypoint at
input pixel x lies at heatmap pixel x / stride, with stride = input / heatmap (4 for
256x192 -> 64x48), and heatmap pixel j maps back to input pixel j * stride. No half-pixel
offsets, so encode -> decode round-trips up to the decoder's sub-pixel error.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from distilkit.arrays import as_numpy
from distilkit.codecs.dark import dark_blur_kernel_size, refine_dark


# The decoders below are torch so that a model's forward can decode on its own device
# and dtype (``distilkit.models.heads.decode_heatmaps``); `HeatmapCodec.decode` runs the
# very same ops on a float32 CPU tensor.
def heatmap_argmax(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer argmax location and peak value of each heatmap.

    heatmaps (N, K, h, w) -> (locs (N, K, 2) int64 as (x, y) heatmap px, vals (N, K)).
    A tie goes to the first maximum in row-major order.
    """
    n, k, h, w = heatmaps.shape
    vals, idx = heatmaps.reshape(n, k, h * w).max(dim=-1)          # (N, K)
    locs = torch.stack([idx % w, torch.div(idx, w, rounding_mode="floor")], dim=-1)
    return locs.long(), vals


def quarter_offset(heatmaps: torch.Tensor, locs: torch.Tensor) -> torch.Tensor:
    """The standard +-0.25 px shift toward the higher neighbour (HRNet / MMPose).

    Applied per axis only where both neighbours exist (0 < x < w-1), as MMPose does.
    heatmaps (N, K, h, w), locs (N, K, 2) int -> offsets (N, K, 2) heatmap px, in the
    heatmaps' dtype.
    """
    n, k, h, w = heatmaps.shape
    hm = heatmaps.reshape(n * k, h, w)
    b = torch.arange(n * k, device=heatmaps.device)
    x, y = locs[..., 0].reshape(-1), locs[..., 1].reshape(-1)
    # neighbours clamped to the grid; a border peak gets no shift on that axis
    dx = hm[b, y, (x + 1).clamp(max=w - 1)] - hm[b, y, (x - 1).clamp(min=0)]
    dy = hm[b, (y + 1).clamp(max=h - 1), x] - hm[b, (y - 1).clamp(min=0), x]
    dx = torch.where((x > 0) & (x < w - 1), dx, torch.zeros_like(dx))
    dy = torch.where((y > 0) & (y < h - 1), dy, torch.zeros_like(dy))
    return (0.25 * torch.sign(torch.stack([dx, dy], dim=-1))).reshape(n, k, 2)


def quarter_decode(heatmaps: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Argmax plus the quarter shift, the classic heatmap decoder.

    heatmaps (N, K, h, w) -> (coords (N, K, 2) heatmap px in the heatmaps' dtype,
    scores (N, K) peak values, locs (N, K, 2) int64 integer argmax, which DARK refines).
    """
    locs, scores = heatmap_argmax(heatmaps)
    coords = locs.to(heatmaps.dtype) + quarter_offset(heatmaps, locs)
    return coords, scores, locs


@dataclass
class HeatmapCodec:
    """Unbiased (sub-pixel centred) Gaussian heatmaps, sigma in heatmap pixels.

    `encode` places the Gaussian centre at keypoint / stride exactly (no rounding) and
    evaluates it over the whole grid, so the peak is <= 1 and equals 1 only when the
    keypoint falls on a grid point. A keypoint gets weight 0 (and an all-zero heatmap)
    when it is invisible or when its 3-sigma window [mu - 3s, mu + 3s + 1) does not
    overlap the grid, which is MMPose's unbiased-codec rule (floor instead of int()
    truncation, which only differs for negative coordinates).
    """

    input_size: tuple[int, int]          # (H, W) input pixels
    heatmap_size: tuple[int, int]        # (h, w) heatmap pixels
    sigma: float = 2.0
    blur_kernel_size: int = field(default=0)  # DARK blur; 0 -> derived from sigma
    # The dataset passes ``encode`` every labelled keypoint, not only those inside the crop, so
    # one just outside keeps its partial Gaussian and weight 1 while its 3-sigma window meets
    # the grid (MMPose 0.x's targets; the paper profile). False: inside the crop only.
    partial_outside: bool = False

    def __post_init__(self) -> None:
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        self.heatmap_size = (int(self.heatmap_size[0]), int(self.heatmap_size[1]))
        if self.blur_kernel_size <= 0:
            self.blur_kernel_size = dark_blur_kernel_size(self.sigma)

    @property
    def stride(self) -> np.ndarray:
        """(stride_x, stride_y) input px per heatmap px."""
        (H, W), (h, w) = self.input_size, self.heatmap_size
        return np.array([W / w, H / h], dtype=np.float32)

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """keypoints (K, 2) input px, visible (K,) -> heatmaps (K, h, w), heatmap_weights (K,)."""
        kpts = np.asarray(keypoints, dtype=np.float32).reshape(-1, 2)
        vis = np.asarray(visible, dtype=np.float32).reshape(-1)
        h, w = self.heatmap_size
        mu = kpts / self.stride                                        # (K, 2) heatmap px
        radius = 3.0 * self.sigma
        left_top = np.floor(mu - radius)
        right_bottom = np.floor(mu + radius + 1.0)
        inside = ((left_top[:, 0] < w) & (left_top[:, 1] < h)
                  & (right_bottom[:, 0] >= 0) & (right_bottom[:, 1] >= 0))
        weights = ((vis > 0.5) & inside & np.isfinite(mu).all(axis=1)).astype(np.float32)

        # Separable Gaussian: exp(-(dx^2 + dy^2) / 2s^2) = gx(x) * gy(y).
        gx = np.arange(w, dtype=np.float32)
        gy = np.arange(h, dtype=np.float32)
        mu_safe = np.where(weights[:, None] > 0, mu, 0.0)              # no NaN/inf math
        ex = np.exp(-((gx[None, :] - mu_safe[:, :1]) ** 2) / (2 * self.sigma ** 2))  # (K, w)
        ey = np.exp(-((gy[None, :] - mu_safe[:, 1:]) ** 2) / (2 * self.sigma ** 2))  # (K, h)
        heatmaps = ey[:, :, None] * ex[:, None, :] * weights[:, None, None]          # (K, h, w)
        return {"heatmaps": heatmaps.astype(np.float32), "heatmap_weights": weights}

    def decode(self, heatmaps: np.ndarray | torch.Tensor,
               dark: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """heatmaps (N, K, h, w) (or (K, h, w)) -> coords (N, K, 2) input px, scores (N, K).

        dark=False: argmax + quarter-pixel shift. dark=True: DARK refinement of the
        integer argmax (falls back to the quarter shift where DARK does not apply).
        The score is the heatmap's peak value either way.
        """
        hm = as_numpy(heatmaps, np.float32)
        if hm.ndim == 3:
            coords, scores = self.decode(hm[None], dark=dark)
            return coords[0], scores[0]
        if hm.ndim != 4:
            raise ValueError(f"heatmaps must be (N, K, h, w), got shape {hm.shape}")
        # a copy: the array may be read-only or strided, which torch cannot wrap
        coarse, scores, locs = (t.numpy() for t in quarter_decode(torch.from_numpy(hm.copy())))
        if dark:
            coarse = refine_dark(hm, locs, coarse, self.blur_kernel_size)
        return coarse * self.stride, scores.astype(np.float32)
