"""Pre-norm transformer encoder layer (ViT / TokenPose style), with inspectable attention.

Attention has two paths that compute the same function:
- fast: ``F.scaled_dot_product_attention`` (fused kernels, no T x T matrix kept);
- explicit: softmax(Q K^T / sqrt(d_head)) V, which also returns the attention maps
  (N, heads, T, T) for visualisation (Fig. 3b) and for FLOP counters that cannot see
  inside fused SDPA kernels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention; qkv without bias and scaled by d_head ** -0.5 (TokenPose)."""

    def __init__(self, dim: int, *, heads: int = 8) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, *, return_attention: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        n, t, d = x.shape
        # (N, T, 3D) -> 3 x (N, heads, T, d_head)
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attn = None
        if return_attention:
            scores = (q @ k.transpose(-2, -1)) * self.head_dim ** -0.5  # (N, heads, T, T)
            attn = scores.softmax(dim=-1)
            out = attn @ v                                               # (N, heads, T, d_head)
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(n, t, d)                       # (N, T, D)
        return self.proj(out), attn


class FeedForward(nn.Module):
    """Linear -> GELU -> Linear, hidden = mlp_ratio * dim; no dropout (paper setting)."""

    def __init__(self, dim: int, *, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class EncoderLayer(nn.Module):
    """x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, *, heads: int = 8, mlp_ratio: float = 3.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads=heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, hidden_dim=int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, *, return_attention: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, attn = self.attn(self.norm1(x), return_attention=return_attention)
        x = x + a
        x = x + self.mlp(self.norm2(x))
        return x, attn


__all__ = ["Attention", "FeedForward", "EncoderLayer"]
