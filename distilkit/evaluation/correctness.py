"""When is a predicted keypoint "correct"? Two rules, each named after what it measures.

``is_correct_pck10``: distance to the label below 0.1 x the input height, in input px
    of the ground-truth-box crop. Used by the training diagnostic
    ``distilkit.engine.evaluate.keypoint_error_metrics``: its ``PCK10`` is the share of
    correct keypoints and its ``score_auc`` ranks the scores against this rule. It needs
    nothing beyond the crop the model sees, so it is defined on any batch of GT-box crops
    (no person area, no image px), and one threshold in input px reads the same at every
    person size. The metrics recorded in runs were computed with it; changing the rule
    would change them.
``is_correct_oks``: the joint's per-joint OKS term (``oks.oks_terms``) is at least
    ``thr`` (0.5): it "counts at least half a keypoint" in COCO's OKS, in image px and
    scaled by the person's area and the joint's sigma. Used by Fig. 6
    (``distilkit.viz.confidence``), whose point is how confidence relates to what COCO
    AP rewards, so it judges joints as AP does.
"""
from __future__ import annotations

import numpy as np

from distilkit.evaluation.oks import oks_terms
from distilkit.keypoints import OKS_SIGMAS

PCK_FRACTION = 0.1      # PCK10: within a tenth of the input height
OKS_TERM_THR = 0.5      # Fig. 6: at least half a keypoint at OKS


def is_correct_pck10(distance_px: np.ndarray, input_height: float) -> np.ndarray:
    """Distances (any shape, input px) -> bool, True where below 0.1 x input height."""
    return distance_px < PCK_FRACTION * input_height


def is_correct_oks(pred: np.ndarray, gt: np.ndarray, areas: np.ndarray, *,
                   thr: float = OKS_TERM_THR, sigmas: np.ndarray = OKS_SIGMAS
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(correct (N, K) bool, terms (N, K)): the per-joint OKS term is >= ``thr``.

    pred, gt (N, K, 2) image px; areas (N,) COCO ``area`` in image px^2. Whether a joint
    is labelled at all is the caller's to mask (see ``viz.confidence.joint_correct``).
    """
    terms = oks_terms(pred, gt, areas, sigmas)
    return terms >= thr, terms


def oks_correct_radius(area: float, keypoint: int, *, thr: float = OKS_TERM_THR,
                       sigmas: np.ndarray = OKS_SIGMAS) -> float:
    """The distance (image px) at which joint ``keypoint`` stops being ``is_correct_oks``:
    the term inverted, d = sqrt(-2 ln(thr) (area + eps)) * 2 sigma_k."""
    kappa = 2.0 * float(sigmas[keypoint])
    return float(np.sqrt(-2.0 * np.log(thr) * (area + np.spacing(1))) * kappa)


__all__ = ["PCK_FRACTION", "OKS_TERM_THR", "is_correct_pck10", "is_correct_oks",
           "oks_correct_radius"]
