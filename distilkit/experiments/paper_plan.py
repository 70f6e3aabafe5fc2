"""``reproduce --profile paper --plan``: per row its start, teacher, GPU-hours and teacher-store
disk, then the totals and the assumptions behind them. Nothing runs and nothing is downloaded."""
from __future__ import annotations

from pathlib import Path

from distilkit import paths
from distilkit.engine.config import run_folder_checkpoint
from distilkit.experiments.cost import (
    ASSUMED_TFLOPS,
    Throughput,
    row_cost,
    teacher_model,
)
from distilkit.experiments.plan import Job, store_bytes
from distilkit.experiments.records import error_of, is_finished
from distilkit.teacher_store_budget import StoreDecision, format_bytes

GPU_CHECK_CSV = "gpu_check.csv"     # in the repository's results/


def init_label(job: Job) -> str:
    path = job.config.init_backbone
    if not path:
        return "scratch"
    if run_folder_checkpoint(path):
        return f"{Path(path).parent.name}/best.pt"
    return Path(path).name + ("" if Path(path).is_file() else " MISSING")


def _status(job: Job) -> str:
    if is_finished(job):
        return "done"
    return "failed: will run again" if error_of(job.run_dir) else "to run"


def paper_plan_lines(runs: list[Job], decisions: list[StoreDecision], *, in_flight: int,
                     measured: Throughput | None = None) -> list[str]:
    """One line per run, then totals, the throughput assumption and the store decisions."""
    measured = measured or Throughput.read(paths.repo_root() / "results" / GPU_CHECK_CSV)
    on = {d.teacher for d in decisions if d.on}
    lines = [f"{'run':<46} {'model':<20} {'starts from':<34} {'teacher':<20} {'GPU-h':>7}  {'store':>8}  status"]
    total = left = 0.0
    sources = set()
    for job in runs:
        cost = row_cost(job, measured)
        sources.add(cost.source)
        total += cost.gpu_hours
        left += 0.0 if is_finished(job) else cost.gpu_hours
        folder = Path(job.config.teacher).parent.name if job.config.teacher else ""
        store = format_bytes(store_bytes(job.config, folder)) if folder in on else "live" if folder else "-"
        label = f"table {job.spec.table} {job.spec.row!r} seed {job.seed}"
        lines.append(f"{label:<46} {job.config.model_name():<20} {init_label(job):<34} "
                     f"{teacher_model(job) or '-':<20} {cost.gpu_hours:>7.0f}  {store:>8}  {_status(job)}")
    finished = sum(is_finished(j) for j in runs)
    lines.append(f"{finished} of {len(runs)} runs done; {total:,.0f} GPU-hours in all, {left:,.0f} left "
                 f"(~{left / max(1, in_flight) / 24:.1f} days with {in_flight} rows at a time, one GPU each "
                 "(--jobs); a lower bound: rows wait for the teachers they distil from or start from)")
    if "FLOPs" in sources:
        lines.append(f"GPU-hours from FLOPs at an assumed {ASSUMED_TFLOPS:g} TFLOP/s sustained fp32 per GPU "
                     f"(no measured fp32 row in results/{GPU_CHECK_CSV}; bench/gpu_check.sh --precision fp32 "
                     "measures one): training = 3 forward passes per image + a live teacher's forward; "
                     "evaluation = 2 passes per COCO val detection every 10 epochs")
    if measured.images_per_s:
        lines.append(f"measured fp32 throughput: results/{GPU_CHECK_CSV} on {measured.device}")
    stored = sum(d.estimate for d in decisions if d.on)
    lines.append(f"teacher stores: {format_bytes(stored) if stored else 'none'} on disk "
                 "(COCO train2017's 149,813 crops per epoch assumed)")
    lines += [d.line() for d in decisions]
    missing = sorted({Path(j.config.init_backbone).name for j in runs
                      if j.config.init_backbone and init_label(j).endswith("MISSING")})
    if missing:
        lines.append(f"initialisation files missing: {', '.join(missing)}: pass --pretrained DIR "
                     "(docs/PAPER_GRID.md, 'Pretrained weights for the paper profile'), or --no-pretrained")
    return lines


__all__ = ["init_label", "paper_plan_lines"]
