"""COCO keypoint results: building, writing atomically, and scoring with pycocotools.

Non-finite predictions (a model's NaN or inf keypoint, keypoint score or instance score):
JSON has no NaN, and pycocotools would score a NaN keypoint as a match (NaN < threshold
is False). So every non-finite value is replaced by 0.0 -- coordinates at the image origin,
scores at the bottom of the ranking -- wherever results enter: ``to_coco_results``,
``write_coco_results`` (which then writes strict JSON, ``allow_nan=False``) and
``evaluate_coco``. Each replacement is counted in a WARNING naming where it happened (the
results file, or the annotation file evaluated against).

The ground truth is read by the data loader's ``load_coco``: a missing or malformed file is
a DataError naming it, and person annotations with bad values (NaN keypoints, a negative
box, ...) are left out of the evaluation, counted in a WARNING, as the dataset leaves them out.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from distilkit.data.errors import DataError
from distilkit.files import atomic_file
from distilkit.keypoints import NUM_KEYPOINTS, OKS_SIGMAS, PERSON_CATEGORY

logger = logging.getLogger(__name__)

# COCOeval(iouType="keypoints").stats, in order.
STAT_NAMES = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")


def _non_finite(value) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _all_finite(values) -> bool:
    try:   # C-speed path: results hold 100k x 51 floats
        return all(map(math.isfinite, values))
    except TypeError:   # a non-number: not this policy's business (COCOeval will object)
        return not any(map(_non_finite, values))


def finite_result(result: dict) -> tuple[dict, int]:
    """The result with non-finite keypoint values and score set to 0.0, and their count."""
    kpts = result.get("keypoints")
    kpts = kpts if isinstance(kpts, list) else []
    bad_score = _non_finite(result.get("score"))
    if not bad_score and _all_finite(kpts):
        return result, 0
    bad_kpts = sum(map(_non_finite, kpts))
    fixed = dict(result)
    if bad_kpts:
        fixed["keypoints"] = [0.0 if _non_finite(v) else v for v in kpts]
    if bad_score:
        fixed["score"] = 0.0
    return fixed, bad_kpts + bad_score


def finite_results(results: list[dict], where: str) -> list[dict]:
    """``results`` with every non-finite value replaced by 0.0 (the module's policy).

    Returns the list itself when all values are finite, else a new list (the caller's dicts
    are never changed) and logs a WARNING naming ``where`` and the counts.
    """
    fixed, n_values, n_results = [], 0, 0
    for result in results:
        out, bad = finite_result(result) if isinstance(result, dict) else (result, 0)
        fixed.append(out)
        n_values += bad
        n_results += bool(bad)
    if not n_values:
        return results
    logger.warning("%s: %d non-finite value(s) in %d of %d keypoint result(s) set to 0.0 "
                   "(keypoint at the origin, score at the bottom of the ranking)",
                   where, n_values, n_results, len(results))
    return fixed


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
    results = [{"image_id": int(img), "category_id": int(PERSON_CATEGORY["id"]),
                "keypoints": [float(v) for v in row], "score": float(s)}
               for img, row, s in zip(image_ids, flat, np.asarray(instance_scores))]
    if np.isfinite(flat).all() and np.isfinite(np.asarray(instance_scores, np.float64)).all():
        return results
    return finite_results(results, "model predictions (to_coco_results)")


def write_coco_results(results: list[dict], path: str | os.PathLike) -> Path:
    """Write results JSON atomically (temp file in the same folder, then rename).

    Always strict JSON: non-finite values are written as 0.0 (``finite_results``, a WARNING
    names the file), never as bare NaN/Infinity that other readers reject.
    """
    path = Path(path)
    results = finite_results(results, str(path))
    with atomic_file(path, "w") as f:     # the umask's permissions, like every file the kit writes
        json.dump(results, f, allow_nan=False)
    return path


def load_coco(ann_file: str | os.PathLike | COCO) -> COCO:
    """COCO ground truth from a path, read and checked as the dataset reads it (DataError
    naming a bad file; bad person annotations left out, with a WARNING), or pass a COCO
    through."""
    if isinstance(ann_file, COCO):
        return ann_file
    from distilkit.data.coco_files import load_coco as load_checked   # cv2 only when used
    return load_checked(ann_file)


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
    """COCOeval(iouType="keypoints") on the results as given (non-finite values scored as
    0.0, see the module docstring).

    No rescoring or NMS happens here (see `postprocess_predictions`). Every image in the
    annotation file is evaluated, as in the standard protocol. Returns AP, AP50, AP75,
    APM, APL, AR (and AR50, AR75, ARM, ARL) as floats in [0, 1]; a value COCOeval cannot
    define (it reports -1, e.g. APM without medium-sized people) comes back as NaN.
    """
    name = "the given COCO object" if isinstance(ann_file, COCO) else str(ann_file)
    if not isinstance(results, list):
        from distilkit.data.coco_files import load_json
        results_path = results
        results = load_json(results_path, "results")
        if not isinstance(results, list):
            raise DataError(results_path, "results file must hold a JSON list")
    gt = load_coco(ann_file)
    _check_results(results, gt, name)
    results = finite_results(results, f"results evaluated against {name}")
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
