"""What the long job says while it runs: stage names, the whole job's estimate before it starts
(data, runs and figures), then for each running row a line from its first batch on and at least
every ``SPEAK_EVERY_S`` seconds (its batch, loss and pace, read from the trainer's heartbeat), a
line per finished epoch with the job's ETA; and ``--plan``, the same estimate without running.

Estimates come from measurements, best first: epochs this grid's rows already finished (their
``metrics.csv``), finished folders of the same model anywhere under the runs folder, the
committed reference's per-row wall times (``results/table*.csv``, ``teachers.csv``), and only
then a fixed guess. The reference ran eager, reading images from their files: its times are
scaled by the levers a row now uses, as ``bench/main_job_speed.py`` measured them
(``results/main_job_speed.csv``: compiled and images kept, or images kept alone), and each
compiled model type pays its cold compile once per runs folder. The runs' wall time is the
runner's start order played on a clock (``scheduling.simulate``: students wait for their
teachers, the tail's idle slot counts); a running job's ETA is the work left over the slots.
"""
from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import json
import time

from distilkit.engine.heartbeat import read_beat
from distilkit.experiments.plan import Job
from distilkit.experiments.records import error_of, is_finished
from distilkit.experiments.scheduling import Schedule, simulate
from distilkit.profiles import get_profile

STAGES = ("data", "teachers", "tables", "report")
GUESS_EPOCH_S = 120.0          # no measurement at all: a cpu-profile student epoch on 2 cores
GUESS_DATA_S = 240.0           # generating the cpu synthetic set on 2 cores, unmeasured
GUESS_FIGURES_S = 120.0        # REPORT.md and the viz notebooks, unmeasured
# a running row speaks at least this often; the runner polls every 10 s, so the gap stays under 30 s
SPEAK_EVERY_S = 20.0
TEACHER_SUFFIX = " (teacher)"
# A row's start (imports, data, model) and final evaluation, which the levers do not speed up:
# 16 s and 7 s per row in the profile of the committed reference (3a755c5), issue 38.
ROW_FIXED_S = 23.0
SPEED_FILE = "main_job_speed.csv"


def stage_line(name: str, detail: str = "") -> str:
    return f"== stage {STAGES.index(name) + 1}/{len(STAGES)}: {name}{' - ' + detail if detail else ''} =="


def row_label(job: Job) -> str:
    """How the job's lines name a run: ``teacher 'HRNet-W48'`` or ``table 4 'all' seed 1``."""
    if job.spec.row.endswith(TEACHER_SUFFIX):
        return f"teacher {job.spec.row[:-len(TEACHER_SUFFIX)]!r}"
    return f"table {job.spec.table} {job.spec.row!r} seed {job.seed}"


def format_duration(seconds: float) -> str:
    minutes = int(round(seconds / 60))
    if minutes == 0 and seconds > 0:
        return "under 1 min"
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
    stages: dict[str, float] = field(default_factory=dict)     # data / figures wall s of a reference
    # model name (distilpose-s-cpu) -> its row of main_job_speed.csv (both_x, memory_x, compile_cold_s)
    levers: dict[str, dict] = field(default_factory=dict)
    reference_epochs: dict[str, int] = field(default_factory=dict)

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
                    times.reference_epochs.setdefault(row["model"], int(float(row["epochs"])))
        for row in _read_rows((results_dir or Path("/nonexistent")) / SPEED_FILE):
            times.levers[row["model"]] = row
        times.stages = _stage_walls(results_dir)
        return times

    def data_seconds(self, ready: bool) -> float:
        return 0.0 if ready else self.stages.get("data", GUESS_DATA_S)

    def figures_seconds(self, figures: bool) -> float:
        return self.stages.get("figures", GUESS_FIGURES_S) if figures else 0.0

    def speedup(self, job: Job) -> float:
        """How much faster the job's training steps run than the reference's (eager, from files)."""
        lever = self.levers.get(job.config.model_name())
        if lever is None:
            return 1.0
        return float(lever["both_x"] if job.config.compiles() else lever["memory_x"])

    def cold_compile_s(self, job: Job) -> float:
        lever = self.levers.get(job.config.model_name())
        return float(lever["compile_cold_s"]) if lever is not None and job.config.compiles() else 0.0

    def epoch_seconds(self, job: Job) -> float:
        model = job.config.model_name()
        if self.measured.get(model):
            return statistics.median(self.measured[model])
        if job.spec.model not in self.reference:
            return GUESS_EPOCH_S
        # the reference's per-epoch share of a row's fixed cost is not sped up
        fixed = ROW_FIXED_S / self.reference_epochs.get(job.spec.model, 1)
        return fixed + (self.reference[job.spec.model] - fixed) / self.speedup(job)

    def row_seconds(self, job: Job, epochs_done: int = 0) -> float:
        return max(0, job.config.schedule().epochs - epochs_done) * self.epoch_seconds(job)


def _stage_walls(results_dir: Path | None) -> dict[str, float]:
    """The data and figure stages' wall seconds the committed reference's summary records."""
    try:
        summary = json.loads((Path(results_dir or "/nonexistent") / "reproduce_summary.json").read_text())
    except (OSError, ValueError):
        return {}
    keys = {"data": "data_wall_s", "figures": "figures_wall_s"}
    return {stage: float(summary[key]) for stage, key in keys.items()
            if isinstance(summary.get(key), (int, float))}


def data_ready(profile: str, data_root: str | None) -> bool:
    """Whether the data stage has nothing to do: the user's folder, or a current synthetic set."""
    synth = get_profile(profile).synthetic
    if data_root or not synth:
        return True
    from distilkit.data.synthetic.config import resolve_config
    from distilkit.data.synthetic.writer import default_data_root, is_current
    return is_current((default_data_root() / f"synthetic-{synth}-seed0").resolve(), resolve_config(synth), 0)


def _model_of(run_dir: Path) -> str | None:
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
    """Speaks for the running rows: a line at a row's first batch, at least every
    ``SPEAK_EVERY_S`` after (batch and pace from its heartbeat, or what it is doing before its
    first batch and while it evaluates), and one per finished epoch with the job's ETA, which
    counts the figures still to draw (``after_s``)."""

    times: EpochTimes
    in_flight: int
    after_s: float = 0.0
    seen: dict[Path, int] = field(default_factory=dict)
    started: dict[Path, float] = field(default_factory=dict)     # wall time a row was first seen running
    spoken: dict[Path, float] = field(default_factory=dict)      # monotonic time of its last line
    first_batch: set = field(default_factory=set)
    busy_s: list[float] = field(default_factory=list)     # each row's wall seconds in a slot

    def timed(self, row):
        """``row`` that records the seconds it held its slot (for the idle slot-seconds)."""
        def run(job):
            t0 = time.perf_counter()
            try:
                return row(job)
            finally:
                self.busy_s.append(time.perf_counter() - t0)   # list.append: safe across threads
        return run

    def poll(self, running: list[Job], waiting: list[Job], log) -> None:
        for job in running:
            if job.run_dir not in self.started:
                self.started[job.run_dir], self.spoken[job.run_dir] = time.time(), time.monotonic()
                log(f"   {row_label(job)}: started ({job.config.model_name()})")
            if self._epoch_line(job, running, waiting, log):
                continue
            line = self._beat_line(job)
            if line:
                self.spoken[job.run_dir] = time.monotonic()
                log(f"   {row_label(job)}: {line}")
        for gone in set(self.started) - {j.run_dir for j in running}:
            self.started.pop(gone, None)
            self.spoken.pop(gone, None)

    def _epoch_line(self, job: Job, running: list[Job], waiting: list[Job], log) -> bool:
        curve = read_curve(job.run_dir)
        if len(curve) <= self.seen.get(job.run_dir, 0):
            return False
        self.seen[job.run_dir] = len(curve)
        last = curve[-1]
        self.times.measured.setdefault(job.config.model_name(), []).append(float(last["epoch_s"]))
        self.spoken[job.run_dir] = time.monotonic()
        log(f"   {row_label(job)}: epoch {last['epoch']}/{job.config.schedule().epochs}, "
            f"loss {float(last['train_loss']):.4g}, {float(last['epoch_s']) / 60:.1f} min/epoch; "
            f"job ETA {format_duration(self.eta(running, waiting))}")
        return True

    def _beat_line(self, job: Job) -> str | None:
        """The row's line now, or None when it spoke recently (its first batch always speaks)."""
        beat = self._beat(job)
        first = beat is not None and beat.stage == "train" and job.run_dir not in self.first_batch
        if not first and time.monotonic() - self.spoken.get(job.run_dir, 0.0) < SPEAK_EVERY_S:
            return None
        if beat is None:
            what = "data, model, teacher" + (", compile" if job.config.compiles() else "")
            return (f"preparing ({what}), {time.time() - self.started[job.run_dir]:.0f} s; "
                    "batch progress from its first batch")
        if beat.stage == "evaluate":
            return f"evaluating after epoch {beat.epoch}/{beat.epochs}, {time.time() - beat.wall:.0f} s so far"
        self.first_batch.add(job.run_dir)
        where = f"epoch {beat.epoch}/{beat.epochs}, batch {beat.batch}/{beat.batches}, loss {beat.loss:.4g}; "
        pace = beat.epoch_estimate_s()
        if pace is None:        # the first batch carries a compile or warm-up: no pace yet
            return where + f"first batch {beat.epoch_s:.0f} s (compile, warm-up); the pace follows"
        return where + f"this epoch ~{pace / 60:.1f} min at this pace"

    def _beat(self, job: Job):
        """The row's heartbeat from this session (a folder's older beat is a past attempt's)."""
        beat = read_beat(job.run_dir)
        started = self.started.get(job.run_dir, 0.0)
        return beat if beat is not None and beat.wall >= started - 5.0 else None

    def eta(self, running: list[Job], waiting: list[Job]) -> float:
        left = sum(self.times.row_seconds(j, len(read_curve(j.run_dir))) for j in running)
        left += sum(self.times.row_seconds(j) for j in waiting)
        return left / max(1, self.in_flight) + self.after_s


def runs_schedule(runs: list[Job], times: EpochTimes, in_flight: int, compile_cache: Path | None = None
                  ) -> tuple[Schedule, float]:
    """The unfinished runs ``in_flight`` at a time in the runner's order (``simulate``), and the
    cold compiles they pay, each compiled model type once, unless ``compile_cache`` (the runs
    folder's inductor cache) already holds kernels."""
    left = [j for j in runs if not is_finished(j)]
    estimate = {j.run_dir: times.row_seconds(j, 0 if error_of(j.run_dir) else len(read_curve(j.run_dir)))
                for j in left}
    cold = 0.0
    if compile_cache is None or not any(Path(compile_cache).glob("*")):
        cold = sum({j.config.model_name(): times.cold_compile_s(j) for j in left}.values())
    return simulate(left, in_flight=max(1, in_flight), seconds=lambda j: estimate[j.run_dir]), cold


def runs_seconds(runs: list[Job], times: EpochTimes, in_flight: int, compile_cache: Path | None = None) -> float:
    """The wall time the unfinished runs would take, ``in_flight`` at a time (``runs_schedule``)."""
    pool, cold = runs_schedule(runs, times, in_flight, compile_cache)
    return pool.wall_s + cold / max(1, in_flight)


def plan_lines(runs: list[Job], times: EpochTimes, in_flight: int, *, compile_cache: Path | None = None
               ) -> list[str]:
    """One line per run (done, failed, or to run with its estimate), then the total."""
    lines = []
    for job in runs:
        if is_finished(job):
            status = "done"
        elif error_of(job.run_dir):
            status = "failed: will run again"
        else:
            done = len(read_curve(job.run_dir))
            estimate = times.row_seconds(job, done)
            status = f"to run ({done} epochs done), ~{format_duration(estimate)}" if done else \
                f"to run, ~{format_duration(estimate)}"
        lines.append(f"{row_label(job):<48} {job.config.model_name():<22} {status}")
    finished = sum(is_finished(j) for j in runs)
    pool, cold = runs_schedule(runs, times, in_flight, compile_cache)
    levers = "; reference times scaled by the measured levers" if times.levers else ""
    lines.append(f"{finished} of {len(runs)} runs done; the rest "
                 f"~{format_duration(pool.wall_s + cold / max(1, in_flight))} at {in_flight} rows at a time "
                 f"(the runner's order on a clock: {pool.idle_slot_s / 60:.0f} idle slot-min, "
                 f"{cold / 60:.0f} min of cold compiles{levers})")
    return lines


def estimate_line(runs: list[Job], times: EpochTimes, in_flight: int, *, data_ready: bool,
                  figures: bool, compile_cache: Path | None = None) -> str:
    """The whole job's estimate: the data stage, the runs left and the figures."""
    data, rows = times.data_seconds(data_ready), runs_seconds(runs, times, in_flight, compile_cache)
    after = times.figures_seconds(figures)
    left = sum(not is_finished(j) for j in runs)
    return (f"estimate ~{format_duration(data + rows + after)} in all: data ~{format_duration(data)}, "
            f"{left} of {len(runs)} runs ~{format_duration(rows)} at {in_flight} at a time, "
            f"report and figures ~{format_duration(after)}")


__all__ = ["STAGES", "stage_line", "format_duration", "EpochTimes", "RowWatch", "plan_lines", "read_curve",
           "row_label", "estimate_line", "runs_seconds", "runs_schedule", "data_ready", "SPEAK_EVERY_S"]
