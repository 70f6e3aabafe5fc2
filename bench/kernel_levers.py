"""Training-step time of each cpu-profile model under the kernel levers, side by side.

Not a test: a benchmark to run by hand and report.

    .venv/bin/python bench/kernel_levers.py [--rounds 5] [--steps 20] [--csv results/kernel_levers.csv]

One process, one thread (the main job runs one-thread rows). For every model of the main job at
the cpu profile (64x48 inputs, batch 16) it times a training step (forward, a loss on every
output the model makes, backward, Adam step) in these variants:

  baseline        NCHW model and batch, Adam (torch's default, foreach)
  channels_last   model and batch in channels-last memory format
  fused_adam      NCHW with Adam(fused=True)
  cl+fused_adam   channels_last with Adam(fused=True)
  cl+single_adam  channels_last with Adam(foreach=False)

Steps are timed in CPU seconds of this one-thread process (``time.process_time``), so time the
machine gives to other processes is not counted; rounds interleave the variants (A, B, C, D, A,
B, ...) so what load still does (caches, memory bandwidth) hits them alike. Each variant's time
is the median over rounds of the mean step time. Printed and written
per model: the median step in ms and each variant's speed-up over the baseline.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from distilkit.models import build_model  # noqa: E402

MODELS = ("teacher-hrw48-cpu", "teacher-stemnet-cpu", "simplebaseline-r50-cpu", "distilpose-s-cpu",
          "distilpose-l-cpu", "deeppose-r50-cpu")
VARIANTS = {
    "baseline": dict(channels_last=False, adam={}),
    "channels_last": dict(channels_last=True, adam={}),
    "fused_adam": dict(channels_last=False, adam={"fused": True}),
    "cl+fused_adam": dict(channels_last=True, adam={"fused": True}),
    "cl+single_adam": dict(channels_last=True, adam={"foreach": False}),
}


def _loss(out) -> torch.Tensor:
    """A stand-in loss that reaches every output the model makes (the kernels are what is timed)."""
    total = 0.0
    for name in ("coords", "scores", "sigmas", "heatmaps", "kpt_tokens", "vis_tokens"):
        value = getattr(out, name)
        if value is not None:
            total = total + value.float().pow(2).mean()
    return total


def _setup(name: str, variant: dict, batch: int):
    torch.manual_seed(0)
    model = build_model(name).train()
    h, w = model.input_size
    x = torch.randn(batch, 3, h, w)
    if variant["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, **variant["adam"])
    return model, x, opt


def _mean_step_s(model, x, opt, steps: int) -> float:
    # CPU time of this one-thread process: time the machine gives other processes is not counted
    t0 = time.process_time()
    for _ in range(steps):
        loss = _loss(model(x))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.process_time() - t0) / steps


def bench_model(name: str, *, rounds: int, steps: int, batch: int) -> dict[str, float]:
    states = {v: _setup(name, spec, batch) for v, spec in VARIANTS.items()}
    for model, x, opt in states.values():      # warm-up: allocator, oneDNN primitive caches
        _mean_step_s(model, x, opt, 2)
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(rounds):
        for v, (model, x, opt) in states.items():
            times[v].append(_mean_step_s(model, x, opt, steps))
    return {v: statistics.median(t) for v, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=20, help="steps per variant per round")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--models", nargs="*", default=list(MODELS))
    p.add_argument("--csv", type=Path, help="write one row per model and variant here")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for name in args.models:
        step = bench_model(name, rounds=args.rounds, steps=args.steps, batch=args.batch_size)
        base = step["baseline"]
        print(f"{name:<24}" + "  ".join(f"{v} {s * 1e3:6.1f} ms ({base / s:.2f}x)" for v, s in step.items()),
              flush=True)
        rows += [{"model": name, "variant": v, "batch_size": args.batch_size, "threads": 1,
                  "step_ms": round(s * 1e3, 2), "speedup_vs_baseline": round(base / s, 3),
                  "rounds": args.rounds, "steps_per_round": args.steps, "torch": torch.__version__}
                 for v, s in step.items()]
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
