"""One calibration probe: a single training run with the cpu profile's knobs overridden.

The cpu profile was calibrated (issue 6) by probes like these, one model at a time, two
probes side by side with one thread each. Each prints one JSON line with AP, err_px, PCK10.

    # a synthetic variant, then a plain student on it with a late lr decay
    python bench/calibration_probe.py --scenes default --out /tmp/probe/s-default \
        --model distilpose-s --epochs 2 --milestones 1.5
    # a SimpleBaseline teacher with sigma 1 on the cpu set
    python bench/calibration_probe.py --scenes cpu --out /tmp/probe/sb-s1 \
        --model simplebaseline-r50 --heatmap --epochs 2 --sigma 1

``--scenes``: ``cpu`` (the profile's preset), ``default`` (``SynthConfig()``, the harder
scenes of the first reference run) or ``easy`` (between the two). A variant is generated
once under ``--data-dir``. Nothing here changes the profiles; the numbers feed decisions
that are then written into ``distilkit/profiles.py`` and ``data/synthetic/config.py``.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distilkit.data.synthetic import SYNTH_PRESETS, SynthConfig, generate_synthetic  # noqa: E402
from distilkit.data.synthetic.writer import is_current  # noqa: E402
from distilkit.data.transforms import AugmentConfig  # noqa: E402
from distilkit.engine import TrainConfig, fit  # noqa: E402
from distilkit.losses import LossConfig  # noqa: E402
from distilkit.profiles import CPU, PROFILES  # noqa: E402

SCENES = {
    "cpu": SYNTH_PRESETS["cpu"],
    "default": SynthConfig(),
    "tilted": replace(SYNTH_PRESETS["cpu"], tilt_prob=0.32),   # the cpu preset before 2026-11-25
    "easy": SynthConfig(clutter_shapes=(4, 10), distractor_limbs=(0, 2), occluders=(0, 1),
                        truncation_prob=0.05, overlap_prob=0.25),
}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", choices=sorted(SCENES), default="cpu")
    p.add_argument("--data-dir", default="/tmp/distilkit-probe-data")
    p.add_argument("--model", default="distilpose-s")
    p.add_argument("--heatmap", action="store_true", help="train a heatmap teacher")
    p.add_argument("--losses", default="", help="student distillation losses, e.g. kt,vt,sh,cs")
    p.add_argument("--teacher", default=None, help="teacher checkpoint for --losses")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=None,
                   help="default: the cpu profile's (16); warm-up stays 300 iterations")
    p.add_argument("--milestones", default="", help="comma list of (fractional) epochs")
    p.add_argument("--sigma", type=float, default=CPU.heatmap_sigma)
    p.add_argument("--paper-augment", action="store_true",
                   help="the paper's augmentation instead of the cpu profile's lighter one")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    scenes = SCENES[args.scenes]
    root = Path(args.data_dir) / args.scenes
    if not is_current(root, scenes, 0):
        generate_synthetic(root, scenes, seed=0, progress=False)
    milestones = tuple(float(m) for m in args.milestones.split(",") if m)
    schedule = replace(CPU.teacher_schedule if args.heatmap else CPU.student_schedule,
                       lr=args.lr, epochs=args.epochs, milestones=milestones)
    if args.batch_size:
        schedule = replace(schedule, batch_size=args.batch_size)
    PROFILES["probe"] = replace(CPU, name="probe", heatmap_sigma=args.sigma,
                                teacher_schedule=schedule, student_schedule=schedule,
                                augment=AugmentConfig() if args.paper_augment else CPU.augment)
    losses = (LossConfig(reg=False, heatmap=True) if args.heatmap else
              LossConfig(**{k: True for k in args.losses.split(",") if k}))
    config = TrainConfig(out_dir=args.out, model=args.model, profile="probe", losses=losses,
                         teacher=args.teacher, seed=args.seed, data_root=str(root), progress=False)
    metrics = fit(config)
    result = {"scenes": args.scenes, "model": args.model, "epochs": args.epochs, "lr": args.lr,
              "batch_size": schedule.batch_size,
              "milestones": milestones, "sigma": args.sigma, "paper_augment": args.paper_augment,
              **{k: metrics.get(k) for k in ("AP", "err_px", "PCK10")}}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
