"""``--tensorboard``: each epoch's loss terms, learning rate and AP as TensorBoard scalars in the
run folder, equal to the run's metrics.csv, one value per epoch after a resume, and never part of
the recipe (the config hash and the folder stay the same)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from distilkit.engine import TrainConfig, fit
from distilkit.engine.scalars import EpochScalars, read_scalars, scalar_tags
from distilkit.losses import LossConfig


def _metrics_as_tags(run_dir) -> dict[str, list[tuple[int, float]]]:
    """What the events must hold: metrics.csv's rows through ``scalar_tags``."""
    expected: dict[str, list[tuple[int, float]]] = {}
    for row in pd.read_csv(run_dir / "metrics.csv").to_dict("records"):
        for tag, value in scalar_tags(row).items():
            expected.setdefault(tag, []).append((int(row["epoch"]), value))
    return expected


def _assert_events_match_metrics(run_dir) -> dict:
    got, expected = read_scalars(run_dir), _metrics_as_tags(run_dir)
    assert set(got) == set(expected)
    for tag, points in expected.items():
        assert [s for s, _ in got[tag]] == [s for s, _ in points], tag
        assert [v for _, v in got[tag]] == pytest.approx([v for _, v in points], rel=1e-6), tag
    return got


@pytest.mark.parametrize("field, value", [("tensorboard", True), ("progress", False)])
def test_tensorboard_is_not_part_of_the_recipe(field, value):
    plain = TrainConfig(out_dir="a", profile="cpu", losses=LossConfig(kt=True, sh=True), teacher="t/best.pt")
    shown = replace(plain, **{field: value})
    assert (shown.hash(), shown.resume_key()) == (plain.hash(), plain.resume_key())
    assert TrainConfig.from_dict(shown.to_dict()) == shown     # it travels in config.json


@pytest.mark.parametrize("row, expected", [
    ({"epoch": 2, "iteration": 40, "lr": 1e-3, "train_reg": 0.5, "train_kt": 0.25, "train_loss": 0.75,
      "train_samples_per_s": 90.0, "data_share": 0.1, "epoch_s": 3.0},
     {"lr": 1e-3, "loss/reg": 0.5, "loss/kt": 0.25, "loss/total": 0.75, "speed/train_samples_per_s": 90.0}),
    ({"epoch": 3, "lr": 5e-4, "train_loss": 0.5, "AP": 0.0125, "AR": 0.5, "err_px": 2.5, "AP75": float("nan")},
     {"lr": 5e-4, "loss/total": 0.5, "val/AP (%)": 1.25, "val/AR (%)": 50.0, "val/err_px": 2.5}),
    ({"epoch": 1, "lr": 1e-3, "train_loss": 0.5, "AP": ""},          # an epoch without evaluation
     {"lr": 1e-3, "loss/total": 0.5}),
])
def test_a_metrics_row_becomes_tags_with_ap_in_percent(row, expected):
    assert scalar_tags(row) == pytest.approx(expected)


def test_cli_train_with_tensorboard_writes_each_epochs_loss_terms_lr_and_ap(tmp_path, smoke_root, smoke_teacher):
    out = tmp_path / "student"
    run = subprocess.run([sys.executable, "-m", "distilkit.cli", "train", "--profile", "smoke",
                          "--model", "distilpose-s", "--teacher", str(smoke_teacher), "--losses", "reg,kt,vt,sh,cs",
                          "--epochs", "2", "--data-root", str(smoke_root), "--no-progress", "--tensorboard",
                          "--out", str(out)],
                         check=False, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                         timeout=600)
    assert run.returncode == 0, run.stderr
    got = _assert_events_match_metrics(out)
    for tag in ("loss/reg", "loss/kt", "loss/vt", "loss/sh", "loss/cs", "loss/total", "lr", "val/AP (%)"):
        assert tag in got, sorted(got)
    assert [step for step, _ in got["lr"]] == [1, 2]
    assert TrainConfig.from_dict(json.loads((out / "config.json").read_text())["config"]).tensorboard


def test_without_the_flag_no_events_are_written(tmp_path, smoke_root):
    fit(TrainConfig(out_dir=str(tmp_path), profile="smoke", data_root=str(smoke_root), epochs=1, progress=False))
    assert (tmp_path / "metrics.csv").exists() and not list(tmp_path.glob("events.out.tfevents.*"))


def test_a_resumed_run_has_one_value_per_epoch_the_redone_epoch_replacing_the_lost_one(tmp_path, smoke_root):
    config = TrainConfig(out_dir=str(tmp_path), profile="smoke", data_root=str(smoke_root), epochs=1,
                         progress=False, tensorboard=True, resume=True, max_train_instances=32)
    fit(config)
    shutil.copy(tmp_path / "last.pt", tmp_path / "epoch1.pt")
    fit(replace(config, epochs=2))
    # killed after epoch 2's events, before its checkpoint: the next session redoes epoch 2
    shutil.copy(tmp_path / "epoch1.pt", tmp_path / "last.pt")
    fit(replace(config, epochs=2))
    got = _assert_events_match_metrics(tmp_path)
    assert [step for step, _ in got["loss/total"]] == [1, 2]
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 3      # one file per session


def test_tensorboard_serves_each_run_folder_under_the_logdir_as_a_run(tmp_path):
    """The README's ``tensorboard --logdir runs/cpu``: the pinned TensorBoard finds run folders
    nested under the logdir and serves their tags."""
    import signal
    import socket
    import time
    import urllib.request

    for name in ("teachers/t", "student-s0"):    # the runs folder's layout: teachers one level down
        folder = tmp_path / "runs" / name
        scalars = EpochScalars(folder)
        scalars.write({"epoch": 1, "lr": 1e-3, "train_loss": 0.5, "AP": 0.02})
        scalars.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    board = subprocess.Popen([str(Path(sys.executable).parent / "tensorboard"), "--logdir", str(tmp_path / "runs"),
                              "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, runs = time.monotonic() + 90, []
        while time.monotonic() < deadline and len(runs) < 2:
            time.sleep(1)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugin/scalars/tags", timeout=5) as r:
                    tags = json.loads(r.read())
                runs = sorted(tags)
            except OSError:
                continue
        assert runs == ["student-s0", "teachers/t"]
        assert set(tags["student-s0"]) == {"lr", "loss/total", "val/AP (%)"}
    finally:
        os.killpg(board.pid, signal.SIGTERM)
        board.wait(timeout=30)
