"""Prediction heads: token regression (student), token heatmap (teacher), and heatmap decoding.

Regression output per keypoint is 5 numbers, activated as
    x, y    sigmoid   -> normalised by the input width / height, so always inside the crop
    score   sigmoid   -> in [0, 1]: it is trained (L_CS) to match a teacher heatmap value,
                         which is in [0, 1], and enters the instance score (Eq. 3). The
                         authors leave it linear; the sigmoid only bounds it.
    sx, sy  softplus + sigma_eps -> positive, in heatmap pixels; the floor keeps the
                         simulated Gaussian (which divides by sigma**2) finite.
The raw sigma is offset so an untrained head starts at ``sigma_init`` (default 2 px, the
teacher's target Gaussian) instead of softplus(0) = 0.69 px.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from distilkit.codecs.heatmap import quarter_decode


def activate_regression(raw: torch.Tensor, *, sigma_eps: float = 1e-2,
                        sigma_offset: float = 0.0, score_sigmoid: bool = True
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, K, 5) raw -> coords (N, K, 2) in [0, 1], scores (N, K), sigmas (N, K, 2) px.

    ``score_sigmoid=False, sigma_offset=0, sigma_eps=0`` is the authors' head (raw score,
    plain softplus): what a converted checkpoint of theirs needs to reproduce their outputs.
    """
    coords = raw[..., 0:2].sigmoid()
    scores = raw[..., 2].sigmoid() if score_sigmoid else raw[..., 2]
    sigmas = F.softplus(raw[..., 3:5] + sigma_offset) + sigma_eps
    return coords, scores, sigmas


def softplus_inverse(y: float) -> float:
    return y + math.log(-math.expm1(-y))  # log(exp(y) - 1), stable for large y


class _ActivatedRegression(nn.Module):
    """What the regression heads share: their raw (N, K, 5) output, activated
    (``activate_regression``) with the sigma offset that starts them at ``sigma_init``."""

    def __init__(self, *, sigma_eps: float, sigma_init: float | None, score_sigmoid: bool = True) -> None:
        super().__init__()
        self.sigma_eps = sigma_eps
        # None: no offset (the authors' head starts at softplus(0) = 0.69 px)
        self.sigma_offset = 0.0 if sigma_init is None else softplus_inverse(sigma_init - sigma_eps)
        self.score_sigmoid = score_sigmoid

    def activate(self, raw: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return activate_regression(raw, sigma_eps=self.sigma_eps, sigma_offset=self.sigma_offset,
                                   score_sigmoid=self.score_sigmoid)


class RegressionHead(_ActivatedRegression):
    """Per keypoint token: LayerNorm -> Linear(D, 5) (DistilPose-S/L, ``out_mode='all'``)."""

    def __init__(self, dim: int, *, sigma_eps: float = 1e-2, sigma_init: float | None = 2.0,
                 score_sigmoid: bool = True) -> None:
        super().__init__(sigma_eps=sigma_eps, sigma_init=sigma_init, score_sigmoid=score_sigmoid)
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, 5)
        nn.init.trunc_normal_(self.fc.weight, std=0.02)
        nn.init.zeros_(self.fc.bias)

    def forward(self, kpt_tokens: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.activate(self.fc(self.norm(kpt_tokens)))  # raw (N, K, 5)


class TokenHeatmapHead(nn.Module):
    """Per keypoint token: LN -> Linear(D, hidden) -> LN -> Linear(hidden, h*w) -> (N, K, h, w).

    TokenPose's rule: hidden = h*w // 8 (384 for 64x48), and the two-layer MLP is used only
    when D <= hidden / 2; otherwise (small heatmaps, e.g. 16x12) a single LN -> Linear(D, h*w).
    """

    def __init__(self, dim: int, *, heatmap_size: tuple[int, int],
                 hidden_dim: int | None = None) -> None:
        super().__init__()
        h, w = heatmap_size
        self.heatmap_size = (h, w)
        hidden = (h * w) // 8 if hidden_dim is None else hidden_dim
        if dim <= hidden / 2:
            self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden),
                                     nn.LayerNorm(hidden), nn.Linear(hidden, h * w))
        else:
            self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, h * w))
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, kpt_tokens: torch.Tensor) -> torch.Tensor:
        n, k, _ = kpt_tokens.shape
        return self.mlp(kpt_tokens).view(n, k, *self.heatmap_size)  # (N, K, h, w)


@torch.no_grad()
def decode_heatmaps(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The codec's argmax with the quarter-pixel shift (``quarter_decode``), normalised.

    heatmaps (N, K, h, w) -> coords (N, K, 2) normalised as (x / w, y / h) -- the same
    convention as the simulated heatmaps, where mu = (x * w, y * h) on integer grid
    indices -- and scores (N, K) = the peak values. No gradient (it is a decoder).
    """
    h, w = heatmaps.shape[-2:]
    xy, scores, _ = quarter_decode(heatmaps)                 # heatmap px
    coords = torch.stack([xy[..., 0] / w, xy[..., 1] / h], dim=-1)
    return coords, scores


class GlobalRegressionHead(_ActivatedRegression):
    """DeepPose head: global average pool -> FC(C, K*5), activated like ``RegressionHead``,
    so a CNN student also predicts scores and sigmas and Simulated Heatmaps apply."""

    def __init__(self, in_channels: int, *, num_keypoints: int = 17, sigma_eps: float = 1e-2,
                 sigma_init: float | None = 2.0, score_sigmoid: bool = True) -> None:
        super().__init__(sigma_eps=sigma_eps, sigma_init=sigma_init, score_sigmoid=score_sigmoid)
        self.num_keypoints = num_keypoints
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_keypoints * 5)
        nn.init.normal_(self.fc.weight, std=0.001)
        nn.init.zeros_(self.fc.bias)

    def forward(self, feat: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raw = self.fc(self.pool(feat).flatten(1))  # (N, K*5)
        return self.activate(raw.view(-1, self.num_keypoints, 5))


class DeconvHeatmapHead(nn.Module):
    """SimpleBaseline head: ``num_deconv`` x (ConvTranspose 4x4/2 + BN + ReLU) -> 1x1 conv to K."""

    def __init__(self, in_channels: int, *, num_keypoints: int = 17, num_deconv: int = 3,
                 channels: int = 256) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = in_channels
        for _ in range(num_deconv):
            layers += [nn.ConvTranspose2d(ch, channels, kernel_size=4, stride=2, padding=1,
                                          bias=False),
                       nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
            ch = channels
        self.deconv = nn.Sequential(*layers)
        self.final = nn.Conv2d(ch, num_keypoints, kernel_size=1)
        for m in self.modules():
            if isinstance(m, (nn.ConvTranspose2d, nn.Conv2d)):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.final(self.deconv(feat))  # (N, K, H_in * 2**num_deconv, ...)


__all__ = ["RegressionHead", "TokenHeatmapHead", "GlobalRegressionHead", "DeconvHeatmapHead",
           "activate_regression", "decode_heatmaps"]
