"""Simulated Heatmaps (DistilPose Eq. 2): a student's (x, y, sigma_x, sigma_y) as a heatmap."""
from __future__ import annotations

import torch


def simulated_heatmaps(coords: torch.Tensor, sigmas: torch.Tensor,
                       heatmap_size: tuple[int, int]) -> torch.Tensor:
    """Unnormalised axis-aligned Gaussians on the teacher's heatmap grid.

    coords (N, K, 2) normalised (x/W_in, y/H_in); sigmas (N, K, 2) (sigma_x, sigma_y) in
    heatmap px; heatmap_size (H, W). Returns (N, K, H, W).

    The grid points are the integer indices 0..W-1 / 0..H-1 and mu = (x*W, y*H): since
    x = x_px / W_in and W / W_in = 1 / stride, mu equals HeatmapCodec's centre
    x_px / stride, so with sigma = 2 this reproduces the teacher's target exactly. The
    1/(2 pi sx sy) factor of Eq. 1 is dropped (peak 1, like the targets). Separable
    product exp(-dx^2/2sx^2) * exp(-dy^2/2sy^2) == Eq. 2 and costs O(H + W) exps per
    keypoint; differentiable in coords and sigmas.
    """
    H, W = int(heatmap_size[0]), int(heatmap_size[1])
    gx = torch.arange(W, dtype=coords.dtype, device=coords.device)          # (W,)
    gy = torch.arange(H, dtype=coords.dtype, device=coords.device)          # (H,)
    mu_x = coords[..., 0:1] * W                                              # (N, K, 1)
    mu_y = coords[..., 1:2] * H
    ex = torch.exp(-0.5 * ((gx - mu_x) / sigmas[..., 0:1]) ** 2)             # (N, K, W)
    ey = torch.exp(-0.5 * ((gy - mu_y) / sigmas[..., 1:2]) ** 2)             # (N, K, H)
    return ey.unsqueeze(-1) * ex.unsqueeze(-2)                               # (N, K, H, W)
