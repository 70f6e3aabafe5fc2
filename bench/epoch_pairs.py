"""Measured epoch times of the cpu main job's rows, beside ``reproduce --plan``'s per-epoch figure.

    nice -n 10 .venv/bin/python bench/epoch_pairs.py [--modes compiled eager] [--out results/main_job_epochs.csv]

As the main job runs its rows: two side by side, one thread each, decoded images in memory,
compiled as the profile chooses (a fresh inductor cache shared by the pair) or eager
(``--no-compile``); two epochs each. Pairs: plain DistilPose-S at seeds 0 and 1, then the HRNet-W48
teacher beside a plain DistilPose-L. Epoch 1 of a compiled row pays its cold compile; epoch 2
is the steady one (it includes the evaluation). Each line also carries the plan's per-epoch
figure for that row and mode (``EpochTimes.epoch_seconds``: the committed reference's wall s
per epoch, its fixed share kept, scaled by ``results/main_job_speed.csv``) and the reference's
own per-epoch wall s. About 7-8 min per mode on 2 cores.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from distilkit import paths  # noqa: E402
from distilkit.experiments.plan import Recipe  # noqa: E402
from distilkit.experiments.progress import EpochTimes, read_curve  # noqa: E402
from distilkit.experiments.reproduce import plan_runs  # noqa: E402
from distilkit.files import atomic_write_text  # noqa: E402

# (folder, distilkit train arguments), two at a time
PAIRS = ((("distilpose-s seed 0", ["--model", "distilpose-s", "--losses", "reg", "--seed", "0"]),
          ("distilpose-s seed 1", ["--model", "distilpose-s", "--losses", "reg", "--seed", "1"])),
         (("teacher-hrw48", ["--model", "teacher-hrw48", "--losses", "heatmap", "--seed", "0"]),
          ("distilpose-l", ["--model", "distilpose-l", "--losses", "reg", "--seed", "0"])))
MODEL = {"distilpose-s seed 0": "distilpose-s-cpu", "distilpose-s seed 1": "distilpose-s-cpu",
         "teacher-hrw48": "teacher-hrw48-cpu", "distilpose-l": "distilpose-l-cpu"}
COLUMNS = ("mode", "row", "epoch1_s", "epoch2_s", "plan_epoch_s", "reference_epoch_s")


def train_pairs(mode: str, out: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCHINDUCTOR_CACHE_DIR": str(out / "inductor")}
    flag = ["--no-compile"] if mode == "eager" else []
    for pair in PAIRS:
        procs = [subprocess.Popen([sys.executable, "-m", "distilkit.cli", "train", "--profile", "cpu", "--epochs",
                                   "2", "--no-progress", *flag, *args, "--out", str(out / name)],
                                  env=env, cwd=paths.repo_root(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
                 for name, args in pair]
        if any(p.wait() for p in procs):
            raise SystemExit(f"a training run failed in {out}")


def plan_epochs(mode: str) -> tuple[dict[str, float], dict[str, float]]:
    """model name -> (the plan's seconds per epoch, the reference's), for the main job's rows."""
    times = EpochTimes.gather(Path("/nonexistent"), paths.results_dir("cpu"))
    recipe = Recipe("cpu", compile=None if mode == "compiled" else False)
    plan, reference = {}, {}
    for job in plan_runs([4, 5, 6], recipe, seeds=1, noise_seeds=1, runs_dir=Path("/nonexistent")):
        if not job.config.teacher:      # a plain row or a teacher, as the pairs train
            plan.setdefault(job.config.model_name(), times.epoch_seconds(job))
            reference.setdefault(job.config.model_name(), times.reference.get(job.spec.model, float("nan")))
    return plan, reference


def lines(mode: str, out: Path) -> list[dict]:
    plan, reference = plan_epochs(mode)
    rows = []
    for name, model in MODEL.items():
        epochs = [float(r["epoch_s"]) for r in read_curve(out / name)]
        rows.append({"mode": mode, "row": name, "epoch1_s": round(epochs[0], 1), "epoch2_s": round(epochs[1], 1),
                     "plan_epoch_s": round(plan[model], 1), "reference_epoch_s": round(reference[model], 1)})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modes", nargs="+", default=["compiled", "eager"], choices=["compiled", "eager"])
    ap.add_argument("--out", type=Path, default=paths.results_dir("cpu") / "main_job_epochs.csv")
    ap.add_argument("--runs", type=Path, default=None, help="the pairs' run folders (default: a temporary one)")
    args = ap.parse_args(argv)
    root = args.runs or Path(tempfile.mkdtemp(prefix="epoch_pairs_"))
    rows = []
    for mode in args.modes:
        if not (root / mode / "distilpose-l" / "metrics.csv").is_file():
            train_pairs(mode, root / mode)
        rows += lines(mode, root / mode)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(args.out, text.getvalue())
    print(f"wrote {args.out} (runs in {root})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
