"""A held-out split of the cpu synthetic TRAIN set, for recipe probes (issue #25).

Recipe choices must never be judged on the val set the tables report, so probes train on
the synthetic train set minus every 10th image id and are scored on those images. The
folder is a COCO-layout root the kit's loader accepts as is: images are hard links (a
symlink resolving outside the root is refused by ``checks.resolve_inside``), and the val
split gets a detection file made of its ground-truth boxes (score 1), which
``build_run_data`` needs even though probes only use the ground-truth-box loader.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

HOLDOUT_EVERY = 10          # image ids divisible by this are held out (10 %, deterministic)
DET_FILE = "person_detection_results/COCO_val2017_detections_AP_H_56_person.json"
_DONE = ".complete"


def heldout_root(preset: str = "cpu", seed: int = 0) -> Path:
    """The probe root beside the synthetic set (so ``$DISTILKIT_DATA`` moves both), built once."""
    from distilkit.data.synthetic import ensure_synthetic

    source = Path(ensure_synthetic(preset, seed=seed, progress=False))
    target = source.parent / f"probe-heldout-{preset}-seed{seed}"
    if not (target / _DONE).exists():
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        _build(source, tmp)
        (tmp / _DONE).write_text(json.dumps({"source": str(source), "every": HOLDOUT_EVERY}))
        shutil.rmtree(target, ignore_errors=True)   # a half-built folder of a killed build
        os.replace(tmp, target)
    return target


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:         # another file system: a copy is as good, only bigger
        shutil.copy2(src, dst)


def _subset(data: dict, image_ids: set[int]) -> dict:
    out = {k: v for k, v in data.items() if k not in ("images", "annotations")}
    out["images"] = [im for im in data["images"] if im["id"] in image_ids]
    out["annotations"] = [a for a in data["annotations"] if a["image_id"] in image_ids]
    return out


def _build(source: Path, root: Path) -> None:
    with open(source / "annotations" / "person_keypoints_train2017.json") as f:
        data = json.load(f)
    ids = {im["id"] for im in data["images"]}
    held = {i for i in ids if i % HOLDOUT_EVERY == 0}
    (root / "annotations").mkdir(parents=True)
    for split, keep in (("train", ids - held), ("val", held)):
        part = _subset(data, keep)
        (root / f"{split}2017").mkdir()
        for im in part["images"]:
            _link(source / "train2017" / im["file_name"], root / f"{split}2017" / im["file_name"])
        with open(root / "annotations" / f"person_keypoints_{split}2017.json", "w") as f:
            json.dump(part, f)
        if split == "val":
            _write_gt_detections(part, root / DET_FILE)


def _write_gt_detections(part: dict, path: Path) -> None:
    dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 1.0}
            for a in part["annotations"] if not a.get("iscrowd", 0)]
    path.parent.mkdir(parents=True)
    with open(path, "w") as f:
        json.dump(dets, f)
