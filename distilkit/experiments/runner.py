"""Execute a table's rows: teachers once (cached), then each row through the ``train_eval``
notebook under papermill, in parallel processes, skipping rows already done.

A failed row is written with its error and no metric (so a re-run retries it); the other
rows go on and are kept.
"""
from __future__ import annotations

import json
import os
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm.auto import tqdm

from distilkit.engine.config import TrainConfig
from distilkit.experiments.grid import TABLES, TEACHERS, RunSpec, teacher_run, teachers_needed
from distilkit.experiments.locks import exclusive
from distilkit.experiments.results import METRICS, append_row, done_keys, provenance
from distilkit.provenance import RUN_PROVENANCE, RUN_RECORD, read_run_record  # noqa: F401


@dataclass
class Job:
    spec: RunSpec
    seed: int
    run_dir: Path
    config: TrainConfig
    csv: Path

    @property
    def key(self) -> tuple[str, str]:
        return self.config.hash(), str(self.seed)


def notebooks_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "notebooks"


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


def make_config(spec: RunSpec, *, seed: int, profile: str, run_dir: Path, teacher_ckpt: Path | None,
                data_root: str | None, epochs: int | None, progress: bool) -> TrainConfig:
    return TrainConfig(out_dir=str(run_dir), model=spec.model, profile=profile, losses=spec.losses,
                       teacher=str(teacher_ckpt) if teacher_ckpt else None, seed=seed, epochs=epochs,
                       data_root=data_root, progress=progress)


def repo_relative(path: Path) -> str:
    """Relative to the repository when inside it (``viz.checkpoints`` resolves it against the
    repository): committed result CSVs then point at the run folders of any clone."""
    try:
        return str(Path(path).resolve().relative_to(notebooks_dir().parent))
    except ValueError:
        return str(path)


def result_row(job: Job, metrics: dict, wall_s: float, error: str = "") -> dict:
    row = {**job.spec.columns(), "seed": job.seed}
    row.update({k: metrics.get(k, "") for k in METRICS})
    row.update(paper_AP=job.spec.paper_AP if job.spec.paper_AP is not None else "",
               wall_s=round(wall_s, 1), config_hash=job.config.hash(), profile=job.config.profile,
               epochs=job.config.schedule().epochs, run_dir=repo_relative(job.run_dir), error=error,
               err_px=metrics.get("err_px", ""), PCK10=metrics.get("PCK10", ""),
               score_auc=metrics.get("score_auc", ""))
    row.update(provenance())
    # provenance() gives commit/device/torch/timestamp; keep the documented column order
    order = ["table", "row", "student", "teacher", "L_CS", "L_SH", "L_KT", "L_VT", "reg_loss", "seed",
             *METRICS, "paper_AP", "wall_s", "git_commit", "config_hash", "profile", "device"]
    return {k: row[k] for k in order} | {k: v for k, v in row.items() if k not in order}


def execute_job(job: Job, *, threads: int, cache_dir: Path, progress: bool) -> tuple[dict, float]:
    """Run one row through the train_eval notebook; returns (metrics, wall seconds)."""
    import papermill as pm

    job.run_dir.mkdir(parents=True, exist_ok=True)
    c = job.config
    params = dict(profile=c.profile, data_root=c.data_root, model=c.model, teacher=c.teacher,
                  losses=c.losses.switches(), reg_loss=c.losses.reg_loss, seed=c.seed, epochs=c.epochs,
                  out_dir=str(job.run_dir), progress=progress, threads=threads, resume=True)
    # Tables 4 and 5 share folders; a second process (another table notebook) must not train
    # the same one at the same time
    with exclusive(job.run_dir / ".lock", wait=False):
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


def plan_jobs(tables: list[int], *, profile: str, seeds: list[int], runs_dir: Path, results_dir: Path,
              data_root: str | None = None, epochs: int | None = None, extra_seeds: dict | None = None
              ) -> tuple[list[Job], list[Job]]:
    """(teacher jobs, row jobs). ``extra_seeds`` maps (table, row) -> seeds for noise estimates."""
    teacher_jobs, teacher_dirs = [], {}
    for key in teachers_needed(tables):
        spec = teacher_run(key)
        # the folder carries the config hash: a teacher of another recipe is never reused
        cfg = make_config(spec, seed=0, profile=profile, run_dir=Path("."), teacher_ckpt=None,
                          data_root=data_root, epochs=None, progress=False)
        run_dir = runs_dir / "teachers" / f"{key}-{cfg.hash()}"  # out_dir is not in the hash
        cfg = replace(cfg, out_dir=str(run_dir))
        teacher_dirs[key] = run_dir
        csv = results_dir / ("table6.csv" if key == "simplebaseline" else "teachers.csv")
        teacher_jobs.append(Job(spec, 0, run_dir, cfg, csv))

    def config_of(spec, seed: int):
        ckpt = teacher_dirs[spec.teacher] / "best.pt" if spec.teacher else None
        return make_config(spec, seed=seed, profile=profile, run_dir=Path("."), teacher_ckpt=ckpt,
                           data_root=data_root, epochs=epochs, progress=False)

    rows = [(table, spec, config_of(spec, 0).hash()) for table in tables for spec in TABLES[table]()]
    # A row that is the same experiment as a repeated one (Table 5's StemNet student with no
    # or the HRNet teacher is Table 4's none / all) shows the same seeds: the runs are shared,
    # so this costs nothing and the two tables report the same mean.
    extra_by_hash: dict[str, set[int]] = {digest: set() for _, _, digest in rows}
    for (table, row), extra in (extra_seeds or {}).items():  # its table may not be run now
        for spec in TABLES[table]():
            if spec.row == row and (spec.teacher is None or spec.teacher in teacher_dirs):
                extra_by_hash.setdefault(config_of(spec, 0).hash(), set()).update(extra)
    jobs = []
    for table, spec, digest in rows:
        for seed in sorted(set(seeds) | extra_by_hash[digest]):
            cfg = config_of(spec, seed)
            run_dir = runs_dir / f"{spec.model}-{digest}-s{seed}"
            cfg = replace(cfg, out_dir=str(run_dir))
            jobs.append(Job(spec, seed, run_dir, cfg, results_dir / f"table{table}.csv"))
    return teacher_jobs, jobs


def _finished_metrics(job: Job) -> dict | None:
    """A run folder whose run already finished (e.g. shared by Tables 4 and 5) is reused."""
    path = job.run_dir / "final_metrics.json"
    if path.exists() and (job.run_dir / "last.pt").exists():
        try:
            from distilkit.checkpoint import load_checkpoint
            ckpt = load_checkpoint(job.run_dir / "last.pt")
            if ckpt["epoch"] >= job.config.schedule().epochs:
                return json.loads(path.read_text())
        except (ValueError, FileNotFoundError):
            return None
    return None


def _trained_row(job: Job, metrics: dict, wall_s: float) -> dict:
    """The row of a run this invocation trained: the notebook's wall time, and the provenance
    the run recorded in its folder (this process's, where an older notebook wrote none)."""
    row = result_row(job, metrics, wall_s)
    record = read_run_record(job.run_dir)
    if record is not None:
        row.update({k: record[k] for k in RUN_PROVENANCE if k in record})
    return row


def _reused_row(job: Job, metrics: dict) -> dict:
    """The row of a run another row, an earlier or an interrupted invocation trained: the wall
    time and provenance the run recorded in its folder, not this invocation's. A folder from
    before run records has no known commit or time: blank, not a wrong one."""
    record = read_run_record(job.run_dir)
    row = result_row(job, metrics, float(record.get("wall_s", 0.0)) if record else 0.0)
    if record is None:
        row["git_commit"] = ""
    else:
        row.update({k: record[k] for k in RUN_PROVENANCE if k in record})
    return row


def _teacher_dir(job: Job) -> Path | None:
    return Path(job.config.teacher).parent if job.config.teacher else None


def run_jobs(jobs: list[Job], *, jobs_in_parallel: int, cache_dir: Path, progress: bool,
             bar: tqdm | None = None, log=print) -> list[tuple[Job, str]]:
    """Run what is not done yet, ``jobs_in_parallel`` at a time; returns the failures.

    Teachers and rows share one pool: a row starts as soon as its teacher's run has finished,
    so rows without a teacher fill the slots while teachers train. A row whose teacher failed
    is reported as failed without running.
    """
    failures: list[tuple[Job, str]] = []
    teacher_dirs = {j.run_dir for j in jobs if j.spec.losses.heatmap}
    finished: set[Path] = set()
    failed: set[Path] = set()
    queue: list[Job] = []

    def settle(job: Job, reused: dict | None = None) -> None:
        """A row needing no training: already in its CSV, or (``reused``) its folder's run
        finished (Table 5 sharing Table 4's runs), recorded with wall_s 0."""
        if reused is not None:
            append_row(job.csv, _reused_row(job, reused))
        finished.add(job.run_dir)
        if bar is not None:
            bar.update(1)

    for job in jobs:
        if job.key in done_keys(job.csv) and (job.run_dir / "last.pt").exists():
            settle(job)
            continue
        reuse = _finished_metrics(job)
        if reuse is not None:
            settle(job, reuse)
            continue
        queue.append(job)
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs_in_parallel))
    if queue:
        # Convert the notebook and import papermill here, once: first imports racing in
        # worker threads deadlocked on the import lock (seen: a thread stuck in jupytext).
        import papermill  # noqa: F401
        notebook_ipynb("train_eval", cache_dir)

    def state(job: Job) -> str:
        t = _teacher_dir(job)
        if t is None or t in finished or (t not in teacher_dirs and (t / "best.pt").exists()):
            return "ready"
        return "failed" if t in failed else "waiting"

    with ThreadPoolExecutor(max_workers=max(1, jobs_in_parallel)) as pool:
        futures: dict = {}
        running_dirs: set[Path] = set()

        def fail(job: Job, msg: str) -> None:
            failures.append((job, msg))
            failed.add(job.run_dir)
            append_row(job.csv, result_row(job, {}, 0.0, error=msg[:300]))
            log(f"FAILED table {job.spec.table} {job.spec.row!r} seed {job.seed}: {msg}")
            if bar is not None:
                bar.update(1)

        def submit_ready() -> None:
            for job in list(queue):
                # a folder another row of this invocation just finished
                reuse = _finished_metrics(job) if job.run_dir in finished else None
                if reuse is not None:
                    queue.remove(job)
                    settle(job, reuse)
                    continue
                if len(futures) >= jobs_in_parallel:
                    break
                st = state(job)
                if st == "failed":
                    queue.remove(job)
                    fail(job, f"its teacher run {_teacher_dir(job)} failed")
                    continue
                # two rows that share a run folder (same config and seed) must not run at once
                if st != "ready" or job.run_dir in running_dirs:
                    continue
                queue.remove(job)
                running_dirs.add(job.run_dir)
                futures[pool.submit(execute_job, job, threads=threads, cache_dir=cache_dir,
                                    progress=False)] = job

        submit_ready()
        while futures:
            done, _ = wait(list(futures), return_when=FIRST_COMPLETED)
            for fut in done:
                job = futures.pop(fut)
                running_dirs.discard(job.run_dir)
                try:
                    metrics, wall = fut.result()
                except Exception as err:  # keep going: the other rows are independent
                    lines = str(err).strip().splitlines()
                    msg = f"{type(err).__name__}: {lines[-1] if lines else ''}"
                    (job.run_dir / "error.txt").write_text(traceback.format_exc())
                    fail(job, msg + f" (executed notebook: {job.run_dir / 'train_eval.ipynb'})")
                    continue
                finished.add(job.run_dir)
                append_row(job.csv, _trained_row(job, metrics, wall))
                log(f"done  table {job.spec.table} {job.spec.row!r} seed {job.seed}: "
                    f"AP {metrics.get('AP', float('nan')):.3f} ({wall:.0f}s)")
                if bar is not None:
                    bar.update(1)
            submit_ready()
        for job in queue:  # only possible if a teacher never ran
            fail(job, "its teacher did not run")
    return failures


__all__ = ["Job", "plan_jobs", "run_jobs", "execute_job", "notebook_ipynb", "TEACHERS", "repo_relative"]
