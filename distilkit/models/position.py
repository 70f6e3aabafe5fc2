"""Fixed 2-D sine position embedding (DETR / TokenPose style) for a grid of visual tokens."""
from __future__ import annotations

import math

import torch


def sine_position_embedding(grid: tuple[int, int], dim: int, *, temperature: float = 1e4,
                            normalize: bool = True, scale: float = 2 * math.pi) -> torch.Tensor:
    """Embedding of shape (gh * gw, dim) for a row-major gh x gw token grid.

    The first dim/2 channels encode y, the last dim/2 encode x. Within each half,
    frequencies are temperature ** (2 * (i // 2) / (dim / 2)) and channels alternate
    sin (even i) and cos (odd i). With ``normalize`` the 1-based positions are divided by
    the grid length and multiplied by ``scale`` (2 pi), as in DETR and TokenPose, so the
    embedding describes relative position and does not depend on the grid resolution.
    """
    gh, gw = grid
    if dim % 4:
        raise ValueError(f"dim must be divisible by 4 (sin/cos for y and x), got {dim}")
    half = dim // 2
    y = torch.arange(1, gh + 1, dtype=torch.float64)  # 1-based, like cumsum over a mask
    x = torch.arange(1, gw + 1, dtype=torch.float64)
    if normalize:
        eps = 1e-6  # DETR's eps: keeps the last position just below `scale`
        y = y / (gh + eps) * scale
        x = x / (gw + eps) * scale
    i = torch.arange(half, dtype=torch.float64)
    freq = temperature ** (2 * torch.div(i, 2, rounding_mode="floor") / half)  # (half,)

    def encode(p: torch.Tensor) -> torch.Tensor:     # (L,) -> (L, half)
        a = p[:, None] / freq
        out = torch.empty_like(a)
        out[:, 0::2] = a[:, 0::2].sin()
        out[:, 1::2] = a[:, 1::2].cos()
        return out

    pos_y = encode(y)[:, None, :].expand(gh, gw, half)  # (gh, gw, half)
    pos_x = encode(x)[None, :, :].expand(gh, gw, half)  # (gh, gw, half)
    return torch.cat([pos_y, pos_x], dim=-1).reshape(gh * gw, dim).float()


__all__ = ["sine_position_embedding"]
