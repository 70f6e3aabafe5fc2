"""Execute a grid's runs: teachers first, then each row through the ``train_eval`` notebook under
papermill, ``jobs_in_parallel`` processes at a time, skipping runs whose folders are finished.

A run folder is its own record (``distilkit.experiments.records``): the runner writes nothing
but a failed run's ``error.txt``, so a re-run retries it and the other runs go on and are kept.
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm.auto import tqdm

from distilkit.engine.config import write_config
from distilkit.engine.locks import exclusive
from distilkit.experiments.executors import DevicePool, ExecutorConfig, make_submit
from distilkit.experiments.plan import Job, unique_runs
from distilkit.experiments.progress import RowWatch, row_label, stage_line
from distilkit.units import percent
from distilkit.experiments.records import ERROR_FILE, is_finished
from distilkit.experiments.scheduling import finished_stores, start_order, waits_for
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
        # an executed copy is a plain notebook, not a text notebook's pair: with jupytext's
        # pairing metadata JupyterLab refuses to open it ("Unable to read paired notebook")
        nb.metadata.pop("jupytext", None)
        nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3",
                                              "language": "python"})
        tmp = dst.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}.ipynb")
        jupytext.write(nb, tmp, fmt="ipynb")
        os.replace(tmp, dst)
    return dst


# Row kernels log only errors: ipykernel warns at every start that it talks over loopback TCP
# without CurveZMQ, which buried the main job's progress lines (nothing leaves this machine).
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]


def execute_job(job: Job, *, threads: int | None, cache_dir: Path, progress: bool) -> dict:
    """Run one row through the train_eval notebook, in whatever process or node calls it.

    Returns ``{"status": "done", "metrics", "wall_s"}``, or ``{"status": "busy", "reason"}``
    when another runner holds the folder (an outcome, not an error: it must cross submitit's
    process boundary intact). Any other failure raises.
    """
    import papermill as pm

    from distilkit.engine.locks import FolderBusyError

    job.run_dir.mkdir(parents=True, exist_ok=True)
    config = replace(job.config, progress=progress, resume=True)
    try:
        lock = exclusive(job.run_dir / ".lock", wait=False)
        lock.__enter__()
    except FolderBusyError as err:
        return {"status": "busy", "reason": str(err)}
    try:
        if is_finished(job):            # another runner finished it while we queued it
            return {"status": "done", "metrics": json.loads((job.run_dir / "final_metrics.json").read_text()),
                    "wall_s": 0.0, "elsewhere": True}
        (job.run_dir / ERROR_FILE).unlink(missing_ok=True)
        # the row's whole recipe travels as one file: the notebook trains exactly this config
        write_config(config, job.run_dir / "config.json")
        t0 = time.perf_counter()
        pm.execute_notebook(str(notebook_ipynb("train_eval", cache_dir)), str(job.run_dir / "train_eval.ipynb"),
                            parameters=dict(config_path=str(job.run_dir / "config.json"), threads=threads),
                            progress_bar=False, cwd=str(notebooks_dir()),
                            kernel_name="python3", extra_arguments=KERNEL_ARGS)
        wall = time.perf_counter() - t0
    finally:
        lock.__exit__(None, None, None)
    metrics = json.loads((job.run_dir / "final_metrics.json").read_text())
    return {"status": "done", "metrics": metrics, "wall_s": wall}


def record_failure(job: Job, message: str, detail: str = "") -> None:
    """``error.txt`` in the run folder: the one-line reason first, then the traceback."""
    job.run_dir.mkdir(parents=True, exist_ok=True)
    (job.run_dir / ERROR_FILE).write_text(message.replace("\n", " ") + ("\n\n" + detail if detail else "\n"))




@dataclass
class _Progress:
    """What a run of the pool has decided so far."""

    teacher_dirs: set[Path]
    finished: set[Path] = field(default_factory=set)
    failures: list[tuple[Job, str]] = field(default_factory=list)
    deferred: dict[Path, float] = field(default_factory=dict)   # busy elsewhere: run_dir -> retry time

    def state(self, job: Job) -> str:
        """ready once every run it waits for (teacher, initial weights) is finished; failed when
        one of them failed."""
        failed = {j.run_dir for j, _ in self.failures}
        pending = [t for t in waits_for(job) if not (
            t in self.finished or (t not in self.teacher_dirs and (t / "best.pt").exists()))]
        if not pending:
            return "ready"
        return "failed" if any(t in failed for t in pending) else "waiting"


BUSY_RETRY_S = 10.0    # how often a runner looks again at a folder another runner holds


def run_jobs(jobs: list[Job], *, cache_dir: Path, executor: ExecutorConfig | None = None,
             jobs_in_parallel: int = 2, bar: tqdm | None = None, log=print,
             watch: RowWatch | None = None) -> list[tuple[Job, str]]:
    """Run what is not finished on ``executor`` (default: local, ``jobs_in_parallel`` at a time);
    returns the failures.

    Teachers and rows share one pool: a row starts as soon as its teacher's run has finished,
    so rows without a teacher fill the slots while teachers train. A row whose teacher failed
    is recorded as failed without running. A folder another runner holds is left and looked at
    again later: finished there, it counts as done here; never as failed. ``watch`` prints each
    running row's epochs and the ETA (``progress.RowWatch``).
    """
    executor = executor or ExecutorConfig(jobs=jobs_in_parallel)
    runs = unique_runs(jobs)
    todo = [job for job in runs if not is_finished(job)]
    if bar is not None:
        bar.update(len(runs) - len(todo))
    state = _Progress(teacher_dirs={j.run_dir for j in todo if j.config.losses.heatmap})
    if not todo:
        return []
    # Convert the notebook and import papermill here, once: first imports racing in worker
    # threads deadlocked on the import lock (seen: a thread stuck in jupytext).
    import papermill  # noqa: F401
    notebook_ipynb("train_eval", cache_dir)
    row = _row_function(executor, cache_dir)
    row = watch.timed(row) if watch is not None else row
    devices = DevicePool(executor.devices)
    seconds = watch.times.row_seconds if watch is not None else (lambda job: 0.0)

    def fail(job: Job, msg: str, detail: str = "") -> None:
        state.failures.append((job, msg))
        record_failure(job, msg, detail)
        log(f"FAILED {row_label(job)}: {msg}")
        if bar is not None:
            bar.update(1)

    teachers_left = set(state.teacher_dirs)
    log(stage_line("teachers", f"{len(teachers_left)} to train; rows that need none start beside them"))
    with row_pool(executor.in_flight) as pool:
        running: dict[Future, tuple[Job, str | None]] = {}
        while todo or running:
            if teachers_left and not (teachers_left - state.finished):
                teachers_left = set()
                log(stage_line("tables", f"{len(todo) + len(running)} rows left"))
            _start_ready(todo, running, state, pool, row, devices, executor.in_flight, fail, seconds)
            if not running and not _wait_for_deferred(todo, state, log, bar):
                for job in todo:   # what is left waits on a teacher that is not in this grid
                    fail(job, f"the runs it waits for {[str(p) for p in waits_for(job)]} did not run")
                break
            if running:
                done, _ = wait(list(running), return_when=FIRST_COMPLETED, timeout=BUSY_RETRY_S)
                for fut in done:
                    job, device = running.pop(fut)
                    devices.give_back(device)
                    _settle(fut, job, todo, state, fail, bar, log)
                    _remove_unneeded_stores(job, [j for j, _ in running.values()], todo, log)
                if watch is not None:
                    watch.poll([j for j, _ in running.values()], todo, log)
    return state.failures


@contextlib.contextmanager
def row_pool(workers: int):
    """The threads rows run in. Interrupted (Ctrl-C, or SIGTERM as ``cli.Terminated``), the
    rows' processes are stopped first, so the threads end now rather than when their rows would
    have: the kernels papermill starts sit in sessions of their own, out of reach of the
    terminal's Ctrl-C and of the SIGTERM make passes on."""
    pool = ThreadPoolExecutor(max_workers=workers)
    interrupted = False
    try:
        yield pool
    except KeyboardInterrupt:
        interrupted = True
        stop_child_processes()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=interrupted)


def stop_child_processes(grace_s: float = 10.0) -> None:
    """SIGTERM to every process this one started (and theirs), SIGKILL to any left after
    ``grace_s``."""
    import psutil

    def alive(child) -> bool:
        try:        # a zombie has ended; its own thread's Popen.wait reaps it
            return child.is_running() and child.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    # polled, never waited for: psutil.wait_procs would reap the rows' children, and the
    # threads waiting on them would read exit status 0 (ECHILD) instead of the signal
    deadline = time.monotonic() + grace_s
    while any(map(alive, children)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for child in filter(alive, children):
        with contextlib.suppress(psutil.Error):
            child.kill()


def _row_function(executor: ExecutorConfig, cache_dir: Path):
    """``row(job) -> outcome`` on the chosen executor, blocking until the row ends."""
    submit = make_submit(executor)
    threads = (max(1, (os.cpu_count() or 1) // executor.in_flight) if executor.kind != "slurm"
               else executor.slurm.get("cpus_per_task"))
    return lambda job: submit(execute_job, job, threads=threads, cache_dir=cache_dir, progress=False)


def _start_ready(todo, running, state: _Progress, pool, row, devices: DevicePool, limit: int, fail,
                 seconds) -> None:
    now = time.monotonic()
    ready = []
    for job in list(todo):
        if state.deferred.get(job.run_dir, 0.0) > now:
            continue
        st = state.state(job)
        if st == "failed":
            todo.remove(job)
            fail(job, f"a run it waits for failed: {[str(p) for p in waits_for(job)]}")
        elif st == "ready":
            ready.append(job)
    while ready and len(running) < limit:      # one at a time: each start changes the next choice
        in_flight = [j for j, _ in running.values()]
        job = start_order(ready, running=in_flight, waiting=todo, seconds=seconds)[0]
        ready.remove(job)
        device = devices.take()
        placed = replace(job, config=replace(job.config, device=device)) if device else job
        todo.remove(job)
        running[pool.submit(row, placed)] = (job, device)


def _remove_unneeded_stores(settled: Job, running: list[Job], todo: list[Job], log) -> None:
    """A teacher's shared outputs go when no row left in this grid distils from it."""
    from distilkit.teacher_store import remove_stores

    for root, teacher in finished_stores(settled, running=running, waiting=todo):
        freed = remove_stores(root, teacher)
        if freed:
            log(f"      removed the stored outputs of teacher {Path(teacher).parent.name} "
                f"({freed / 2**20:.0f} MB): no row left distils from it")


def _wait_for_deferred(todo, state: _Progress, log, bar) -> bool:
    """Nothing runs here: sleep until the next busy folder is due, and count those another
    runner finished meanwhile. False when nothing is deferred (the rest cannot start)."""
    due = [state.deferred[j.run_dir] for j in todo if j.run_dir in state.deferred]
    if not due:
        return False
    time.sleep(max(0.0, min(due) - time.monotonic()))
    for job in list(todo):
        if job.run_dir in state.deferred and is_finished(job):
            todo.remove(job)
            _done_elsewhere(job, state, log, bar)
    return True


def _done_elsewhere(job: Job, state: _Progress, log, bar) -> None:
    state.finished.add(job.run_dir)
    state.deferred.pop(job.run_dir, None)
    log(f"done  {row_label(job)}: by another runner")
    if bar is not None:
        bar.update(1)


def _settle(fut: Future, job: Job, todo: list[Job], state: _Progress, fail, bar, log) -> None:
    try:
        outcome = fut.result()
    except Exception as err:  # keep going: the other rows are independent
        lines = str(err).strip().splitlines()
        msg = f"{type(err).__name__}: {lines[-1] if lines else ''}"
        fail(job, msg[:300] + f" (executed notebook: {job.run_dir / 'train_eval.ipynb'})",
             "".join(traceback.format_exception(err)))
        return
    if outcome["status"] == "busy":         # another runner has it: look again later
        state.deferred[job.run_dir] = time.monotonic() + BUSY_RETRY_S
        todo.append(job)
        log(f"busy  {row_label(job)}: {outcome['reason']}")
        return
    if outcome.get("elsewhere"):
        _done_elsewhere(job, state, log, bar)
        return
    state.finished.add(job.run_dir)
    state.deferred.pop(job.run_dir, None)
    metrics = outcome["metrics"]
    log(f"done  {row_label(job)}: "
        f"AP {percent(metrics.get('AP', float('nan'))):.2f} % ({outcome['wall_s']:.0f}s)")
    if bar is not None:
        bar.update(1)


__all__ = ["Job", "run_jobs", "execute_job", "notebook_ipynb", "unique_runs", "record_failure"]
