"""ResNet (He et al., 2016) feature extractor for the DeepPose / SimpleBaseline pair (Table 6).

ResNet-50 = Bottleneck blocks (3, 4, 6, 3), width 64, stride 32, 2048 output channels,
no classifier. ``strides`` lets compact variants stop at stride 16 so a 64x48 input keeps
an integer grid (4x3) that two deconvolutions bring back to the 16x12 heatmap.
"""
from __future__ import annotations

import torch
from torch import nn

from distilkit.models.blocks import BLOCKS, init_conv_bn, make_layer


class ResNet(nn.Module):
    """conv7x7/2 + BN + ReLU + maxpool/2, then ``len(layers)`` residual stages.

    Args:
        block: "bottleneck" (ResNet-50/101/152) or "basic" (ResNet-18/34).
        layers: blocks per stage (ResNet-50: (3, 4, 6, 3); ResNet-18: (2, 2, 2, 2)).
        width: planes of the first stage; stage k has width * 2**k planes.
        strides: stride of each stage (standard: (1, 2, 2, 2) -> total stride 32).
    Output: (N, out_channels, H/stride, W/stride).
    """

    def __init__(self, *, in_channels: int = 3, block: str = "bottleneck",
                 layers: tuple[int, ...] = (3, 4, 6, 3), width: int = 64,
                 strides: tuple[int, ...] = (1, 2, 2, 2)) -> None:
        super().__init__()
        if len(strides) != len(layers):
            raise ValueError(f"strides {strides} and layers {layers} differ in length")
        block_cls = BLOCKS[block]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),  # (N, width, H/4, W/4)
        )
        stages, ch = [], width
        for k, (n, s) in enumerate(zip(layers, strides)):
            stage, ch = make_layer(block_cls, ch, width * 2 ** k, n, stride=s)
            stages.append(stage)
        self.stages = nn.Sequential(*stages)
        self.out_channels = ch
        self.stride = 4
        for s in strides:
            self.stride *= s
        init_conv_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))  # (N, out_channels, H/stride, W/stride)


__all__ = ["ResNet"]
