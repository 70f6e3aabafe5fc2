"""Object Keypoint Similarity: its per-joint term, OKS between poses, and OKS-NMS.

``oks_terms`` is the one implementation of the per-joint term; OKS-NMS (HRNet / MMPose)
and Fig. 6's correctness rule (``distilkit.evaluation.correctness``) both use it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from distilkit.keypoints import OKS_SIGMAS


def oks_terms(pred: np.ndarray, gt: np.ndarray, areas: np.ndarray,
              sigmas: np.ndarray = OKS_SIGMAS) -> np.ndarray:
    """Per-joint OKS terms exp(-d^2 / (2 s (2 sigma_k)^2)), the summands of COCO's OKS.

    pred, gt (N, K, 2) image px (gt may broadcast, e.g. (K, 2)); areas (N,) the object
    scale s in image px^2. pycocotools' formula, its epsilon on the area included.
    Returns (N, K).
    """
    pred, gt = np.asarray(pred, dtype=float), np.asarray(gt, dtype=float)
    d2 = ((pred - gt) ** 2).sum(axis=-1)
    var = (2.0 * np.asarray(sigmas, dtype=float)) ** 2
    area = np.asarray(areas, dtype=float).reshape(-1, 1) + np.spacing(1)
    return np.exp(-d2 / var / area / 2.0)


def oks_iou(kpts: np.ndarray, others: np.ndarray, area: float, other_areas: np.ndarray,
            sigmas: np.ndarray = OKS_SIGMAS, vis_thr: float | None = None,
            kpt_scores: np.ndarray | None = None,
            other_scores: np.ndarray | None = None) -> np.ndarray:
    """OKS between one pose and M others, with the mean of the two areas as object scale.

    kpts (K, 2); others (M, K, 2); area float; other_areas (M,). With vis_thr, only
    keypoints scored above it in both poses count (MMPose meant this but its list `and`
    kept just the second mask); no counted keypoint -> OKS 0.
    Returns (M,).
    """
    kpts = np.asarray(kpts, dtype=np.float64)
    others = np.asarray(others, dtype=np.float64).reshape(-1, *kpts.shape)
    scale = (area + np.asarray(other_areas, dtype=np.float64)) / 2.0              # (M,)
    sim = oks_terms(others, kpts, scale, sigmas)                                  # (M, K)
    if vis_thr is None:
        return sim.mean(axis=-1)
    if kpt_scores is None or other_scores is None:
        raise ValueError("vis_thr needs kpt_scores and other_scores")
    mask = (np.asarray(kpt_scores) > vis_thr) & (np.asarray(other_scores).reshape(sim.shape)
                                                 > vis_thr)
    count = mask.sum(axis=-1)
    return np.where(count > 0, (sim * mask).sum(axis=-1) / np.maximum(count, 1), 0.0)


def _keypoints_xy_s(kpts) -> tuple[np.ndarray, np.ndarray | None]:
    """Accept (K, 2), (K, 3) or flat 3K keypoints -> ((K, 2), (K,) scores or None)."""
    arr = np.asarray(kpts, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 3)
    return arr[:, :2], (arr[:, 2] if arr.shape[1] == 3 else None)


def oks_nms(instances: Sequence[Mapping], thr: float = 0.9,
            sigmas: np.ndarray = OKS_SIGMAS, vis_thr: float | None = None) -> list[int]:
    """Greedy OKS-NMS over the instances of ONE image; returns kept indices, best first.

    Each instance maps "keypoints" ((K, 2), (K, 3) or flat 3K; a third column holds
    per-keypoint scores, used only with vis_thr), "score" and "area" (the crop area,
    scale_w * scale_h, as MMPose uses). An instance is dropped when its OKS with an
    already kept, higher-scored one exceeds thr. Ties keep input order.
    """
    if len(instances) == 0:
        return []
    parsed = [_keypoints_xy_s(inst["keypoints"]) for inst in instances]
    kpts = np.stack([p[0] for p in parsed])                                      # (M, K, 2)
    kscores = (np.stack([p[1] for p in parsed]) if vis_thr is not None else None)
    scores = np.array([float(inst["score"]) for inst in instances])
    areas = np.array([float(inst["area"]) for inst in instances])
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size > 0:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        if rest.size == 0:
            break
        ovr = oks_iou(kpts[i], kpts[rest], areas[i], areas[rest], sigmas, vis_thr,
                      None if kscores is None else kscores[i],
                      None if kscores is None else kscores[rest])
        order = rest[ovr <= thr]
    return keep
