"""Model specs: ``HEAD:timm/BACKBONE``, a pose model on any timm backbone, in one line.

The paper says Simulated Heatmaps "can be inserted between any heatmap-based and
regression-based methods"; the six presets fix six pairs. A spec names the head (the method)
and the timm network (the backbone), and is accepted wherever a preset name is:
``distilkit train --model``, ``build_model``, ``TrainConfig.model``, the ``model`` parameter of
the notebooks and ``RunSpec.model``.

    spec := HEAD ":timm/" TIMM_NAME [SIZE]        SIZE := "" | "-cpu" | "-smoke"

    head              kind        what the head is                              backbone map
    deeppose          regression  global average pool -> Linear(C, K*5)         deepest, see below
    deeppose-gap      regression  the same (the paper's DeepPose)
    deeppose-flatten  regression  flatten -> Linear(C*h*w, K*5)                 deepest, see below
    simplebaseline    heatmap     deconvolutions back to stride 4 -> 1x1 conv   deepest, see below
    distilpose        regression  TDE + regression head (DistilPose)            stride 4
    tokenpose         heatmap     TDE + token heatmap head (TokenPose)          stride 4

e.g. ``deeppose-flatten:timm/resnet18``, ``simplebaseline:timm/resnet10t-cpu``. The pooling is
part of the head's name (not a ``?pool=`` parameter) so that the size suffix can be appended
to a spec exactly as to a preset (``Profile.model_name``: ``--profile cpu`` turns
``deeppose:timm/resnet18`` into ``deeppose:timm/resnet18-cpu``); timm names contain no ``-``.

Sizes come from the presets' size tables (``presets.MODEL_SIZES``): the input size, the
encoder (D, depth, heads, patch) and the deconvolution width of the suffix, and heatmaps at
input / 4. So a spec's tokens have the layout of the same profile's preset teachers, and its
heatmaps the profile's size. CNN heads read the deepest timm map whose stride divides the
input and is at most 32: stride 32 at 256x192 (an 8x6 grid), stride 16 at 64x48 (4x3),
which is what the compact ResNet presets do (their last stage does not downsample). Weights
are never downloaded (``pretrained=False``); ``--init-backbone`` loads a local timm file.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

from torch import nn

from distilkit.models.configs import EncoderConfig, ModelSizes
from distilkit.models.heads import DeconvHeatmapHead, GlobalRegressionHead, RegressionHead, TokenHeatmapHead
from distilkit.models.timm_backbone import (FeatureLevel, check_timm_name, choose_level, feature_levels,
                                            timm_features)
from distilkit.models.timm_pose import FlattenRegressionHead, TimmCNNPose, TimmTokenPose
from distilkit.models.token_encoder import TokenEncoder
from distilkit.sizes import parse_hw

# The spec vocabulary: head name -> (method, pooling). Nothing else is registered anywhere.
HEADS: dict[str, tuple[str, str | None]] = {
    "deeppose": ("deeppose", "gap"),
    "deeppose-gap": ("deeppose", "gap"),
    "deeppose-flatten": ("deeppose", "flatten"),
    "simplebaseline": ("simplebaseline", None),
    "distilpose": ("distilpose", None),
    "tokenpose": ("tokenpose", None),
}
TOKEN_HEADS = ("distilpose", "tokenpose")
REGRESSION_HEADS = ("deeppose", "distilpose")
SOURCES = ("timm",)
SIZE_SUFFIXES = ("-cpu", "-smoke")
MAX_CNN_STRIDE = 32


def is_spec(name: str) -> bool:
    """A spec has a ``:``; a preset name never does."""
    return ":" in name


@dataclass(frozen=True)
class ParsedSpec:
    head: str            # the method: deeppose | simplebaseline | distilpose | tokenpose
    pool: str | None     # deeppose: gap | flatten
    source: str          # timm
    backbone: str        # the timm model name
    suffix: str          # "" (paper sizes) | "-cpu" | "-smoke"


def parse_spec(name: str) -> ParsedSpec:
    """Split a spec into its parts, or a ValueError that says what is wrong and what is allowed."""
    head_name, _, rest = name.partition(":")
    if head_name not in HEADS:
        close = difflib.get_close_matches(head_name, list(HEADS), n=3, cutoff=0.5)
        raise ValueError(f"model spec {name!r}: unknown head {head_name!r}"
                         + (f" (did you mean {' or '.join(close)}?)" if close else "")
                         + f"; heads: {', '.join(HEADS)} (syntax HEAD:timm/BACKBONE, e.g. "
                         "deeppose-flatten:timm/resnet18)")
    source, slash, backbone = rest.partition("/")
    if not slash or source not in SOURCES or not backbone:
        raise ValueError(f"model spec {name!r}: the backbone must be written timm/NAME, e.g. "
                         f"{head_name}:timm/resnet18 (sources: {', '.join(SOURCES)})")
    suffix = next((s for s in SIZE_SUFFIXES if backbone.endswith(s)), "")
    method, pool = HEADS[head_name]
    return ParsedSpec(head=method, pool=pool, source=source,
                      backbone=backbone[:len(backbone) - len(suffix)], suffix=suffix)


@dataclass(frozen=True)
class SpecConfig:
    """A spec, resolved to sizes: hashable into ``TrainConfig``'s identity like ``ModelConfig``."""

    name: str                                  # the spec with its size suffix
    head: str                                  # deeppose | simplebaseline | distilpose | tokenpose
    pool: str | None                           # deeppose: gap | flatten
    backbone: str                              # timm model name
    input_size: tuple[int, int]
    encoder: "EncoderConfig | None" = None     # token heads
    heatmap_size: tuple[int, int] | None = None  # None -> input_size / 4
    feature_stride: int | None = None          # CNN heads; None -> deepest dividing the input, <= 32
    num_keypoints: int = 17
    deconv_channels: int = 256
    head_hidden_dim: int | None = None         # token heatmap head; None -> TokenPose's rule
    score_sigmoid: bool = True                 # regression activation, as ModelConfig
    sigma_init: float | None = 2.0
    sigma_eps: float = 1e-2
    source: str = "timm"

    @property
    def kind(self) -> str:
        return "regression" if self.head in REGRESSION_HEADS else "heatmap"

    @property
    def resolved_heatmap_size(self) -> tuple[int, int]:
        if self.heatmap_size is not None:
            return tuple(self.heatmap_size)
        return (self.input_size[0] // 4, self.input_size[1] // 4)

    @property
    def resolved_feature_stride(self) -> int:
        """The stride the head reads: 4 for the TDE; for CNN heads the largest power of two up
        to 32 dividing both sides of the input, so the grid is whole (64x48 -> 16: 4x3)."""
        if self.head in TOKEN_HEADS:
            return 4
        if self.feature_stride is not None:
            return int(self.feature_stride)
        stride = MAX_CNN_STRIDE
        while stride > 4 and (self.input_size[0] % stride or self.input_size[1] % stride):
            stride //= 2
        return stride


def spec_config(name: str, sizes: "Mapping[str, ModelSizes]", **overrides: Any) -> SpecConfig:
    """The config of a spec at the sizes of its suffix (``sizes``: ``presets.MODEL_SIZES``)."""
    parsed = parse_spec(name)
    check_timm_name(parsed.backbone)
    size = sizes[parsed.suffix]
    cfg = SpecConfig(name=name, head=parsed.head, pool=parsed.pool, backbone=parsed.backbone,
                     input_size=tuple(size.input_size),
                     encoder=size.encoder if parsed.head in TOKEN_HEADS else None,
                     deconv_channels=size.deconv_channels, source=parsed.source)
    return apply_spec_overrides(cfg, overrides)


def apply_spec_overrides(cfg: SpecConfig, overrides: dict[str, Any]) -> SpecConfig:
    """Flat keyword overrides, as ``presets.apply_overrides``: SpecConfig fields first, then
    the encoder's (dim, depth, heads, mlp_ratio, patch_size) for token heads."""
    own = {f.name for f in fields(SpecConfig)}
    enc_fields = {f.name for f in fields(cfg.encoder)} if cfg.encoder is not None else set()
    top: dict[str, Any] = {}
    enc: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in ("input_size", "heatmap_size") and value is not None:
            value = parse_hw(value)
        if key in own:
            top[key] = value
        elif key in enc_fields:
            enc[key] = tuple(value) if key == "patch_size" else value
        else:
            raise TypeError(f"{cfg.name}: unknown override {key!r}; spec fields {sorted(own)}"
                            + (f", encoder {sorted(enc_fields)}" if enc_fields else ""))
    if enc:
        top["encoder"] = replace(cfg.encoder, **enc)
    return replace(cfg, **top)


def build_spec_model(cfg: SpecConfig) -> nn.Module:
    """The model of a spec config: a timm features-only backbone and the kit's head."""
    check_timm_name(cfg.backbone)
    token = cfg.head in TOKEN_HEADS
    level = choose_level(cfg.backbone, feature_levels(cfg.backbone),
                         stride=cfg.resolved_feature_stride, exact=token)
    h, w = cfg.input_size
    if h % level.stride or w % level.stride:
        raise ValueError(f"{cfg.name}: input {cfg.input_size} is not divisible by the stride "
                         f"{level.stride} of timm/{cfg.backbone}'s {level.module} map")
    backbone = timm_features(cfg.backbone, level)
    grid = (h // level.stride, w // level.stride)
    model = _token_model(cfg, backbone, level, grid) if token else _cnn_model(cfg, backbone, level, grid)
    model.config = cfg
    model.feature_level = level
    return model


def _regression_activation(cfg: SpecConfig) -> dict[str, Any]:
    return dict(score_sigmoid=cfg.score_sigmoid, sigma_init=cfg.sigma_init, sigma_eps=cfg.sigma_eps)


def _token_model(cfg: SpecConfig, backbone: nn.Module, level: FeatureLevel,
                 grid: tuple[int, int]) -> nn.Module:
    if cfg.encoder is None:
        raise ValueError(f"{cfg.name}: token heads need an encoder config")
    e = cfg.encoder
    encoder = TokenEncoder(in_channels=level.channels, feature_size=grid, patch_size=e.patch_size,
                           num_keypoints=cfg.num_keypoints, dim=e.dim, depth=e.depth, heads=e.heads,
                           mlp_ratio=e.mlp_ratio)
    if cfg.head == "distilpose":
        head: nn.Module = RegressionHead(e.dim, **_regression_activation(cfg))
    else:
        head = TokenHeatmapHead(e.dim, heatmap_size=cfg.resolved_heatmap_size,
                                hidden_dim=cfg.head_hidden_dim)
    return TimmTokenPose(backbone=backbone, encoder=encoder, head=head, input_size=cfg.input_size,
                         heatmap_size=cfg.resolved_heatmap_size, name=cfg.name)


def _cnn_model(cfg: SpecConfig, backbone: nn.Module, level: FeatureLevel,
               grid: tuple[int, int]) -> nn.Module:
    k = cfg.num_keypoints
    if cfg.head == "deeppose":
        if cfg.pool == "flatten":
            head: nn.Module = FlattenRegressionHead(level.channels, grid, num_keypoints=k,
                                                    **_regression_activation(cfg))
        elif cfg.pool == "gap":
            head = GlobalRegressionHead(level.channels, num_keypoints=k, **_regression_activation(cfg))
        else:
            raise ValueError(f"{cfg.name}: pool must be 'gap' or 'flatten', got {cfg.pool!r}")
    else:
        num_deconv = level.stride.bit_length() - 3           # stride 4 * 2**n -> n
        if level.stride != 4 * 2 ** max(num_deconv, 0) or num_deconv < 0:
            raise ValueError(f"{cfg.name}: SimpleBaseline needs a map at stride 4 * 2**n; "
                             f"timm/{cfg.backbone}'s {level.module} has stride {level.stride}")
        head = DeconvHeatmapHead(level.channels, num_keypoints=k, num_deconv=num_deconv,
                                 channels=cfg.deconv_channels)
    return TimmCNNPose(backbone=backbone, head=head, kind=cfg.kind, input_size=cfg.input_size,
                       heatmap_size=cfg.resolved_heatmap_size, name=cfg.name)


__all__ = ["HEADS", "ParsedSpec", "SpecConfig", "is_spec", "parse_spec", "spec_config",
           "apply_spec_overrides", "build_spec_model"]
