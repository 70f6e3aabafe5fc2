"""One run's dress rehearsal: the trainer's own set-up, a warm-up step and timed steps, one
evaluation and the checkpoints, measured (``experiments.rehearse`` runs each row of a grid so).

It goes through the very code a full run goes through (``trainer._setup``, ``_train_step``,
``_evaluate``, ``_end_epoch``), so a rehearsal that passes has built the model at its size,
loaded its initial weights (the keys loaded, missing and unused are reported), wired its teacher,
computed each of its loss terms, evaluated and written ``last.pt`` and ``best.pt``.

    python -m distilkit.engine.rehearsal CONFIG_JSON RESULT_JSON      # one row, in its own process
"""
from __future__ import annotations

import json
import math
import resource
import sys
import time
from pathlib import Path

import torch

from distilkit.engine import trainer
from distilkit.engine.config import TrainConfig
from distilkit.engine.distributed import init_distributed

WARMUP_STEPS = 1
TIMED_STEPS = 2


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    """Start the peak over from now, so the step's peak is not the set-up's (loading a teacher's
    or an initialisation file's checkpoint peaks higher than a small model's step)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:        # Linux: "5" resets this process's peak RSS (VmHWM) to its current RSS
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass    # elsewhere the peak stays the process's whole-life peak (ru_maxrss)


def peak_bytes(device: torch.device) -> int:
    """The device's peak memory since ``reset_peak``: CUDA's allocator peak, else this process's
    peak RSS (VmHWM; ru_maxrss where /proc has none)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024     # kB on Linux


def _param_bytes(module: torch.nn.Module | None) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters()) if module is not None else 0


def rehearse_run(config: TrainConfig) -> dict:
    """Set up ``config``'s run, train WARMUP_STEPS + TIMED_STEPS batches, evaluate once and save
    its checkpoints; returns what was measured (seconds per timed step, memory, loss terms)."""
    profile, schedule = config.resolved_profile(), config.schedule()
    info = init_distributed("cuda" if config.device.startswith("cuda") else "cpu")
    t0 = time.perf_counter()
    run = trainer._setup(config, profile, schedule, Path(config.out_dir), info)
    setup_s = time.perf_counter() - t0
    reset_peak(run.device)
    setup_bytes = peak_bytes(run.device)         # what the set-up left in memory
    run.data.set_epoch(0, config.seed)
    run.train_model.train()
    source = run.teacher.epoch(0) if run.teacher is not None else None
    batches = iter(run.data.train_loader)
    step_s, terms = [], {}
    for step in range(WARMUP_STEPS + TIMED_STEPS):
        batch = next(batches)
        _sync(run.device)
        t_step = time.perf_counter()
        cpu_images = batch["image"]
        images = cpu_images.to(run.device)
        batch = {k: v.to(run.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        teach = (lambda x, s=step, cpu=cpu_images: source(s, x, cpu)) if source is not None else None
        step_terms, _ = trainer._train_step(run, images, batch, 0, teach)
        _sync(run.device)
        if step >= WARMUP_STEPS:
            step_s.append(time.perf_counter() - t_step)
        terms = {k: float(v.detach()) for k, v in step_terms.items()}
    if source is not None:
        source.close(complete=False)
    train_peak = peak_bytes(run.device)
    t_eval = time.perf_counter()
    run.metrics = trainer._evaluate(run, last_epoch=True)
    eval_s = time.perf_counter() - t_eval
    trainer._end_epoch(run, 1, {"epoch": 1, **run.metrics})
    report = run.init_report
    teacher_module = getattr(run.teacher, "teacher", None) if run.teacher is not None else None
    return {
        "model": config.model_name(), "device": run.device.type, "batch": run.data.train_loader.batch_size,
        "setup_s": round(setup_s, 2), "step_s": step_s, "eval_s": round(eval_s, 2),
        "eval_instances": len(run.data.val_set), "AP": run.metrics.get("AP"),
        "terms": terms, "loss_finite": all(math.isfinite(v) for v in terms.values()),
        "setup_bytes": setup_bytes, "peak_bytes": max(train_peak, peak_bytes(run.device)),
        "train_peak_bytes": train_peak, "param_bytes": _param_bytes(run.model),
        "teacher_param_bytes": _param_bytes(teacher_module),
        "init": None if report is None else {"file": str(report.path), "loaded": len(report.loaded),
                                             "missing": len(report.missing), "unused": len(report.unused)},
        "checkpoints": sorted(p.name for p in Path(config.out_dir).glob("*.pt")),
    }


def main(argv: list[str]) -> int:
    config_file, result_file = argv
    config = TrainConfig.from_dict(json.loads(Path(config_file).read_text())["config"])
    result = rehearse_run(config)
    Path(result_file).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
