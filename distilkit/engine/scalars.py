"""TensorBoard scalars of a run (``distilkit train --tensorboard``): per epoch, each loss term,
the learning rate and the validation metrics, written as event files into the run folder, so
``tensorboard --logdir runs/cpu`` shows every run of the main job side by side.

metrics.csv stays the record; the events repeat its rows for TensorBoard. A resumed run
purges the events of the epochs it redoes, as it truncates metrics.csv.
"""
from __future__ import annotations

import math
from pathlib import Path

# fractions in metrics.csv, percent for a reader
from distilkit.units import PERCENT_METRICS

# metrics.csv's train_* columns that are rates or shares, not loss terms
NOT_LOSSES = ("train_samples_per_s",)
NOT_SCALARS = ("epoch", "iteration", "data_share", "epoch_s")

INSTALL_HINT = ("distilkit train --tensorboard needs the tensorboard package: "
                "pip install -c constraints.txt tensorboard (or install the kit's notebooks extra)")


def scalar_tags(row: dict) -> dict[str, float]:
    """tag -> value for one metrics.csv row: ``loss/<term>`` (``loss/total`` the weighted sum),
    ``lr``, ``val/<metric>`` (AP-like metrics in percent), ``speed/<column>``."""
    tags = {}
    for key, value in row.items():
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if key in NOT_SCALARS or not math.isfinite(value):
            continue
        if key.startswith("train_") and key not in NOT_LOSSES:
            term = key.removeprefix("train_")
            tags["loss/total" if term == "loss" else f"loss/{term}"] = value
        elif key == "lr":
            tags["lr"] = value
        elif key in NOT_LOSSES:
            tags[f"speed/{key}"] = value
        elif key in PERCENT_METRICS:
            tags[f"val/{key} (%)"] = 100.0 * value
        else:
            tags[f"val/{key}"] = value
    return tags


class EpochScalars:
    """An open event writer in ``run_dir``; ``write(row)`` logs one epoch at step ``row['epoch']``."""

    def __init__(self, run_dir: str | Path, epochs_done: int = 0):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ImportError(INSTALL_HINT) from err
        # resumed after epoch N: the events of later epochs (a killed session's) are dropped
        self._writer = SummaryWriter(log_dir=str(run_dir), purge_step=epochs_done + 1 if epochs_done else None)

    def write(self, row: dict) -> None:
        step = int(row["epoch"])
        for tag, value in scalar_tags(row).items():
            self._writer.add_scalar(tag, value, global_step=step)
        self._writer.flush()     # an epoch is minutes: TensorBoard shows it as soon as it ends

    def close(self) -> None:
        self._writer.close()


class NoScalars:
    """``--tensorboard`` off (or a rank other than 0): nothing is written."""

    def write(self, row: dict) -> None:
        pass

    def close(self) -> None:
        pass


def epoch_scalars(run_dir: str | Path, epochs_done: int, *, on: bool) -> EpochScalars | NoScalars:
    return EpochScalars(run_dir, epochs_done) if on else NoScalars()


def read_scalars(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] of the event files in ``run_dir`` (what TensorBoard would plot)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


__all__ = ["INSTALL_HINT", "EpochScalars", "NoScalars", "epoch_scalars", "read_scalars", "scalar_tags"]
