"""The main job's levers, side by side, and its FLOP floor. Not a test: run by hand, niced.

    nice -n 10 .venv/bin/python bench/main_job_speed.py [--rounds 4] [--steps 50]

For every model type of the cpu profile's main job (64x48 inputs, batch 16, one thread, as the
main job's rows run) it measures, in CPU seconds of the processes doing the work (so time the
machine gives other processes is not counted; the rows of the main job share two cores, so
CPU seconds are what a lever saves):

  step     a training step (forward, a loss on every output, backward, Adam), eager and under
           torch.compile, ``--steps`` steps each per round (200 per variant by default);
  loader   a batch of the profile's synthetic training set through a one-worker DataLoader (the
           profile's), the worker decoding each image from its file, and reading the decoded
           images kept in memory (distilkit.data.decoded); the worker's CPU is counted;
  compile  the cold compile of the model's training graph (a fresh inductor cache; CPU seconds
           of this process and its g++ children, compile threads 1) and the wall seconds of a
           warm start from that cache (dynamo reset, same process: a lower bound of a new
           process). Models benched later reuse kernels the earlier ones compiled, so their
           cold compiles are lower bounds.

Rounds interleave the variants (eager, compiled, files, memory; the order alternates each
round) so load hits them alike; each figure is the median over rounds. Speed-ups are of CPU per
training step including the loader: ``compile_x`` the step alone, ``memory_x`` eager with images
kept, ``both_x`` compiled with images kept. ``reproduce --plan`` scales the committed reference's
row times by these (``distilkit.experiments.progress``).

First it writes ``main_job_floor.json``: the job's FLOPs (FlopCounterMode: forward + backward
per sample x samples x epochs over every row, the teachers' forwards in distilled rows, once
per shared store, and the final evaluation, flip test included) and the measured fp32 GEMM peak
of one core (1024x1024 matmuls, CPU time, best of 5), times two cores: the job's FLOP floor.
Then ``main_job_speed.csv``, one row per model type, rewritten as each is measured.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from distilkit.data.decoded import keep_decoded  # noqa: E402
from distilkit.data.topdown import TopDownCocoDataset  # noqa: E402
from distilkit.engine.data import codec_for, resolve_data_root  # noqa: E402
from distilkit.models import build_model  # noqa: E402
from distilkit.profiles import CPU  # noqa: E402

# most rows first: each model's row is written as soon as it is measured
MODELS = ("distilpose-s-cpu", "distilpose-l-cpu", "deeppose-r50-cpu", "teacher-stemnet-cpu",
          "teacher-hrw48-cpu", "simplebaseline-r50-cpu")
BATCH = 16


def _loss(out) -> torch.Tensor:
    """A stand-in loss on every output (the kit's losses cost 0.1-0.8 ms of a 75 ms step)."""
    total = 0.0
    for name in ("coords", "scores", "sigmas", "heatmaps", "kpt_tokens", "vis_tokens"):
        value = getattr(out, name)
        if value is not None:
            total = total + value.float().pow(2).mean()
    return total


def _steps_cpu_s(model, x, opt, steps: int) -> float:
    t0 = time.process_time()
    for _ in range(steps):
        loss = _loss(model(x))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.process_time() - t0) / steps


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _loader_cpu_s(dataset, batches: int, seed: int) -> float:
    """CPU seconds per batch of this process and the worker (counted once it has exited)."""
    gen = torch.Generator()
    gen.manual_seed(seed)
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, drop_last=True, num_workers=CPU.workers,
                        generator=gen, persistent_workers=False)
    c0, p0 = _children_cpu_s(), time.process_time()
    batch_iter = iter(loader)
    for _ in range(batches):
        next(batch_iter)
    del batch_iter            # the worker exits and is waited for: its CPU enters RUSAGE_CHILDREN
    return (_children_cpu_s() - c0 + time.process_time() - p0) / batches


def _datasets(root: Path, model) -> tuple[TopDownCocoDataset, TopDownCocoDataset]:
    """The model's training set read from files, and the same set with its images kept."""
    codec = codec_for(model, heatmap_sigma=CPU.heatmap_sigma)
    teacher = model.kind == "heatmap"
    kw = {"split": "train", "input_size": tuple(model.input_size), "codec": codec, "train": True,
          "aug": CPU.augment_for(teacher=teacher)}
    files, memory = TopDownCocoDataset(root, **kw), TopDownCocoDataset(root, **kw)
    if not keep_decoded(memory):
        raise SystemExit(f"{root}: the training set's decoded images exceed the limit")
    return files, memory


def _compile_times(model, x, opt) -> tuple[float, float]:
    """(cold CPU, warm wall) seconds to the first compiled step; the caller set a fresh cache."""
    compiled = torch.compile(model)
    c0, p0 = _children_cpu_s(), time.process_time()
    _steps_cpu_s(compiled, x, opt, 1)
    cold = _children_cpu_s() - c0 + time.process_time() - p0
    torch._dynamo.reset()
    compiled = torch.compile(model)
    t0 = time.perf_counter()
    _steps_cpu_s(compiled, x, opt, 1)
    return cold, time.perf_counter() - t0


def flops_per_sample(model, x, *, backward: bool) -> float:
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        if backward:
            _loss(out).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / x.shape[0]


def gemm_peak_flops(size: int = 1024, reps: int = 30, rounds: int = 5) -> float:
    """fp32 matmul FLOP per CPU second of one thread, the best round."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = 0.0
    for _ in range(rounds):
        t0 = time.process_time()
        for _ in range(reps):
            torch.mm(a, b)
        best = max(best, 2 * size**3 * reps / (time.process_time() - t0))
    return best


def bench_model(name: str, root: Path, *, rounds: int, steps: int, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    model = build_model(name).train()
    x = torch.randn(BATCH, 3, *model.input_size)
    eager_opt = torch.optim.Adam(model.parameters(), lr=1e-5)
    twin = build_model(name).train()
    twin.load_state_dict(model.state_dict())
    compiled_opt = torch.optim.Adam(twin.parameters(), lr=1e-5)
    cold, warm = _compile_times(twin, x, compiled_opt)
    compiled = torch.compile(twin)
    files, memory = _datasets(root, model)
    _steps_cpu_s(model, x, eager_opt, 3)
    _steps_cpu_s(compiled, x, compiled_opt, 3)
    runs = {"eager": lambda: _steps_cpu_s(model, x, eager_opt, steps),
            "compiled": lambda: _steps_cpu_s(compiled, x, compiled_opt, steps),
            "files": lambda: _loader_cpu_s(files, steps, seed),
            "memory": lambda: _loader_cpu_s(memory, steps, seed)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(rounds):
        for key in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            times[key].append(runs[key]())
    ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    base = ms["eager"] + ms["files"]
    return {"model": name, "step_eager_ms": ms["eager"], "step_compiled_ms": ms["compiled"],
            "loader_files_ms": ms["files"], "loader_memory_ms": ms["memory"],
            "compile_x": ms["eager"] / ms["compiled"], "memory_x": base / (ms["eager"] + ms["memory"]),
            "both_x": base / (ms["compiled"] + ms["memory"]), "compile_cold_s": cold,
            "compile_warm_s": warm, "profile_compiles": CPU.compiles(name), "rounds": rounds, "steps": steps, "threads": 1,
            "torch": torch.__version__}


def job_flops(per_sample_train: dict[str, float], forward: dict[str, float], n_train: int, n_val: int) -> float:
    """FLOPs of the cpu main job: every row's training, its teachers' forwards (once per shared
    store) and one final evaluation with flip test (forward x 2 on detector boxes, x 1 on GT)."""
    from distilkit.experiments.plan import Recipe
    from distilkit.experiments.reproduce import plan_runs
    from distilkit.experiments.scheduling import store_key

    runs = plan_runs([4, 5, 6], Recipe("cpu"), seeds=1, noise_seeds=3, runs_dir=Path("/nonexistent"))
    total, stores = 0.0, set()
    for job in runs:
        name, epochs = job.config.model_name(), job.config.schedule().epochs
        total += per_sample_train[name] * n_train * epochs + forward[name] * n_val * 3
        if job.config.teacher:
            key = store_key(job)
            if key is None or key not in stores:
                teacher = "teacher-hrw48-cpu" if "hrw48" in job.config.teacher else "teacher-stemnet-cpu"
                total += forward[teacher] * n_train * epochs
            stores.add(key)
    return total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--steps", type=int, default=50, help="training steps (and batches) per variant per round")
    p.add_argument("--models", nargs="*", default=list(MODELS))
    p.add_argument("--out", type=Path, default=Path("results"), help="folder of the two output files")
    p.add_argument("--floor-only", action="store_true",
                   help="rewrite main_job_floor.json for today's plan from its per-sample FLOPs and GEMM peak, "
                        "measuring nothing (FLOPs per sample are exact; the peak keeps its earlier measurement)")
    args = p.parse_args(argv)
    if args.floor_only:
        replan_floor(args.out / "main_job_floor.json")
        return 0
    torch.set_num_threads(1)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="main_job_speed_inductor_")
    os.environ["TORCHINDUCTOR_COMPILE_THREADS"] = "1"     # g++ as waited children: their CPU is counted
    root = resolve_data_root(None, CPU, progress=False)
    args.out.mkdir(parents=True, exist_ok=True)
    write_floor(args.out / "main_job_floor.json", root)
    rows = []
    for name in args.models:     # the CSV is rewritten after each model: a stopped run keeps its rows
        row = bench_model(name, root, rounds=args.rounds, steps=args.steps)
        rows.append({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
        print(json.dumps(rows[-1]), flush=True)
        with open(args.out / "main_job_speed.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


def write_floor(path: Path, root: Path) -> None:
    train, forward = {}, {}
    for name in MODELS:
        torch.manual_seed(0)
        model = build_model(name).train()
        x = torch.randn(BATCH, 3, *model.input_size)
        train[name] = flops_per_sample(model, x, backward=True)
        with torch.no_grad():
            forward[name] = flops_per_sample(model.eval(), x, backward=False)
    n_train = len(TopDownCocoDataset(root, split="train", input_size=CPU.input_size)) // BATCH * BATCH
    n_val = len(TopDownCocoDataset(root, split="val", input_size=CPU.input_size))
    flops, peak = job_flops(train, forward, n_train, n_val), gemm_peak_flops()
    floor = {"job_tflop": round(flops / 1e12, 1), "gemm_gflops_one_core": round(peak / 1e9, 1), "cores": 2,
             "floor_min": round(flops / (2 * peak) / 60, 1), "train_samples": n_train, "val_samples": n_val,
             "train_gflop_per_sample": {k: round(v / 1e9, 4) for k, v in train.items()},
             "forward_gflop_per_sample": {k: round(v / 1e9, 4) for k, v in forward.items()},
             "torch": torch.__version__}
    path.write_text(json.dumps(floor, indent=2) + "\n")
    print(json.dumps(floor), flush=True)


def replan_floor(path: Path) -> None:
    """The floor of today's plan (epochs, rows) from a floor file's per-sample FLOPs and peak: for a
    machine that is busy (a reference run), where measuring the peak again would read it low."""
    floor = json.loads(path.read_text())
    train = {k: v * 1e9 for k, v in floor["train_gflop_per_sample"].items()}
    forward = {k: v * 1e9 for k, v in floor["forward_gflop_per_sample"].items()}
    flops = job_flops(train, forward, floor["train_samples"], floor["val_samples"])
    peak = floor["gemm_gflops_one_core"] * 1e9
    floor.update(job_tflop=round(flops / 1e12, 1), floor_min=round(flops / (floor["cores"] * peak) / 60, 1))
    path.write_text(json.dumps(floor, indent=2) + "\n")
    print(json.dumps(floor), flush=True)


if __name__ == "__main__":
    sys.exit(main())
