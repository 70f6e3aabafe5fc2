"""COCO keypoint results: building, writing atomically, and scoring with pycocotools."""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from distilkit.keypoints import NUM_KEYPOINTS, OKS_SIGMAS, PERSON_CATEGORY

# COCOeval(iouType="keypoints").stats, in order.
STAT_NAMES = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")


def to_coco_results(image_ids: Sequence[int], keypoints_img: np.ndarray,
                    kpt_scores: np.ndarray, instance_scores: np.ndarray) -> list[dict]:
    """One COCO result dict per instance.

    image_ids (N,); keypoints_img (N, K, 2) image px; kpt_scores (N, K) go in the
    visibility slot of the flat [x, y, s] * K list (COCOeval ignores it for detections);
    instance_scores (N,) become "score", the ranking COCOeval uses.
    """
    kpts = np.asarray(keypoints_img, dtype=np.float64)
    ks = np.asarray(kpt_scores, dtype=np.float64)
    flat = np.concatenate([kpts, ks[..., None]], axis=-1).reshape(len(kpts), -1)  # (N, 3K)
    return [{"image_id": int(img), "category_id": int(PERSON_CATEGORY["id"]),
             "keypoints": [float(v) for v in row], "score": float(s)}
            for img, row, s in zip(image_ids, flat, np.asarray(instance_scores))]


def write_coco_results(results: list[dict], path: str | os.PathLike) -> Path:
    """Write results JSON atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(results, f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def load_coco(ann_file: str | os.PathLike | COCO, verbose: bool = False) -> COCO:
    """COCO ground truth from a path (pycocotools' prints silenced) or pass a COCO through."""
    if isinstance(ann_file, COCO):
        return ann_file
    with contextlib.redirect_stdout(io.StringIO()) if not verbose else contextlib.nullcontext():
        return COCO(str(ann_file))


def _check_results(results: list[dict], gt: COCO, name: str) -> None:
    if not results:
        raise ValueError(f"no keypoint results to evaluate against {name}")
    known = set(gt.getImgIds())
    unknown = sorted({r["image_id"] for r in results} - known)
    if unknown:
        raise ValueError(f"{len(unknown)} result image ids are not in {name}: "
                         f"{unknown[:10]}{' ...' if len(unknown) > 10 else ''}")
    bad = [i for i, r in enumerate(results) if len(r.get("keypoints", ())) != 3 * NUM_KEYPOINTS]
    if bad:
        raise ValueError(f"results {bad[:10]} do not have {3 * NUM_KEYPOINTS} keypoint values "
                         f"(evaluating against {name})")


def evaluate_coco(results: list[dict] | str | os.PathLike, ann_file: str | os.PathLike | COCO,
                  verbose: bool = False, sigmas: np.ndarray = OKS_SIGMAS) -> dict[str, float]:
    """COCOeval(iouType="keypoints") on the results exactly as given.

    No rescoring or NMS happens here (see `postprocess_predictions`). Every image in the
    annotation file is evaluated, as in the standard protocol. Returns AP, AP50, AP75,
    APM, APL, AR (and AR50, AR75, ARM, ARL) as floats in [0, 1]; a value COCOeval cannot
    define (it reports -1, e.g. APM without medium-sized people) comes back as NaN.
    """
    name = "the given COCO object" if isinstance(ann_file, COCO) else str(ann_file)
    if not isinstance(results, list):
        with open(results) as f:
            results = json.load(f)
    gt = load_coco(ann_file, verbose)
    _check_results(results, gt, name)
    quiet = contextlib.redirect_stdout(io.StringIO()) if not verbose else contextlib.nullcontext()
    with quiet:
        # loadRes writes id/area/bbox into the dicts it gets: hand it copies.
        dt = gt.loadRes(copy.deepcopy(results))
        coco_eval = COCOeval(gt, dt, iouType="keypoints")
        coco_eval.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return {k: (float(v) if v >= 0 else float("nan"))
            for k, v in zip(STAT_NAMES, coco_eval.stats)}
