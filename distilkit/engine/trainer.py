"""``fit(config)``: one loop for teachers, plain students and distilled students.

Per epoch: train (tqdm), evaluate with the flip test and COCO AP when due, append a row to
``metrics.csv``, save ``last.pt`` (and ``best.pt`` on a new best AP). ``last.pt`` carries
model, optimizer, scheduler, scaler and RNG states at an epoch boundary; shuffling and
augmentation are functions of (seed, epoch), so a resumed run ends with the same weights
as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from distilkit.engine.checkpoint import (atomic_file, atomic_torch_save, atomic_write_text, load_checkpoint,
                                  rng_state, set_rng_state, unwrap)
from distilkit.distill import FrozenTeacher, check_compatible, load_teacher
from distilkit.engine.config import TrainConfig
from distilkit.engine.data import build_run_data, resolve_data_root
from distilkit.engine.distributed import DistInfo, all_reduce_mean, barrier, cleanup, init_distributed
from distilkit.engine.evaluate import evaluate_model, keypoint_error_metrics
from distilkit.engine.schedule import build_optimizer, build_scheduler
from distilkit.losses import compute_losses
from distilkit.provenance import now_iso, write_run_record

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or Inf; the last good checkpoint was kept."""


def resolve_device(name: str, info: DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and info.enabled:
        return torch.device("cuda", info.local_rank)
    return torch.device(name)


def autocast_for(device: torch.device, amp: str):
    """A context factory for mixed precision, or None where it is off (always on CPU)."""
    if device.type != "cuda" or amp == "off":
        return None, False
    if amp == "auto":
        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return (lambda: torch.autocast("cuda", dtype=dtype)), dtype == torch.float16


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _read_rows(path: Path) -> list[dict]:
    """Rows of a metrics CSV; a row longer than the header (an older writer's bug) keeps its
    extra values under the names of the newest wider row's columns."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k is not None} for r in csv.DictReader(f)]


def _write_rows(path: Path, rows: list[dict]) -> None:
    header: list[str] = []
    for r in rows:
        header += [k for k in r if k not in header]
    with atomic_file(path, "w") as f:
        writer = csv.DictWriter(f, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows(rows)


def _append_csv(path: Path, row: dict) -> None:
    """Append an epoch's row. Evaluation epochs add metric columns, so the file is rewritten
    with the union of the columns (a plain append would leave rows longer than the header)."""
    _write_rows(path, _read_rows(path) + [row])


def _truncate_metrics(path: Path, last_epoch: int) -> None:
    """On resume, drop rows of epochs after the checkpoint (they will be redone)."""
    rows = _read_rows(path)
    if rows:
        _write_rows(path, [r for r in rows if int(r["epoch"]) <= last_epoch])


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Half-written files of a process that was killed mid-save (``.last.pt.tmp<pid>``): a run
    folder has one writer, so at its start none belongs to a live write."""
    for tmp in out_dir.glob(".*.tmp*"):
        with contextlib.suppress(OSError):
            tmp.unlink()
            log.info("removed %s, left by a write that was interrupted", tmp)


def fit(config: TrainConfig) -> dict:
    """Train (or resume) the run described by ``config``; returns the final metrics."""
    profile = config.resolved_profile()
    schedule = config.schedule()
    out_dir = Path(config.out_dir)
    device_type = "cuda" if (config.device.startswith("cuda") or
                             (config.device == "auto" and torch.cuda.is_available())) else "cpu"
    import torch.distributed as dist
    owns_group = not (dist.is_available() and dist.is_initialized())
    info = init_distributed(device_type)
    try:
        return _fit(config, profile, schedule, out_dir, info, device_type)
    finally:
        # Tear the group down ourselves: leaving it to interpreter exit let gloo's threads be
        # destroyed while joinable ("terminate called without an active exception", seen in CI).
        if info.enabled and owns_group:
            cleanup(info)


def _fit(config: TrainConfig, profile, schedule, out_dir: Path, info: DistInfo, device_type: str) -> dict:
    t_start = time.perf_counter()
    device = resolve_device(config.device, info)
    if profile.threads and device.type == "cpu":
        torch.set_num_threads(profile.threads)
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(out_dir)
    _seed_everything(config.seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)

    from distilkit.models import build_model
    model_name = config.model_name()
    model = build_model(model_name, **config.model_overrides).to(device)
    teacher: FrozenTeacher | None = load_teacher(config.teacher, device) if config.teacher else None
    if teacher is not None and not config.losses.distills:
        log.warning("a teacher was given but no distillation loss is on; it will not be used")
        teacher = None
    check_compatible(model, teacher, config.losses)

    root = resolve_data_root(config.data_root, profile, seed=config.data_seed,
                             progress=config.progress and info.is_main)
    data = build_run_data(root=root, model=model, profile=profile, batch_size=schedule.batch_size,
                          workers=profile.workers if config.workers is None else config.workers,
                          seed=config.seed, info=info, max_train_instances=config.max_train_instances
                          or profile.max_train_instances, max_val_instances=config.max_val_instances,
                          eval_batch_size=profile.eval_batch_size)
    iters_per_epoch = len(data.train_loader)

    train_model = model
    if info.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = build_optimizer(model.parameters(), schedule)
    scheduler = build_scheduler(optimizer, iters_per_epoch=iters_per_epoch, schedule=schedule)
    autocast, needs_scaler = autocast_for(device, config.amp)
    scaler = torch.amp.GradScaler("cuda") if needs_scaler else None

    start_epoch, best_ap, metrics, elapsed_before, started = 0, -1.0, {}, 0.0, now_iso()
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    metrics_csv = out_dir / "metrics.csv"
    if config.resume and last_path.exists():
        ckpt = load_checkpoint(last_path, map_location=device)
        if ckpt.get("resume_key") not in (None, config.resume_key()):
            raise ValueError(f"{last_path}: cannot resume, the checkpoint was trained with another "
                             f"config (model, losses, teacher, data or schedule differ; only the "
                             f"number of epochs may change); use a new out_dir or delete the folder")
        unwrap(model).load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        start_epoch, best_ap, metrics = ckpt["epoch"], ckpt["best_ap"], ckpt.get("metrics", {})
        elapsed_before, started = float(ckpt.get("elapsed_s", 0.0)), ckpt.get("started", started)
        if info.is_main:
            _truncate_metrics(metrics_csv, start_epoch)
            log.info("resumed %s at epoch %d", last_path, start_epoch)
    elif info.is_main and metrics_csv.exists():
        metrics_csv.unlink()  # a fresh run in an old folder starts a fresh curve

    def elapsed() -> float:  # wall seconds over every session of this run
        return elapsed_before + time.perf_counter() - t_start

    def checkpoint(epoch: int, *, full: bool) -> dict:
        ckpt = {"model_name": model_name, "model_overrides": dict(config.model_overrides),
                "config": config.to_dict(), "config_hash": config.hash(),
                "resume_key": config.resume_key(), "epoch": epoch,
                "state_dict": unwrap(model).state_dict(), "metrics": metrics, "best_ap": best_ap,
                "data_root": str(root), "elapsed_s": elapsed(), "started": started}
        if full:
            ckpt.update(optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                        scaler=scaler.state_dict() if scaler is not None else None, rng=rng_state())
        return ckpt

    if info.is_main:
        atomic_write_text(out_dir / "config.json", json.dumps(
            {"model_name": model_name, "config_hash": config.hash(), "config": config.to_dict()}, indent=2))
    eval_every = config.eval_every or profile.eval_every
    iteration = start_epoch * iters_per_epoch
    for epoch in range(start_epoch, schedule.epochs):
        data.set_epoch(epoch, config.seed)
        train_model.train()
        if teacher is not None:
            teacher.train(False)
        sums: dict[str, float] = {}
        t_epoch, t_data, samples = time.perf_counter(), 0.0, 0
        t_fetch = time.perf_counter()
        bar = tqdm(data.train_loader, desc=f"{model_name} epoch {epoch + 1}/{schedule.epochs}",
                   disable=not (config.progress and info.is_main), leave=False)
        for batch in bar:
            t_data += time.perf_counter() - t_fetch
            images = batch["image"].to(device, non_blocking=True)
            batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
            ctx = autocast() if autocast is not None else contextlib.nullcontext()
            with ctx:
                out = train_model(images)
                t_out = teacher(images) if teacher is not None else None
                terms = compute_losses(out, batch, config.losses, t_out)
                loss = sum(terms.values())
            if not torch.isfinite(loss):
                detail = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
                raise NonFiniteLossError(
                    f"non-finite loss at epoch {epoch + 1}, iteration {iteration} ({detail}); "
                    f"stopped. The last good checkpoint is kept at {last_path if last_path.exists() else '(none yet)'}"
                    "; lower the learning rate or check the data, then --resume")
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                if schedule.grad_clip:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), schedule.grad_clip)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                if schedule.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), schedule.grad_clip)
                optimizer.step()
            scheduler.step()
            iteration += 1
            samples += images.shape[0]
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
            bar.set_postfix(loss=f"{loss.item():.4f}")
            t_fetch = time.perf_counter()
        bar.close()
        wall = time.perf_counter() - t_epoch
        n_iter = max(1, iters_per_epoch)
        row = {"epoch": epoch + 1, "iteration": iteration, "lr": optimizer.param_groups[0]["lr"]}
        row.update(all_reduce_mean({f"train_{k}": v / n_iter for k, v in sums.items()}, info))
        row.update(train_samples_per_s=samples * info.world_size / wall, data_share=t_data / wall,
                   epoch_s=wall)
        last_epoch = epoch + 1 == schedule.epochs
        if last_epoch or (epoch + 1) % eval_every == 0:
            metrics = evaluate_model(model, data.val_loader, data.val_ann_file, device=device, info=info,
                                     flip_test=config.flip_test, dark=config.dark,
                                     progress=config.progress, autocast=autocast,
                                     results_file=out_dir / "val_results.json" if last_epoch else None)
            row.update(metrics)
        if info.is_main:
            is_best = "AP" in row and row["AP"] > best_ap
            if is_best:
                best_ap = row["AP"]
            _append_csv(metrics_csv, row)
            atomic_torch_save(checkpoint(epoch + 1, full=True), last_path)
            if is_best:
                atomic_torch_save(checkpoint(epoch + 1, full=False), best_path)
        barrier(info)
    final = dict(metrics)
    if "err_px" not in final:
        # the diagnostic is computed once, at the end (also for a run resumed after its last epoch).
        # Across ranks each value is the mean of the shards' values (shards hold near-equal numbers
        # of instances): close to, not exactly, the value over the pooled keypoints.
        local = keypoint_error_metrics(model, data.val_gt_loader, device=device,
                                       flip_test=config.flip_test, autocast=autocast)
        final.update(all_reduce_mean(local, info))
    if info.is_main:
        # the record first: a process killed between the two leaves no finished run without it
        write_run_record(out_dir, wall_s=elapsed(), started=started)
        atomic_write_text(out_dir / "final_metrics.json", json.dumps(
            {"model": model_name, "config_hash": config.hash(), **final}, indent=2))
    return final
