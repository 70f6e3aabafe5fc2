"""``reproduce --profile paper --rehearse``: the paper grid's dress rehearsal, before booking GPUs.

Seed 0 of each unique row (teachers first) runs at full size through ``engine.rehearsal``, each
in its own process: batch 2, one warm-up and two timed steps, one evaluation on at most 16 val
instances, at most 2 loader workers, and its checkpoints, into a fresh folder
``runs/<profile>/rehearsal``. Students read the rehearsal's own teacher checkpoints, and
DistilPose-L starts from the rehearsal teacher's, so teacher wiring and initialisation are the
real ones. Without ``--data-root`` it runs on a small synthetic set of 256x384 images.

One line per row: the step time and peak memory measured here, then the full run's time and
memory at the real batch, labelled as projections: the time scales the measured time per image
to every epoch's crops (COCO train2017) and every evaluation; the memory adds the measured
memory per image up to the per-GPU batch (the schedule's batch over 8 GPUs).
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from distilkit import paths
from distilkit.experiments.cost import COCO_VAL_DETECTIONS
from distilkit.experiments.plan import Job, Recipe, Start, train_crops
from distilkit.teacher_store_budget import format_bytes

BATCH = 2
VAL_INSTANCES = 16
MAX_WORKERS = 2
GPUS = 8                       # the paper's: the schedule's batch is over 8 GPUs
SYNTHETIC = "rehearsal"


def rehearsal_jobs(runs: list[Job], *, runs_dir: Path, data_root: str) -> list[Job]:
    """The grid's runs at seed 0, each at batch 2 on a few instances, in ``runs_dir``."""
    jobs = []
    for job in runs:
        if job.seed != 0:
            continue
        workers = min(MAX_WORKERS, job.config.resolved_profile().workers)
        config = replace(job.config, batch_size=BATCH, workers=workers, max_val_instances=VAL_INSTANCES,
                         max_train_instances=BATCH * 3, progress=False, data_root=data_root,
                         teacher_store=None, device=job.config.device)
        jobs.append(replace(job, config=replace(config, out_dir=str(job.run_dir))))
    return jobs


def rehearse(*, profile: str = "paper", start: Start = Start(), data_root: str | None = None,
             runs_dir: str | Path | None = None, tables: list[int] = (4, 5, 6), rows: list[str] | None = None,
             log=None) -> int:
    """Rehearse every unique row of ``tables`` (``rows``: only those and what they wait for);
    0 when every row passed, 1 otherwise."""
    from distilkit.experiments.reproduce import plan_runs

    log = log or (lambda line: print(line, flush=True))     # each row's line as it ends
    t0 = time.perf_counter()
    runs_dir = Path(runs_dir or paths.runs_dir(profile) / "rehearsal").resolve()
    shutil.rmtree(runs_dir, ignore_errors=True)       # a rehearsal starts clean: nothing reused
    if data_root is None:
        from distilkit.data.synthetic import ensure_synthetic
        data_root = str(ensure_synthetic(SYNTHETIC, seed=0, progress=False))
    data_root = str(Path(data_root).expanduser().resolve())
    planned = plan_runs(list(tables), Recipe(profile, data_root), seeds=1, noise_seeds=1, runs_dir=runs_dir,
                        rows=rows, start=start, teacher_store="off")
    failed = 0
    for job in rehearsal_jobs(planned, runs_dir=runs_dir, data_root=data_root):
        real = next(j for j in planned if j.run_dir == job.run_dir)
        result, error = _run_one(job)
        error = error or _fault(job, result)
        failed += error is not None
        log(row_line(job, real, result) if error is None else f"{_label(job)}: FAILED: {error}")
    log(f"rehearsed {len(planned)} runs in {time.perf_counter() - t0:.0f} s on "
        f"{'this GPU' if _on_gpu() else 'this CPU'}; {failed} failed; folders: {runs_dir}")
    return 1 if failed else 0


TERMS = ("heatmap", "reg", "kt", "vt", "sh", "cs")      # LossConfig's switches, one per loss term


def _fault(job: Job, result: dict) -> str | None:
    """What a row that ran did wrong: a loss term it should have computed and did not (or the
    reverse), a non-finite loss, or a checkpoint it did not write."""
    expected = {t for t in TERMS if getattr(job.config.losses, t)}
    if set(result["terms"]) != expected:
        return f"loss terms {sorted(result['terms'])}, expected {sorted(expected)}"
    if not result["loss_finite"]:
        return f"non-finite loss terms {result['terms']}"
    if not {"best.pt", "last.pt"} <= set(result["checkpoints"]):
        return f"checkpoints written: {result['checkpoints']}, expected best.pt and last.pt"
    return None


def _on_gpu() -> bool:
    import torch
    return torch.cuda.is_available()


def _run_one(job: Job) -> tuple[dict | None, str | None]:
    """(result, None) or (None, the last line of the error) of one row in its own process."""
    job.run_dir.mkdir(parents=True, exist_ok=True)
    config_file = job.run_dir / "rehearsal_config.json"
    config_file.write_text(json.dumps({"config": job.config.to_dict()}))
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        result_file = Path(out.name)
    run = subprocess.run([sys.executable, "-m", "distilkit.engine.rehearsal", str(config_file), str(result_file)],
                         capture_output=True, text=True, cwd=paths.repo_root(), check=False)
    try:
        if run.returncode != 0:
            lines = (run.stderr or run.stdout).strip().splitlines() or [f"exit status {run.returncode}"]
            return None, lines[-1]
        return json.loads(result_file.read_text()), None
    finally:
        result_file.unlink(missing_ok=True)


def _label(job: Job) -> str:
    return f"table {job.spec.table} {job.spec.row!r}"


def projection(real: Job, result: dict) -> tuple[float, float]:
    """(hours of the full run on this device, bytes per GPU at the real per-GPU batch)."""
    step = sorted(result["step_s"])[len(result["step_s"]) // 2]
    per_image = step / result["batch"]
    schedule = real.config.schedule()
    evals = math.ceil(schedule.epochs / (real.config.eval_every or real.config.resolved_profile().eval_every))
    eval_per_box = result["eval_s"] / max(1, result["eval_instances"])
    seconds = schedule.epochs * train_crops(real.config) * per_image + evals * COCO_VAL_DETECTIONS * eval_per_box
    # weights, gradients and Adam's two moments are there at any batch; the rest grows with it
    static = result["setup_bytes"] + 3 * result["param_bytes"]
    per_sample = max(0, result["train_peak_bytes"] - static) / result["batch"]
    per_gpu = max(1, schedule.batch_size // GPUS)
    return seconds / 3600, static + per_sample * per_gpu


def row_line(job: Job, real: Job, result: dict) -> str:
    hours, memory = projection(real, result)
    step = sorted(result["step_s"])[len(result["step_s"]) // 2]
    init = result["init"]
    started = ("scratch" if init is None else
               f"{Path(init['file']).parent.name}/{Path(init['file']).name}: {init['loaded']} keys loaded, "
               f"{init['missing']} missing, {init['unused']} unused")
    terms = "+".join(sorted(result["terms"]))
    per_gpu = max(1, real.config.schedule().batch_size // GPUS)
    return (f"{_label(job)} {result['model']}: step {step:.2f} s at batch {result['batch']} on {result['device']}, "
            f"peak {format_bytes(result['peak_bytes'])}; init {started}; losses {terms} "
            f"({'finite' if result['loss_finite'] else 'NOT FINITE'}); eval AP {result['AP']:.3f} on "
            f"{result['eval_instances']} val; saved {', '.join(result['checkpoints'])} | PROJECTED full run: "
            f"{hours:,.0f} h on this device, {format_bytes(memory)} at {per_gpu} per GPU")


__all__ = ["projection", "rehearsal_jobs", "rehearse", "row_line"]
