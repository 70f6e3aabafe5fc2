"""StemNet: the tiny stride-4 backbone of TokenPose-S / DistilPose-S.

Two stride-2 3x3 convs bring the image to 1/4 resolution quickly, then a few Bottlenecks
(the HRNet stem + layer1) add depth at that resolution. For a 256x192 input the paper's
configuration (width 64, 4 blocks) gives a 256 x 64 x 48 feature map.
"""
from __future__ import annotations

import torch
from torch import nn

from distilkit.models.blocks import Bottleneck, conv_bn, init_conv_bn, make_layer


class StemNet(nn.Module):
    """conv3x3/2 + BN + ReLU -> conv3x3/2 + BN + ReLU -> ``num_blocks`` Bottlenecks.

    Args:
        width: channels of the two stem convs (paper: 64).
        planes: Bottleneck planes (paper: 64); output channels = 4 * planes.
            Defaults to ``width`` so one knob scales the whole network.
        num_blocks: Bottlenecks at stride 4 (paper: 4).
        init_std: draw every conv from N(0, init_std), as the authors' code (0.001); None: He
            init with unit/zero BN (``blocks.init_conv_bn``).
    """

    stride = 4

    def __init__(self, *, in_channels: int = 3, width: int = 64, planes: int | None = None,
                 num_blocks: int = 4, init_std: float | None = None) -> None:
        super().__init__()
        planes = width if planes is None else planes
        self.stem = nn.Sequential(
            conv_bn(in_channels, width, stride=2),  # (N, width, H/2, W/2)
            conv_bn(width, width, stride=2),        # (N, width, H/4, W/4)
        )
        self.layer1, self.out_channels = make_layer(Bottleneck, width, planes, num_blocks)
        init_conv_bn(self)
        if init_std is not None:   # the authors' StemNet.init_weights: every conv from N(0, std)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.normal_(m.weight, std=init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, 3, H, W) -> (N, 4*planes, H/4, W/4)
        return self.layer1(self.stem(x))


__all__ = ["StemNet"]
