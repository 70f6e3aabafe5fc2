"""Peak memory of ``distilkit predict`` against the number of boxes and the image's size.

Not a test: a benchmark to run by hand and report.

    .venv/bin/python bench/predict_memory.py [--profile cpu] [--csv results/predict_memory.csv]

Each case is ``distilkit predict`` in a fresh process (a random-weight DistilPose-S of the
profile, flip test on, batch 32) whose peak resident memory (``ru_maxrss``) is read when it
ends (``VmHWM``). The baseline is one box on a 640x480 image; the cases are 10, 1,000 and 20,000 boxes on
that image and one whole-image box on a 40 MP PNG (7296x5472). Reported: each case's peak
RSS, its ratio to the baseline, and its wall time. Flat memory means ratios near 1 for the box
counts, and for the 40 MP image the image's own bytes (120 MB decoded) above the baseline.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SMALL = (480, 640)
LARGE = (5472, 7296)      # 39.9 MP, under the default 50 MP pixel limit
CASES = (("baseline: 1 box", SMALL, 1), ("10 boxes", SMALL, 10), ("1,000 boxes", SMALL, 1000),
         ("20,000 boxes", SMALL, 20000), ("40 MP image, 1 box", LARGE, 1))

# VmHWM, not ru_maxrss: Linux carries a parent's RSS at fork into the child's ru_maxrss
# across exec, so ru_maxrss would count this script's own memory.
CHILD = """
import sys
from distilkit.cli import main
code = main(sys.argv[1:])
peak = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0].split()[1]
print("PEAK_KB", peak)
sys.exit(code)
"""


def _image(path: Path, hw: tuple[int, int]) -> Path:
    import cv2

    h, w = hw
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]     # a smooth picture: quick to encode
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    picture = np.empty((h, w, 3), np.uint8)
    picture[..., 0], picture[..., 1], picture[..., 2] = x, y, (x + y) / 2
    cv2.imwrite(str(path), picture)
    return path


def _boxes(path: Path, image: Path, n: int, hw: tuple[int, int]) -> Path:
    rng = np.random.default_rng(0)
    h, w = hw
    records = [{"file_name": image.name, "score": 1.0,
                "bbox": [float(rng.uniform(0, w - 60)), float(rng.uniform(0, h - 120)), 60.0, 120.0]}
               for _ in range(n)]
    path.write_text(json.dumps(records))
    return path


def _checkpoint(path: Path, profile: str) -> Path:
    import torch

    from distilkit.files import atomic_torch_save
    from distilkit.models import build_model

    torch.manual_seed(0)
    name = "distilpose-s" if profile == "paper" else f"distilpose-s-{profile}"
    atomic_torch_save({"model_name": name, "model_overrides": {},
                       "state_dict": build_model(name).state_dict()}, path)
    return path


def _case(work: Path, ckpt: Path, label: str, hw, n: int) -> dict:
    image = _image(work / f"{hw[1]}x{hw[0]}.png", hw)
    args = ["predict", "--checkpoint", str(ckpt), "--out", str(work / "out"), "--kpt-scores", "model"]
    if n > 1:
        args += ["--boxes", str(_boxes(work / f"boxes_{n}.json", image, n, hw))]
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", CHILD, *args, str(image)], capture_output=True,
                         text=True, check=False, cwd=Path(__file__).resolve().parents[1])
    wall = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"{label}: exit {run.returncode}\n{run.stderr[-2000:]}")
    peak_kb = int(run.stdout.rsplit("PEAK_KB", 1)[1].split()[0])
    return {"case": label, "image_px": hw[0] * hw[1], "boxes": n,
            "peak_rss_mb": round(peak_kb / 1024, 1), "wall_s": round(wall, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="cpu", choices=("smoke", "cpu", "paper"),
                   help="the DistilPose-S size (crop size) predicted with")
    p.add_argument("--csv", type=Path)
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="predict_memory_") as tmp:
        work = Path(tmp)
        ckpt = _checkpoint(work / "model.pt", args.profile)
        for label, hw, n in CASES:
            rows.append(_case(work, ckpt, label, hw, n))
            rows[-1]["ratio_to_baseline"] = round(rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"], 2)
            rows[-1]["profile"] = args.profile
            print(json.dumps(rows[-1]), flush=True)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
