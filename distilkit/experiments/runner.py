"""Execute a grid's runs: teachers first, then each row through the ``train_eval`` notebook under
papermill, ``jobs_in_parallel`` processes at a time, skipping runs whose folders are finished.

A run folder is its own record (``distilkit.experiments.records``): the runner writes nothing
but a failed run's ``error.txt``, so a re-run retries it and the other runs go on and are kept.
"""
from __future__ import annotations

import json
import os
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from distilkit.engine.locks import exclusive
from distilkit.experiments.plan import Job
from distilkit.experiments.records import ERROR_FILE, is_finished
from distilkit.paths import notebooks_dir


def notebook_ipynb(name: str, cache_dir: Path) -> Path:
    """The jupytext source converted to .ipynb for papermill (the .py stays the source)."""
    import jupytext

    src = notebooks_dir() / f"{name}.py"
    if not src.exists():
        raise FileNotFoundError(f"notebook source {src} is missing")
    cache_dir.mkdir(parents=True, exist_ok=True)
    dst = cache_dir / f"{name}.ipynb"
    if not dst.exists() or dst.stat().st_mtime < src.stat().st_mtime:
        nb = jupytext.read(src)
        nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3",
                                              "language": "python"})
        tmp = dst.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}.ipynb")
        jupytext.write(nb, tmp, fmt="ipynb")
        os.replace(tmp, dst)
    return dst


def execute_job(job: Job, *, threads: int, cache_dir: Path, progress: bool) -> tuple[dict, float]:
    """Run one row through the train_eval notebook; returns (metrics, wall seconds)."""
    import papermill as pm

    job.run_dir.mkdir(parents=True, exist_ok=True)
    c = job.config
    params = dict(profile=c.profile, data_root=c.data_root, model=c.model, teacher=c.teacher,
                  losses=c.losses.switches(), reg_loss=c.losses.reg_loss, seed=c.seed, epochs=c.epochs,
                  out_dir=str(job.run_dir), progress=progress, threads=threads, resume=True)
    # one writer per folder: another runner (a table notebook, a second reproduce) may be on it
    with exclusive(job.run_dir / ".lock", wait=False):
        (job.run_dir / ERROR_FILE).unlink(missing_ok=True)
        t0 = time.perf_counter()
        pm.execute_notebook(str(notebook_ipynb("train_eval", cache_dir)), str(job.run_dir / "train_eval.ipynb"),
                            parameters=params, progress_bar=False, cwd=str(notebooks_dir()),
                            kernel_name="python3")
        wall = time.perf_counter() - t0
    metrics = json.loads((job.run_dir / "final_metrics.json").read_text())
    # the notebook rebuilds the config from its parameters: a row must not pass for another
    if metrics.get("config_hash") not in (None, job.config.hash()):
        raise RuntimeError(f"{job.run_dir}: the notebook trained config {metrics['config_hash']}, "
                           f"not this row's {job.config.hash()} (a setting the parameters do not carry?)")
    return metrics, wall


def record_failure(job: Job, message: str, detail: str = "") -> None:
    """``error.txt`` in the run folder: the one-line reason first, then the traceback."""
    job.run_dir.mkdir(parents=True, exist_ok=True)
    (job.run_dir / ERROR_FILE).write_text(message.replace("\n", " ") + ("\n\n" + detail if detail else "\n"))


def unique_runs(jobs: list[Job]) -> list[Job]:
    """One job per folder: rows of two tables that are the same experiment share one run."""
    seen: dict[Path, Job] = {}
    for job in jobs:
        seen.setdefault(job.run_dir, job)
    return list(seen.values())


def _teacher_dir(job: Job) -> Path | None:
    return Path(job.config.teacher).parent if job.config.teacher else None


@dataclass
class _Progress:
    """What a run of the pool has decided so far."""

    teacher_dirs: set[Path]
    finished: set[Path] = field(default_factory=set)
    failures: list[tuple[Job, str]] = field(default_factory=list)

    def state(self, job: Job) -> str:
        t = _teacher_dir(job)
        if t is None or t in self.finished or (t not in self.teacher_dirs and (t / "best.pt").exists()):
            return "ready"
        return "failed" if t in {j.run_dir for j, _ in self.failures} else "waiting"


def run_jobs(jobs: list[Job], *, jobs_in_parallel: int, cache_dir: Path, progress: bool,
             bar: tqdm | None = None, log=print) -> list[tuple[Job, str]]:
    """Run what is not finished, ``jobs_in_parallel`` at a time; returns the failures.

    Teachers and rows share one pool: a row starts as soon as its teacher's run has finished,
    so rows without a teacher fill the slots while teachers train. A row whose teacher failed
    is recorded as failed without running.
    """
    runs = unique_runs(jobs)
    todo = [job for job in runs if not is_finished(job)]
    if bar is not None:
        bar.update(len(runs) - len(todo))
    state = _Progress(teacher_dirs={j.run_dir for j in todo if j.spec.losses.heatmap})
    if not todo:
        return []
    # Convert the notebook and import papermill here, once: first imports racing in worker
    # threads deadlocked on the import lock (seen: a thread stuck in jupytext).
    import papermill  # noqa: F401
    notebook_ipynb("train_eval", cache_dir)
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs_in_parallel))

    def fail(job: Job, msg: str, detail: str = "") -> None:
        state.failures.append((job, msg))
        record_failure(job, msg, detail)
        log(f"FAILED table {job.spec.table} {job.spec.row!r} seed {job.seed}: {msg}")
        if bar is not None:
            bar.update(1)

    with ThreadPoolExecutor(max_workers=max(1, jobs_in_parallel)) as pool:
        running: dict[Future, Job] = {}
        while todo or running:
            for job in list(todo):
                st = state.state(job)
                if st == "failed":
                    todo.remove(job)
                    fail(job, f"its teacher run {_teacher_dir(job)} failed")
                elif st == "ready" and len(running) < jobs_in_parallel:
                    todo.remove(job)
                    running[pool.submit(execute_job, job, threads=threads, cache_dir=cache_dir,
                                        progress=False)] = job
            if not running:   # what is left waits on a teacher that is not in this grid
                for job in todo:
                    fail(job, f"its teacher {_teacher_dir(job)} did not run")
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                _settle(fut, running.pop(fut), state, fail, bar, log)
    return state.failures


def _settle(fut: Future, job: Job, state: _Progress, fail, bar, log) -> None:
    try:
        metrics, wall = fut.result()
    except Exception as err:  # keep going: the other rows are independent
        lines = str(err).strip().splitlines()
        msg = f"{type(err).__name__}: {lines[-1] if lines else ''}"
        fail(job, msg[:300] + f" (executed notebook: {job.run_dir / 'train_eval.ipynb'})",
             "".join(traceback.format_exception(err)))
        return
    state.finished.add(job.run_dir)
    log(f"done  table {job.spec.table} {job.spec.row!r} seed {job.seed}: "
        f"AP {metrics.get('AP', float('nan')):.3f} ({wall:.0f}s)")
    if bar is not None:
        bar.update(1)


__all__ = ["Job", "run_jobs", "execute_job", "notebook_ipynb", "unique_runs", "record_failure"]
