"""What sharing the teacher's outputs saves a distilled row, side by side with a live teacher.

Not a test: a benchmark to run by hand and report.

    DISTILKIT_DATA=<data> .venv/bin/python bench/teacher_store.py \
        --teacher runs/cpu/teachers/hrw48-<hash>/best.pt [--train-instances 1600] [--rounds 3] \
        [--csv results/teacher_store.csv]

One process, one thread, the cpu profile's data and batch. A first run of the fully distilled
DistilPose-S row (one epoch on ``--train-instances`` crops) fills the store; then rounds
alternate a row with the live teacher and a row reading the store (each a fresh run folder), so
load from other processes hits both alike. Reported: the median training-epoch seconds of each
(``epoch_s`` of metrics.csv: evaluation excluded), their ratio, the writer's overhead over a
live row, the store's bytes per crop and what a full cpu-profile epoch and run would hold.
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from distilkit.engine import TrainConfig, fit  # noqa: E402
from distilkit.losses import LossConfig  # noqa: E402
from distilkit.profiles import CPU  # noqa: E402

ALL = LossConfig(kt=True, vt=True, sh=True, cs=True)


def _epoch_s(run_dir: Path) -> float:
    with open(run_dir / "metrics.csv", newline="") as f:
        return float(list(csv.DictReader(f))[0]["epoch_s"])


def _row(work: Path, name: str, args, store: Path | None) -> float:
    out = work / name
    fit(TrainConfig(out_dir=str(out), model="distilpose-s", profile="cpu", losses=ALL, teacher=str(args.teacher),
                    epochs=1, max_train_instances=args.train_instances, max_val_instances=64, progress=False,
                    teacher_store=None if store is None else str(store), workers=CPU.workers))
    seconds = _epoch_s(out)
    shutil.rmtree(out)
    return seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", type=Path, required=True, help="a cpu-profile heatmap teacher's best.pt")
    p.add_argument("--train-instances", type=int, default=1600)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--csv", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="teacher_store_bench_") as tmp:
        work, store = Path(tmp), Path(tmp) / "store"
        writer = _row(work, "writer", args, store)
        files = list(store.glob("*/epoch_*.bin"))
        store_bytes = sum(f.stat().st_size for f in files)
        live, read = [], []
        for r in range(args.rounds):
            live.append(_row(work, f"live{r}", args, None))
            read.append(_row(work, f"read{r}", args, store))
            print(f"round {r + 1}: live {live[-1]:.1f} s, from the store {read[-1]:.1f} s", flush=True)
    crops = args.train_instances // CPU.student_schedule.batch_size * CPU.student_schedule.batch_size
    result = {
        "train_crops": crops, "rounds": args.rounds, "threads": 1,
        "live_epoch_s": round(statistics.median(live), 2), "store_epoch_s": round(statistics.median(read), 2),
        "writer_epoch_s": round(writer, 2),
        "speedup": round(statistics.median(live) / statistics.median(read), 3),
        "writer_overhead": round(writer / statistics.median(live), 3),
        "store_bytes_per_crop": round(store_bytes / crops, 1),
        "torch": torch.__version__,
    }
    print(json.dumps(result, indent=1))
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(result))
            w.writeheader()
            w.writerow(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
