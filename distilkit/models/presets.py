"""Model presets as plain dataclass configs, and ``build_model(name, **overrides)``.

Six architectures x three sizes. A size profile (paper / cpu / smoke) fixes the input size
and the sizes of every part; the six builder functions say which parts each model uses.
Within a profile all token models share one ``EncoderConfig`` -- same D, patch grid and
hence number of visual tokens -- so teacher and student tokens can be compared directly
(L_KT, L_VT) without a projection.

    name                  backbone                      encoder  head        kind
    distilpose-s          StemNet                       TDE      regression  regression
    distilpose-l          HRNet, stages 1-3             TDE      regression  regression
    teacher-hrw48         HRNet, 4 stages               TDE      heatmap     heatmap
    teacher-stemnet       StemNet                       TDE      heatmap     heatmap
    deeppose-r50          ResNet                        -        GAP + FC    regression
    simplebaseline-r50    ResNet                        -        deconvs     heatmap

Suffix ``-cpu``: 64x48 input, sized for training on a 2-core CPU; ``-smoke``: 64x48, tiny.

Any other pair is a spec, ``HEAD:timm/BACKBONE`` (``models.specs``): ``get_config`` and
``build_model`` take one wherever they take a preset name, at the sizes of its suffix.
"""
from __future__ import annotations

from dataclasses import fields, replace
from functools import partial
from typing import Any, Callable

from torch import nn

from distilkit.models.cnn_pose import DeepPose, SimpleBaseline
from distilkit.models.configs import (EncoderConfig, HRNetConfig, ModelConfig, ModelSizes, ResNetConfig,
                                      StemNetConfig)
from distilkit.models.distilpose import TokenPoseModel
from distilkit.models.heads import RegressionHead, TokenHeatmapHead
from distilkit.models.specs import SpecConfig, build_spec_model, is_spec, spec_config
from distilkit.models.token_encoder import TokenEncoder
from distilkit.sizes import parse_hw


PAPER_SIZES = ModelSizes(
    input_size=(256, 192),
    encoder=EncoderConfig(dim=192, depth=12, heads=8, mlp_ratio=3.0, patch_size=(4, 3)),
    stemnet=StemNetConfig(width=64, num_blocks=4, init_std=0.001),
    hrnet=HRNetConfig(width=48, num_stages=4),
    resnet=ResNetConfig(block="bottleneck", layers=(3, 4, 6, 3), width=64),
    deconv_channels=256,
)

# 64x48 -> 16x12 feature map -> 2x2 patches -> 8x6 = 48 visual tokens.
CPU_SIZES = ModelSizes(
    input_size=(64, 48),
    encoder=EncoderConfig(dim=96, depth=4, heads=4, mlp_ratio=3.0, patch_size=(2, 2)),
    stemnet=StemNetConfig(width=32, num_blocks=2),
    # "HRNet-W16-small": 4 stages, one module each, 2 blocks per branch
    hrnet=HRNetConfig(width=16, num_stages=4, stem_width=32, stage1_planes=16,
                      stage1_blocks=2, num_modules=(1, 1, 1), num_blocks=2),
    # ResNet-18 layout at half width, stride 16 so 64x48 keeps an integer 4x3 grid
    resnet=ResNetConfig(block="basic", layers=(2, 2, 2, 2), width=32, strides=(1, 2, 2, 1)),
    deconv_channels=64,
)

SMOKE_SIZES = ModelSizes(
    input_size=(64, 48),
    encoder=EncoderConfig(dim=32, depth=1, heads=2, mlp_ratio=2.0, patch_size=(2, 2)),
    stemnet=StemNetConfig(width=8, num_blocks=1),
    hrnet=HRNetConfig(width=8, num_stages=4, stem_width=8, stage1_planes=8,
                      stage1_blocks=1, num_modules=(1, 1, 1), num_blocks=1),
    resnet=ResNetConfig(block="basic", layers=(1, 1, 1, 1), width=8, strides=(1, 2, 2, 1)),
    deconv_channels=16,
)

MODEL_SIZES: dict[str, ModelSizes] = {"": PAPER_SIZES, "-cpu": CPU_SIZES,
                                         "-smoke": SMOKE_SIZES}


def distilpose_s(sizes: ModelSizes, name: str) -> ModelConfig:
    return ModelConfig(name=name, arch="token", head="regression", backbone=sizes.stemnet,
                       encoder=sizes.encoder, input_size=sizes.input_size)


def distilpose_l(sizes: ModelSizes, name: str) -> ModelConfig:
    return ModelConfig(name=name, arch="token", head="regression",
                       backbone=replace(sizes.hrnet, num_stages=3),
                       encoder=sizes.encoder, input_size=sizes.input_size)


def teacher_hrw48(sizes: ModelSizes, name: str) -> ModelConfig:
    return ModelConfig(name=name, arch="token", head="heatmap", backbone=sizes.hrnet,
                       encoder=sizes.encoder, input_size=sizes.input_size)


def teacher_stemnet(sizes: ModelSizes, name: str) -> ModelConfig:
    return ModelConfig(name=name, arch="token", head="heatmap", backbone=sizes.stemnet,
                       encoder=sizes.encoder, input_size=sizes.input_size)


def deeppose_r50(sizes: ModelSizes, name: str) -> ModelConfig:
    return ModelConfig(name=name, arch="deeppose", head="regression", backbone=sizes.resnet,
                       input_size=sizes.input_size)


def simplebaseline_r50(sizes: ModelSizes, name: str) -> ModelConfig:
    return ModelConfig(name=name, arch="simplebaseline", head="heatmap", backbone=sizes.resnet,
                       input_size=sizes.input_size, deconv_channels=sizes.deconv_channels)


_ARCHITECTURES: dict[str, Callable[[ModelSizes, str], ModelConfig]] = {
    "distilpose-s": distilpose_s,
    "distilpose-l": distilpose_l,
    "teacher-hrw48": teacher_hrw48,
    "teacher-stemnet": teacher_stemnet,
    "deeppose-r50": deeppose_r50,
    "simplebaseline-r50": simplebaseline_r50,
}

# The one name -> builder registry: every architecture at every size.
MODEL_CONFIGS: dict[str, Callable[[], ModelConfig]] = {
    base + suffix: partial(fn, sizes, base + suffix)
    for base, fn in _ARCHITECTURES.items()
    for suffix, sizes in MODEL_SIZES.items()
}


def list_models() -> list[str]:
    return sorted(MODEL_CONFIGS)


def apply_overrides(cfg: ModelConfig, overrides: dict[str, Any]) -> ModelConfig:
    """Route flat keyword overrides to the config that owns the field.

    Lookup order: ModelConfig fields, then the encoder's (dim, depth, heads, mlp_ratio,
    patch_size), then the backbone's (width, num_blocks, num_stages, ...).
    """
    own = {f.name for f in fields(ModelConfig)}
    enc_fields = {f.name for f in fields(EncoderConfig)}
    bb_fields = {f.name for f in fields(type(cfg.backbone))}
    top: dict[str, Any] = {}
    enc: dict[str, Any] = {}
    bb: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in ("input_size", "heatmap_size") and value is not None:
            value = parse_hw(value)
        if key in own:
            top[key] = value
        elif key in enc_fields and cfg.encoder is not None:
            enc[key] = tuple(value) if key == "patch_size" else value
        elif key in bb_fields:
            bb[key] = value
        else:
            raise TypeError(f"{cfg.name}: unknown override {key!r}; ModelConfig fields "
                            f"{sorted(own)}, encoder {sorted(enc_fields) if cfg.encoder else []}, "
                            f"backbone {sorted(bb_fields)}")
    if enc:
        top["encoder"] = replace(top.get("encoder", cfg.encoder), **enc)
    if bb:
        top["backbone"] = replace(top.get("backbone", cfg.backbone), **bb)
    return replace(cfg, **top)


def get_config(name: str, **overrides: Any) -> ModelConfig | SpecConfig:
    """A preset's config, or a spec's (``HEAD:timm/BACKBONE[-cpu|-smoke]``) at its suffix's sizes."""
    if is_spec(name):
        return spec_config(name, MODEL_SIZES, **overrides)
    try:
        cfg = MODEL_CONFIGS[name]()
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {list_models()}, or a spec "
                         "HEAD:timm/BACKBONE such as deeppose:timm/resnet18 "
                         "(distilkit.models.specs)") from None
    return apply_overrides(cfg, overrides)


def build_from_config(cfg: ModelConfig | SpecConfig) -> nn.Module:
    if isinstance(cfg, SpecConfig):
        return build_spec_model(cfg)
    hm = cfg.resolved_heatmap_size
    backbone = cfg.backbone.build()
    model: nn.Module
    if cfg.arch == "token":
        if cfg.encoder is None:
            raise ValueError(f"{cfg.name}: token models need an encoder config")
        h, w = cfg.input_size
        s = backbone.stride
        if h % s or w % s:
            raise ValueError(f"{cfg.name}: input {cfg.input_size} not divisible by stride {s}")
        e = cfg.encoder
        encoder = TokenEncoder(in_channels=backbone.out_channels, feature_size=(h // s, w // s),
                               patch_size=e.patch_size, num_keypoints=cfg.num_keypoints,
                               dim=e.dim, depth=e.depth, heads=e.heads, mlp_ratio=e.mlp_ratio)
        head: nn.Module
        if cfg.head == "regression":
            head = RegressionHead(e.dim, **_regression_activation(cfg))
        else:
            head = TokenHeatmapHead(e.dim, heatmap_size=hm, hidden_dim=cfg.head_hidden_dim)
        model = TokenPoseModel(backbone=backbone, encoder=encoder, head=head,
                               input_size=cfg.input_size, heatmap_size=hm, name=cfg.name)
    elif cfg.arch == "deeppose":
        model = DeepPose(backbone=backbone, input_size=cfg.input_size, heatmap_size=hm,
                         num_keypoints=cfg.num_keypoints, name=cfg.name)
    elif cfg.arch == "simplebaseline":
        model = SimpleBaseline(backbone=backbone, input_size=cfg.input_size, heatmap_size=hm,
                               num_keypoints=cfg.num_keypoints,
                               deconv_channels=cfg.deconv_channels, name=cfg.name)
    else:
        raise ValueError(f"{cfg.name}: unknown arch {cfg.arch!r}")
    model.config = cfg
    return model


def _regression_activation(cfg: ModelConfig) -> dict[str, Any]:
    return dict(score_sigmoid=cfg.score_sigmoid, sigma_init=cfg.sigma_init, sigma_eps=cfg.sigma_eps)


def build_model(name: str, **overrides: Any) -> nn.Module:
    """Build a preset or a spec by name, e.g. ``build_model("distilpose-s-cpu", depth=2)``,
    ``build_model("deeppose-flatten:timm/resnet18-cpu")``.

    The returned module has ``input_size``, ``heatmap_size`` (H, W), ``kind``
    ("regression" | "heatmap"), ``name``, ``backbone`` and ``config`` (the resolved
    ``ModelConfig``, or ``SpecConfig`` for a spec).
    """
    return build_from_config(get_config(name, **overrides))


__all__ = ["StemNetConfig", "HRNetConfig", "ResNetConfig", "EncoderConfig", "ModelConfig", "SpecConfig",
           "ModelSizes", "PAPER_SIZES", "CPU_SIZES", "SMOKE_SIZES", "MODEL_SIZES",
           "MODEL_CONFIGS", "list_models", "get_config", "apply_overrides",
           "build_from_config", "build_model"]
