"""What a grid row costs on GPUs, before it runs: GPU-hours and where the figure comes from.

Measured first: ``results/gpu_check.csv`` (``bench/gpu_check.py --precision fp32`` on a GPU)
gives fp32 training images/s per (model, teacher); a row whose pair it holds costs its images
divided by that. Otherwise the row costs its FLOPs at an assumed sustained throughput, printed
beside the figure: a training image costs three forward passes of the model (forward and
backward), plus one forward pass of a live teacher; each evaluation (every ``eval_every`` epochs
and at the end) two forward passes (flip test) of every detection box.
"""
from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass
from pathlib import Path

from distilkit.experiments.plan import Job, train_crops

ASSUMED_TFLOPS = 10.0            # sustained fp32 per GPU: about half an A100's 19.5 TFLOP/s peak
COCO_VAL_DETECTIONS = 104_125    # boxes of COCO_val2017_detections_AP_H_56_person.json


@dataclass(frozen=True)
class RowCost:
    gpu_hours: float
    source: str                  # "measured: <device>" or "FLOPs"


@dataclass(frozen=True)
class Throughput:
    """Measured fp32 training images/s by (model name, teacher model name or "")."""

    images_per_s: dict[tuple[str, str], float]
    device: str = ""

    @classmethod
    def read(cls, path: str | Path | None) -> Throughput:
        """The fp32 ``train`` rows of a gpu_check CSV; none when the file is absent."""
        found, device = {}, ""
        try:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
        except (OSError, TypeError):
            return cls({})
        for row in rows:
            if row.get("check") == "train" and row.get("precision") == "fp32" and row.get("tiny") != "True":
                found[(row["model"], row.get("teacher", ""))] = float(row["images_per_s"])
                device = row.get("device", device)
        return cls(found, device)


@functools.cache
def forward_flops(model_name: str) -> float:
    """FLOPs of one forward pass of one image (2 per multiply-accumulate), counted on the meta
    device: shapes only, no weights allocated and no arithmetic done."""
    import torch

    from distilkit.models import build_model
    from distilkit.models.complexity import count_macs

    with torch.device("meta"):
        model = build_model(model_name)
    return 2e9 * count_macs(model, device="meta")["gmacs"]


def teacher_model(job: Job) -> str:
    """The teacher's model name at the row's profile, or "" without a teacher."""
    if not job.config.teacher:
        return ""
    from distilkit.experiments.grid import TEACHERS
    key = Path(job.config.teacher).parent.name.rsplit("-", 1)[0]
    return job.config.resolved_profile().model_name(TEACHERS[key].model)


def row_cost(job: Job, measured: Throughput) -> RowCost:
    """GPU-hours of ``job``'s whole schedule (training and its evaluations)."""
    config = job.config
    model, teacher = config.model_name(), teacher_model(job)
    images = config.schedule().epochs * train_crops(config)
    evals = math.ceil(config.schedule().epochs / (config.eval_every or config.resolved_profile().eval_every))
    eval_flops = evals * 2 * COCO_VAL_DETECTIONS * forward_flops(model)
    if (model, teacher) in measured.images_per_s:
        seconds = images / measured.images_per_s[(model, teacher)] + eval_flops / (ASSUMED_TFLOPS * 1e12)
        return RowCost(seconds / 3600, f"measured: {measured.device}")
    live_teacher = forward_flops(teacher) if teacher and not config.teacher_store else 0.0
    flops = images * (3 * forward_flops(model) + live_teacher) + eval_flops
    return RowCost(flops / (ASSUMED_TFLOPS * 1e12) / 3600, "FLOPs")


__all__ = ["ASSUMED_TFLOPS", "RowCost", "Throughput", "forward_flops", "row_cost", "teacher_model"]
