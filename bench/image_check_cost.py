"""What the up-front image check costs when the datasets of a run are built.

    python bench/image_check_cost.py                        # the cpu profile's synthetic set
    python bench/image_check_cost.py --root /data/coco --repeats 1

Builds the three datasets ``build_run_data`` builds (train on GT boxes, val on detections,
val on GT boxes) ``--repeats`` times with the check and as many times with
``TopDownCocoDataset._check_images`` made a no-op, alternating, in one process, and times
the check alone on the built instances. The page cache is warm after the first build: on a
cold disk the check also pays one small read per image. Prints min / median seconds.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distilkit.data.topdown import TopDownCocoDataset  # noqa: E402
from distilkit.profiles import get_profile  # noqa: E402


def _configs(profile) -> dict[str, dict]:
    return {"train (GT boxes)": dict(split="train", train=True, aug=profile.augment),
            "val (detections)": dict(split="val", train=False, use_detections=True,
                                     det_score_thr=profile.det_score_thr),
            "val (GT boxes)": dict(split="val", train=False, use_detections=False)}


def _time_one(root: Path, profile, kwargs: dict, repeats: int) -> str:
    real_check = TopDownCocoDataset._check_images
    times: dict[str, list[float]] = {"with": [], "without": [], "check alone": []}
    try:
        for _ in range(repeats):
            for mode in ("with", "without"):
                TopDownCocoDataset._check_images = (real_check if mode == "with"
                                                    else lambda self, instances: None)
                start = time.perf_counter()
                ds = TopDownCocoDataset(root, input_size=profile.input_size, **kwargs)
                times[mode].append(time.perf_counter() - start)
            start = time.perf_counter()
            real_check(ds, ds.instances)
            times["check alone"].append(time.perf_counter() - start)
    finally:
        TopDownCocoDataset._check_images = real_check
    n_images = len({inst.image_id for inst in ds.instances})
    return f"{len(ds)} instances on {n_images} images; " + "; ".join(
        f"{k} {min(v):.3f}/{statistics.median(v):.3f} s" for k, v in times.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--root", type=Path, help="a COCO-layout root (default: the "
                                                  "profile's synthetic set, generated once)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    profile = get_profile(args.profile)
    root = args.root
    if root is None:
        from distilkit.data.synthetic import ensure_synthetic
        root = Path(ensure_synthetic(profile.synthetic, seed=0, progress=False))
    for name, kwargs in _configs(profile).items():
        print(f"{name}: {_time_one(root, profile, kwargs, args.repeats)}", flush=True)


if __name__ == "__main__":
    main()
