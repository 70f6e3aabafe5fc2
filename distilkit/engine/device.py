"""Where and how a run computes: the device, mixed precision, and the seeded RNGs."""
from __future__ import annotations

import random

import numpy as np
import torch

from distilkit.engine.distributed import DistInfo


def resolve_device(name: str, info: DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and info.enabled:
        return torch.device("cuda", info.local_rank)
    return torch.device(name)


def autocast_for(device: torch.device, amp: str):
    """A context factory for mixed precision, or None where it is off (always on CPU)."""
    if device.type != "cuda" or amp == "off":
        return None, False
    if amp == "auto":
        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return (lambda: torch.autocast("cuda", dtype=dtype)), dtype == torch.float16


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
