"""CPU throughput of DistilPose-S, DistilPose-L and the HRNet-W48 teacher at 256x192, batch 32.

Not a test: a benchmark to run by hand and report.

    .venv/bin/python bench/model_throughput.py [--rounds 3] [--batch-size 32] [--csv PATH]

What it measures, in one process:
  * an fp32 GEMM peak: torch.mm of two N x N matrices into a preallocated output;
  * images/s of each model, median over ``--rounds`` rounds. Rounds interleave the GEMM and
    the models (gemm, S, L, teacher, gemm, S, ...), so load from other processes on a shared
    machine hits them alike instead of biasing one;
  * two variants of every model: "deployed" (BN folded into convs, channels-last; the
    headline numbers) and "as built" (eval mode, NCHW), all models treated the same way.
It prints S/teacher and L/teacher throughput ratios (paper, GPU: 4.90x and 1.72x), the
GFLOP/s DistilPose-S achieves as a fraction of the GEMM peak (counting every MAC, attention
included, as 2 FLOPs), and the models' MACs in the paper's convention vs 2.38 / 10.33 / 17.03.

THP_MEM_ALLOC_ENABLE=1 is set before torch is imported: at batch 32 single activations are
~100 MB, glibc serves them with fresh mmap'd pages, and first-touch page faults then cost
as much as the 1x1 convolutions that write them. Transparent huge pages remove most of that.
"""
from __future__ import annotations

import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # must precede `import torch`

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from distilkit.models import build_model  # noqa: E402
from distilkit.models.deploy import prepare_for_inference  # noqa: E402
from distilkit.models.complexity import count_macs, count_params, write_csv  # noqa: E402
from distilkit.sizes import parse_hw  # noqa: E402

MODELS = {"distilpose-s": 2.38, "distilpose-l": 10.33, "teacher-hrw48": 17.03}  # paper GFLOPs
TARGETS = {"S/teacher": 5.0, "L/teacher": 1.72, "S % of GEMM peak": 60.0}


def gemm_gflops(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> float:
    t0 = time.perf_counter()
    torch.mm(a, b, out=out)
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] / (time.perf_counter() - t0) / 1e9


def time_forward(model: torch.nn.Module, x: torch.Tensor) -> float:
    t0 = time.perf_counter()
    model(x)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--input-size", default="256x192")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--gemm-n", type=int, default=4096)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--variants", nargs="+", default=["deployed", "as-built"],
                   choices=["deployed", "as-built"])
    p.add_argument("--csv", default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = parse_hw(args.input_size)
    bs = args.batch_size
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE')}, "
          f"batch {bs} at {h}x{w}, {args.rounds} rounds", flush=True)

    built = {n: build_model(n, input_size=(h, w)).eval() for n in MODELS}
    macs = {n: count_macs(m) for n, m in built.items()}
    variants: dict[str, dict[str, torch.nn.Module]] = {}
    if "deployed" in args.variants:
        variants["deployed"] = {n: prepare_for_inference(m) for n, m in built.items()}
    if "as-built" in args.variants:
        variants["as-built"] = built
    x_nchw = torch.randn(bs, 3, h, w)
    inputs = {"deployed": x_nchw.contiguous(memory_format=torch.channels_last),
              "as-built": x_nchw}

    n = args.gemm_n
    a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    times: dict[tuple[str, str], list[float]] = {(v, m): [] for v in variants for m in MODELS}
    peaks: list[float] = []
    t_start = time.time()
    with torch.inference_mode():
        gemm_gflops(a, b, c)
        for v, models in variants.items():           # warm-up (oneDNN primitive caches)
            for m in models.values():
                m(inputs[v])
        for r in range(args.rounds):
            peaks.append(gemm_gflops(a, b, c))
            for v, models in variants.items():
                for name, m in models.items():
                    times[(v, name)].append(time_forward(m, inputs[v]))
            peaks.append(gemm_gflops(a, b, c))
            print(f"  round {r + 1}/{args.rounds} done ({time.time() - t_start:.0f} s)", flush=True)

    peak = statistics.median(peaks)
    print(f"\nfp32 GEMM peak (torch.mm {n}x{n}): {peak:.1f} GFLOP/s "
          f"(min {min(peaks):.1f}, max {max(peaks):.1f})")
    rows = []
    best_peak = max(peaks)
    for v in variants:
        ips = {m: bs / statistics.median(times[(v, m)]) for m in MODELS}
        best = {m: bs / min(times[(v, m)]) for m in MODELS}
        print(f"\n[{v}] images/s at batch {bs}: median of {args.rounds} rounds "
              f"(best round in brackets; on a shared machine 'best' is the less disturbed)")
        for m in MODELS:
            achieved = 2 * macs[m]["gmacs"] * ips[m]
            print(f"  {m:14s} {ips[m]:7.2f} img/s [{best[m]:6.2f}]  {achieved:6.1f} GFLOP/s "
                  f"({100 * achieved / peak:5.1f} % of GEMM peak)")
            rows.append({"variant": v, "model": m, "batch_size": bs, "input_size": f"{h}x{w}",
                         "images_per_s": ips[m], "images_per_s_best": best[m],
                         "gflops_per_s": achieved, "pct_gemm_peak": 100 * achieved / peak,
                         "gemm_peak": peak, "threads": torch.get_num_threads()})

        def summary(r: dict[str, float], pk: float) -> dict[str, float]:
            return {"S/teacher": r["distilpose-s"] / r["teacher-hrw48"],
                    "L/teacher": r["distilpose-l"] / r["teacher-hrw48"],
                    "S % of GEMM peak": 100 * 2 * macs["distilpose-s"]["gmacs"]
                    * r["distilpose-s"] / pk}
        got, got_best = summary(ips, peak), summary(best, best_peak)
        for key, target in TARGETS.items():
            ok = "met" if got[key] >= target else "NOT met"
            print(f"  {key:18s} {got[key]:6.2f} [{got_best[key]:6.2f}]  "
                  f"(target >= {target}: {ok} on the median)")

    print("\nComplexity per image (GMACs; paper 'GFLOPs' = mmcv count):")
    print(f"  {'model':14s} {'params M':>9s} {'gmacs':>7s} {'paper-conv':>10s} "
          f"{'mmcv':>7s} {'paper':>6s} {'paper-conv err':>14s}")
    for m, ref in MODELS.items():
        c = macs[m]
        err = 100 * (c["gmacs_paper"] / ref - 1)
        print(f"  {m:14s} {count_params(built[m]) / 1e6:9.2f} {c['gmacs']:7.3f} "
              f"{c['gmacs_paper']:10.3f} {c['gflops_mmcv']:7.3f} {ref:6.2f} {err:+13.2f}%")
    if args.csv:
        write_csv(rows, args.csv)
        print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
