"""The long job says where it is: its estimate with the data and figures, stage names, each
running row from its first batch and at least every 30 s, a line per row epoch with its loss
and an ETA, teachers named as teachers; and ``--plan`` shows what is done and what is left
without training anything."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distilkit.engine.heartbeat import Heartbeat
from distilkit.experiments import progress
from distilkit.experiments.plan import Recipe, plan_jobs
from distilkit.experiments.progress import (EpochTimes, RowWatch, estimate_line, format_duration, plan_lines,
                                            row_label, stage_line)

REPO = Path(__file__).resolve().parents[1]


def _epochs(run_dir: Path, n: int, epoch_s: float = 60.0):
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = ["epoch,iteration,lr,train_loss,epoch_s"] + [f"{e},{10 * e},0.001,{0.1 / e},{epoch_s}"
                                                        for e in range(1, n + 1)]
    (run_dir / "metrics.csv").write_text("\n".join(lines) + "\n")


def test_a_running_row_reports_each_new_epoch_with_its_loss_and_the_eta(tmp_path):
    teachers, jobs = plan_jobs([4], Recipe("smoke"), seeds=[0], runs_dir=tmp_path)
    running, waiting = jobs[:1], jobs[1:3]            # smoke students: 2 epochs each
    watch, lines = RowWatch(EpochTimes(), in_flight=1), []
    _epochs(running[0].run_dir, 1, epoch_s=90.0)
    watch.poll(running, waiting, lines.append)
    watch.poll(running, waiting, lines.append)        # nothing new: no second line
    lines = [line for line in lines if "started" not in line]
    assert len(lines) == 1
    assert "table 4 'none' seed 0: epoch 1/2, loss 0.1, 1.5 min/epoch" in lines[0]
    # 1 epoch left of the running row + 2 x 2 epochs waiting, 90 s each, one at a time
    assert lines[0].endswith(f"job ETA {format_duration(5 * 90)}")


def test_plan_lists_done_and_left_and_trains_nothing(tmp_path):
    teachers, jobs = plan_jobs([4], Recipe("smoke"), seeds=[0], runs_dir=tmp_path / "runs")
    teacher = teachers[0]
    teacher.run_dir.mkdir(parents=True)
    (teacher.run_dir / "final_metrics.json").write_text(json.dumps({"config_hash": teacher.config.hash()}))
    before = sorted(p.name for p in (tmp_path / "runs").rglob("*"))
    run = subprocess.run([sys.executable, "-m", "distilkit.cli", "reproduce", "--profile", "smoke", "--tables", "4",
                          "--rows", "none", "all", "--noise-seeds", "1", "--plan", "--runs-dir", str(tmp_path / "runs")],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = run.stdout.splitlines()
    assert any(line.startswith("teacher 'HRNet-W48'") and line.endswith("done") for line in out)
    assert sum("to run" in line for line in out) == 2
    assert out[-2].startswith("1 of 3 runs done; the rest ~")
    assert out[-1].startswith("estimate ~") and "data ~" in out[-1] and "report and figures ~" in out[-1]
    assert sorted(p.name for p in (tmp_path / "runs").rglob("*")) == before     # nothing trained or written


def test_estimates_prefer_measured_epochs_over_the_reference():
    _, jobs = plan_jobs([4], Recipe("smoke"), seeds=[0], runs_dir=Path("/nonexistent"))
    times = EpochTimes(reference={"distilpose-s": 30.0})
    assert times.row_seconds(jobs[0]) == 2 * 30.0
    times.measured["distilpose-s-smoke"] = [10.0, 20.0, 30.0]
    assert times.row_seconds(jobs[0], epochs_done=1) == 20.0
    assert plan_lines(jobs[:1], times, 1)[-1].startswith("0 of 1 runs done; the rest ~1 min")


def test_stage_lines_name_the_four_stages():
    assert [stage_line(s) for s in ("data", "report")] == ["== stage 1/4: data ==", "== stage 4/4: report =="]


def test_the_plan_shows_what_the_committed_and_the_previous_reference_took(tmp_path):
    from distilkit.experiments.reproduce import reference_lines

    def summary(folder: Path, wall_s: float, commit: str, runs: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "reproduce_summary.json").write_text(json.dumps({"wall_s": wall_s, "git_commit": commit,
                                                                   "runs": runs}))

    assert reference_lines(tmp_path) == []
    summary(tmp_path, 6000.0, "1234567abcdef", 23)
    summary(tmp_path / "previous_reference", 9394.1, "a891c8434cc4", 29)
    assert reference_lines(tmp_path) == ["the committed reference (1234567, 23 runs) took 1 h 40 min for its runs",
                                         "the previous reference (a891c84, 29 runs) took 2 h 37 min for its runs"]
    summary(tmp_path, 9394.1, "a891c8434cc4", 29)       # one run listed once
    assert reference_lines(tmp_path) == ["the committed reference (a891c84, 29 runs) took 2 h 37 min for its runs"]


class Clock:
    """Stands in for the time module inside progress: seconds that pass when a test says so."""

    def __init__(self):
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


def test_a_running_row_speaks_from_its_first_batch_and_at_least_every_30_s(tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress, "time", clock)
    _, jobs = plan_jobs([4], Recipe("smoke"), seeds=[0], runs_dir=tmp_path)
    job, lines = jobs[0], []
    watch = RowWatch(EpochTimes(), in_flight=1)
    said_at = []

    def poll(seconds: float) -> list[str]:       # the runner polls at least every 10 s
        new = []
        for _ in range(int(seconds // 10)):
            clock.now += 10
            before = len(lines)
            watch.poll([job], [], lines.append)
            new += lines[before:]
            said_at.extend([clock.now] * (len(lines) - before))
        return new

    watch.poll([job], [], lines.append)
    said_at.append(clock.now)
    assert lines == ["   table 4 'none' seed 0: started (distilpose-s-smoke)"]
    assert all("preparing" in line for line in poll(60))            # no batch yet: what it is doing
    job.run_dir.mkdir(parents=True, exist_ok=True)
    beat = Heartbeat(job.run_dir, epochs=2)
    beat.batch(0, 1, 40, 3.0, 0.5)
    clock.now = max(clock.now, time.time())
    # the first batch (3 s: a compile, say) gives no pace; the batches after it do
    assert poll(10) == ["   table 4 'none' seed 0: epoch 1/2, batch 1/40, loss 0.5; first batch 3 s "
                        "(compile, warm-up); the pace follows"]
    beat._last = float("-inf")
    beat.batch(0, 20, 40, 41.0, 0.25)               # 19 batches in 38 s: 3 + 39 x 2 = 81 s
    assert any("batch 20/40, loss 0.25; this epoch ~1.4 min" in line for line in poll(30))
    beat.evaluating(1)
    assert any("evaluating after epoch 2/2" in line for line in poll(30))
    gaps = [b - a for a, b in zip(said_at, said_at[1:])]
    assert max(gaps) <= 30


def test_a_past_attempts_heartbeat_is_not_shown(tmp_path, monkeypatch):
    clock = Clock()
    _, jobs = plan_jobs([4], Recipe("smoke"), seeds=[0], runs_dir=tmp_path)
    jobs[0].run_dir.mkdir(parents=True)
    Heartbeat(jobs[0].run_dir, epochs=2).batch(0, 7, 40, 3.0, 0.5)   # written before this session
    clock.now = time.time() + 600
    monkeypatch.setattr(progress, "time", clock)
    watch, lines = RowWatch(EpochTimes(), in_flight=1), []
    for _ in range(3):
        clock.now += 10
        watch.poll(jobs[:1], [], lines.append)
    assert not any("batch 7/40" in line for line in lines) and any("preparing" in line for line in lines)


@pytest.mark.parametrize("tables, label", [([4], "teacher 'HRNet-W48'"), ([6], "teacher 'SimpleBaseline'")])
def test_teachers_are_labelled_as_teachers(tables, label, tmp_path):
    teachers, _ = plan_jobs(tables, Recipe("smoke"), seeds=[0], runs_dir=tmp_path)
    assert label in [row_label(t) for t in teachers]
    assert not any("table" in row_label(t) for t in teachers)


@pytest.mark.parametrize("data_ready, stages, data_s, figures_s", [
    (False, {"data": 300.0, "figures": 60.0}, 300.0, 60.0),     # the reference's measured stages
    (True, {"data": 300.0, "figures": 60.0}, 0.0, 60.0),        # the data is there already
    (False, {}, progress.GUESS_DATA_S, progress.GUESS_FIGURES_S),
])
def test_the_estimate_counts_the_data_and_the_figures(data_ready, stages, data_s, figures_s, tmp_path):
    _, jobs = plan_jobs([4], Recipe("smoke"), seeds=[0], runs_dir=tmp_path)
    times = EpochTimes(reference={"distilpose-s": 600.0}, stages=stages)
    rows_s = progress.runs_seconds(jobs, times, 2)     # the runner's order on a clock
    line = estimate_line(jobs, times, 2, data_ready=data_ready, figures=True)
    assert line.startswith(f"estimate ~{format_duration(data_s + rows_s + figures_s)} in all: "
                           f"data ~{format_duration(data_s)}, {len(jobs)} of {len(jobs)} runs ~{format_duration(rows_s)}")
    assert line.endswith(f"report and figures ~{format_duration(figures_s)}")


def test_reference_times_are_scaled_by_the_levers_a_row_uses(tmp_path):
    _, jobs = plan_jobs([4], Recipe("cpu"), seeds=[0], runs_dir=tmp_path)
    from dataclasses import replace

    from distilkit.experiments.progress import ROW_FIXED_S
    row = jobs[0]                                        # distilpose-s-cpu, 6 epochs (#39), compiled
    times = EpochTimes(reference={"distilpose-s": 100.0}, reference_epochs={"distilpose-s": 8})
    assert row.config.schedule().epochs == 6
    assert times.row_seconds(row) == 600.0               # no benchmark: the reference's epoch, 6 times
    times.levers["distilpose-s-cpu"] = {"both_x": "1.25", "memory_x": "1.1", "compile_cold_s": "60"}
    fixed = ROW_FIXED_S / 8                              # the reference's fixed share, per its epoch
    assert times.epoch_seconds(row) == pytest.approx(fixed + (100.0 - fixed) / 1.25)
    eager = replace(row, config=replace(row.config, compile=False))
    assert times.epoch_seconds(eager) == pytest.approx(fixed + (100.0 - fixed) / 1.1)
    assert (times.cold_compile_s(row), times.cold_compile_s(eager)) == (60.0, 0.0)
    # the plan adds each compiled model type's cold compile once, spread over the slots,
    # unless the runs folder's cache already has kernels
    cold = plan_lines([row, jobs[1]], times, 2, compile_cache=tmp_path / "cache")[-1]
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "fxgraph").mkdir()
    warm = plan_lines([row, jobs[1]], times, 2, compile_cache=tmp_path / "cache")[-1]
    assert "1 min of cold compiles" in cold and "0 min of cold compiles" in warm
