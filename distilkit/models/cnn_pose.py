"""CNN pose models of Table 6: DeepPose (regression student) and SimpleBaseline (heatmap teacher).

Both use a ResNet feature extractor. DeepPose pools globally and regresses K x 5 numbers
with the same activations as the token regression head (coords, score, sigma_x, sigma_y),
so Simulated Heatmaps distil into it exactly as into DistilPose. SimpleBaseline upsamples
the stride-32 (or 16) features back to stride 4 with 4x4/2 deconvolutions.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from distilkit.models.heads import DeconvHeatmapHead, GlobalRegressionHead, decode_heatmaps
from distilkit.models.resnet import ResNet
from distilkit.outputs import PoseOutput


class DeepPose(nn.Module):
    """ResNet -> global average pool -> FC(C, K*5)."""

    kind = "regression"

    def __init__(self, *, backbone: ResNet, input_size: tuple[int, int],
                 heatmap_size: tuple[int, int], num_keypoints: int = 17,
                 name: str = "deeppose") -> None:
        super().__init__()
        self.backbone = backbone
        self.head = GlobalRegressionHead(backbone.out_channels, num_keypoints=num_keypoints)
        self.input_size = tuple(input_size)
        self.heatmap_size = tuple(heatmap_size)
        self.name = name

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)  # (N, C, H/s, W/s)

    def forward(self, images: torch.Tensor, return_attention: bool = False) -> PoseOutput:
        coords, scores, sigmas = self.head(self.forward_features(images))
        return PoseOutput(coords=coords, scores=scores, sigmas=sigmas)


class SimpleBaseline(nn.Module):
    """ResNet -> deconvolutions back to stride 4 -> 1x1 conv to K heatmaps."""

    kind = "heatmap"

    def __init__(self, *, backbone: ResNet, input_size: tuple[int, int],
                 heatmap_size: tuple[int, int], num_keypoints: int = 17,
                 deconv_channels: int = 256, name: str = "simplebaseline") -> None:
        super().__init__()
        num_deconv = int(round(math.log2(backbone.stride / 4)))
        if 4 * 2 ** num_deconv != backbone.stride:
            raise ValueError(f"backbone stride {backbone.stride} is not 4 * 2**n")
        self.backbone = backbone
        self.head = DeconvHeatmapHead(backbone.out_channels, num_keypoints=num_keypoints,
                                      num_deconv=num_deconv, channels=deconv_channels)
        self.input_size = tuple(input_size)
        self.heatmap_size = tuple(heatmap_size)
        self.name = name

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)

    def forward(self, images: torch.Tensor, return_attention: bool = False) -> PoseOutput:
        heatmaps = self.head(self.forward_features(images))  # (N, K, H/4, W/4)
        if tuple(heatmaps.shape[-2:]) != self.heatmap_size:
            raise ValueError(f"heatmaps {tuple(heatmaps.shape[-2:])} != heatmap_size "
                             f"{self.heatmap_size}: input not divisible by the backbone stride")
        coords, scores = decode_heatmaps(heatmaps)
        return PoseOutput(coords=coords, scores=scores, heatmaps=heatmaps)


__all__ = ["DeepPose", "SimpleBaseline"]
