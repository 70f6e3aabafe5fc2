"""How large a teacher's shared outputs grow (``distilkit.teacher_store``), and whether they fit.

A store keeps every epoch of one teacher and seed until the last row distilled from it is done,
so its size is epochs x crops per epoch x bytes per crop. At the paper profile that is
418,560 bytes a crop (HRNet-W48 teacher: 17 heatmaps of 64x48, 17 keypoint tokens and 256
visual tokens of 192, fp32), 63 GB an epoch of COCO and 19 TB over 300 epochs: far beyond a
disk. The store is therefore off wherever its estimate exceeds a cap (default 50 GB) or the free
space of the disk it would be written to; the teacher then runs live, which changes no result.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from distilkit.teacher_store import (
    STORE_CAP_BYTES,  # the one cap: the store checks it again per epoch
)

FLOAT_BYTES = 4              # outputs are stored in the dtype the teacher made them: fp32 at most
COCO_TRAIN_INSTANCES = 149_813   # person instances with a labelled keypoint in COCO train2017


def bytes_per_crop(model_name: str, **model_overrides) -> int:
    """Bytes the store holds for one training crop of teacher ``model_name`` (fp32): its
    heatmaps, and for a token model its keypoint and visual tokens."""
    from distilkit.models.presets import get_config

    cfg = get_config(model_name, **model_overrides)
    h, w = cfg.resolved_heatmap_size
    floats = cfg.num_keypoints * h * w
    encoder = getattr(cfg, "encoder", None)
    if getattr(cfg, "arch", "") == "token" and encoder is not None:
        fh, fw = cfg.input_size[0] // 4, cfg.input_size[1] // 4          # the stride-4 feature map
        visual = (fh // encoder.patch_size[0]) * (fw // encoder.patch_size[1])
        floats += (cfg.num_keypoints + visual) * encoder.dim
    return floats * FLOAT_BYTES


def free_bytes(folder: str | Path) -> int:
    """Free space of the disk ``folder`` is (or would be) on: its nearest existing parent's."""
    path = Path(folder).resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


@dataclass(frozen=True)
class StoreDecision:
    """Whether one teacher's rows share a store, and why."""

    teacher: str                 # the teacher run's folder name
    rows: int                    # rows that would read it
    estimate: int                # bytes, every seed's store together
    on: bool
    reason: str                  # "" when on by default

    def line(self) -> str:
        size = format_bytes(self.estimate)
        if self.on:
            return f"teacher store for {self.teacher}: on, ~{size} for {self.rows} rows{self.reason}"
        return f"teacher store for {self.teacher}: off ({self.reason}); the teacher runs live in its {self.rows} rows"


def decide(teacher: str, rows: int, estimate: int, folder: str | Path, *, mode: str = "auto",
           cap: int = STORE_CAP_BYTES) -> StoreDecision:
    """``mode`` "auto": on when ``estimate`` fits under ``cap`` and the free space at ``folder``;
    "on": on whatever its size (the line gives the estimate); "off": off."""
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"teacher store mode must be auto, on or off, not {mode!r}")
    if mode == "off":
        return StoreDecision(teacher, rows, estimate, False, "turned off")
    if mode == "on":
        return StoreDecision(teacher, rows, estimate, True, " (turned on explicitly)")
    free = free_bytes(folder)
    if estimate > cap:
        why = f"~{format_bytes(estimate)} would exceed the {format_bytes(cap)} cap; --teacher-store on to keep it"
        return StoreDecision(teacher, rows, estimate, False, why)
    if estimate > free:
        why = f"~{format_bytes(estimate)} would exceed the {format_bytes(free)} free at {folder}"
        return StoreDecision(teacher, rows, estimate, False, why)
    return StoreDecision(teacher, rows, estimate, True, "")


def format_bytes(n: float) -> str:
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 10**3:.0f} kB"


__all__ = [
    "COCO_TRAIN_INSTANCES",
    "STORE_CAP_BYTES",
    "StoreDecision",
    "bytes_per_crop",
    "decide",
    "format_bytes",
    "free_bytes",
]
