"""Which batch size learns most per CPU-second? (issue #25, part 3: a recipe probed for the budget)

The grid reported in results/recipe_probes.csv was run as::

    DISTILKIT_DATA=~/.cache/distilkit .venv/bin/python bench/recipe_probe.py --grid \
        --budget 300 --batch-sizes 16,32 --csv results/recipe_probes.csv

(launched with the default ``--batch-sizes 16,32,8`` and stopped before the batch-8 probes,
for time, on a machine loaded by other work). A CPU-second buys less on a loaded machine
(shared caches and memory bandwidth), so probes compared with each other should run under
similar load; ``train_wall_s`` / ``cpu_s`` in the CSV shows how contended each one was.

One probe: ``--kind teacher|plain|distilled --batch-size 16 --budget 300 --csv PATH``.

Not a test: a benchmark to run by hand. Rules of the issue: a probe is judged by its error
after a FIXED CPU TIME (``time.process_time`` of training, data loading included), on a
held-out 10 % of the synthetic TRAIN set (bench/_heldout.py), never on the val set the
tables report, with one seed (0) -- never by trying seeds. The recipe is the cpu profile's
(Adam, lr 1e-3, linear warm-up, x0.1 step decay at 7/8 of the run) fitted to the budget:
the mean step time so far sets the run's total iterations (first after 20 timed steps,
refitted every 20 steps until the decay starts), the warm-up is a fixed
number of SAMPLES (300 iterations x 16) so that batch sizes see the same warm-up, and the
decay falls at 7/8 of the estimated total. Training stops when the budget is spent.

Each probe runs with one torch thread and its data loaded in-process (0 workers), so that
process_time counts everything the probe costs; ``--grid`` runs the probes two at a time
as two one-thread processes, as the main job runs its rows on two cores.
"""
from __future__ import annotations

import argparse
import csv
import fcntl
import io
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TEACHER_CKPT = "/tmp/ref21/runs/cpu/teachers/hrw48-7c37047dee1c/best.pt"
# kind -> (model, loss switches, teacher checkpoint)
KINDS = {"teacher": ("teacher-hrw48-cpu", "heatmap", None),
         "plain": ("distilpose-s-cpu", "reg", None),
         "distilled": ("distilpose-s-cpu", "reg,kt,vt,sh,cs", TEACHER_CKPT)}
SEED = 0
WARMUP_SAMPLES = 300 * 16      # the cpu profile's warm-up at its batch size
DECAY_AT = 7 / 8               # the cpu profile's milestone: epoch 7 of 8
ESTIMATE_STEPS = 20            # the schedule is (re)fitted to the budget every this many steps
COLUMNS = ["finished", "kind", "model", "losses", "batch_size", "budget_cpu_s", "cpu_s", "steps",
           "est_total_steps", "warmup_iters", "decay_iter", "samples_seen", "epochs_seen",
           "err_px", "PCK10", "score_auc", "train_loss_last50", "train_wall_s", "eval_wall_s",
           "train_instances", "heldout_instances", "threads", "workers", "seed", "torch"]


@dataclass(frozen=True)
class Probe:
    kind: str
    batch_size: int
    budget_s: float


@dataclass
class LrPlan:
    """The lr multiplier per iteration; ``total`` is set once the step time is known."""

    warmup_iters: int
    warmup_ratio: float
    total: int | None = None

    @property
    def decay_iter(self) -> int | None:
        return None if self.total is None else int(round(DECAY_AT * self.total))

    def decayed(self, it: int) -> bool:
        return self.decay_iter is not None and it >= self.decay_iter

    def factor(self, it: int) -> float:
        f = 1.0
        if it < self.warmup_iters:
            f = self.warmup_ratio + (1.0 - self.warmup_ratio) * it / self.warmup_iters
        if self.decayed(it):
            f *= 0.1
        return f


# ----------------------------------------------------------------------------- one probe
def _setup(probe: Probe, root: Path):
    """Model, frozen teacher, data and optimizer, built as the trainer builds them."""
    import torch

    from distilkit.distill import check_compatible, load_teacher
    from distilkit.engine.data import build_run_data
    from distilkit.engine.distributed import DistInfo
    from distilkit.engine.schedule import build_optimizer
    from distilkit.losses import parse_loss_switches
    from distilkit.models import build_model
    from distilkit.profiles import CPU

    model_name, switches, teacher_ckpt = KINDS[probe.kind]
    losses = parse_loss_switches(switches)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True, warn_only=True)
    model = build_model(model_name)
    teacher = load_teacher(teacher_ckpt, "cpu") if teacher_ckpt else None
    check_compatible(model, teacher, losses)
    data = build_run_data(root=root, model=model, profile=CPU, batch_size=probe.batch_size,
                          workers=0, seed=SEED, info=DistInfo(), teacher=losses.heatmap,
                          eval_batch_size=CPU.eval_batch_size)
    base = CPU.teacher_schedule if losses.heatmap else CPU.student_schedule
    optimizer = build_optimizer(model.parameters(), replace(base, batch_size=probe.batch_size))
    plan = LrPlan(warmup_iters=max(1, round(WARMUP_SAMPLES / probe.batch_size)),
                  warmup_ratio=base.warmup_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, plan.factor)
    return model, model_name, losses, teacher, data, optimizer, scheduler, plan


def _step(model, teacher, batch, losses, optimizer, scheduler) -> float:
    from distilkit.losses import compute_losses

    out = model(batch["image"])
    terms = compute_losses(out, batch, losses, teacher(batch["image"]) if teacher else None)
    loss = sum(terms.values())
    if not loss.isfinite():
        raise FloatingPointError(f"non-finite loss {float(loss)}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return float(loss.detach())


def _train(probe: Probe, model, teacher, data, losses, optimizer, scheduler, plan) -> dict:
    """Train until ``probe.budget_s`` CPU-seconds are spent. The first step (one-off
    allocations) is not timed; the schedule's total is fitted from the steps after it."""
    model.train()
    steps = samples = epoch = 0
    recent: list[float] = []
    t0, w0 = time.process_time(), time.perf_counter()
    t_first = None
    while True:
        data.set_epoch(epoch, SEED)
        for batch in data.train_loader:
            used = time.process_time() - t0
            if used >= probe.budget_s:
                return {"steps": steps, "samples_seen": samples, "cpu_s": used,
                        "train_wall_s": time.perf_counter() - w0,
                        "epochs_seen": samples / len(data.train_set),
                        "train_loss_last50": sum(recent) / max(1, len(recent))}
            recent = (recent + [_step(model, teacher, batch, losses, optimizer, scheduler)])[-50:]
            steps += 1
            samples += batch["image"].shape[0]
            if steps == 1:
                t_first = time.process_time()
            elif (steps - 1) % ESTIMATE_STEPS == 0 and not plan.decayed(steps):
                # refitted until the decay starts: early steps run slower (the smoke test's
                # first 20 steps put the decay at ~79 % of the run, not 7/8)
                now = time.process_time()
                per_step = (now - t_first) / (steps - 1)
                plan.total = steps + max(0, int((probe.budget_s - (now - t0)) / per_step))
        epoch += 1


def run_probe(probe: Probe, root: Path) -> dict:
    import torch

    from distilkit.engine.evaluate import keypoint_error_metrics

    torch.set_num_threads(1)
    model, model_name, losses, teacher, data, optimizer, scheduler, plan = _setup(probe, root)
    result = _train(probe, model, teacher, data, losses, optimizer, scheduler, plan)
    w0 = time.perf_counter()
    metrics = keypoint_error_metrics(model, data.val_gt_loader, device=torch.device("cpu"),
                                     flip_test=True)
    return {"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "kind": probe.kind, "model": model_name,
            "losses": losses.switches(), "batch_size": probe.batch_size,
            "budget_cpu_s": probe.budget_s, **result, "est_total_steps": plan.total,
            "warmup_iters": plan.warmup_iters, "decay_iter": plan.decay_iter, **metrics,
            "eval_wall_s": time.perf_counter() - w0, "train_instances": len(data.train_set),
            "heldout_instances": len(data.val_gt_loader.dataset), "threads": torch.get_num_threads(),
            "workers": 0, "seed": SEED, "torch": torch.__version__}


# ----------------------------------------------------------------------------- CSV and grid
def append_row(path: Path, row: dict) -> None:
    """One line per probe under an exclusive lock: two grid processes append to one file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    with open(path, "a", newline="") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        if f.tell() == 0:
            writer.writeheader()
        writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
        f.write(buf.getvalue())
        f.flush()


def grid_probes(kinds: list[str], batch_sizes: list[int], budget: float) -> list[Probe]:
    # batch sizes in the order given, so the last (batch 8 by default) can be dropped if late
    return [Probe(k, b, budget) for b in batch_sizes for k in kinds]


def run_grid(probes: list[Probe], csv_path: Path, parallel: int = 2) -> None:
    """Each probe in a fresh one-thread process, ``parallel`` at a time."""
    logs = Path(tempfile.mkdtemp(prefix="recipe_probe_"))
    pending, running = list(probes), []
    while pending or running:
        while pending and len(running) < parallel:
            p = pending.pop(0)
            log = logs / f"{p.kind}-b{p.batch_size}.log"
            cmd = [sys.executable, __file__, "--kind", p.kind, "--batch-size", str(p.batch_size),
                   "--budget", str(p.budget_s), "--csv", str(csv_path)]
            with open(log, "w") as out:     # the child keeps its own copy of the descriptor
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
            running.append((p, log, proc))
            print(f"started {p} (log {log})", flush=True)
        time.sleep(2)
        for item in [r for r in running if r[2].poll() is not None]:
            running.remove(item)
            print(f"finished {item[0]} rc={item[2].returncode}", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", choices=sorted(KINDS))
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--budget", type=float, default=300.0, help="training CPU-seconds per probe")
    ap.add_argument("--csv", type=Path, default=ROOT / "results" / "recipe_probes.csv")
    ap.add_argument("--grid", action="store_true", help="every kind x batch size, two at a time")
    ap.add_argument("--kinds", default="teacher,plain,distilled")
    ap.add_argument("--batch-sizes", default="16,32,8")
    args = ap.parse_args(argv)
    from _heldout import heldout_root

    root = heldout_root()          # built here, once, before any child could race for it
    if args.grid:
        probes = grid_probes(args.kinds.split(","), [int(b) for b in args.batch_sizes.split(",")],
                             args.budget)
        run_grid(probes, args.csv)
        return
    if args.kind is None:
        ap.error("give --kind or --grid")
    row = run_probe(Probe(args.kind, args.batch_size, args.budget), root)
    append_row(args.csv, row)
    print(row, flush=True)


if __name__ == "__main__":
    main()
