"""HRNet (Sun et al., CVPR 2019): parallel multi-resolution branches with repeated fusion.

Layout of the standard pose HRNet-W{width} (W32, W48), as in the official code and MMPose:

    stem     conv3x3/2 (3->64) BN ReLU, conv3x3/2 (64->64) BN ReLU        stride 4
    stage 1  4 Bottlenecks, planes 64 -> 256 channels                    1 branch
    stage 2  1 module,  2 branches (W, 2W),          4 BasicBlocks each
    stage 3  4 modules, 3 branches (W, 2W, 4W),      4 BasicBlocks each
    stage 4  3 modules, 4 branches (W, 2W, 4W, 8W),  4 BasicBlocks each

Each module ends by fusing every branch into every other (sum, then ReLU): higher
resolution -> lower by chains of 3x3/2 conv+BN (ReLU between), lower -> higher by
1x1 conv+BN then nearest upsampling. The last module of the last stage only fuses into
branch 0, the stride-4 output. ``num_stages=3`` stops after stage 3 (DistilPose-L and
TokenPose-L use "HRNet-W48-stage3").

Upsampling resizes to the target branch's exact size instead of a fixed scale factor:
identical for the paper's 256x192 input, and it keeps small inputs whose stride-32 grid
is not an integer (64x48 -> 2x2 vs 2x1.5) working for the compact profiles.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distilkit.models.blocks import BasicBlock, Bottleneck, conv_bn, init_conv_bn, make_layer


class ResizeTo(nn.Module):
    """Nearest upsampling to a given size (an ``nn.Module`` so complexity hooks see it)."""

    def forward(self, x: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
        return F.interpolate(x, size=tuple(size), mode="nearest")


class HRModule(nn.Module):
    """One multi-resolution module: per-branch BasicBlocks, then all-to-all fusion."""

    def __init__(self, channels: list[int], *, num_blocks: int, multiscale_output: bool) -> None:
        super().__init__()
        n = len(channels)
        self.branches = nn.ModuleList(
            make_layer(BasicBlock, c, c, num_blocks)[0] for c in channels
        )
        num_out = n if multiscale_output else 1
        # fuse[i][j] maps branch j to branch i's resolution and width (None when i == j)
        self.fuse = nn.ModuleList()
        for i in range(num_out if n > 1 else 0):
            row = nn.ModuleList()
            for j in range(n):
                if j > i:    # lower resolution -> higher: 1x1 conv + BN, upsample in forward
                    row.append(conv_bn(channels[j], channels[i], kernel_size=1, relu=False))
                elif j == i:
                    row.append(nn.Identity())
                else:        # higher resolution -> lower: (i - j) stride-2 3x3 convs
                    steps = [conv_bn(channels[j], channels[j], stride=2) for _ in range(i - j - 1)]
                    steps.append(conv_bn(channels[j], channels[i], stride=2, relu=False))
                    row.append(nn.Sequential(*steps))
            self.fuse.append(row)
        self.upsample = ResizeTo()
        self.relu = nn.ReLU(inplace=True)
        self.num_out = num_out if n > 1 else 1

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if len(xs) == 1:
            return xs
        out = []
        for i, row in enumerate(self.fuse):
            y: torch.Tensor | None = None
            for j, layer in enumerate(row):
                if j == i:
                    continue
                z = layer(xs[j])
                if j > i:
                    z = self.upsample(z, xs[i].shape[-2:])
                # the first sum allocates (xs[i] feeds the other rows too); later ones reuse it
                y = xs[i] + z if y is None else y.add_(z)
            out.append(self.relu(y))
        return out


class HRNet(nn.Module):
    """HRNet backbone returning the highest-resolution branch (stride 4).

    Args:
        width: channels of branch 0 (W32 -> 32, W48 -> 48); branch k has width * 2**k.
        num_stages: 3 or 4 (paper teacher: 4; DistilPose-L: 3).
        stem_width: channels of the two stem convs (official: 64).
        stage1_planes / stage1_blocks: stage-1 Bottlenecks (official: 64 planes, 4 blocks).
        num_modules: modules in stages 2, 3, 4 (official: 1, 4, 3).
        num_blocks: BasicBlocks per branch in every module (official: 4).
    Output: (N, width, H/4, W/4); ``out_channels == width``.
    """

    stride = 4

    def __init__(self, *, in_channels: int = 3, width: int = 48, num_stages: int = 4,
                 stem_width: int = 64, stage1_planes: int = 64, stage1_blocks: int = 4,
                 num_modules: tuple[int, ...] = (1, 4, 3), num_blocks: int = 4) -> None:
        super().__init__()
        if num_stages not in (2, 3, 4):
            raise ValueError(f"num_stages must be 2, 3 or 4, got {num_stages}")
        if len(num_modules) < num_stages - 1:
            raise ValueError(f"num_modules needs {num_stages - 1} entries, got {num_modules}")
        self.stem = nn.Sequential(
            conv_bn(in_channels, stem_width, stride=2),  # (N, stem, H/2, W/2)
            conv_bn(stem_width, stem_width, stride=2),   # (N, stem, H/4, W/4)
        )
        self.layer1, prev_ch = make_layer(Bottleneck, stem_width, stage1_planes, stage1_blocks)
        prev: list[int] = [prev_ch]

        self.transitions = nn.ModuleList()
        self.stages = nn.ModuleList()
        for s in range(2, num_stages + 1):
            chans = [width * 2 ** k for k in range(s)]
            self.transitions.append(_transition(prev, chans))
            last_stage = s == num_stages
            modules = [
                HRModule(chans, num_blocks=num_blocks,
                         multiscale_output=not (last_stage and m == num_modules[s - 2] - 1))
                for m in range(num_modules[s - 2])
            ]
            self.stages.append(nn.ModuleList(modules))
            prev = chans
        self.out_channels = width
        init_conv_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1(self.stem(x))         # (N, 4*stage1_planes, H/4, W/4)
        xs = [x]
        for transition, modules in zip(self.transitions, self.stages):
            # existing branches map 1:1 (maybe re-widened); a new branch strides the last one
            xs = [t(xs[min(i, len(xs) - 1)]) for i, t in enumerate(transition)]
            for module in modules:
                xs = module(xs)
        return xs[0]                          # (N, width, H/4, W/4)


def _transition(prev: list[int], cur: list[int]) -> nn.ModuleList:
    """Map the previous stage's branches to the next stage's, adding one new branch."""
    layers = nn.ModuleList()
    for i, c in enumerate(cur):
        if i < len(prev):
            layers.append(nn.Identity() if prev[i] == c else conv_bn(prev[i], c))
        else:  # new lowest-resolution branch from the previous lowest one
            src = prev[-1]
            steps = [conv_bn(src, src, stride=2) for _ in range(i - len(prev))]
            steps.append(conv_bn(src, c, stride=2))
            layers.append(nn.Sequential(*steps))
    return layers


__all__ = ["HRNet", "HRModule", "ResizeTo"]
