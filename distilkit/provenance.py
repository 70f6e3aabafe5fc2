"""Where and when a run was trained: commit, device, torch, time, kept in its own folder.

The run writes ``run.json`` itself when it finishes, before ``final_metrics.json``, so
whatever interrupts the process that started it (Ctrl-C on ``reproduce``, a kill), a finished
run keeps its own provenance and wall time; a later invocation that finds the finished folder
reads them back instead of recording itself.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path

import torch

from distilkit.files import atomic_write_text

RUN_RECORD = "run.json"
# what provenance() records: where and when a run was trained
RUN_PROVENANCE = ("git_commit", "device", "torch_version", "timestamp", "host")


def git_commit(cwd: str | Path | None = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd or Path(__file__).parent,
                             capture_output=True, text=True, timeout=10)
        commit = out.stdout.strip() or "unknown"
        # results/ is written by the runs themselves; only code changes make a run "dirty"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ":/",
                                ":(top,exclude)results"],
                               cwd=cwd or Path(__file__).parent, capture_output=True, text=True, timeout=10)
        return commit + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu:{platform.machine()}x{os.cpu_count()}"


def provenance() -> dict:
    """One value per RUN_PROVENANCE key, for this process, now."""
    return {"git_commit": git_commit(), "device": device_name(), "torch_version": torch.__version__,
            "timestamp": now_iso(), "host": platform.node()}


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def write_run_record(run_dir: str | Path, *, wall_s: float, started: str) -> dict:
    """Record the run's wall time over all its sessions, when it started, and this finishing
    process's provenance (``timestamp`` is when it finished) in its folder."""
    record = {"wall_s": round(float(wall_s), 1), "started": started, **provenance()}
    atomic_write_text(Path(run_dir) / RUN_RECORD, json.dumps(record, indent=2))
    return record


def read_run_record(run_dir: str | Path) -> dict | None:
    """The folder's record, or None where it has none (a folder from before records)."""
    path = Path(run_dir) / RUN_RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
