"""The grid on any executor: rows placed one per device, runners that share a runs folder
cooperate, submitit's local executor runs the Slurm code path, flags pass through make."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import distilkit.experiments.runner as runner
from distilkit.experiments.executors import ExecutorConfig, slurm_parameters
from distilkit.experiments.plan import Recipe, plan_jobs
from distilkit.experiments.reproduce import plan_runs, run_tables

REPO = Path(__file__).resolve().parents[1]


def _fake_rows(monkeypatch, seconds: float = 0.2):
    """Replace the notebook run by a short sleep that records where and when each row ran."""
    record, lock = [], threading.Lock()

    def fake(job, **_):
        start = time.monotonic()
        time.sleep(seconds)
        job.run_dir.mkdir(parents=True, exist_ok=True)
        (job.run_dir / "final_metrics.json").write_text(json.dumps({"config_hash": job.config.hash(), "AP": 0.1}))
        with lock:
            record.append((job.run_dir, job.config.device, start, time.monotonic()))
        return {"status": "done", "metrics": {"AP": 0.1}, "wall_s": seconds}

    monkeypatch.setattr(runner, "execute_job", fake)
    return record


def test_rows_are_placed_one_per_device_and_never_share_one(tmp_path, monkeypatch):
    record = _fake_rows(monkeypatch)
    teachers, jobs = plan_jobs([4], Recipe("smoke"), seeds=[0, 1], runs_dir=tmp_path)
    failures = runner.run_jobs(teachers + jobs, cache_dir=tmp_path / "nb", log=lambda m: None,
                               executor=ExecutorConfig(jobs=8, devices=("0", "1", "2")))
    assert failures == [] and len(record) == len(teachers) + len(jobs)
    assert {device for _, device, _, _ in record} == {"cuda:0", "cuda:1", "cuda:2"}
    for _, _, moment, _ in record:            # whenever a row starts: what is in flight then
        in_flight = [device for _, device, start, end in record if start <= moment < end]
        assert len(in_flight) <= 3 and len(set(in_flight)) == len(in_flight)


def test_a_folder_another_runner_holds_is_waited_for_not_failed(tmp_path, monkeypatch):
    from distilkit.engine.locks import exclusive

    record = _fake_rows(monkeypatch, seconds=0.05)
    monkeypatch.setattr(runner, "BUSY_RETRY_S", 0.2)
    real_execute = runner.execute_job
    teachers, jobs = plan_jobs([6], Recipe("smoke"), seeds=[0], runs_dir=tmp_path)
    held = next(j for j in jobs if j.spec.teacher is None)
    calls = {"busy": 0}

    def busy_then_done(job, **kw):   # another runner holds `held` for its first two looks
        if job.run_dir == held.run_dir and calls["busy"] < 2:
            calls["busy"] += 1
            return {"status": "busy", "reason": f"{job.run_dir} is in use by another process (pid 1)"}
        return real_execute(job, **kw)

    monkeypatch.setattr(runner, "execute_job", busy_then_done)
    lines = []
    failures = runner.run_jobs(teachers + jobs, cache_dir=tmp_path / "nb", log=lines.append,
                               executor=ExecutorConfig(jobs=2))
    assert failures == [] and calls["busy"] == 2
    assert sum(line.startswith("busy") for line in lines) == 2
    assert held.run_dir in [r for r, *_ in record]        # trained here once it was free
    with exclusive(held.run_dir / ".lock", wait=False):    # and the lock was never left behind
        pass


def test_only_the_named_rows_run_and_an_unknown_label_lists_the_known_ones(tmp_path):
    runs = plan_runs([4], Recipe("smoke"), seeds=1, noise_seeds=1, runs_dir=tmp_path, rows=["none", "all"])
    assert [r.spec.row for r in runs] == ["HRNet-W48 (teacher)", "none", "all"]
    with pytest.raises(ValueError, match=r"unknown row label\(s\) \['nope'\].*'KT\+VT'"):
        plan_runs([4], Recipe("smoke"), seeds=1, noise_seeds=1, runs_dir=tmp_path, rows=["nope"])


def test_slurm_flags_become_submitit_parameters():
    params = slurm_parameters(partition="gpu", time_min=240, gpus_per_job=1, cpus_per_task=8,
                              mem_gb=32, extra=["account=pose", "exclusive=1"])
    assert params == {"slurm_partition": "gpu", "timeout_min": 240, "gpus_per_node": 1, "cpus_per_task": 8,
                      "mem_gb": 32.0, "slurm_account": "pose", "slurm_exclusive": 1}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        slurm_parameters(extra=["no-equals-sign"])


def test_make_reproduce_passes_args_through():
    dry = subprocess.run(["make", "-n", "reproduce", 'ARGS=--tables 4 --rows none all'], cwd=REPO,
                         capture_output=True, text=True, check=True)
    assert "distilkit reproduce --profile cpu --tables 4 --rows none all" in dry.stdout


@pytest.mark.notebook
def test_the_submitit_local_executor_runs_a_table(tmp_path, smoke_root):
    summary = run_tables([4], profile="smoke", rows=["none"], noise_seeds=1, progress=False,
                         runs_dir=tmp_path / "runs", results_dir=tmp_path / "results", data_root=str(smoke_root),
                         executor=ExecutorConfig(kind="submitit-local", jobs=2), log=lambda m: None)
    assert summary["failures"] == [] and summary["executor"] == "submitit-local"
    table = pd.read_csv(tmp_path / "results" / "table4.csv")
    assert table["row"].tolist() == ["none"] and table["AP"].between(0, 100).all()
    assert (table["AP_unit"] == "percent").all()
    assert any((tmp_path / "runs" / ".submitit").rglob("*_log.out"))   # it went through submitit


@pytest.mark.notebook
def test_two_runners_on_one_runs_folder_train_every_row_exactly_once(tmp_path, smoke_root):
    cmd = [sys.executable, "-m", "distilkit.cli", "reproduce", "--profile", "smoke", "--tables", "4",
           "--rows", "none", "all", "--noise-seeds", "1", "--jobs", "1", "--no-figures", "--no-progress",
           "--runs-dir", str(tmp_path / "runs"), "--data-root", str(smoke_root)]
    procs = [subprocess.Popen(cmd + ["--results-dir", str(tmp_path / f"results{i}")], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    for label in ("teacher 'HRNet-W48'", "'none'", "'all'"):
        trained = sum(line.startswith("done") and label in line and "by another runner" not in line
                      for out in outputs for line in out.splitlines())
        assert trained == 1, (label, outputs)
    tables = [pd.read_csv(tmp_path / f"results{i}" / "table4.csv") for i in range(2)]
    assert tables[0].equals(tables[1]) and (tables[0]["error"].isna()).all()
