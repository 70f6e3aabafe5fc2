"""as_numpy (distilkit.arrays): the one tensor -> numpy conversion."""
from __future__ import annotations

import numpy as np
import torch

from distilkit.arrays import as_numpy


def test_tensor_keeps_its_dtype_and_values_without_a_dtype():
    t = torch.arange(6, dtype=torch.float64).reshape(2, 3).requires_grad_()
    out = as_numpy(t)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    assert np.array_equal(out, np.arange(6.0).reshape(2, 3))


def test_dtype_casts_tensors_including_bfloat16_and_array_likes():
    t = torch.tensor([0.5, 1.25, -2.0], dtype=torch.bfloat16)
    assert as_numpy(t, np.float32).dtype == np.float32
    assert np.array_equal(as_numpy(t, np.float64), [0.5, 1.25, -2.0])
    listed = as_numpy([[1, 2], [3, 4]], np.float32)
    assert listed.dtype == np.float32 and listed.shape == (2, 2)
    assert as_numpy(np.arange(3)).dtype == np.arange(3).dtype


def test_same_values_as_the_detach_cpu_numpy_idiom():
    t = torch.randn(4, 5, generator=torch.Generator().manual_seed(0)) * 1e3
    assert np.array_equal(as_numpy(t, np.float64), t.detach().cpu().double().numpy())
    assert np.array_equal(as_numpy(t.double(), np.float32), t.double().float().numpy())
