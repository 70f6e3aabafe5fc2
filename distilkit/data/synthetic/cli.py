"""``distilkit synth`` and the dataset summary it prints."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from distilkit.cli_args import HelpFormatter
from distilkit.data.synthetic.config import SYNTH_PRESETS
from distilkit.data.synthetic.writer import SPLITS, generate_synthetic
from distilkit.files import check_folder_path


def dataset_stats(root: str | Path) -> dict[str, dict[str, float]]:
    """Per split: images, people, labelled keypoints, and the share of those occluded (v=1)."""
    stats = {}
    for split in SPLITS:
        data = json.loads((Path(root) / "annotations" / f"person_keypoints_{split}2017.json")
                          .read_text())
        visible = occluded = 0
        for ann in data["annotations"]:
            flags = ann["keypoints"][2::3]
            visible += flags.count(2)
            occluded += flags.count(1)
        labelled = visible + occluded
        stats[split] = {"images": len(data["images"]), "people": len(data["annotations"]),
                        "keypoints": labelled,
                        "occluded_share": occluded / labelled if labelled else 0.0}
    return stats


def format_stats(stats: dict[str, dict[str, float]]) -> str:
    return "; ".join(f"{split} {s['images']} images, {s['people']} people, "
                     f"{s['keypoints']} keypoints ({s['occluded_share']:.0%} occluded)"
                     for split, s in stats.items())


def _run(args: argparse.Namespace) -> int:
    check_folder_path(args.out)
    start = time.perf_counter()
    out = generate_synthetic(args.out, args.profile, seed=args.seed, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    print(f"synthetic '{args.profile}' seed {args.seed} -> {out}: "
          f"{format_stats(dataset_stats(out))}; {seconds:.1f} s")
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("synth", help="write the embedded synthetic dataset in COCO layout",
                              description="Generate the synthetic COCO-17 person set "
                                          "(images, keypoint annotations, val detections).",
                              formatter_class=HelpFormatter,
                              epilog="example:\n  distilkit synth --profile smoke --out /tmp/smoke_coco")
    p.add_argument("--profile", choices=sorted(SYNTH_PRESETS), default="cpu",
                   help="dataset preset: smoke (a few hundred instances, seconds) or cpu (the main job's set)")
    p.add_argument("--out", required=True, help="output folder (COCO layout)")
    p.add_argument("--seed", type=int, default=0, help="generator seed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)
