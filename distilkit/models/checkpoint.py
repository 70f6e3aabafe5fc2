"""Kit checkpoints: a model preset name, its overrides and a state dict, loaded weights-only.

A checkpoint stores the model preset name and overrides, the run config, and (for
``last.pt``) the optimizer, scheduler, scaler and RNG states, so ``distilkit eval`` and
``--resume`` need nothing else; the reading is ``files.load_weights_only``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from distilkit.files import load_weights_only
from distilkit.models.presets import build_model


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """A kit checkpoint, loaded weights-only; ValueError if it is not one."""
    ckpt = load_weights_only(path, map_location)
    if not isinstance(ckpt, dict):
        raise ValueError(f"checkpoint {path} holds a {type(ckpt).__name__}, not a distilkit checkpoint")
    for key in ("model_name", "state_dict"):
        if key not in ckpt:
            raise ValueError(f"checkpoint {path} has no {key!r}: not a distilkit checkpoint")
    return ckpt


def load_model_from_checkpoint(path: str | Path, map_location: str | torch.device = "cpu"
                               ) -> tuple[nn.Module, dict]:
    ckpt = load_checkpoint(path, map_location)
    model = build_model(ckpt["model_name"], **ckpt.get("model_overrides", {}))
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
