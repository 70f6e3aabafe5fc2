"""Residual building blocks shared by StemNet, HRNet and ResNet.

Convolutions that feed a BatchNorm have no bias (the BN shift makes it redundant), as in
torchvision, MMPose and the official HRNet; this is what the paper's parameter counts assume.
ReLUs are ``nn.ReLU`` modules rather than ``F.relu`` so the mmcv-style complexity counter in
``distilkit.models.complexity`` can see them (mmcv counts activations as FLOPs).
"""
from __future__ import annotations

import torch
from torch import nn


def conv3x3(in_ch: int, out_ch: int, *, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_ch: int, out_ch: int, *, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False)


def conv_bn(in_ch: int, out_ch: int, *, kernel_size: int = 3, stride: int = 1,
            relu: bool = True) -> nn.Sequential:
    """Conv -> BN (-> ReLU): the unit of stems, transitions and fuse layers."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel_size=kernel_size, stride=stride,
                  padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or projected) shortcut; out = planes."""

    expansion = 1

    def __init__(self, in_ch: int, planes: int, *, stride: int = 1) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = conv3x3(in_ch, planes, stride=stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity  # in place: saves a full-size allocation per block (BN backward
        return self.relu(out)  # does not need its output, so autograd allows it)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (carries the stride, "pytorch" style) -> 1x1 expand by 4."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, *, stride: int = 1) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = conv1x1(in_ch, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride=stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, out_ch)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and in_ch == out_ch:
        return None
    return nn.Sequential(conv1x1(in_ch, out_ch, stride=stride), nn.BatchNorm2d(out_ch))


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}


def make_layer(block: type[BasicBlock] | type[Bottleneck], in_ch: int, planes: int,
               num_blocks: int, *, stride: int = 1) -> tuple[nn.Sequential, int]:
    """A stage of ``num_blocks`` blocks; only the first may stride or project.

    Returns the stage and its output channels (planes * expansion).
    """
    layers = [block(in_ch, planes, stride=stride)]
    out_ch = planes * block.expansion
    layers += [block(out_ch, planes) for _ in range(1, num_blocks)]
    return nn.Sequential(*layers), out_ch


def init_conv_bn(module: nn.Module) -> None:
    """He init for convs, unit/zero BN: the usual from-scratch CNN initialisation."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


__all__ = ["BasicBlock", "Bottleneck", "BLOCKS", "conv1x1", "conv3x3", "conv_bn",
           "make_layer", "init_conv_bn"]
