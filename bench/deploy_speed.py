"""Deployment speed on this CPU: DistilPose-S, DistilPose-L and the HRNet-W48 teacher, in
PyTorch eager and in onnxruntime, at 256x192, batch 1 and 32, in one run.

Not a test: a benchmark to run by hand and report (``tests/test_deploy_speed.py`` runs
``--tiny``). The paper's headline (Table 3) is deployment: DistilPose-S 4.9x and DistilPose-L
1.72x the teacher's throughput; this measures those ratios here, in both runtimes.

    .venv/bin/python bench/deploy_speed.py                        # -> results/deploy_speed.csv
    .venv/bin/python bench/deploy_speed.py --rounds 5 --rounds-large 3 --threads 2
    .venv/bin/python bench/deploy_speed.py --tiny --csv /tmp/deploy_speed.csv   # smoke sizes

What it measures, in one process:
  * the paper-size presets (``distilpose-s``, ``distilpose-l``, ``teacher-hrw48``; random
    weights, seed 0: speed does not depend on them), each as one BN-folded eval copy
    (``distilkit.export.deployable_copy``); PyTorch runs that copy eagerly under
    ``inference_mode`` (NCHW), onnxruntime runs the ONNX graph ``distilkit.export`` writes
    from the same copy (CPU provider, its default graph optimisations);
  * images/s of every (model, runtime, batch size): each round times ``--iters`` forwards
    (``--iters-large`` at batch >= 8), and the reported figure is the median over the rounds
    (``--rounds``; ``--rounds-large`` at batch >= 8, whose forwards take tens of seconds), with
    the best round beside it. Rounds interleave everything (batch 1 and 32, S, L, teacher,
    eager and onnxruntime, the runtime order alternating between rounds), so load from other
    processes on a shared machine hits all alike instead of biasing one;
  * after one warm-up forward of each (oneDNN primitives, onnxruntime's arena), which also
    records the largest |onnxruntime - eager| difference of the outputs at batch 1.
The S/teacher and L/teacher ratios are printed per runtime and batch size beside the paper's.

Threads: ``--threads`` (default 1) for both runtimes. On the busy 2-core machine these numbers
come from, two threads ran DistilPose-S 3-5x *slower* than one: each parallel region waits at
its barrier for a thread the other processes have descheduled. On a quiet machine pass the
core count. THP_MEM_ALLOC_ENABLE=1 as in ``bench/model_throughput.py`` (batch-32 activations
are ~100 MB; fresh pages would otherwise cost as much as the convolutions that fill them).
"""
from __future__ import annotations

import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # must precede `import torch`

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from distilkit.export import deployable_copy, export_onnx, onnx_session  # noqa: E402
from distilkit.models import build_model  # noqa: E402
from distilkit.models.complexity import write_csv  # noqa: E402
from distilkit.provenance import device_name  # noqa: E402

MODELS = ("distilpose-s", "distilpose-l", "teacher-hrw48")
TEACHER = "teacher-hrw48"
PAPER_SPEEDUP = {"distilpose-s": 4.9, "distilpose-l": 1.72, "teacher-hrw48": 1.0}  # Table 3
RUNTIMES = ("eager", "onnxruntime")
LARGE_BATCH = 8          # from this batch size on, --rounds-large / --iters-large apply


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class Runner:
    """One model in both runtimes: ``run(runtime, images)`` -> outputs as numpy arrays."""

    def __init__(self, preset: str, workdir: Path, threads: int) -> None:
        torch.manual_seed(0)
        self.model, _ = deployable_copy(build_model(preset), fold_bn=True)
        self.input_size = tuple(self.model.input_size)
        path = workdir / f"{preset}.onnx"
        t0 = time.perf_counter()
        export_onnx(self.model, path)
        self.export_s = time.perf_counter() - t0
        self.session = onnx_session(path, threads=threads)
        self.names = [o.name for o in self.session.get_outputs()]

    def run(self, runtime: str, images: torch.Tensor) -> list[np.ndarray]:
        if runtime == "onnxruntime":
            return self.session.run(self.names, {"images": images.numpy()})
        with torch.inference_mode():
            out = self.model(images)
        if self.model.kind == "heatmap":
            return [out.heatmaps.numpy()]
        return [t.numpy() for t in (out.coords, out.scores, out.sigmas) if t is not None]


def time_forwards(runner: Runner, runtime: str, images: torch.Tensor, iters: int) -> float:
    """Seconds per forward, over ``iters`` forwards in a row."""
    t0 = time.perf_counter()
    for _ in range(iters):
        runner.run(runtime, images)
    return (time.perf_counter() - t0) / iters


def measure(runners: dict[str, Runner], batch_sizes, *, rounds: int, rounds_large: int,
            iters: int, iters_large: int, log=print) -> tuple[dict, dict]:
    """(seconds per forward per (model, runtime, batch) over the rounds, largest |ort - eager|
    per model at batch 1 from the warm-up)."""
    h, w = next(iter(runners.values())).input_size
    gen = torch.Generator().manual_seed(0)
    inputs = {b: torch.randn(b, 3, h, w, generator=gen) for b in batch_sizes}
    times = {(m, rt, b): [] for m in runners for rt in RUNTIMES for b in batch_sizes}
    diffs = {}
    t_start = time.time()
    for b in batch_sizes:                               # warm-up, and the outputs compared
        for name, runner in runners.items():
            outs = {rt: runner.run(rt, inputs[b]) for rt in RUNTIMES}
            if b == min(batch_sizes):
                diffs[name] = max(float(np.abs(e - o).max())
                                  for e, o in zip(outs["eager"], outs["onnxruntime"]))
    log(f"  warm-up done ({time.time() - t_start:.0f} s)")
    for r in range(max(rounds, rounds_large)):
        order = RUNTIMES if r % 2 == 0 else RUNTIMES[::-1]
        for b in batch_sizes:
            large = b >= LARGE_BATCH
            if r >= (rounds_large if large else rounds):
                continue
            for name, runner in runners.items():
                for rt in order:
                    times[(name, rt, b)].append(time_forwards(runner, rt, inputs[b],
                                                              iters_large if large else iters))
        log(f"  round {r + 1}/{max(rounds, rounds_large)} done ({time.time() - t_start:.0f} s)")
    return times, diffs


def result_rows(times: dict, diffs: dict, runners: dict[str, Runner], args, sizes: dict) -> list[dict]:
    """One row per (model, runtime, batch): images/s (median and best round), the speedup
    over the teacher in the same runtime and batch, the paper's, and the provenance."""
    import onnxruntime

    teacher = next(m for m in runners if m.startswith(TEACHER))
    fps = {k: k[2] / statistics.median(v) for k, v in times.items()}
    common = {"input_size": f"{sizes['h']}x{sizes['w']}", "threads": args.threads,
              "device": f"{cpu_model()} ({device_name()})", "torch": torch.__version__,
              "onnxruntime": onnxruntime.__version__, "tiny": bool(args.tiny)}
    rows = []
    for (model, rt, b), v in times.items():
        base = model.removesuffix("-smoke")
        rows.append({"model": model, "runtime": rt, "batch_size": b, "images_per_s": fps[(model, rt, b)],
                     "images_per_s_best": b / min(v), "ms_per_image": 1000 * statistics.median(v) / b,
                     "rounds": len(v), "iters_per_round": args.iters_large if b >= LARGE_BATCH else args.iters,
                     "speedup_vs_teacher": fps[(model, rt, b)] / fps[(teacher, rt, b)],
                     "paper_speedup_vs_teacher": PAPER_SPEEDUP[base],
                     "onnx_vs_eager_max_abs_diff": f"{diffs[model]:.2e}",
                     "onnx_export_s": runners[model].export_s, **common})
    return rows


def print_table(rows: list[dict]) -> None:
    by = {(r["model"], r["runtime"], r["batch_size"]): r for r in rows}
    models = list(dict.fromkeys(r["model"] for r in rows))
    batches = sorted({r["batch_size"] for r in rows})
    print(f"\n{'model':20s} {'batch':>5s} {'eager img/s':>12s} {'onnxrt img/s':>13s} "
          f"{'ort/eager':>9s} {'x teacher eager':>15s} {'x teacher ort':>13s} {'paper':>6s}")
    for b in batches:
        for m in models:
            e, o = by[(m, "eager", b)], by[(m, "onnxruntime", b)]
            print(f"{m:20s} {b:5d} {e['images_per_s']:12.2f} {o['images_per_s']:13.2f} "
                  f"{o['images_per_s'] / e['images_per_s']:9.2f} {e['speedup_vs_teacher']:15.2f} "
                  f"{o['speedup_vs_teacher']:13.2f} {e['paper_speedup_vs_teacher']:6.2f}")
    print("(median of the rounds; 'x teacher': images/s over the teacher's in the same runtime "
          "and batch; paper: Table 3)")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    p.add_argument("--rounds", type=int, default=5, help="rounds at batch < 8 (default: 5)")
    p.add_argument("--rounds-large", type=int, default=2, help="rounds at batch >= 8 (default: 2)")
    p.add_argument("--iters", type=int, default=3, help="forwards per round at batch < 8 (default: 3)")
    p.add_argument("--iters-large", type=int, default=1,
                   help="forwards per round at batch >= 8 (default: 1)")
    p.add_argument("--threads", type=int, default=1, help="threads of both runtimes (default: 1)")
    p.add_argument("--tiny", action="store_true",
                   help="the -smoke presets (64x48), 1 round of 1 forward: checks the script")
    p.add_argument("--csv", default=None,
                   help="output CSV (default: results/deploy_speed.csv; none with --tiny)")
    args = p.parse_args(argv)
    if args.tiny:
        args.rounds = args.rounds_large = args.iters = args.iters_large = 1
    if args.csv is None and not args.tiny:
        args.csv = str(ROOT / "results" / "deploy_speed.csv")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    presets = [f"{m}-smoke" if args.tiny else m for m in MODELS]
    print(f"torch {torch.__version__}, {args.threads} thread(s), {cpu_model()}; batch "
          f"{args.batch_sizes}; rounds {args.rounds} (batch < {LARGE_BATCH}) / {args.rounds_large}, "
          f"forwards per round {args.iters} / {args.iters_large}", flush=True)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="deploy_speed") as tmp:
        runners = {}
        for preset in presets:
            runners[preset] = Runner(preset, Path(tmp), args.threads)
            print(f"  {preset}: exported in {runners[preset].export_s:.0f} s", flush=True)
        times, diffs = measure(runners, args.batch_sizes, rounds=args.rounds,
                               rounds_large=args.rounds_large, iters=args.iters,
                               iters_large=args.iters_large,
                               log=lambda s: print(s, flush=True))
    h, w = next(iter(runners.values())).input_size
    rows = result_rows(times, diffs, runners, args, {"h": h, "w": w})
    print_table(rows)
    print(f"largest |onnxruntime - eager| at batch {min(args.batch_sizes)}: "
          + ", ".join(f"{m} {d:.1e}" for m, d in diffs.items()))
    print(f"total {time.time() - t0:.0f} s")
    return _save(rows, args.csv)


def _save(rows: list[dict], path) -> int:
    if path:
        write_csv(rows, path)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
