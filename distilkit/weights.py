"""Pretrained weights from local files into a model's backbone.

Sources (always a file the user points at; nothing is downloaded):

    timm ``hrnet_w48`` / ``hrnet_w32`` state dicts, and MMPose's ImageNet ``hrnet_w48-8ef0771d.pth``
        (the same key names)                      -> the kit's HRNet (4 stages, or the first 3)
    torchvision ``resnet50`` state dicts            -> the kit's ResNet
    a kit checkpoint (e.g. a trained teacher)      -> its backbone's keys, by name: DistilPose-L's
        3-stage HRNet starts from the teacher's first three stages, as the authors do

Key names are mapped by the rules measured in ``shared/reference/weights_mapping.md`` (the
``*_RULES`` tables below). Every load returns a ``LoadReport``: the keys loaded, the backbone
keys the file lacks (missing) and the file's keys no backbone key takes (unused, e.g. a
classifier). A shape mismatch is an error naming the file and both shapes. Files load
weights-only (``files.load_weights_only``): none of their code runs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from distilkit.files import load_weights_only

# (source pattern, kit replacement), applied in order to the start of a key; first match wins
HRNET_RULES: tuple[tuple[str, str], ...] = (
    (r"^conv1\.", "stem.0.0."), (r"^bn1\.", "stem.0.1."),
    (r"^conv2\.", "stem.1.0."), (r"^bn2\.", "stem.1.1."),
    (r"^layer1\.", "layer1."),
    (r"^transition(\d+)\.", "transitions.{-1}."),
    (r"^stage(\d+)\.", "stages.{-2}."),
)
RESNET_RULES: tuple[tuple[str, str], ...] = (
    (r"^conv1\.", "stem.0."), (r"^bn1\.", "stem.1."),
    (r"^layer(\d+)\.", "stages.{-1}."),
)
# prefixes a saved model may put before the backbone's own names
_WRAPPER_PREFIXES = ("module.", "backbone.")


class WeightsError(ValueError):
    """A weights file that does not fit the model (names the file and the key)."""


@dataclass
class LoadReport:
    """What a backbone load did, key by key (kit names for loaded/missing, file names for unused)."""

    path: Path
    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.path} ({self.source}): loaded {len(self.loaded)} backbone keys, "
                 f"missing {len(self.missing)}, unused {len(self.unused)}"]
        if self.missing:
            lines.append("  missing (left at their initialisation): " + _summarise(self.missing))
        if self.unused:
            lines.append("  unused (in the file, not in the backbone): " + _summarise(self.unused))
        return "\n".join(lines)


def _summarise(keys: list[str], limit: int = 8) -> str:
    prefixes = sorted({".".join(k.split(".")[:2]) for k in keys})
    shown = ", ".join(prefixes[:limit])
    return shown + (f" ... ({len(prefixes) - limit} more groups)" if len(prefixes) > limit else "")


# ----------------------------------------------------------------------------- reading
def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """(tensors by name, what the file is) from a state dict, an MMPose/mmcv ``{'state_dict'}``
    file, a ``{'model'}`` file or a kit checkpoint; weights-only."""
    obj = load_weights_only(path)
    kind = "state dict"
    if isinstance(obj, dict) and "model_name" in obj and "state_dict" in obj:
        obj, kind = obj["state_dict"], f"kit checkpoint of {obj['model_name']}"
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj, kind = obj["state_dict"], "MMPose/mmcv checkpoint"
    elif isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise WeightsError(f"{path}: holds no state dict of tensors")
    return dict(obj), kind


def _strip_wrappers(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def map_key(key: str, rules: tuple[tuple[str, str], ...]) -> str:
    """A source key under the kit's names (keys no rule matches are returned unchanged)."""
    for pattern, repl in rules:
        match = re.match(pattern, key)
        if match:
            if "{" in repl:  # an index shifted by a constant: "{-2}" -> int(group 1) - 2
                shift = int(repl[repl.index("{") + 1:repl.index("}")])
                repl = re.sub(r"\{-?\d+\}", str(int(match.group(1)) + shift), repl)
            key = repl + key[match.end():]
            break
    return key.replace(".fuse_layers.", ".fuse.")


def rules_for(backbone: nn.Module, source_keys: list[str]) -> tuple[tuple[str, str], ...]:
    """The renaming a file needs for this backbone: none when it already has the kit's names."""
    if any(k.startswith(("stem.", "stages.", "transitions.")) for k in source_keys):
        return ()
    from distilkit.models.hrnet import HRNet
    from distilkit.models.resnet import ResNet
    if isinstance(backbone, HRNet):
        return HRNET_RULES
    if isinstance(backbone, ResNet):
        return RESNET_RULES
    return ()


# ----------------------------------------------------------------------------- loading
def load_backbone(model: nn.Module, path: str | Path, *, verbose: bool = True) -> LoadReport:
    """Load ``path``'s weights into ``model.backbone`` (or ``model`` if it has none).

    Returns the report (and prints it with ``verbose``). Shapes must agree for every key
    both sides have; the backbone keys the file lacks keep their initialisation.
    """
    path = Path(path)
    backbone = getattr(model, "backbone", model)
    tensors, kind = read_state_dict(path)
    source = {_strip_wrappers(k): v for k, v in tensors.items()}
    if kind.startswith("kit checkpoint"):   # a whole model: only its backbone's part
        source = {k[len("backbone."):]: v for k, v in tensors.items() if k.startswith("backbone.")}
    rules = rules_for(backbone, list(source))
    mapped = {map_key(k, rules): (k, v) for k, v in source.items()}
    target = backbone.state_dict()
    report = LoadReport(path=path, source=kind)
    for name, (src_name, value) in mapped.items():
        if name not in target:
            report.unused.append(src_name)
        elif tuple(value.shape) != tuple(target[name].shape):
            raise WeightsError(f"{path}: {src_name} has shape {tuple(value.shape)}, the backbone's "
                               f"{name} {tuple(target[name].shape)}: not weights for this backbone")
        else:
            target[name] = value.to(target[name].dtype)
            report.loaded.append(name)
    report.missing = [k for k in target if k not in report.loaded]
    if not report.loaded:
        raise WeightsError(f"{path}: none of its {len(source)} keys is a key of this backbone "
                           f"({type(backbone).__name__}); unused: {_summarise(report.unused)}")
    backbone.load_state_dict(target)
    if verbose:
        print(report)
    return report


__all__ = ["LoadReport", "WeightsError", "load_backbone", "read_state_dict", "map_key",
           "HRNET_RULES", "RESNET_RULES"]
