"""Sane ranges for a model config read from a file, checked before anything is allocated.

A checkpoint names its model and ``model_overrides``; building that model allocates whatever
the overrides ask for (``{dim: 131072, depth: 64}`` asks for 206 GB). A downloaded checkpoint is
untrusted input, so ``check_sane`` holds each size to a range around the kit's own models (the
paper's are the largest: D 192, depth 12, 256x192 input, HRNet-W48, ResNet-50) with ample room,
and says which field is out of range.
"""
from __future__ import annotations

from dataclasses import fields, is_dataclass
from numbers import Real

# field name -> (lowest, highest); a field in a tuple (patch_size, layers, ...) is held per item
RANGES: dict[str, tuple[float, float]] = {
    # the token encoder
    "dim": (1, 768), "depth": (1, 24), "heads": (1, 32), "mlp_ratio": (0.25, 8.0), "patch_size": (1, 16),
    # the model
    "input_size": (8, 1024), "heatmap_size": (1, 512), "num_keypoints": (1, 133),
    "head_hidden_dim": (1, 8192), "deconv_channels": (1, 1024), "feature_stride": (1, 64),
    # backbones (StemNet, HRNet, ResNet)
    "width": (1, 256), "planes": (1, 1024), "num_blocks": (1, 8), "num_stages": (1, 4),
    "stem_width": (1, 256), "stage1_planes": (1, 1024), "stage1_blocks": (1, 8),
    "num_modules": (1, 8), "layers": (1, 64), "strides": (1, 4),
}


def out_of_range(cfg) -> list[str]:
    """'field = value (range lo..hi)' for each sized field of ``cfg`` (and its encoder and
    backbone configs) outside its range, or not a number."""
    problems = []
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if is_dataclass(value):
            problems += out_of_range(value)
        elif f.name in RANGES and value is not None:
            lo, hi = RANGES[f.name]
            items = value if isinstance(value, (tuple, list)) else (value,)
            if not all(isinstance(v, Real) and not isinstance(v, bool) and lo <= v <= hi for v in items):
                problems.append(f"{f.name} = {value!r} (range {lo:g}..{hi:g})")
    encoder = getattr(cfg, "encoder", None)
    if encoder is not None and not problems and encoder.dim % encoder.heads:
        problems.append(f"dim = {encoder.dim} is not a multiple of heads = {encoder.heads}")
    return problems


__all__ = ["RANGES", "out_of_range"]
