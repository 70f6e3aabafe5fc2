"""Tensors and arrays: the one conversion to numpy used by codecs, evaluation and plots."""
from __future__ import annotations

import numpy as np
import torch


def as_numpy(x, dtype=None) -> np.ndarray:
    """A tensor (detached, copied to the CPU) or array-like as a numpy array.

    ``dtype`` (a numpy dtype) casts; for a tensor the cast is done by torch before
    ``.numpy()``, because numpy has no bfloat16 and a half-precision model output
    could not be converted otherwise. Without it a tensor keeps its dtype.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if dtype is None:
            return x.cpu().numpy()
        # the torch dtype numpy's dtype corresponds to (float32 -> torch.float32, ...)
        torch_dtype = torch.from_numpy(np.empty(0, dtype=dtype)).dtype
        return x.to("cpu", torch_dtype).numpy()
    return np.asarray(x, dtype=dtype)


__all__ = ["as_numpy"]
