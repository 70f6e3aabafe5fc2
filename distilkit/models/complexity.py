"""Complexity profiler: parameters, MACs in two conventions, and throughput.

Columns of a profile row:
    params_m     trainable parameters / 1e6 (what mmcv and the paper count; the fixed
                 sine position embedding is a buffer, not a parameter)
    gmacs        multiply-accumulates / 1e9 of EVERY conv, deconv, linear and matmul,
                 attention products (Q K^T and A V) included. Counted with
                 torch.utils.flop_counter on the explicit-attention path, because the
                 counter cannot see inside the CPU's fused SDPA kernel.
    gmacs_paper  the paper's convention: conv, deconv and linear MACs only -- the mmcv
                 counter hooks nn.Modules, so the attention matmuls (plain tensor ops in
                 TokenPose/DistilPose) are missed. For a pure CNN gmacs == gmacs_paper.
    gflops_mmcv  what mmcv's ``get_model_complexity_info`` prints as "GFLOPs" (the paper's
                 number): gmacs_paper + conv biases + one op per element for norms
                 (two with affine), ReLU, pooling and upsampling. GELU is not counted.
    fps_b{B}     images / s at batch B, median of ``repeats`` timed forwards after warm-up,
                 under torch.inference_mode, all batch sizes of a model in one process.
All counts are per image (batch 1).
"""
from __future__ import annotations

import argparse
import csv
import inspect
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from distilkit.cli_args import HelpFormatter, positive_int
from distilkit.files import atomic_file
from distilkit.models import build_model
from distilkit.models.hrnet import ResizeTo
from distilkit.sizes import parse_hw

PAPER_CSV = Path(__file__).resolve().parent / "paper_complexity.csv"   # package data: the paper's figures
COLUMNS = ["model", "input_size", "params_m", "gmacs", "gmacs_paper", "gflops_mmcv"]

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)
_ACTS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _dummy_input(model: nn.Module, input_size: tuple[int, int] | None, batch: int,
                 device: str | torch.device) -> torch.Tensor:
    h, w = input_size or getattr(model, "input_size")
    return torch.randn(batch, 3, h, w, device=device)


def count_macs(model: nn.Module, input_size: tuple[int, int] | None = None,
               device: str | torch.device = "cpu") -> dict[str, float]:
    """{"gmacs", "gmacs_paper", "gflops_mmcv"} for one image (see the module docstring)."""
    model = model.eval()
    x = _dummy_input(model, input_size, 1, device)
    tally = {"macs": 0, "bias": 0, "elementwise": 0}

    def hook(m: nn.Module, inputs: tuple[Any, ...], out: torch.Tensor) -> None:
        inp = inputs[0]
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
            tally["macs"] += out.numel() * k
            tally["bias"] += out.numel() if m.bias is not None else 0
        elif isinstance(m, nn.ConvTranspose2d):
            # every input pixel scatters into kh*kw*C_out/groups outputs
            k = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            tally["macs"] += inp.numel() * k
            tally["bias"] += out.numel() if m.bias is not None else 0
        elif isinstance(m, nn.Linear):
            tally["macs"] += inp.numel() * m.out_features   # bias adds not counted (mmcv)
        elif isinstance(m, _NORMS):
            affine = getattr(m, "affine", False) or getattr(m, "elementwise_affine", False)
            tally["elementwise"] += inp.numel() * (2 if affine else 1)
        elif isinstance(m, _ACTS) or isinstance(m, (nn.Upsample, ResizeTo)):
            tally["elementwise"] += out.numel()
        elif isinstance(m, _POOLS):
            tally["elementwise"] += inp.numel()

    counted = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Upsample, ResizeTo,
               *_NORMS, *_ACTS, *_POOLS)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, counted)]
    try:
        with torch.no_grad():
            model(x)  # module hooks see the same layers whichever attention kernel runs
    finally:
        for h in handles:
            h.remove()
    # explicit attention, so Q K^T and A V appear as matmuls the FLOP counter sees
    kwargs = {"return_attention": True} if _accepts(model, "return_attention") else {}
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x, **kwargs)
    macs, bias, elem = tally["macs"], tally["bias"], tally["elementwise"]
    return {
        "gmacs": fc.get_total_flops() / 2 / 1e9,
        "gmacs_paper": macs / 1e9,
        "gflops_mmcv": (macs + bias + elem) / 1e9,
    }


def _accepts(model: nn.Module, arg: str) -> bool:
    try:
        return arg in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def measure_fps(model: nn.Module, input_size: tuple[int, int] | None = None, *,
                batch_size: int = 1, repeats: int = 5, warmup: int = 1,
                device: str | torch.device = "cpu") -> float:
    """Images per second: median over ``repeats`` timed forwards of one batch."""
    model = model.eval().to(device)
    x = _dummy_input(model, input_size, batch_size, device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    times: list[float] = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        sync()
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            model(x)
            sync()
            times.append(time.perf_counter() - t0)
    return batch_size / statistics.median(times)


def profile_model(model: nn.Module, *, input_size: tuple[int, int] | None = None,
                  device: str = "cpu", batch_sizes: Sequence[int] = (1, 32),
                  repeats: int = 5, warmup: int = 1,
                  log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``log``: called with a line before each stage (counting, each batch size's timing)."""
    log = log or (lambda line: None)
    size = tuple(input_size or model.input_size)
    log(f"counting parameters and MACs at {size[0]}x{size[1]}")
    row: dict[str, Any] = {"model": getattr(model, "name", type(model).__name__),
                           "input_size": f"{size[0]}x{size[1]}",
                           "params_m": count_params(model) / 1e6}
    row.update(count_macs(model, size))
    model = model.to(device)
    for bs in batch_sizes:
        # batch 1 is cheap and noisy: give it more repeats
        reps = repeats * 4 if bs == 1 else repeats
        log(f"timing {reps} forwards at batch {bs}")
        row[f"fps_b{bs}"] = measure_fps(model, size, batch_size=bs, repeats=reps,
                                        warmup=warmup, device=device)
    row["device"] = _device_name(device)
    return row


def profile_models(names: Iterable[str], input_size: tuple[int, int] | None = None,
                   device: str = "cpu", batch_sizes: Sequence[int] = (1, 32),
                   repeats: int = 5, warmup: int = 1,
                   log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """One row per preset name: model, params_m, gmacs, gmacs_paper, gflops_mmcv,
    fps_b{B} for each B in ``batch_sizes``, device. ``log`` gets one progress line per stage."""
    names = list(names)
    rows = []
    for i, name in enumerate(names, 1):
        overrides = {} if input_size is None else {"input_size": tuple(input_size)}
        model = build_model(name, **overrides)
        model_log = None if log is None else (
            lambda line, i=i, name=name: log(f"[{i}/{len(names)}] {name}: {line}"))
        rows.append(profile_model(model, input_size=input_size, device=device, batch_sizes=batch_sizes,
                                  repeats=repeats, warmup=warmup, log=model_log))
    return rows


def _device_name(device: str | torch.device) -> str:
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu x{torch.get_num_threads()} threads"


# --------------------------------------------------------------------------- paper rows

def load_paper_rows(path: str | Path = PAPER_CSV) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def compare_with_paper(rows: list[dict[str, Any]],
                       paper: list[dict[str, str]] | None = None) -> list[dict[str, Any]]:
    """Pair each of our rows with the paper row whose ``ours`` column names it; ratios
    are ours / paper. The paper's "GFLOPs" is mmcv's count, so both MAC conventions are
    compared with it."""
    paper = load_paper_rows() if paper is None else paper
    by_ours = {r["ours"]: r for r in paper if r.get("ours")}
    out = []
    for row in rows:
        ref = by_ours.get(row["model"])
        if ref is None or row.get("input_size") != ref.get("input_size"):
            continue
        p_params, p_gflops = float(ref["params_m"]), float(ref["gflops"])
        out.append({
            "model": row["model"], "paper_model": f'{ref["method"]} {ref["backbone"]}',
            "params_m": row["params_m"], "paper_params_m": p_params,
            "params_ratio": row["params_m"] / p_params,
            "gmacs_paper": row["gmacs_paper"], "gflops_mmcv": row["gflops_mmcv"],
            "gmacs": row["gmacs"], "paper_gflops": p_gflops,
            "gmacs_paper_ratio": row["gmacs_paper"] / p_gflops,
            "gflops_mmcv_ratio": row["gflops_mmcv"] / p_gflops,
            "paper_fps": float(ref["fps"]) if ref.get("fps") else math.nan,
        })
    return out


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_file(path, "w") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})


def format_rows(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[(f"{r.get(k):.3f}" if isinstance(r.get(k), float) else str(r.get(k, "")))
              for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  ".join(k.ljust(wd) for k, wd in zip(keys, widths))]
    lines += ["  ".join(c.ljust(wd) for c, wd in zip(cell, widths)) for cell in cells]
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI

def _run_cli(args: argparse.Namespace) -> int:
    from distilkit.data.errors import UsageError
    from distilkit.models.presets import get_config

    for name in args.models:      # every name checked before the first model is profiled
        try:
            get_config(name)
        except (ValueError, TypeError) as err:
            raise UsageError(f"--models {name!r}: {err}") from None
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()

    def log(line: str) -> None:   # progress on stderr: the table on stdout stays clean
        print(f"{time.perf_counter() - start:6.1f} s  {line}", file=sys.stderr, flush=True)

    rows = profile_models(args.models, input_size=args.input_size, device=args.device,
                          batch_sizes=tuple(args.batch_sizes), repeats=args.repeats,
                          log=None if args.quiet else log)
    print(format_rows(rows))
    if args.csv:
        write_csv(rows, args.csv)
        print(f"wrote {args.csv}")
    if Path(args.paper_csv).exists():
        cmp = compare_with_paper(rows, load_paper_rows(args.paper_csv))
        if cmp:
            print("\nours vs the paper (ratios ours / paper; paper GFLOPs = mmcv count):")
            print(format_rows(cmp))
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "profile", help="parameters, GMACs (two conventions) and FPS of model presets",
        description=__doc__, formatter_class=HelpFormatter,
        epilog="examples:\n"
               "  distilkit profile --models distilpose-s-cpu teacher-hrw48-cpu --batch-sizes 1   # seconds\n"
               "  distilkit profile --models distilpose-s distilpose-l teacher-hrw48 --input-size 256x192"
               "   # the paper's sizes, minutes")
    p.add_argument("--models", nargs="+", required=True, metavar="NAME",
                   help="preset names, e.g. distilpose-s teacher-hrw48")
    p.add_argument("--input-size", type=parse_hw, default=None, metavar="HxW",
                   help="override the presets' input size, e.g. 256x192")
    p.add_argument("--csv", default=None, metavar="PATH", help="write the rows here")
    p.add_argument("--device", default="cpu", help="torch device the throughput is measured on")
    p.add_argument("--repeats", type=positive_int, default=5, help="timed forwards per batch size")
    p.add_argument("--batch-sizes", type=positive_int, nargs="+", default=[1, 32], metavar="B",
                   help="batch sizes the throughput is measured at (one fps_bB column each)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch intra-op threads")
    p.add_argument("--quiet", action="store_true", help="no progress lines (on stderr)")
    p.add_argument("--paper-csv", default=str(PAPER_CSV), metavar="PATH",
                   help="the paper's parameters and GFLOPs to compare with (the copy inside the package)")
    p.set_defaults(func=_run_cli)


__all__ = ["count_params", "count_macs", "measure_fps", "profile_model", "profile_models",
           "load_paper_rows", "compare_with_paper", "write_csv", "format_rows", "add_cli"]
