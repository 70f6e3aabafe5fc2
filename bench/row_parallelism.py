"""How the main job should use two cores: two row processes with one thread each, or one
process with two threads running the rows in turn (issue 6, item 3).

Not a test: a benchmark to run by hand and report. It trains the same two rows both ways,
through ``distilkit.engine.fit`` as the main job does (its data loader workers, flip-test
COCO evaluation and checkpoints included), on a shortened budget: one epoch of
``--train-instances`` crops and ``--val-instances`` validation crops per row.

    DISTILKIT_DATA=<data cache> .venv/bin/python bench/row_parallelism.py \
        --teacher runs/cpu/teachers/hrw48-<hash>/best.pt --rounds 3 --csv results/row_parallelism.csv

Layouts alternate within each round (2x1, 1x2, 2x1, ...), so load from elsewhere on a shared
machine hits both alike; the verdict is the ratio of median walls, measured side by side. With
``--teacher`` the rows are the fully distilled student (most of the main job's rows); without,
the plain student. Every row runs in a fresh process, as ``train_eval`` notebooks do.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def train_row(out: Path, seed: int, threads: int, teacher: str | None,
              train_instances: int, val_instances: int) -> None:
    """The worker: one row, in this process, with ``threads``."""
    import torch

    from distilkit.engine import TrainConfig, fit
    from distilkit.losses import LossConfig

    torch.set_num_threads(threads)
    losses = LossConfig(kt=True, vt=True, sh=True, cs=True) if teacher else LossConfig()
    fit(TrainConfig(out_dir=str(out), model="distilpose-s", profile="cpu", losses=losses,
                    teacher=teacher, seed=seed, epochs=1, max_train_instances=train_instances,
                    max_val_instances=val_instances, progress=False))


def _worker_cmd(out: Path, seed: int, threads: int, args) -> list[str]:
    cmd = [sys.executable, __file__, "--worker", "--out", str(out), "--threads", str(threads),
           "--seed", str(seed), "--train-instances", str(args.train_instances),
           "--val-instances", str(args.val_instances)]
    return cmd + (["--teacher", args.teacher] if args.teacher else [])


def run_layout(layout: str, scratch: Path, args) -> tuple[float, float]:
    """(wall seconds until both rows have finished, the wall of their training epochs alone).
    The second leaves out what a row pays once (process start, imports, data set, evaluation),
    which this short budget inflates beside an 8-epoch row."""
    t0 = time.perf_counter()
    if layout == "2x1":
        procs = [subprocess.Popen(_worker_cmd(scratch / f"s{seed}", seed, 1, args)) for seed in (0, 1)]
        codes = [p.wait() for p in procs]
    else:
        codes = [subprocess.call(_worker_cmd(scratch / f"s{seed}", seed, 2, args)) for seed in (0, 1)]
    wall = time.perf_counter() - t0
    if any(codes):
        raise SystemExit(f"layout {layout}: a worker failed (exit codes {codes}); see its output above")
    per_row = []
    for metrics in sorted(scratch.glob("s*/metrics.csv")):
        with open(metrics, newline="") as f:
            per_row.append(sum(float(r["epoch_s"]) for r in csv.DictReader(f)))
    # 2x1 trains both rows at once, 1x2 one after the other
    return wall, (max(per_row) if layout == "2x1" else sum(per_row))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default=None, help="teacher checkpoint: distilled rows (default: plain)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--train-instances", type=int, default=1600, help="crops per row (batch 16: 100 steps)")
    p.add_argument("--val-instances", type=int, default=256)
    p.add_argument("--csv", default=None, help="append one row per layout and round")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.teacher and not Path(args.teacher).is_file():
        p.error(f"--teacher {args.teacher}: no such checkpoint")
    if args.worker:
        train_row(Path(args.out), args.seed, args.threads, args.teacher, args.train_instances,
                  args.val_instances)
        return {}

    walls: dict[str, list[float]] = {"2x1": [], "1x2": []}
    trains: dict[str, list[float]] = {"2x1": [], "1x2": []}
    rows = []
    for rnd in range(args.rounds):
        order = ("2x1", "1x2") if rnd % 2 == 0 else ("1x2", "2x1")
        for layout in order:
            with tempfile.TemporaryDirectory(prefix="row-par-") as tmp:
                wall, train_s = run_layout(layout, Path(tmp), args)
            walls[layout].append(wall)
            trains[layout].append(train_s)
            rows.append({"round": rnd, "layout": layout, "wall_s": round(wall, 2),
                         "train_wall_s": round(train_s, 2)})
            print(json.dumps(rows[-1]), flush=True)
    med = {k: statistics.median(v) for k, v in walls.items()}
    med_train = {k: statistics.median(v) for k, v in trains.items()}
    summary = {"rows": "distilled" if args.teacher else "plain", "rounds": args.rounds,
               "train_instances": args.train_instances, "val_instances": args.val_instances,
               "median_wall_2x1_s": round(med["2x1"], 2), "median_wall_1x2_s": round(med["1x2"], 2),
               # > 1: two one-thread processes finish the pair sooner
               "speedup_2x1_over_1x2": round(med["1x2"] / med["2x1"], 3),
               "median_train_wall_2x1_s": round(med_train["2x1"], 2),
               "median_train_wall_1x2_s": round(med_train["1x2"], 2),
               "train_speedup_2x1_over_1x2": round(med_train["1x2"] / med_train["2x1"], 3)}
    print(json.dumps(summary), flush=True)
    if args.csv:
        path = Path(args.csv)
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["rows", "train_instances", "val_instances", "round",
                                              "layout", "wall_s", "train_wall_s"],
                               lineterminator="\n")
            if new:
                w.writeheader()
            for r in rows:
                w.writerow({"rows": summary["rows"], "train_instances": args.train_instances,
                            "val_instances": args.val_instances, **r})
    return summary


if __name__ == "__main__":
    main()
