"""``fit(config)``: one loop for teachers, plain students and distilled students.

Per epoch: train (tqdm), evaluate with the flip test and COCO AP when due, append a row to
``metrics.csv``, save ``last.pt`` (and ``best.pt`` on a new best AP). ``last.pt`` carries
model, optimizer, scheduler, scaler and RNG states at an epoch boundary; shuffling and
augmentation are functions of (seed, epoch), so a resumed run ends with the same weights
as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from distilkit.distill import FrozenTeacher, check_compatible, load_teacher
from distilkit.engine.checkpoint import rng_state, set_rng_state, unwrap
from distilkit.engine.config import TrainConfig, write_config
from distilkit.engine.data import RunData, build_run_data, resolve_data_root, training_data_kind
from distilkit.engine.device import autocast_for, resolve_device, seed_everything
from distilkit.engine.distributed import DistInfo, all_reduce_mean, barrier, cleanup, init_distributed
from distilkit.engine.evaluate import evaluate_model, keypoint_error_metrics, kpt_score_source
from distilkit.engine.heartbeat import Heartbeat
from distilkit.engine.metrics_csv import append_row, truncate_rows
from distilkit.engine.scalars import epoch_scalars
from distilkit.engine.schedule import build_optimizer, build_scheduler
from distilkit.files import atomic_torch_save, atomic_write_text
from distilkit.losses import compute_losses
from distilkit.models import build_model
from distilkit.models.checkpoint import load_checkpoint
from distilkit.profiles import Profile, Schedule
from distilkit.provenance import now_iso, write_run_record
from distilkit.teacher_store import BatchIdentity, TeacherOutputs, file_sha256, store_folder
from distilkit.weights import load_backbone

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or Inf; the last good checkpoint was kept."""


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
    owns_group = not (dist.is_available() and dist.is_initialized())
    info = init_distributed(device_type)
    try:
        return _fit(config, profile, schedule, out_dir, info)
    finally:
        # Tear the group down ourselves: leaving it to interpreter exit let gloo's threads be
        # destroyed while joinable ("terminate called without an active exception", seen in CI).
        if info.enabled and owns_group:
            cleanup(info)


def _fit(config: TrainConfig, profile: Profile, schedule: Schedule, out_dir: Path, info: DistInfo) -> dict:
    run = _setup(config, profile, schedule, out_dir, info)
    _resume_or_start(run)
    eval_every = config.eval_every or profile.eval_every
    scalars = epoch_scalars(out_dir, run.epoch, on=config.tensorboard and info.is_main)
    for epoch in range(run.epoch, schedule.epochs):
        row = _train_one_epoch(run, epoch)
        last_epoch = epoch + 1 == schedule.epochs
        if last_epoch or (epoch + 1) % eval_every == 0:
            run.heartbeat.evaluating(epoch)
            run.metrics = _evaluate(run, last_epoch)
            row.update(run.metrics)
        _end_epoch(run, epoch + 1, row)
        scalars.write(row)
    scalars.close()
    return _finish(run)


# ----------------------------------------------------------------------------- the run's state
@dataclass
class _Run:
    """What one fit holds between its steps."""

    config: TrainConfig
    schedule: Schedule
    out_dir: Path
    info: DistInfo
    device: torch.device
    model: torch.nn.Module                 # the bare model (saved, evaluated)
    train_model: torch.nn.Module           # the model under DDP when distributed
    teacher: TeacherOutputs | None         # the frozen teacher, live or from the shared store
    data: RunData
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    autocast: object                       # a context factory, or None
    scaler: torch.amp.GradScaler | None
    t_start: float
    heartbeat: Heartbeat
    epoch: int = 0                         # epochs done
    iteration: int = 0
    best_ap: float = -1.0
    metrics: dict = field(default_factory=dict)
    elapsed_before: float = 0.0            # wall seconds of earlier sessions (resumed runs)
    started: str = field(default_factory=now_iso)
    epoch_complete: bool = False           # the current epoch saw its last batch
    init_report: object = None             # weights.LoadReport of config.init_backbone

    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.pt"

    @property
    def metrics_csv(self) -> Path:
        return self.out_dir / "metrics.csv"

    def elapsed(self) -> float:
        """Wall seconds over every session of this run."""
        return self.elapsed_before + time.perf_counter() - self.t_start

    def checkpoint(self, *, full: bool) -> dict:
        """``last.pt`` (``full``: optimizer, scheduler, scaler and RNG too) or ``best.pt``."""
        c = self.config
        ckpt = {"model_name": c.model_name(), "model_overrides": dict(c.model_overrides),
                "config": c.to_dict(), "config_hash": c.hash(), "resume_key": c.resume_key(),
                "epoch": self.epoch, "state_dict": unwrap(self.model).state_dict(),
                "metrics": self.metrics, "best_ap": self.best_ap, "data_root": str(self.data.root),
                "train_data": training_data_kind(self.data.root),
                "elapsed_s": self.elapsed(), "started": self.started}
        if full:
            ckpt.update(optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
                        scaler=self.scaler.state_dict() if self.scaler is not None else None,
                        rng=rng_state())
        return ckpt


# ----------------------------------------------------------------------------- set-up and resume
def _setup(config: TrainConfig, profile: Profile, schedule: Schedule, out_dir: Path, info: DistInfo) -> _Run:
    """Model, teacher, data and optimizer, built in a fixed order (it fixes the RNG streams)."""
    t_start = time.perf_counter()
    device = resolve_device(config.device, info)
    if profile.threads and device.type == "cpu":
        torch.set_num_threads(profile.threads)
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(out_dir)
    seed_everything(config.seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)

    model = build_model(config.model_name(), **config.model_overrides)
    init_report = None      # weights.LoadReport: the keys loaded, missing and unused
    if config.init_backbone:
        init_report = load_backbone(model, config.init_backbone, verbose=info.is_main)
    # NCHW, not channels_last: 0.86-1.14x a step across the models and repeated runs of
    # bench/kernel_levers.py, within this machine's noise; and a checkpoint must evaluate later
    # to the bits its run reported
    model = model.to(device)
    teacher: FrozenTeacher | None = load_teacher(config.teacher, device) if config.teacher else None
    if teacher is not None and not config.losses.distills:
        log.warning("a teacher was given but no distillation loss is on; it will not be used")
        teacher = None
    check_compatible(model, teacher, config.losses)

    root = resolve_data_root(config.data_root, profile, seed=config.data_seed,
                             progress=config.progress and info.is_main)
    data = build_run_data(root=root, model=model, profile=profile, batch_size=schedule.batch_size,
                          workers=profile.workers if config.workers is None else config.workers,
                          seed=config.seed, info=info, teacher=config.losses.heatmap,
                          max_train_instances=config.max_train_instances
                          or profile.max_train_instances, max_val_instances=config.max_val_instances,
                          eval_batch_size=profile.eval_batch_size, model_base=config.model)
    train_model = torch.compile(model) if config.compiles() else model
    if info.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(
            train_model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = build_optimizer(model.parameters(), schedule)
    scheduler = build_scheduler(optimizer, iters_per_epoch=len(data.train_loader), schedule=schedule)
    autocast, needs_scaler = autocast_for(device, config.amp)
    outputs = _teacher_outputs(config, teacher, data, device, info) if teacher is not None else None
    return _Run(config=config, schedule=schedule, out_dir=out_dir, info=info, device=device, model=model,
                train_model=train_model, teacher=outputs, data=data, optimizer=optimizer,
                scheduler=scheduler, autocast=autocast,
                scaler=torch.amp.GradScaler("cuda") if needs_scaler else None, t_start=t_start,
                heartbeat=Heartbeat(out_dir, schedule.epochs, enabled=info.is_main),
                init_report=init_report)


def _teacher_outputs(config: TrainConfig, teacher: FrozenTeacher, data: RunData, device: torch.device,
                     info: DistInfo) -> TeacherOutputs:
    """The teacher, reading and writing the shared store when the config names one."""
    if not config.teacher_store:
        return TeacherOutputs(teacher, None)
    loader = data.train_loader
    identity = BatchIdentity(
        teacher_sha256=file_sha256(config.teacher),
        train_annotations_sha256=file_sha256(data.train_set.ann_file),
        data_root=str(Path(data.root).resolve()), seed=config.seed, batch_size=loader.batch_size,
        world_size=info.world_size, rank=info.rank, workers=loader.num_workers,
        augment=dataclasses.asdict(data.train_set.aug), input_size=tuple(data.train_set.input_size),
        max_train_instances=len(data.train_set), torch_version=torch.__version__,
        threads=torch.get_num_threads(), device_type=device.type)
    return TeacherOutputs(teacher, store_folder(config.teacher_store, config.teacher, identity),
                          batches_per_epoch=len(loader), cap_bytes=config.teacher_store_cap)


def _resume_or_start(run: _Run) -> None:
    """Continue from ``last.pt`` (``config.resume``), or start a fresh curve; write config.json."""
    config, path = run.config, run.last_path
    if config.resume and path.exists():
        ckpt = load_checkpoint(path, map_location=run.device)
        if ckpt.get("resume_key") not in (None, config.resume_key()):
            raise ValueError(f"{path}: cannot resume, the checkpoint was trained with another "
                             f"config (model, losses, teacher, data or schedule differ; only the "
                             f"number of epochs may change); use a new out_dir or delete the folder")
        unwrap(run.model).load_state_dict(ckpt["state_dict"])
        run.optimizer.load_state_dict(ckpt["optimizer"])
        run.scheduler.load_state_dict(ckpt["scheduler"])
        if run.scaler is not None and ckpt.get("scaler"):
            run.scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        run.epoch, run.best_ap, run.metrics = ckpt["epoch"], ckpt["best_ap"], ckpt.get("metrics", {})
        run.elapsed_before = float(ckpt.get("elapsed_s", 0.0))
        run.started = ckpt.get("started", run.started)
        if run.info.is_main:
            truncate_rows(run.metrics_csv, run.epoch)
            log.info("resumed %s at epoch %d", path, run.epoch)
    elif run.info.is_main and run.metrics_csv.exists():
        run.metrics_csv.unlink()  # a fresh run in an old folder starts a fresh curve
    run.iteration = run.epoch * len(run.data.train_loader)
    if run.info.is_main:
        write_config(config, run.out_dir / "config.json")


# ----------------------------------------------------------------------------- one epoch
def _train_one_epoch(run: _Run, epoch: int) -> dict:
    """Train over the epoch's batches; returns its metrics.csv row (mean loss terms, speed)."""
    run.data.set_epoch(epoch, run.config.seed)
    run.train_model.train()
    source = run.teacher.epoch(epoch) if run.teacher is not None else None
    try:
        return _train_batches(run, epoch, source)
    finally:
        if source is not None:    # a writer that saw every batch stores the epoch
            source.close(complete=run.epoch_complete)


def _train_batches(run: _Run, epoch: int, source) -> dict:
    run.epoch_complete = False
    sums: dict[str, float] = {}
    t_epoch, t_data, samples = time.perf_counter(), 0.0, 0
    t_fetch = time.perf_counter()
    bar = tqdm(run.data.train_loader, desc=f"{run.config.model_name()} epoch {epoch + 1}/{run.schedule.epochs}",
               disable=not (run.config.progress and run.info.is_main), leave=False)
    for step, batch in enumerate(bar):
        t_data += time.perf_counter() - t_fetch
        cpu_images = batch["image"]
        images = cpu_images.to(run.device, non_blocking=True)
        batch = {k: v.to(run.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        teach = (lambda x, step=step, cpu=cpu_images: source(step, x, cpu)) if source is not None else None
        terms, loss = _train_step(run, images, batch, epoch, teach)
        samples += images.shape[0]
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
        bar.set_postfix(loss=f"{loss.item():.4f}")
        run.heartbeat.batch(epoch, step + 1, len(run.data.train_loader), time.perf_counter() - t_epoch,
                            float(loss.detach()))
        t_fetch = time.perf_counter()
    bar.close()
    run.epoch_complete = True
    wall = time.perf_counter() - t_epoch
    n_iter = max(1, len(run.data.train_loader))
    row = {"epoch": epoch + 1, "iteration": run.iteration, "lr": run.optimizer.param_groups[0]["lr"]}
    row.update(all_reduce_mean({f"train_{k}": v / n_iter for k, v in sums.items()}, run.info))
    row.update(train_samples_per_s=samples * run.info.world_size / wall, data_share=t_data / wall,
               epoch_s=wall)
    return row


def _train_step(run: _Run, images: torch.Tensor, batch: dict, epoch: int, teach) -> tuple[dict, torch.Tensor]:
    """One optimizer step (``teach(images)``: the teacher's outputs, or None without one);
    NonFiniteLossError before any weight changes on a NaN/Inf loss."""
    ctx = run.autocast() if run.autocast is not None else contextlib.nullcontext()
    with ctx:
        out = run.train_model(images)
        t_out = teach(images) if teach is not None else None
        terms = compute_losses(out, batch, run.config.losses, t_out)
        loss = sum(terms.values())
    if not torch.isfinite(loss):
        detail = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
        kept = run.last_path if run.last_path.exists() else "(none yet)"
        raise NonFiniteLossError(
            f"non-finite loss at epoch {epoch + 1}, iteration {run.iteration} ({detail}); stopped. "
            f"The last good checkpoint is kept at {kept}; lower the learning rate or check the data, "
            "then --resume")
    run.optimizer.zero_grad(set_to_none=True)
    clip = run.schedule.grad_clip
    if run.scaler is not None:
        run.scaler.scale(loss).backward()
        if clip:
            run.scaler.unscale_(run.optimizer)
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), clip)
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), clip)
        run.optimizer.step()
    run.scheduler.step()
    run.iteration += 1
    return terms, loss


# ----------------------------------------------------------------------------- evaluate, save, finish
def _evaluate(run: _Run, last_epoch: bool) -> dict:
    """COCO metrics on detector boxes (flip test); the last epoch also writes val_results.json."""
    return evaluate_model(run.model, run.data.val_loader, run.data.val_ann_file, device=run.device,
                          info=run.info, flip_test=run.config.flip_test, dark=run.config.eval_dark(),
                          progress=run.config.progress,
                          results_file=run.out_dir / "val_results.json" if last_epoch else None,
                          kpt_scores=kpt_score_source(run.model, run.config.losses))


def _end_epoch(run: _Run, epochs_done: int, row: dict) -> None:
    """The epoch's row in metrics.csv, ``last.pt``, and ``best.pt`` on a new best AP."""
    run.epoch = epochs_done
    if run.info.is_main:
        is_best = "AP" in row and row["AP"] > run.best_ap
        if is_best:
            run.best_ap = row["AP"]
        append_row(run.metrics_csv, row)
        atomic_torch_save(run.checkpoint(full=True), run.last_path)
        if is_best:
            atomic_torch_save(run.checkpoint(full=False), run.out_dir / "best.pt")
    barrier(run.info)


def _finish(run: _Run) -> dict:
    """The final metrics with the ground-truth-box diagnostic; run.json, then final_metrics.json."""
    final = dict(run.metrics)
    if "err_px" not in final:
        # the diagnostic is computed once, at the end (also for a run resumed after its last epoch).
        # Across ranks each value is the mean of the shards' values (shards hold near-equal numbers
        # of instances): close to, not exactly, the value over the pooled keypoints.
        local = keypoint_error_metrics(run.model, run.data.val_gt_loader, device=run.device,
                                       flip_test=run.config.flip_test)
        final.update(all_reduce_mean(local, run.info))
    if run.model.kind == "heatmap" and run.config.eval_dark() and "AP" in final:
        final["AP_dark"] = final["AP"]      # the run's own evaluation already decoded with DARK
    elif run.model.kind == "heatmap" and "AP_dark" not in final:
        # Table 3 reports heatmap teachers both ways (72.5 / 75.2 AP): record DARK beside it
        final["AP_dark"] = evaluate_model(
            run.model, run.data.val_loader, run.data.val_ann_file, device=run.device, info=run.info,
            flip_test=run.config.flip_test, dark=True)["AP"]
    if run.info.is_main:
        # the record first: a process killed between the two leaves no finished run without it
        write_run_record(run.out_dir, wall_s=run.elapsed(), started=run.started)
        atomic_write_text(run.out_dir / "final_metrics.json", json.dumps(
            {"model": run.config.model_name(), "config_hash": run.config.hash(), **final}, indent=2))
    return final
