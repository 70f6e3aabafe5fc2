"""What the trainer keeps in ``last.pt`` beside the weights: the RNG states, and the bare model.

Everything is a tensor, a number or a plain container, so a checkpoint holding it still loads
weights-only (``files.load_weights_only``); writing and reading the files is ``distilkit.files``,
a kit checkpoint's model is ``models.checkpoint``.
"""
from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn


def rng_state() -> dict:
    """The process's RNG states as tensors and plain numbers (loadable weights-only)."""
    _, key, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    if isinstance(np_state, dict):
        np.random.set_state(("MT19937", np_state["key"].numpy().astype(np.uint32), np_state["pos"],
                             np_state["has_gauss"], np_state["cached_gaussian"]))
    else:  # a checkpoint from before the tensor form: numpy's own tuple
        np.random.set_state(np_state)
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
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
