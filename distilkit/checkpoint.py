"""Checkpoints that carry everything needed to rebuild and evaluate a model.

A checkpoint stores the model preset name and overrides, the run config, and (for
``last.pt``) the optimizer, scheduler, scaler and RNG states, so ``distilkit eval`` and
``--resume`` need nothing else. Writes are atomic: a run killed mid-save leaves the previous
checkpoint intact.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def rng_state() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model under DDP / torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # truncated or foreign file
        raise ValueError(f"checkpoint {path} cannot be read ({type(err).__name__}: {err})") from err
    for key in ("model_name", "state_dict"):
        if key not in ckpt:
            raise ValueError(f"checkpoint {path} has no {key!r}: not a distilkit checkpoint")
    return ckpt


def load_model_from_checkpoint(path: str | Path, map_location: str | torch.device = "cpu"
                               ) -> tuple[nn.Module, dict]:
    from distilkit.models import build_model

    ckpt = load_checkpoint(path, map_location)
    model = build_model(ckpt["model_name"], **ckpt.get("model_overrides", {}))
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt
