"""``make reproduce`` passes its ARGS on, and an interrupted main job started by it says to
resume with ``make reproduce`` (its ARGS included), not with the command make ran."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from distilkit.cli import RESUME_COMMAND_ENV
from distilkit.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args, resume", [
    ("", "make reproduce"),
    ("--tables 4 --rows none all", 'make reproduce ARGS="--tables 4 --rows none all"'),
])
def test_make_reproduce_runs_the_command_with_args_and_names_itself_to_resume(args, resume, tmp_path):
    fake = tmp_path / "distilkit"           # stands in for the venv's command: what make hands it
    fake.write_text(f'#!/bin/sh\necho "argv: $*"\necho "resume: ${RESUME_COMMAND_ENV}"\n')
    fake.chmod(0o755)
    run = subprocess.run(["make", "--no-print-directory", "-s", "-C", str(REPO), "-o", ".venv/.installed",
                          "reproduce", f"BIN={tmp_path}", f"ARGS={args}"], capture_output=True, text=True,
                         check=True)
    assert run.stdout.splitlines() == [f"argv: reproduce --profile cpu {args}".rstrip(), f"resume: {resume}"]


def test_an_interrupted_reproduce_started_by_make_says_make_reproduce(tmp_path, capsys, monkeypatch):
    import importlib

    reproduce = importlib.import_module("distilkit.experiments.reproduce")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reproduce, "run_tables", interrupted)
    monkeypatch.setenv(RESUME_COMMAND_ENV, 'make reproduce ARGS="--tables 4"')
    argv = ["reproduce", "--profile", "smoke", "--tables", "4", "--rows", "none", "--runs-dir", str(tmp_path)]
    assert cli_main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("interrupted (Ctrl-C): 0 of 3 runs finished")
    assert err[0].endswith('; resume with: make reproduce ARGS="--tables 4"')


def test_an_interrupt_stops_the_rows_processes_at_once():
    """Ctrl-C (or SIGTERM) while rows run: their processes get SIGTERM and the job ends now,
    not when the rows would have (a row's kernel sits in its own session)."""
    import signal
    import threading
    import time

    from distilkit.experiments.runner import row_pool

    started = threading.Event()

    def row() -> int:
        proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
        started.set()
        return proc.wait()

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with row_pool(1) as pool:
            running = pool.submit(row)
            assert started.wait(30)
            raise KeyboardInterrupt
    assert running.result(timeout=0) == -signal.SIGTERM
    assert time.monotonic() - t0 < 30
