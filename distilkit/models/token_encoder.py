"""Token-distilling Encoder (TDE, paper Sec. 3.1): a TokenPose-style transformer encoder.

    feature map (N, C, h, w), stride 4
      -> patches ph x pw, each flattened (ph*pw*C) -> Linear -> D      P = (h/ph)(w/pw) visual tokens
         (run as a conv with kernel = stride = patch, which is the same map)
      -> [17 learnable keypoint tokens ; P visual tokens]               T = K + P tokens, keypoints FIRST
      -> depth x pre-norm EncoderLayer, the fixed 2-D sine embedding added to the visual
         tokens before every layer (keypoint tokens get none)
      -> keypoint tokens (N, K, D), visual tokens (N, P, D)

Paper setting (256x192 input, 64x48 map): patch 4x3 -> 16x16 = 256 visual tokens, D = 192,
12 layers, 8 heads, MLP ratio 3, GELU, no dropout.

What the encoder returns is the output of its last layer with NO final LayerNorm: the
heads own their LayerNorm (as TokenPose's ``mlp_head``), and these raw tokens are what
L_KT / L_VT compare between teacher and student. The position embedding is added into the
residual stream of the visual tokens before each layer (TokenPose's "sine-full"), so it
accumulates; this is the authors' behaviour and is kept.
"""
from __future__ import annotations

import torch
from torch import nn

from distilkit.models.position import sine_position_embedding
from distilkit.models.transformer import EncoderLayer


class TokenEncoder(nn.Module):
    """Patchify a stride-4 feature map and run keypoint + visual tokens through a transformer.

    Args:
        in_channels: C of the backbone feature map.
        feature_size: (h, w) of the feature map; must be divisible by ``patch_size``.
        patch_size: (ph, pw) in feature-map pixels (paper: (4, 3)).
        num_keypoints: K keypoint tokens (COCO: 17).
        dim, depth, heads, mlp_ratio: transformer size (paper: 192, 12, 8, 3).
    """

    def __init__(self, *, in_channels: int, feature_size: tuple[int, int],
                 patch_size: tuple[int, int] = (4, 3), num_keypoints: int = 17,
                 dim: int = 192, depth: int = 12, heads: int = 8, mlp_ratio: float = 3.0) -> None:
        super().__init__()
        h, w = feature_size
        ph, pw = patch_size
        if h % ph or w % pw:
            raise ValueError(f"feature map {feature_size} is not divisible by patch {patch_size}")
        self.patch_size = (ph, pw)
        self.grid = (h // ph, w // pw)
        self.num_patches = self.grid[0] * self.grid[1]
        self.num_keypoints = num_keypoints
        self.dim = dim
        self.depth = depth
        self.heads = heads

        # Linear(ph*pw*C -> D) on each flattened patch, computed as the equivalent conv with
        # kernel = stride = patch (no patchify copy; oneDNN runs it faster than a GEMM on
        # the copied patches). See `patchify` / `linear_patch_weight` for the Linear view.
        self.patch_embed = nn.Conv2d(in_channels, dim, kernel_size=(ph, pw), stride=(ph, pw))
        self.keypoint_tokens = nn.Parameter(torch.zeros(1, num_keypoints, dim))
        # A buffer, not a parameter: it is fixed, moves with .to(), and is not counted in the
        # parameter totals (mmcv counts only requires_grad parameters, as do we).
        self.register_buffer("pos_embed", sine_position_embedding(self.grid, dim)[None],
                             persistent=False)  # (1, P, D)
        self.layers = nn.ModuleList(
            EncoderLayer(dim, heads=heads, mlp_ratio=mlp_ratio) for _ in range(depth)
        )
        self.apply(_init_transformer)
        nn.init.trunc_normal_(self.patch_embed.weight, std=0.02)  # as the authors' Linear
        nn.init.zeros_(self.patch_embed.bias)
        nn.init.trunc_normal_(self.keypoint_tokens, std=0.02)

    def linear_patch_weight(self) -> torch.Tensor:
        """The patch embedding as the (D, ph*pw*C) weight of a Linear on ``patchify`` output
        (TokenPose's layout; permute back the same way to load such a checkpoint)."""
        w = self.patch_embed.weight                                   # (D, C, ph, pw)
        return w.permute(0, 2, 3, 1).reshape(w.shape[0], -1)          # (D, ph*pw*C)

    def _check_grid(self, h: int, w: int) -> None:
        ph, pw = self.patch_size
        if h % ph or w % pw or (h // ph, w // pw) != self.grid:
            raise ValueError(f"feature map {(h, w)} does not give the {self.grid} token grid "
                             f"this encoder was built for (patch {self.patch_size})")

    def patchify(self, feat: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) -> (N, P, ph*pw*C), patches row-major, each flattened as (ph, pw, C)."""
        n, c, h, w = feat.shape
        self._check_grid(h, w)
        ph, pw = self.patch_size
        gh, gw = self.grid
        # via (N, h, w, C): a free view for channels_last maps, so only one copy is made
        x = feat.permute(0, 2, 3, 1).reshape(n, gh, ph, gw, pw, c)
        x = x.permute(0, 1, 3, 2, 4, 5)                                  # (N, gh, gw, ph, pw, C)
        return x.reshape(n, gh * gw, ph * pw * c)

    def forward(self, feat: torch.Tensor, *, return_attention: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor] | None]:
        """Returns kpt_tokens (N, K, D), vis_tokens (N, P, D), attentions (per layer
        (N, heads, K+P, K+P), only when ``return_attention``)."""
        k = self.num_keypoints
        self._check_grid(*feat.shape[-2:])
        vis = self.patch_embed(feat).flatten(2).transpose(1, 2)      # (N, P, D), row-major
        kpt = self.keypoint_tokens.expand(vis.shape[0], -1, -1)      # (N, K, D)
        x = torch.cat([kpt, vis], dim=1)                             # (N, K+P, D)
        pos = torch.cat([pos_zeros(self.pos_embed, k), self.pos_embed], dim=1)  # (1, K+P, D)
        attentions: list[torch.Tensor] | None = [] if return_attention else None
        for layer in self.layers:
            x = x + pos  # visual tokens only: the keypoint rows of `pos` are zero
            x, attn = layer(x, return_attention=return_attention)
            if attentions is not None:
                attentions.append(attn)
        return x[:, :k], x[:, k:], attentions


def pos_zeros(pos: torch.Tensor, k: int) -> torch.Tensor:
    """(1, k, D) zeros matching ``pos``: the keypoint tokens' (absent) position embedding."""
    return pos.new_zeros(1, k, pos.shape[-1])


def _init_transformer(m: nn.Module) -> None:
    # ViT / TokenPose initialisation (the authors' apply_init=True)
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


__all__ = ["TokenEncoder"]
