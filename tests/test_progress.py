"""The long job says where it is: stage names, a line per row epoch with its loss and an ETA, and
``--plan`` shows what is done and what is left without training anything."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from distilkit.experiments.plan import plan_jobs
from distilkit.experiments.progress import EpochTimes, RowWatch, format_duration, plan_lines, stage_line

REPO = Path(__file__).resolve().parents[1]


def _epochs(run_dir: Path, n: int, epoch_s: float = 60.0):
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = ["epoch,iteration,lr,train_loss,epoch_s"] + [f"{e},{10 * e},0.001,{0.1 / e},{epoch_s}"
                                                        for e in range(1, n + 1)]
    (run_dir / "metrics.csv").write_text("\n".join(lines) + "\n")


def test_a_running_row_reports_each_new_epoch_with_its_loss_and_the_eta(tmp_path):
    teachers, jobs = plan_jobs([4], profile="smoke", seeds=[0], runs_dir=tmp_path)
    running, waiting = jobs[:1], jobs[1:3]            # smoke students: 2 epochs each
    watch, lines = RowWatch(EpochTimes(), in_flight=1), []
    _epochs(running[0].run_dir, 1, epoch_s=90.0)
    watch.poll(running, waiting, lines.append)
    watch.poll(running, waiting, lines.append)        # nothing new: no second line
    assert len(lines) == 1
    assert "table 4 'none' seed 0: epoch 1/2, loss 0.1, 1.5 min/epoch" in lines[0]
    # 1 epoch left of the running row + 2 x 2 epochs waiting, 90 s each, one at a time
    assert lines[0].endswith(f"job ETA {format_duration(5 * 90)}")


def test_plan_lists_done_and_left_and_trains_nothing(tmp_path):
    teachers, jobs = plan_jobs([4], profile="smoke", seeds=[0], runs_dir=tmp_path / "runs")
    teacher = teachers[0]
    teacher.run_dir.mkdir(parents=True)
    (teacher.run_dir / "final_metrics.json").write_text(json.dumps({"config_hash": teacher.config.hash()}))
    before = sorted(p.name for p in (tmp_path / "runs").rglob("*"))
    run = subprocess.run([sys.executable, "-m", "distilkit.cli", "reproduce", "--profile", "smoke", "--tables", "4",
                          "--rows", "none", "all", "--noise-seeds", "1", "--plan", "--runs-dir", str(tmp_path / "runs")],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = run.stdout.splitlines()
    assert any("'HRNet-W48 (teacher)'" in line and line.endswith("done") for line in out)
    assert sum("to run" in line for line in out) == 2
    assert out[-1].startswith("1 of 3 runs done; the rest ~")
    assert sorted(p.name for p in (tmp_path / "runs").rglob("*")) == before     # nothing trained or written


def test_estimates_prefer_measured_epochs_over_the_reference():
    _, jobs = plan_jobs([4], profile="smoke", seeds=[0], runs_dir=Path("/nonexistent"))
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
