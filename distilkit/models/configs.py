"""The sizes of every model part as frozen dataclasses: backbones, the Token-distilling Encoder,
a whole model (``ModelConfig``) and one profile's sizes (``ModelSizes``). ``presets`` names
them; ``specs`` builds ``HEAD:timm/BACKBONE`` models at a profile's sizes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from distilkit.models.hrnet import HRNet
from distilkit.models.resnet import ResNet
from distilkit.models.stemnet import StemNet


@dataclass(frozen=True)
class StemNetConfig:
    width: int = 64                 # stem conv channels (and Bottleneck planes by default)
    num_blocks: int = 4
    planes: int | None = None
    init_std: float | None = None   # convs from N(0, std) (the authors' StemNet); None: He init

    def build(self) -> StemNet:
        return StemNet(width=self.width, planes=self.planes, num_blocks=self.num_blocks,
                       init_std=self.init_std)


@dataclass(frozen=True)
class HRNetConfig:
    width: int = 48                 # W48
    num_stages: int = 4
    stem_width: int = 64
    stage1_planes: int = 64
    stage1_blocks: int = 4
    num_modules: tuple[int, ...] = (1, 4, 3)
    num_blocks: int = 4

    def build(self) -> HRNet:
        return HRNet(width=self.width, num_stages=self.num_stages, stem_width=self.stem_width,
                     stage1_planes=self.stage1_planes, stage1_blocks=self.stage1_blocks,
                     num_modules=tuple(self.num_modules), num_blocks=self.num_blocks)


@dataclass(frozen=True)
class ResNetConfig:
    block: str = "bottleneck"       # ResNet-50
    layers: tuple[int, ...] = (3, 4, 6, 3)
    width: int = 64
    strides: tuple[int, ...] = (1, 2, 2, 2)

    def build(self) -> ResNet:
        return ResNet(block=self.block, layers=tuple(self.layers), width=self.width,
                      strides=tuple(self.strides))


BackboneConfig = Union[StemNetConfig, HRNetConfig, ResNetConfig]


@dataclass(frozen=True)
class EncoderConfig:
    dim: int = 192
    depth: int = 12
    heads: int = 8
    mlp_ratio: float = 3.0
    patch_size: tuple[int, int] = (4, 3)   # (ph, pw) on the stride-4 feature map


@dataclass(frozen=True)
class ModelConfig:
    name: str
    arch: str                              # "token" | "deeppose" | "simplebaseline"
    head: str                              # "regression" | "heatmap"
    backbone: BackboneConfig
    encoder: EncoderConfig | None = None
    input_size: tuple[int, int] = (256, 192)
    heatmap_size: tuple[int, int] | None = None  # None -> input_size / 4
    num_keypoints: int = 17
    head_hidden_dim: int | None = None     # token heatmap head; None -> TokenPose rule h*w//8
    deconv_channels: int = 256
    # Regression heads' output activation (models.heads.activate_regression). The kit's:
    # sigmoid score, sigma from 2 px with a 0.01 px floor. A converted checkpoint of the
    # authors' records theirs: score_sigmoid=False, sigma_init=None, sigma_eps=0.
    score_sigmoid: bool = True
    sigma_init: float | None = 2.0
    sigma_eps: float = 1e-2

    @property
    def resolved_heatmap_size(self) -> tuple[int, int]:
        if self.heatmap_size is not None:
            return tuple(self.heatmap_size)
        return (self.input_size[0] // 4, self.input_size[1] // 4)


@dataclass(frozen=True)
class ModelSizes:
    """Sizes of every part for one profile."""

    input_size: tuple[int, int]
    encoder: EncoderConfig
    stemnet: StemNetConfig
    hrnet: HRNetConfig                     # the teacher's; the L student keeps stages 1-3
    resnet: ResNetConfig
    deconv_channels: int
