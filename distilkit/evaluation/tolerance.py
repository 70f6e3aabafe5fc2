"""How much localisation error COCO keypoint AP tolerates at a given input size.

COCO's OKS scales each keypoint's error by the person's size and a per-keypoint sigma; the
face keypoints' sigmas (0.025-0.035) are a third of the hips'. On a small input crop a model's
error in input pixels is a large fraction of the person, so AP can sit at zero while a model
still localises measurably better than another. ``ap_at_uniform_error`` measures that floor
without any model: ground-truth keypoints moved by isotropic Gaussian noise whose mean radial
error is ``err`` input pixels of each person's GT-box crop, every instance scored 1, through
the kit's COCOeval. It is a reference curve, not a bound: at the same mean error a model
scores lower for its detection boxes and imperfect ranking, and higher where its errors are
heavy-tailed (mostly precise, sometimes far off, as heatmap decoding is) rather than uniform.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pycocotools.coco import COCO

from distilkit.data.coco_files import load_coco
from distilkit.data.errors import DataError
from distilkit.evaluation.coco import evaluate_coco
from distilkit.geometry import bbox_to_center_scale

FACE = slice(0, 5)   # nose, eyes, ears in COCO-17 order: the five smallest OKS sigmas
RAYLEIGH_MEAN = float(np.sqrt(np.pi / 2))   # mean radius of a unit 2-D isotropic Gaussian


def perturbed_ground_truth(coco: COCO, err_px: float, input_size: tuple[int, int], *,
                           rng: np.random.Generator, face_scale: float = 1.0) -> list[dict]:
    """One COCO result per person with labelled keypoints: the GT keypoints moved by noise of
    mean error ``err_px`` input px (``face_scale`` times that on the face), score 1.

    input_size (H, W): the crop the error is measured in, the person's GT box padded to the
    input's aspect ratio as the top-down dataset crops it.
    """
    if err_px < 0 or face_scale < 0:
        raise ValueError("err_px and face_scale must be >= 0")
    h_in, w_in = input_size
    results = []
    for ann in coco.dataset["annotations"]:
        kpts = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        if not (kpts[:, 2] > 0).any():
            continue
        _, scale = bbox_to_center_scale(ann["bbox"], w_in / h_in)
        image_px_per_input_px = scale / np.array([w_in, h_in], dtype=np.float64)   # (2,)
        std = np.full(len(kpts), err_px / RAYLEIGH_MEAN)
        std[FACE] *= face_scale
        xy = kpts[:, :2] + rng.normal(size=(len(kpts), 2)) * std[:, None] * image_px_per_input_px
        flat = np.concatenate([xy, np.ones((len(kpts), 1))], axis=1).reshape(-1)
        results.append({"image_id": int(ann["image_id"]), "category_id": 1,
                        "keypoints": [float(v) for v in flat], "score": 1.0})
    if not results:
        raise ValueError("the annotations hold no person with labelled keypoints")
    return results


def ap_at_uniform_error(ann_file: str | Path, errors, input_size: tuple[int, int], *,
                        face_scales=(1.0,), seed: int = 0) -> list[dict]:
    """COCO AP, AP50, AP75 of the perturbed ground truth, one dict per (face_scale, err_px).

    The same noise draw (``seed``) is scaled for every error, so the curve is smooth in err_px.
    """
    # the data loader's reader: a missing or malformed file is an error that names it
    coco = load_coco(ann_file)
    if not any(any(v > 0 for v in a["keypoints"][2::3]) for a in coco.dataset["annotations"]):
        raise DataError(ann_file, "no person has labelled keypoints")
    rows = []
    for face_scale in face_scales:
        for err in errors:
            rng = np.random.default_rng(seed)
            res = perturbed_ground_truth(coco, float(err), input_size, rng=rng,
                                         face_scale=float(face_scale))
            stats = evaluate_coco(res, coco)
            rows.append({"input_size": f"{input_size[0]}x{input_size[1]}", "err_px": float(err),
                         "face_scale": float(face_scale), "AP": stats["AP"],
                         "AP50": stats["AP50"], "AP75": stats["AP75"], "instances": len(res)})
    return rows


__all__ = ["perturbed_ground_truth", "ap_at_uniform_error", "FACE"]
