"""timm networks as pose backbones: one feature map at a chosen stride, never downloaded.

A spec's backbone (``models.specs``) is timm's own features-only module,
``timm.create_model(name, pretrained=False, features_only=True, out_indices=(i,), ...)``, so
the kit carries no copy of any timm architecture. Which level ``i`` is follows from the stride
the head needs and timm's ``feature_info`` (channels and stride per level), read off a build on
the ``meta`` device, which allocates nothing.

The backbone must end at the level the head reads. timm has two features-only forms: a generic wrapper that
re-lists the model's modules up to the last requested level (ResNet, RegNet, ConvNeXt), and
per-family classes (EfficientNet, MobileNetV3) that keep every block and run them all, so a
stride-4 token backbone would carry the whole network, compute it, and leave most of its
parameters without gradients (which DDP refuses). Where the model has
``forward_intermediates``, the backbone is therefore timm's ``feature_cls="getter"`` form,
which prunes every layer after the level (``prune_intermediate_layers``); other models keep
timm's default form.

Parameter names are those of timm's full model. Both forms rename some (the getter puts the
model under ``model.``; the generic wrapper flattens ``stages.0`` to ``stages_0``), so
``timm_features`` installs a state-dict hook pair that shows the full model's names outside and
takes them back on load. A state dict saved from ``timm.create_model(name)`` thus loads by name
(``distilkit.weights.load_backbone`` maps nothing for a backbone it does not know), its
classifier and pruned layers are reported unused, and kit checkpoints hold the names a timm
user expects.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn


def _timm():
    """timm, imported on first use: presets need none of it, and it takes a second to import."""
    import timm
    return timm


@dataclass(frozen=True)
class FeatureLevel:
    """One place timm can return a feature map from: its index in ``feature_info``."""

    index: int
    channels: int
    stride: int
    module: str


def close_timm_names(name: str, limit: int = 6) -> list[str]:
    """timm model names that look like ``name``: a typo's likely meaning, for error messages."""
    names = _timm().list_models()
    close = difflib.get_close_matches(name, names, n=limit, cutoff=0.6)
    if len(close) < limit:   # names that contain it ("resnet" -> resnet10t, resnet18, ...)
        close += [n for n in names if name and name in n and n not in close][:limit - len(close)]
    return close


def check_timm_name(name: str) -> None:
    """ValueError with suggestions unless timm knows ``name`` (pretrained tags are allowed)."""
    if not _timm().is_model(name):
        hint = close_timm_names(name)
        raise ValueError(f"timm has no model {name!r}"
                         + (f"; did you mean one of {hint}?" if hint else "")
                         + " (timm.list_models('*pattern*') lists them)")


@lru_cache(maxsize=64)
def _full_model(name: str) -> tuple[bool, frozenset[str]]:
    """(has ``forward_intermediates``, the full model's state-dict keys), from a ``meta`` build."""
    with torch.device("meta"):
        full = _timm().create_model(name, pretrained=False)
    return hasattr(full, "forward_intermediates"), frozenset(full.state_dict())


def _features_kwargs(name: str) -> dict:
    """timm's pruning features-only form where the model supports it (see the module doc)."""
    getter, _ = _full_model(name)
    return {"feature_cls": "getter"} if getter else {}


def feature_levels(name: str) -> list[FeatureLevel]:
    """Every feature map ``features_only`` can return for ``name``, shallowest first."""
    with torch.device("meta"):
        net = _timm().create_model(name, pretrained=False, features_only=True, **_features_kwargs(name))
    info = net.feature_info
    dicts = [info.get_dicts(idx=i) for i in range(len(info))]
    return [FeatureLevel(index=i, channels=int(d["num_chs"]), stride=int(d["reduction"]),
                         module=str(d["module"])) for i, d in enumerate(dicts)]


def choose_level(name: str, levels: list[FeatureLevel], *, stride: int, exact: bool) -> FeatureLevel:
    """The level a head reads: exactly ``stride`` (token heads need their stride-4 map), or
    the deepest at most ``stride`` (CNN heads: stride 32 at paper size, 16 on 64x48 crops)."""
    fits = [lv for lv in levels if (lv.stride == stride if exact else lv.stride <= stride)]
    if not fits:
        have = ", ".join(f"{lv.module} stride {lv.stride}" for lv in levels)
        need = f"a stride-{stride}" if exact else f"a feature map of stride <= {stride}"
        raise ValueError(f"timm/{name} has no {need} map (its feature maps: {have})")
    return max(fits, key=lambda lv: (lv.stride, lv.index))


def timm_features(name: str, level: FeatureLevel) -> nn.Module:
    """timm's features-only module for ``name`` returning the map of ``level`` as a one-item
    list, randomly initialised (``pretrained=False``: weights come only from local files)."""
    net = _timm().create_model(name, pretrained=False, features_only=True, out_indices=(level.index,),
                               **_features_kwargs(name))
    renames = _full_model_names(name, list(net.state_dict()))
    if renames:
        _show_full_model_names(net, renames)
    return net


def _full_model_names(name: str, keys: list[str]) -> dict[str, str]:
    """features-only key -> the full model's key, for the keys ``features_only`` renamed.

    timm renames in two ways: a top-level ``nn.Sequential`` is flattened (``stages.0`` ->
    ``stages_0``) and a wrapped model gains ``model.``. Both are undone by trying the
    candidates against the full model's keys (built on ``meta``: names only, no memory).
    """
    _, full = _full_model(name)
    renames: dict[str, str] = {}
    for key in keys:
        if key in full:
            continue
        head, _, rest = key.partition(".")
        candidates = [key[len("model."):]] if key.startswith("model.") else []
        candidates += [f"{head[:i]}.{head[i + 1:]}.{rest}" for i, c in enumerate(head) if c == "_"]
        found = [c for c in candidates if c in full]
        if len(found) == 1:
            renames[key] = found[0]
    return renames


def _show_full_model_names(net: nn.Module, renames: dict[str, str]) -> None:
    """State-dict hooks: ``state_dict()`` shows the full model's names, ``load_state_dict``
    takes them (and still takes timm's features-only names, for files saved without hooks)."""
    back = {v: k for k, v in renames.items()}

    def outward(module, state_dict, prefix, local_metadata) -> None:
        for key in [k for k in state_dict if k.startswith(prefix)]:
            new = renames.get(key[len(prefix):])
            if new is not None:
                state_dict[prefix + new] = state_dict.pop(key)

    def inward(module, state_dict, prefix, *args) -> None:
        for key in [k for k in state_dict if k.startswith(prefix)]:
            old = back.get(key[len(prefix):])
            if old is not None:
                state_dict[prefix + old] = state_dict.pop(key)

    net.register_state_dict_post_hook(outward)
    net.register_load_state_dict_pre_hook(inward)


__all__ = ["FeatureLevel", "check_timm_name", "close_timm_names", "feature_levels", "choose_level",
           "timm_features"]
