"""How much localisation error COCO AP tolerates at a given input size (no model involved).

Ground-truth keypoints moved by Gaussian noise of mean error ``e`` input px, scored by the
kit's COCOeval (``distilkit.evaluation.tolerance``). It explains why a student at 6-8 px of
``err_px`` on 64x48 crops scores ~0 AP while a teacher at 4 px does not.

    python bench/ap_vs_error.py --data-root "$DISTILKIT_DATA/<cpu set>" \
        --face-scale 1,0 --out results/ap_vs_error.csv

``--face-scale 0`` leaves the five face keypoints exact: how much of the loss they account for.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distilkit.evaluation.tolerance import ap_at_uniform_error  # noqa: E402
from distilkit.sizes import parse_hw  # noqa: E402


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", required=True, help="a COCO-layout root (synthetic or real)")
    p.add_argument("--split", default="val")
    p.add_argument("--input-size", default="64x48", help="HxW of the crops err is measured in")
    p.add_argument("--errors", default="0,0.5,1,1.5,2,2.5,3,3.5,4,5,6,7,8",
                   help="comma list of mean errors, input px")
    p.add_argument("--face-scale", default="1", help="comma list of face error multipliers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="CSV to write")
    args = p.parse_args(argv)
    h, w = parse_hw(args.input_size)
    ann_file = Path(args.data_root) / "annotations" / f"person_keypoints_{args.split}2017.json"
    rows = ap_at_uniform_error(ann_file, [float(v) for v in args.errors.split(",")], (h, w),
                               face_scales=[float(v) for v in args.face_scale.split(",")],
                               seed=args.seed)
    for r in rows:
        print(json.dumps({k: r[k] for k in ("err_px", "face_scale", "AP", "AP50", "AP75")}))
    if args.out:
        import pandas as pd
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).assign(split=args.split, seed=args.seed).to_csv(args.out, index=False)
    return rows


if __name__ == "__main__":
    main()
