"""Every ``distilkit`` command turns a user's mistake into one ``error:`` line naming the thing,
exit status 2, no traceback, and leaves nothing behind (docs/BAD_INPUT.md).

One table: each case is a command line with one mistake, built in a fresh folder, and the text
the error line must name. Unwritable places are made as a path under a regular file (CI runs as
root, where a chmod'd folder is still writable); a full disk is an injected ENOSPC.
"""
from __future__ import annotations

import errno
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from distilkit.cli import main as cli_main
from distilkit.engine.config import TrainConfig
from distilkit.files import atomic_torch_save
from distilkit.models import build_model

SMALL_MODEL = "distilpose-s-smoke"


@dataclass
class Mistake:
    argv: list[str]                 # {tmp} is the case's folder, {ckpt} a good checkpoint, {image} a good image
    named: str                      # what the error line must contain ({tmp} as above)
    env: dict[str, str] = field(default_factory=dict)
    setup: str | None = None        # the name of a function below that builds the bad input
    full_disk: bool = False         # every write fails with ENOSPC


def _authors_file(tmp: Path, change) -> None:
    from authors_reference import authors_like

    state = dict(authors_like(build_model(SMALL_MODEL)).state_dict())
    change(state)
    torch.save({"meta": {}, "state_dict": state}, tmp / "authors.pth")


SETUPS = {
    "regular file": lambda tmp: (tmp / "file").write_text("a regular file\n"),
    "folder": lambda tmp: (tmp / "folder").mkdir(),
    "garbage checkpoint": lambda tmp: (tmp / "garbage.pt").write_bytes(b"not a checkpoint"),
    "huge overrides": lambda tmp: torch.save({"model_name": "distilpose-s", "state_dict": {},
                                              "model_overrides": {"dim": 131072, "depth": 64}}, tmp / "huge.pt"),
    "patch shape": lambda tmp: _authors_file(tmp, lambda s: s.update(
        {"keypoint_head.tokenhead.patch_to_embedding.weight":
         torch.zeros(s["keypoint_head.tokenhead.patch_to_embedding.weight"].shape[0], 7)})),
    "non-tensor value": lambda tmp: _authors_file(tmp, lambda s: s.update({"backbone.conv1.weight": "text"})),
    "integer key": lambda tmp: _authors_file(tmp, lambda s: s.update({7: torch.zeros(1)})),
}

TRAIN = ["train", "--profile", "smoke", "--no-progress", "--out", "{tmp}/run"]
CASES = {
    # train
    "train: unknown model": Mistake([*TRAIN, "--model", "distilpose-x"], "distilpose-x"),
    "train: missing data root": Mistake([*TRAIN, "--model", "distilpose-s", "--data-root", "{tmp}/nonexistent"],
                                        "{tmp}/nonexistent"),
    "train: missing teacher": Mistake([*TRAIN, "--model", "distilpose-s", "--losses", "reg,kt",
                                       "--teacher", "{tmp}/nope.pt"], "{tmp}/nope.pt"),
    "train: unknown loss": Mistake([*TRAIN, "--model", "distilpose-s", "--losses", "reg,kd"], "kd"),
    "train: batch size 0": Mistake([*TRAIN, "--model", "distilpose-s", "--batch-size", "0"], "--batch-size"),
    "train: negative learning rate": Mistake([*TRAIN, "--model", "distilpose-s", "--lr", "-1"], "--lr"),
    "train: epochs not a number": Mistake([*TRAIN, "--model", "distilpose-s", "--epochs", "ten"], "--epochs"),
    "train: unknown profile": Mistake(["train", "--profile", "gpu", "--model", "distilpose-s", "--out", "{tmp}/run"],
                                      "--profile"),
    "train: neither model nor config": Mistake(TRAIN, "--config"),
    "train: config not a run config": Mistake(["train", "--config", "{tmp}/file", "--out", "{tmp}/run"],
                                              "{tmp}/file", setup="regular file"),
    "train: out under a regular file": Mistake(["train", "--profile", "smoke", "--model", "distilpose-s",
                                                "--out", "{tmp}/file/run"], "{tmp}/file", setup="regular file"),
    # eval
    "eval: missing data root": Mistake(["eval", "--checkpoint", "{ckpt}", "--data-root", "{tmp}/nonexistent"],
                                       "{tmp}/nonexistent"),
    "eval: missing checkpoint": Mistake(["eval", "--checkpoint", "{tmp}/nope.pt"], "{tmp}/nope.pt"),
    "eval: not a checkpoint": Mistake(["eval", "--checkpoint", "{tmp}/garbage.pt"], "{tmp}/garbage.pt",
                                      setup="garbage checkpoint"),
    "eval: checkpoint asking for 206 GB": Mistake(["eval", "--checkpoint", "{tmp}/huge.pt"], "{tmp}/huge.pt",
                                                  setup="huge overrides"),
    # reproduce
    "reproduce: unknown row": Mistake(["reproduce", "--profile", "smoke", "--runs-dir", "{tmp}/runs",
                                       "--results-dir", "{tmp}/results", "--rows", "nonee"], "nonee"),
    "reproduce: unknown table": Mistake(["reproduce", "--profile", "smoke", "--tables", "9", "--runs-dir", "{tmp}/runs"],
                                        "--tables"),
    "reproduce: 0 jobs": Mistake(["reproduce", "--jobs", "0", "--runs-dir", "{tmp}/runs"], "--jobs"),
    "reproduce: missing data root": Mistake(["reproduce", "--profile", "smoke", "--runs-dir", "{tmp}/runs",
                                             "--data-root", "{tmp}/nonexistent"], "{tmp}/nonexistent"),
    # predict
    "predict: batch size 0": Mistake(["predict", "--checkpoint", "{ckpt}", "--batch-size", "0",
                                      "--out", "{tmp}/out", "{image}"], "--batch-size"),
    "predict: bad pixel limit variable": Mistake(["predict", "--checkpoint", "{ckpt}", "--out", "{tmp}/out",
                                                  "{image}"], "DISTILKIT_MAX_IMAGE_PIXELS",
                                                 env={"DISTILKIT_MAX_IMAGE_PIXELS": "lots"}),
    "predict: missing image": Mistake(["predict", "--checkpoint", "{ckpt}", "--out", "{tmp}/out",
                                       "{tmp}/nowhere.jpg"], "{tmp}/nowhere.jpg"),
    "predict: out under a regular file": Mistake(["predict", "--checkpoint", "{ckpt}", "--out", "{tmp}/file/out",
                                                  "{image}"], "{tmp}/file", setup="regular file"),
    "predict: full disk": Mistake(["predict", "--checkpoint", "{ckpt}", "--out", "{tmp}/out", "{image}"],
                                  "No space left on device", full_disk=True),
    # export
    "export: opset 5": Mistake(["export", "--checkpoint", "{ckpt}", "--onnx", "{tmp}/m.onnx", "--opset", "5"],
                               "--opset 5"),
    "export: onto a folder": Mistake(["export", "--checkpoint", "{ckpt}", "--onnx", "{tmp}/folder"],
                                     "{tmp}/folder", setup="folder"),
    "export: under a regular file": Mistake(["export", "--checkpoint", "{ckpt}", "--onnx", "{tmp}/file/m.onnx"],
                                            "{tmp}/file", setup="regular file"),
    "export: full disk": Mistake(["export", "--checkpoint", "{ckpt}", "--onnx", "{tmp}/m.onnx"],
                                 "No space left on device", full_disk=True),
    "export: missing checkpoint": Mistake(["export", "--checkpoint", "{tmp}/nope.pt", "--onnx", "{tmp}/m.onnx"],
                                          "{tmp}/nope.pt"),
    # convert
    **{f"convert: {what}": Mistake(["convert", "--from", "distilpose-mmpose", "{tmp}/authors.pth",
                                    "--model", SMALL_MODEL, "--out", "{tmp}/kit.pt"], "{tmp}/authors.pth",
                                   setup=what)
       for what in ("patch shape", "non-tensor value", "integer key")},
    "convert: unknown model": Mistake(["convert", "--from", "distilpose-mmpose", "{tmp}/authors.pth",
                                       "--model", "distilpose-x", "--out", "{tmp}/kit.pt"], "distilpose-x",
                                      setup="non-tensor value"),
    # profile, synth
    "profile: unknown model": Mistake(["profile", "--models", "distilpose-s-smoke", "distilpose-x"], "distilpose-x"),
    "profile: 0 repeats": Mistake(["profile", "--models", "distilpose-s-smoke", "--repeats", "0"], "--repeats"),
    "synth: out under a regular file": Mistake(["synth", "--profile", "smoke", "--out", "{tmp}/file/coco"],
                                               "{tmp}/file is not a folder", setup="regular file"),
    # publish
    "publish: no runs": Mistake(["publish", "--profile", "smoke", "--runs-root", "{tmp}/runs",
                                 "--out", "{tmp}/models"], "{tmp}/runs"),
}


@pytest.fixture(scope="module")
def good_inputs(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("good_inputs")
    torch.manual_seed(0)
    ckpt = folder / "model.pt"
    atomic_torch_save({"model_name": SMALL_MODEL, "model_overrides": {},
                       "state_dict": build_model(SMALL_MODEL).state_dict(),
                       "config": TrainConfig(out_dir=".", model="distilpose-s", profile="smoke").to_dict()}, ckpt)
    image = folder / "person.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (96, 72, 3), dtype=np.uint8))
    return {"ckpt": str(ckpt), "image": str(image)}


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("case", list(CASES))
def test_a_mistake_is_one_error_line_exit_2_and_leaves_nothing(case, good_inputs, tmp_path, capsys, monkeypatch):
    mistake = CASES[case]
    if mistake.setup:
        SETUPS[mistake.setup](tmp_path)
    before = _tree(tmp_path)
    fill = {"tmp": str(tmp_path), **good_inputs}
    for name, value in mistake.env.items():
        monkeypatch.setenv(name, value)
    if mistake.full_disk:
        monkeypatch.setattr(os, "fsync", _no_space)
    try:
        code = cli_main([arg.format(**fill) for arg in mistake.argv])
    except SystemExit as done:           # argparse's own checks
        code = done.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert mistake.named.format(**fill) in err[0], err[0]
    assert _tree(tmp_path) == before, "left behind"


def test_the_process_itself_prints_one_line_and_no_traceback(tmp_path):
    """The table runs in-process; here one case runs as a user runs it."""
    argv = [a.format(tmp=tmp_path) for a in TRAIN]
    run = subprocess.run([sys.executable, "-m", "distilkit.cli", *argv, "--model", "distilpose-x"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert run.returncode == 2
    assert "Traceback" not in run.stderr and run.stderr.count("\n") == 1, run.stderr
    assert "distilpose-x" in run.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("signal_name, code, said", [("SIGINT", 130, "interrupted (Ctrl-C)"),
                                                     ("SIGTERM", 143, "terminated (SIGTERM)")])
def test_a_stopped_train_says_what_finished_and_how_to_resume(smoke_root, tmp_path, signal_name, code, said):
    import signal
    import time

    out = tmp_path / "run"
    argv = ["train", "--profile", "smoke", "--model", "distilpose-s", "--epochs", "40", "--no-progress",
            "--data-root", str(smoke_root), "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "distilkit.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
                            # as a terminal's foreground job: a suite started in the background (`&`)
                            # passes SIGINT down ignored, and Python then leaves Ctrl-C ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while not (out / "last.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None and (out / "last.pt").exists(), "the train ended or kept no epoch before the signal"
    proc.send_signal(getattr(signal, signal_name))
    _, stderr = proc.communicate(timeout=120)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert lines[-1].startswith(f"{said}: ") and "epoch(s) finished, kept in" in lines[-1], lines
    assert lines[-1].endswith(f"resume with: distilkit {' '.join(argv)} --resume")


def test_an_interrupted_reproduce_says_how_many_runs_finished_and_how_to_resume(tmp_path, capsys, monkeypatch):
    import importlib

    reproduce = importlib.import_module("distilkit.experiments.reproduce")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reproduce, "run_tables", interrupted)
    argv = ["reproduce", "--profile", "smoke", "--tables", "4", "--rows", "none", "--runs-dir", str(tmp_path)]
    assert cli_main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0] == (f"interrupted (Ctrl-C): 0 of 3 runs finished and kept in {tmp_path} (skipped when it runs "
                      "again; runs in flight continue from their last.pt); resume with: distilkit "
                      + " ".join(argv))


def test_an_unknown_row_is_refused_before_the_data_stage(tmp_path, capsys, monkeypatch):
    from distilkit.data import synthetic

    staged = []
    monkeypatch.setattr(synthetic, "ensure_synthetic", lambda *a, **k: staged.append(a))
    code = cli_main(["reproduce", "--profile", "smoke", "--runs-dir", str(tmp_path / "runs"),
                     "--rows", "nonee", "--no-progress"])
    assert code == 2 and "nonee" in capsys.readouterr().err
    assert staged == []
    assert not (tmp_path / "runs").exists()
