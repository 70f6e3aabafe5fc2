"""The paper-path checks for the first GPU: training throughput with AMP, inference FPS side by
side, and a one-process torchrun smoke run. ``bench/gpu_check.sh`` runs it; so do the tests,
on the CPU, with ``--tiny``.

    python bench/gpu_check.py [--tiny] [--csv results/gpu_check.csv]

Rows (one CSV, with the device name):
  * ``train``: images/s and peak memory of a training step at 256x192 (paper sizes), with AMP
    and in fp32 on CUDA (``--precision``; ``reproduce --profile paper --plan`` reads the fp32
    rows): DistilPose-S distilled from the HRNet-W48 teacher (all four losses, the teacher's
    forward included), DistilPose-L (plain), and the teacher itself;
  * ``infer``: FPS of S, L and the teacher at batch 1 and 32, with the S/teacher and
    L/teacher ratios beside the paper's Table 3 (4.9x and 1.72x);
  * ``torchrun``: ``torchrun --nproc_per_node 1`` of ``distilkit train`` at the smoke profile
    (NCCL on CUDA, gloo on the CPU): whether it finished and in how many seconds.
``--tiny`` uses the smoke-size models at their 64x48 input and a few steps: it checks that
every path runs, not how fast.
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from distilkit.losses import LossConfig, compute_losses  # noqa: E402
from distilkit.models import build_model  # noqa: E402
from distilkit.models.complexity import _device_name  # noqa: E402

PAPER_RATIOS = {"S/teacher": 4.9, "L/teacher": 1.72}


def _models(tiny: bool) -> dict[str, str]:
    suffix = "-smoke" if tiny else ""
    return {"S": f"distilpose-s{suffix}", "L": f"distilpose-l{suffix}", "teacher": f"teacher-hrw48{suffix}"}


def _batch(model, n: int, device) -> dict:
    h, w = model.input_size
    hh, hw = model.heatmap_size
    return {"image": torch.randn(n, 3, h, w, device=device),
            "coords": torch.rand(n, 17, 2, device=device), "coord_weights": torch.ones(n, 17, device=device),
            "heatmaps": torch.rand(n, 17, hh, hw, device=device),
            "heatmap_weights": torch.ones(n, 17, device=device)}


def train_throughput(name: str, *, device, batch: int, steps: int, teacher_name: str | None,
                     amp: bool = True) -> dict:
    """Images/s of full training steps (forward, losses, backward, Adam); ``amp``: autocast on
    CUDA (bf16 where supported, else fp16), else fp32 (always fp32 on the CPU)."""
    model = build_model(name).to(device).train()
    teacher = build_model(teacher_name).to(device).eval() if teacher_name else None
    losses = (LossConfig(reg=False, heatmap=True) if model.kind == "heatmap"
              else LossConfig(kt=True, vt=True, sh=True, cs=True) if teacher else LossConfig())
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    amp = amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp and not torch.cuda.is_bf16_supported())
    dtype = torch.bfloat16 if amp and torch.cuda.is_bf16_supported() else torch.float16
    data = _batch(model, batch, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = None
    for step in range(steps + 2):                       # two warm-up steps
        if step == 2:
            _sync(device)
            t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            out = model(data["image"])
            with torch.no_grad():
                t_out = teacher(data["image"]) if teacher is not None else None
            loss = sum(compute_losses(out, data, losses, t_out).values())
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    _sync(device)
    wall = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return {"check": "train", "precision": "amp" if amp else "fp32", "model": name,
            "teacher": teacher_name or "", "batch": batch,
            "images_per_s": round(batch * steps / wall, 2), "peak_mem_gib": round(peak, 3)}


@torch.no_grad()
def inference_fps(name: str, *, device, batch: int, iters: int) -> float:
    model = build_model(name).to(device).eval()
    x = torch.randn(batch, 3, *model.input_size, device=device)
    amp = device.type == "cuda"
    with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        for _ in range(2):
            model(x)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            model(x)
        _sync(device)
    return batch * iters / (time.perf_counter() - t0)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def torchrun_smoke(device) -> dict:
    """One process under torchrun (NCCL on CUDA, gloo on CPU) through ``distilkit train``."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1",
               "-m", "distilkit.cli", "train", "--profile", "smoke", "--model", "distilpose-s",
               "--epochs", "1", "--no-progress", "--device", "cuda" if device.type == "cuda" else "cpu",
               "--out", out]
        t0 = time.perf_counter()
        run = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=900,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        ok = run.returncode == 0 and (Path(out) / "final_metrics.json").exists()
    return {"check": "torchrun", "model": "distilpose-s-smoke", "backend": "nccl" if device.type == "cuda" else "gloo",
            "ok": ok, "wall_s": round(time.perf_counter() - t0, 1),
            "error": "" if ok else (run.stderr.strip().splitlines() or ["?"])[-1][:200]}


def run_checks(*, tiny: bool, device, precisions: tuple[str, ...] = ("amp", "fp32")) -> list[dict]:
    """``precisions``: the training throughput's, amp and/or fp32 (the paper plan reads fp32 rows;
    on the CPU both are fp32, measured once)."""
    names = _models(tiny)
    steps, iters = (2, 2) if tiny else (20, 20)
    batch = 4 if tiny else 32
    rows = []
    for amp in dict.fromkeys(p == "amp" and device.type == "cuda" for p in precisions):
        rows += [train_throughput(names["S"], device=device, batch=batch, steps=steps,
                                  teacher_name=names["teacher"], amp=amp),
                 train_throughput(names["L"], device=device, batch=batch, steps=steps, teacher_name=None, amp=amp),
                 train_throughput(names["teacher"], device=device, batch=batch, steps=steps, teacher_name=None,
                                  amp=amp)]
    for b in (1, batch):
        fps = {role: inference_fps(n, device=device, batch=b, iters=iters) for role, n in names.items()}
        for role, n in names.items():
            rows.append({"check": "infer", "model": n, "batch": b, "fps": round(fps[role], 2)})
        for ratio, paper in PAPER_RATIOS.items():
            role = ratio.split("/")[0]
            rows.append({"check": "infer_ratio", "model": ratio, "batch": b,
                         "ratio": round(fps[role] / fps["teacher"], 3), "paper_ratio": paper})
    rows.append(torchrun_smoke(device))
    dev = _device_name(device)
    return [{"device": dev, "tiny": tiny, "torch": torch.__version__, **r} for r in rows]


def write_rows(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="smoke-size models, a few steps (any machine)")
    p.add_argument("--csv", type=Path, default=REPO / "results" / "gpu_check.csv")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=("amp", "fp32", "both"), default="both",
                   help="training throughput with autocast, in fp32 (what reproduce --plan reads), or both")
    args = p.parse_args(argv)
    precisions = ("amp", "fp32") if args.precision == "both" else (args.precision,)
    rows = run_checks(tiny=args.tiny, device=torch.device(args.device), precisions=precisions)
    write_rows(rows, args.csv)
    for r in rows:
        print({k: v for k, v in r.items() if k not in ("device", "tiny", "torch")})
    print(f"wrote {args.csv} ({rows[0]['device']})")
    return 0 if all(r.get("ok", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
