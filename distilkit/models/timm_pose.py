"""Pose models around a timm features-only backbone (``models.timm_backbone``), built by specs.

The heads are the kit's own, so a spec model trains, distils and evaluates exactly as the
presets do; only the backbone differs, and it returns a one-item list (timm's features-only
convention), which ``forward_features`` unpacks:

    TimmCNNPose      DeepPose (regression: pooled features -> K x 5) or SimpleBaseline
                     (heatmaps: deconvolutions back to stride 4)
    TimmTokenPose    TokenPoseModel (TDE + regression head, or TDE + token heatmap head)

``FlattenRegressionHead`` is DeepPose without the global average pool: the feature map is
flattened, so the Linear layer sees where on the grid a feature fired. Issue #6 of the authors'
repository (a ResNet-50 teacher, a GAP-pooled ResNet-18 student, 0.2 AP) was answered with
"global average pooling throws away the spatial information Simulated Heatmaps need"; the
two poolings side by side let one measure it (``notebooks/bring_your_own.py``).
"""
from __future__ import annotations

import torch
from torch import nn

from distilkit.models.distilpose import TokenPoseModel
from distilkit.models.heads import _ActivatedRegression, decode_heatmaps
from distilkit.outputs import PoseOutput


class FlattenRegressionHead(_ActivatedRegression):
    """Flatten (N, C, h, w) -> Linear(C*h*w, K*5), activated like every regression head
    (``heads.activate_regression``: coords in [0, 1], score, sigma in heatmap px)."""

    def __init__(self, in_channels: int, feature_size: tuple[int, int], *, num_keypoints: int = 17,
                 sigma_eps: float = 1e-2, sigma_init: float | None = 2.0,
                 score_sigmoid: bool = True) -> None:
        super().__init__(sigma_eps=sigma_eps, sigma_init=sigma_init, score_sigmoid=score_sigmoid)
        self.num_keypoints = num_keypoints
        self.feature_size = tuple(feature_size)
        self.fc = nn.Linear(in_channels * feature_size[0] * feature_size[1], num_keypoints * 5)
        nn.init.normal_(self.fc.weight, std=0.001)   # as GlobalRegressionHead: start at the centre
        nn.init.zeros_(self.fc.bias)

    def forward(self, feat: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if tuple(feat.shape[-2:]) != self.feature_size:
            raise ValueError(f"flatten pooling was built for a {self.feature_size} feature map, "
                             f"got {tuple(feat.shape[-2:])}: the input size must be the model's")
        raw = self.fc(feat.flatten(1))                                  # (N, K*5)
        return self.activate(raw.view(-1, self.num_keypoints, 5))


class TimmCNNPose(nn.Module):
    """timm backbone -> a CNN head: regression (DeepPose) or deconvolution heatmaps
    (SimpleBaseline). ``kind`` follows from the head, as in the presets."""

    def __init__(self, *, backbone: nn.Module, head: nn.Module, kind: str,
                 input_size: tuple[int, int], heatmap_size: tuple[int, int], name: str) -> None:
        super().__init__()
        if kind not in ("regression", "heatmap"):
            raise ValueError(f"kind must be 'regression' or 'heatmap', got {kind!r}")
        self.backbone = backbone
        self.head = head
        self.kind = kind
        self.input_size = tuple(input_size)
        self.heatmap_size = tuple(heatmap_size)
        self.name = name

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)[0]          # (N, C, H/s, W/s)

    def forward(self, images: torch.Tensor, return_attention: bool = False) -> PoseOutput:
        feat = self.forward_features(images)
        if self.kind == "regression":
            coords, scores, sigmas = self.head(feat)
            return PoseOutput(coords=coords, scores=scores, sigmas=sigmas)
        heatmaps = self.head(feat)                                      # (N, K, H/4, W/4)
        if tuple(heatmaps.shape[-2:]) != self.heatmap_size:
            raise ValueError(f"{self.name}: heatmaps {tuple(heatmaps.shape[-2:])} != heatmap_size "
                             f"{self.heatmap_size}: input not divisible by the backbone stride")
        coords, scores = decode_heatmaps(heatmaps)
        return PoseOutput(coords=coords, scores=scores, heatmaps=heatmaps)


class TimmTokenPose(TokenPoseModel):
    """TokenPoseModel on a timm stride-4 map: the TDE and heads are DistilPose's own."""

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)[0]          # (N, C, H/4, W/4)


__all__ = ["FlattenRegressionHead", "TimmCNNPose", "TimmTokenPose"]
