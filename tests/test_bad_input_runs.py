"""Bad input around runs, as docs/BAD_INPUT.md states it: checkpoints that would run
code, two writers on one run folder, a full disk, an interrupted batch.

Each case builds the bad input, asserts the error class, that the message names the file or
folder, and that nothing was written, run or lost.
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from distilkit.engine import TrainConfig, fit
from distilkit.engine.checkpoint import rng_state, set_rng_state
from distilkit.engine.locks import exclusive
from distilkit.files import (
    CheckpointReadError,
    CheckpointWriteError,
    UnsafeCheckpointError,
    atomic_torch_save,
)
from distilkit.files import load_weights_only as load_checkpoint_raw
from distilkit.models.checkpoint import load_checkpoint, load_model_from_checkpoint

CLI = [sys.executable, "-m", "distilkit.cli"]


class _RunsCode:
    """What a hostile checkpoint pickles: unpickling it would create ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _hostile_checkpoint(path: Path, marker: Path, good: dict) -> Path:
    """A real kit checkpoint with one extra entry that runs a shell command when unpickled."""
    torch.save({**good, "extra": _RunsCode(marker)}, path)
    return path


@pytest.fixture(scope="module")
def smoke_run(smoke_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    fit(TrainConfig(out_dir=str(out), model="distilpose-s", profile="smoke", epochs=1,
                    data_root=str(smoke_root), progress=False))
    return out


def _load_teacher(path):
    from distilkit.distill import load_teacher
    return load_teacher(path)


def _resume(path):
    run_dir = path.parent
    cfg = TrainConfig.from_dict(load_checkpoint(run_dir / "good.pt")["config"])
    return fit(TrainConfig(**{**cfg.__dict__, "out_dir": str(run_dir), "epochs": 2, "resume": True}))


def _eval_cli(path):
    run = subprocess.run(CLI + ["eval", "--checkpoint", str(path), "--no-progress"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr
    raise UnsafeCheckpointError(run.stderr)


def _viz_loader(path):
    from distilkit.viz.checkpoints import load_models
    return load_models({"student": path})


@pytest.mark.parametrize("loader", [load_checkpoint, load_model_from_checkpoint, _load_teacher, _resume,
                                    _eval_cli, _viz_loader],
                         ids=["load_checkpoint", "eval model", "teacher", "resume", "distilkit eval", "viz"])
def test_a_checkpoint_that_would_run_code_is_refused_naming_file_and_global(loader, smoke_run, tmp_path):
    good = load_checkpoint(smoke_run / "last.pt")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save(good, run_dir / "good.pt")
    marker = tmp_path / "pwned"
    hostile = _hostile_checkpoint(run_dir / "last.pt", marker, good)
    with pytest.raises(UnsafeCheckpointError) as err:
        loader(hostile)
    message = str(err.value)
    assert str(hostile) in message and "posix.system" in message
    assert not marker.exists(), "the checkpoint's code ran"


def test_what_the_kit_stores_loads_weights_only(smoke_run):
    ckpt = torch.load(smoke_run / "last.pt", weights_only=True)   # raises on any other global
    assert {"model_name", "state_dict", "config", "optimizer", "scheduler", "rng"} <= set(ckpt)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(smoke_run / "last.pt")) == []


def test_a_checkpoint_from_before_tensor_rng_states_still_resumes_its_rng(tmp_path):
    import random
    legacy = {"model_name": "x", "state_dict": {},
              "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                      "python": random.getstate(), "cuda": None}}
    torch.save(legacy, tmp_path / "old.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(load_checkpoint(tmp_path / "old.pt")["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2] == again[2]
    # and the new form round-trips exactly
    atomic_torch_save({"model_name": "x", "state_dict": {}, "rng": rng_state()}, tmp_path / "new.pt")
    draws = np.random.rand(4)
    set_rng_state(load_checkpoint(tmp_path / "new.pt")["rng"])
    assert np.array_equal(np.random.rand(4), draws)


@pytest.mark.parametrize("content", [b"", b"not a zip at all", pickle.dumps([1, 2, 3])],
                         ids=["empty", "garbage", "plain pickle"])
def test_a_file_that_is_no_checkpoint_is_a_value_error_naming_it(content, tmp_path):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=str(path)):
        load_checkpoint(path)


def test_a_second_train_on_one_folder_is_refused_naming_folder_and_holder(tmp_path, smoke_root):
    out = tmp_path / "run"
    with exclusive(out / ".lock", wait=False):   # this process is the folder's writer
        run = subprocess.run(CLI + ["train", "--profile", "smoke", "--model", "distilpose-s", "--epochs", "1",
                                    "--data-root", str(smoke_root), "--no-progress", "--out", str(out)],
                             capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    assert str(out) in run.stderr and f"pid {os.getpid()}" in run.stderr
    assert sorted(p.name for p in out.iterdir()) == [".lock"]   # nothing written


def _small_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_says_so_keeps_last_pt_and_leaves_no_temporary(tmp_path):
    disk = tmp_path / "disk"
    if not _small_tmpfs(disk, "256k"):
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    try:
        small = {"model_name": "x", "state_dict": {"w": torch.ones(10)}}
        atomic_torch_save(small, disk / "last.pt")
        with pytest.raises(CheckpointWriteError, match=f"No space left on device.*{disk}"):
            atomic_torch_save({"model_name": "x", "state_dict": {"w": torch.ones(1_000_000)}}, disk / "last.pt")
        assert torch.equal(load_checkpoint(disk / "last.pt")["state_dict"]["w"], torch.ones(10))
        assert sorted(p.name for p in disk.iterdir()) == ["last.pt"]
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_write_that_fails_midway_removes_its_temporary_and_keeps_the_old_file(tmp_path):
    atomic_torch_save({"v": torch.zeros(2)}, tmp_path / "last.pt")
    with pytest.raises((pickle.PicklingError, AttributeError)):   # a lambda cannot be pickled
        atomic_torch_save({"v": torch.ones(2), "bad": lambda: None}, tmp_path / "last.pt")
    assert torch.equal(load_checkpoint_raw(tmp_path / "last.pt")["v"], torch.zeros(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_run_that_finished_keeps_its_provenance_when_the_batch_that_started_it_is_interrupted(
        tmp_path, smoke_root):
    """The run itself records commit, device, torch, time and wall time as it finishes, so a
    ``reproduce`` killed after the run but before its row was written loses nothing: the next
    invocation writes the row from the run's record."""
    import datetime as dt

    import pandas as pd

    from distilkit.experiments.plan import Recipe, plan_jobs
    from distilkit.experiments.reproduce import run_tables
    from distilkit.provenance import RUN_PROVENANCE

    _, jobs = plan_jobs([4], Recipe("smoke", str(smoke_root)), seeds=[0], runs_dir=tmp_path / "runs")
    job = next(j for j in jobs if j.spec.row == "none")
    fit(job.config)                                   # the row's kernel finished ...
    record = json.loads((job.run_dir / "run.json").read_text())
    assert set(record) == {"wall_s", "started", *RUN_PROVENANCE}
    # the wall time is this run's: inside its own start and finish (ISO times, to the second)
    started, finished = (dt.datetime.fromisoformat(record[k]) for k in ("started", "timestamp"))
    assert 0 < record["wall_s"] <= (finished - started).total_seconds() + 1
    assert record["torch_version"] == torch.__version__ and record["git_commit"]
    # ... and the process that started it died before it could note anything
    summary = run_tables([4], profile="smoke", rows=["none"], noise_seeds=1, jobs=1, progress=False,
                         runs_dir=tmp_path / "runs", results_dir=tmp_path / "results",
                         data_root=str(smoke_root))
    row = pd.read_csv(tmp_path / "results" / "table4.csv", dtype=str).set_index("row").loc["none"]
    assert summary["failures"] == []
    assert float(row["wall_s"]) == record["wall_s"] > 0
    for key in ("git_commit", "device", "torch_version", "timestamp"):
        assert row[key] == str(record[key]), key


def test_a_killed_writers_temporary_is_removed_when_the_folder_is_trained_again(tmp_path, smoke_root):
    stale = tmp_path / ".last.pt.tmp99999"
    stale.write_bytes(b"half a checkpoint")
    fit(TrainConfig(out_dir=str(tmp_path), model="distilpose-s", profile="smoke", epochs=1,
                    data_root=str(smoke_root), progress=False))
    assert not stale.exists()
    assert not list(tmp_path.glob(".*.tmp*"))


@pytest.mark.parametrize("overrides, named", [
    ({"dim": 131072, "depth": 64}, "dim = 131072 (range 1..768)"),      # 206 GB if built
    ({"depth": 64}, "depth = 64 (range 1..24)"),
    ({"input_size": [100000, 100000]}, "input_size"),
    ({"width": 4096}, "width = 4096"),
    ({"dim": "wide"}, "dim = 'wide'"),
    ({"dim": 96, "heads": 5}, "not a multiple of heads"),
])
def test_checkpoint_overrides_out_of_range_are_refused_before_anything_is_built(overrides, named, tmp_path,
                                                                                 monkeypatch):
    from distilkit.models import presets

    path = tmp_path / "big.pt"
    torch.save({"model_name": "distilpose-s-smoke", "model_overrides": overrides, "state_dict": {}}, path)
    built = []
    monkeypatch.setattr(presets, "build_from_config", lambda cfg: built.append(cfg))
    with pytest.raises(CheckpointReadError) as err:
        load_model_from_checkpoint(path)
    assert str(path) in str(err.value) and named in str(err.value)
    assert built == []
