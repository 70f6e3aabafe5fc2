"""Kit checkpoints: a model preset name, its overrides and a state dict, loaded weights-only.

A checkpoint stores the model preset name and overrides, the run config, and (for
``last.pt``) the optimizer, scheduler, scaler and RNG states, so ``distilkit eval`` and
``--resume`` need nothing else; the reading is ``files.load_weights_only``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from distilkit.files import CheckpointReadError, load_weights_only
from distilkit.models import presets
from distilkit.models.limits import out_of_range


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """A kit checkpoint, loaded weights-only; CheckpointReadError (a ValueError) if it is not one."""
    ckpt = load_weights_only(path, map_location)
    if not isinstance(ckpt, dict):
        raise CheckpointReadError(f"checkpoint {path} holds a {type(ckpt).__name__}, not a distilkit checkpoint")
    for key in ("model_name", "state_dict"):
        if key not in ckpt:
            raise CheckpointReadError(f"checkpoint {path} has no {key!r}: not a distilkit checkpoint")
    return ckpt


def checkpoint_model_config(ckpt: dict, path: str | Path):
    """The config of the model a checkpoint names, with its ``model_overrides``, each size held
    to its sane range (``models.limits``) before anything is allocated: a downloaded checkpoint
    asking for {dim: 131072, depth: 64} would otherwise try to allocate 206 GB."""
    overrides = ckpt.get("model_overrides", {})
    if not isinstance(overrides, dict) or not all(isinstance(k, str) for k in overrides):
        raise CheckpointReadError(f"checkpoint {path}: model_overrides is not a mapping of names")
    try:
        cfg = presets.get_config(str(ckpt["model_name"]), **overrides)
    except (ValueError, TypeError) as err:
        raise CheckpointReadError(f"checkpoint {path}: {err}") from None
    problems = out_of_range(cfg)
    if problems:
        raise CheckpointReadError(f"checkpoint {path}: model_overrides out of range, refused before "
                                  f"building the model: {'; '.join(problems)}")
    return cfg


def load_model_from_checkpoint(path: str | Path, map_location: str | torch.device = "cpu"
                               ) -> tuple[nn.Module, dict]:
    ckpt = load_checkpoint(path, map_location)
    model = presets.build_from_config(checkpoint_model_config(ckpt, path))
    model.load_state_dict(as_model_dtypes(ckpt["state_dict"], model))
    model.eval()
    return model, ckpt


def as_model_dtypes(state_dict: dict, model: nn.Module) -> dict:
    """The state dict with each floating tensor in the dtype of the model's own tensor: a
    published checkpoint (``distilkit.publish``) stores fp16 and the model is built in fp32;
    the cast is explicit so no later change of ``load_state_dict`` can leave a half model."""
    own = model.state_dict()
    return {k: (v.to(own[k].dtype) if k in own and v.is_floating_point() and own[k].is_floating_point()
                else v) for k, v in state_dict.items()}
