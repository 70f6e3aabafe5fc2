"""What the long job says while it runs: stage names, a line per row as its epochs finish (with
its loss), and an ETA from measured epoch times; and ``--plan``, the same estimate before it runs.

Estimates come from measurements, best first: epochs this grid's rows already finished (their
``metrics.csv``), finished folders of the same model anywhere under the runs folder, the
committed reference's per-row wall times (``results/table*.csv``, ``teachers.csv``), and only
then a fixed guess. Rows run ``in_flight`` at a time, so the time left is the work left divided
by that, a lower bound when a student waits for its teacher.
"""
from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from distilkit.experiments.plan import Job
from distilkit.experiments.records import error_of, is_finished

STAGES = ("data", "teachers", "tables", "report")
GUESS_EPOCH_S = 120.0          # no measurement at all: a cpu-profile student epoch on 2 cores


def stage_line(name: str, detail: str = "") -> str:
    return f"== stage {STAGES.index(name) + 1}/{len(STAGES)}: {name}{' - ' + detail if detail else ''} =="


def format_duration(seconds: float) -> str:
    minutes = int(round(seconds / 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def read_curve(run_dir: Path) -> list[dict]:
    """The rows of a run's metrics.csv written so far (an epoch each)."""
    try:
        with open(Path(run_dir) / "metrics.csv", newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


@dataclass
class EpochTimes:
    """Seconds per epoch by model name, from what was measured (see the module docstring)."""

    measured: dict[str, list[float]] = field(default_factory=dict)
    reference: dict[str, float] = field(default_factory=dict)

    @classmethod
    def gather(cls, runs_root: Path, results_dir: Path | None) -> "EpochTimes":
        times = cls()
        for curve_file in Path(runs_root).glob("**/metrics.csv"):
            model = _model_of(curve_file.parent)
            for row in read_curve(curve_file.parent):
                if model and row.get("epoch_s"):
                    times.measured.setdefault(model, []).append(float(row["epoch_s"]))
        for name in ("teachers.csv", "table4.csv", "table5.csv", "table6.csv"):
            for row in _read_rows((results_dir or Path("/nonexistent")) / name):
                if row.get("wall_s") and row.get("epochs") and row.get("model"):
                    times.reference.setdefault(row["model"], float(row["wall_s"]) / float(row["epochs"]))
        return times

    def epoch_seconds(self, job: Job) -> float:
        model = job.config.model_name()
        if self.measured.get(model):
            return statistics.median(self.measured[model])
        return self.reference.get(job.spec.model, GUESS_EPOCH_S)

    def row_seconds(self, job: Job, epochs_done: int = 0) -> float:
        return max(0, job.config.schedule().epochs - epochs_done) * self.epoch_seconds(job)


def _model_of(run_dir: Path) -> str | None:
    import json
    try:
        return json.loads((run_dir / "config.json").read_text())["model_name"]
    except (OSError, ValueError, KeyError):
        return None


def _read_rows(path: Path) -> list[dict]:
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


@dataclass
class RowWatch:
    """Prints a line when a running row finishes an epoch; keeps the ETA of the whole pool."""

    times: EpochTimes
    in_flight: int
    seen: dict[Path, int] = field(default_factory=dict)

    def poll(self, running: list[Job], waiting: list[Job], log) -> None:
        for job in running:
            curve = read_curve(job.run_dir)
            if len(curve) > self.seen.get(job.run_dir, 0):
                self.seen[job.run_dir] = len(curve)
                last = curve[-1]
                self.times.measured.setdefault(job.config.model_name(), []).append(float(last["epoch_s"]))
                log(f"   {_label(job)}: epoch {last['epoch']}/{job.config.schedule().epochs}, "
                    f"loss {float(last['train_loss']):.4g}, {float(last['epoch_s']) / 60:.1f} min/epoch; "
                    f"job ETA {format_duration(self.eta(running, waiting))}")

    def eta(self, running: list[Job], waiting: list[Job]) -> float:
        left = sum(self.times.row_seconds(j, len(read_curve(j.run_dir))) for j in running)
        left += sum(self.times.row_seconds(j) for j in waiting)
        return left / max(1, self.in_flight)


def _label(job: Job) -> str:
    return f"table {job.spec.table} {job.spec.row!r} seed {job.seed}"


def plan_lines(runs: list[Job], times: EpochTimes, in_flight: int) -> list[str]:
    """One line per run (done, failed, or to run with its estimate), then the total."""
    lines, left = [], 0.0
    for job in runs:
        if is_finished(job):
            status = "done"
        elif error_of(job.run_dir):
            status, left = "failed: will run again", left + times.row_seconds(job)
        else:
            done = len(read_curve(job.run_dir))
            estimate = times.row_seconds(job, done)
            left += estimate
            status = f"to run ({done} epochs done), ~{format_duration(estimate)}" if done else \
                f"to run, ~{format_duration(estimate)}"
        lines.append(f"{_label(job):<48} {job.config.model_name():<22} {status}")
    finished = sum(is_finished(j) for j in runs)
    lines.append(f"{finished} of {len(runs)} runs done; the rest ~{format_duration(left / max(1, in_flight))} "
                 f"at {in_flight} rows at a time (a lower bound: students wait for their teachers)")
    return lines


__all__ = ["STAGES", "stage_line", "format_duration", "EpochTimes", "RowWatch", "plan_lines", "read_curve"]
