"""``distilkit reproduce``: the main job from the command line."""
from __future__ import annotations

import argparse
import json

from distilkit.profiles import PROFILES


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    p.add_argument("--seeds", type=int, default=1, help="seeds per row (0..N-1)")
    p.add_argument("--noise-seeds", type=int, default=3,
                   help="seeds for the Table 4 extremes (none / all), to measure run-to-run noise")
    p.add_argument("--jobs", type=int, default=2, help="rows trained in parallel (one process each)")
    p.add_argument("--data-root", help="COCO-layout folder; default: the profile's synthetic set")
    p.add_argument("--epochs", type=int, help="override the students' epochs")
    p.add_argument("--runs-dir")
    p.add_argument("--results-dir")
    p.add_argument("--no-progress", action="store_true")


def _reproduce(args) -> int:
    from distilkit.experiments.reproduce import reproduce

    summary = reproduce(profile=args.profile, tables=args.tables, seeds=args.seeds,
                        noise_seeds=args.noise_seeds, jobs=args.jobs, runs_dir=args.runs_dir,
                        results_dir=args.results_dir, data_root=args.data_root, epochs=args.epochs,
                        progress=not args.no_progress, figures=not args.no_figures)
    keys = ("profile", "wall_s", "runs", "failures", "figures_wall_s", "figure_failures")
    print(json.dumps({k: summary[k] for k in keys if k in summary}, indent=1))
    return 1 if summary["failures"] or summary.get("figure_failures") else 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("reproduce", help="the main job: Tables 4, 5, 6 with their teachers")
    _common(p)
    p.add_argument("--tables", type=int, nargs="+", default=[4, 5, 6], choices=(4, 5, 6))
    p.add_argument("--no-figures", action="store_true",
                   help="skip REPORT.md and the figures (report and viz notebooks) after the tables")
    p.set_defaults(func=_reproduce)
