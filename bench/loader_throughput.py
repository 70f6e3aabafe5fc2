"""Top-down data loading throughput: augmented crops per second vs workers and input size.

    python bench/loader_throughput.py                      # synthetic 'cpu' set
    python bench/loader_throughput.py --root /data/coco --sizes 256x192 --workers 0,2,4

Measures the full training pipeline (image decode, half-body/scale/rotation/flip, one
cv2.warpAffine, normalisation, collate) through the training loader (``engine.data.build_train_loader``,
as ``fit`` builds it) with augmentation on.
The first batches of every configuration are a warm-up (worker start, page cache) and are
not timed. Without ``--root`` the embedded synthetic set is used; when that generator is
not available a small stick-figure COCO-layout fixture is written to a temp folder.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distilkit.data.topdown import TopDownCocoDataset  # noqa: E402
from distilkit.data.transforms import AugmentConfig  # noqa: E402
from distilkit.engine.data import build_train_loader  # noqa: E402
from distilkit.engine.distributed import DistInfo  # noqa: E402
from distilkit.keypoints import PERSON_CATEGORY, SKELETON  # noqa: E402
from distilkit.sizes import parse_hw  # noqa: E402

# A standing person in a unit box (x right, y down), COCO-17 order.
_POSE = np.array([[.50, .08], [.54, .06], [.46, .06], [.58, .08], [.42, .08],
                  [.64, .22], [.36, .22], [.70, .38], [.30, .38], [.72, .52], [.28, .52],
                  [.60, .55], [.40, .55], [.62, .76], [.38, .76], [.63, .96], [.37, .96]])


def build_fixture_root(root: Path, n_images: int = 32, seed: int = 0,
                       size_hw: tuple[int, int] = (480, 640)) -> Path:
    """A small COCO-layout set (train + val + detections) of stick figures on noise."""
    rng = np.random.default_rng(seed)
    h, w = size_hw
    for split in ("train", "val"):
        (root / f"{split}2017").mkdir(parents=True, exist_ok=True)
        images, anns, dets = [], [], []
        for image_id in range(1, n_images + 1):
            img = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (9, 9), 0)
            for p in range(int(rng.integers(1, 4))):
                bh = rng.uniform(0.3, 0.8) * h
                bw = bh * rng.uniform(0.35, 0.6)
                x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
                pts = _POSE * [bw, bh] + [x0, y0] + rng.normal(0, 0.02 * bh, (17, 2))
                for a, b in SKELETON:
                    cv2.line(img, tuple(map(int, pts[a])), tuple(map(int, pts[b])),
                             (255, 255, 255), max(2, int(bh / 60)))
                kpts = np.hstack([pts, np.full((17, 1), 2.0)])
                ann_id = image_id * 10 + p
                anns.append({"id": ann_id, "image_id": image_id, "category_id": 1,
                             "iscrowd": 0, "bbox": [x0, y0, bw, bh], "area": bw * bh,
                             "keypoints": kpts.reshape(-1).tolist(), "num_keypoints": 17})
                jitter = rng.normal(0, 0.05, 4) * [bw, bh, bw, bh]
                dets.append({"image_id": image_id, "category_id": 1,
                             "bbox": (np.array([x0, y0, bw, bh]) + jitter).tolist(),
                             "score": float(rng.uniform(0.3, 1.0))})
            name = f"{image_id:012d}.jpg"
            cv2.imwrite(str(root / f"{split}2017" / name), img)
            images.append({"id": image_id, "file_name": name, "height": h, "width": w})
        (root / "annotations").mkdir(exist_ok=True)
        data = {"images": images, "annotations": anns, "categories": [PERSON_CATEGORY]}
        (root / "annotations" / f"person_keypoints_{split}2017.json").write_text(json.dumps(data))
        if split == "val":
            det_dir = root / "person_detection_results"
            det_dir.mkdir(exist_ok=True)
            (det_dir / "COCO_val2017_detections_AP_H_56_person.json").write_text(json.dumps(dets))
    return root


def default_root(tmp: Path) -> tuple[Path, str]:
    try:
        from distilkit.data.synthetic import ensure_synthetic
    except ImportError:
        return build_fixture_root(tmp / "fixture"), "stick-figure fixture (no synthetic generator)"
    return Path(ensure_synthetic("cpu")), "synthetic 'cpu' set"


def measure(root: Path, size_hw, workers: int, batch_size: int, batches: int,
            warmup: int, seed: int) -> float:
    """Augmented crops per second over ``batches`` timed batches (after ``warmup``)."""
    ds = TopDownCocoDataset(root, "train", size_hw, aug=AugmentConfig(), seed=seed)
    loader, _, _ = build_train_loader(ds, batch_size=batch_size, workers=workers, seed=seed, info=DistInfo())
    it, n, t0 = iter(_forever(loader)), 0, 0.0
    for step in range(warmup + batches):
        if step == warmup:
            t0 = time.perf_counter()
        batch = next(it)
        if step >= warmup:
            n += batch["image"].shape[0]
    return n / (time.perf_counter() - t0)


def _forever(loader):
    while True:
        yield from loader


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=None, help="COCO-layout root")
    ap.add_argument("--sizes", default="64x48,256x192", help="input sizes HxW, comma list")
    ap.add_argument("--workers", default="0,1,2", help="worker counts, comma list")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--batches", type=int, default=20, help="timed batches per config")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch/OpenCV threads of the main process (workers always use 1)")
    ap.add_argument("--json", type=Path, default=None, help="also write results here")
    args = ap.parse_args(argv)

    # DataLoader workers run torch single-threaded; the main process does the loading
    # itself when workers=0, and on a busy 2-core box multi-threaded collate in it is
    # several times slower (thread contention), so match the workers by default.
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root, label = (args.root, str(args.root)) if args.root else default_root(Path(tmp))
        print(f"data: {label}  batch {args.batch_size}, {args.batches} timed batches")
        rows = []
        for size in map(parse_hw, args.sizes.split(",")):
            for workers in map(int, args.workers.split(",")):
                rate = measure(root, size, workers, args.batch_size, args.batches,
                               args.warmup, args.seed)
                rows.append({"input": f"{size[0]}x{size[1]}", "workers": workers,
                             "crops_per_s": round(rate, 1)})
                print(f"  input {size[0]:>3}x{size[1]:<3}  workers {workers}:"
                      f" {rate:8.1f} crops/s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
