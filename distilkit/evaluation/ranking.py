"""Does a confidence rank right answers above wrong ones? The area under the ROC curve.

L_CS (paper Eq. 6) trains a student's per-keypoint score to read the teacher's heatmap at
the predicted location. Its gain in the paper's AP comes through the instance score (Eq. 3),
that is, through ranking, so it can only show in AP once AP is well above zero. The AUROC of
the scores against per-keypoint correctness measures that mechanism at any accuracy:
0.5 = the scores say nothing about which keypoints are right, 1.0 = every right keypoint
outscores every wrong one.
"""
from __future__ import annotations

import numpy as np


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of the ranks they span."""
    values = np.asarray(values, dtype=float).ravel()
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # start index of each run of equal values in sorted order
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2.0               # mean of 1-based ranks start+1 .. end
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counting one half
    (the Mann-Whitney U statistic over n_pos * n_neg). NaN when either class is empty: with
    only right or only wrong keypoints there is nothing to rank."""
    scores = np.asarray(scores, dtype=float).ravel()
    positive = np.asarray(positive, dtype=bool).ravel()
    if scores.shape != positive.shape:
        raise ValueError(f"scores {scores.shape} and labels {positive.shape} differ in size")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or inf")
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = average_ranks(scores)[positive].sum()
    u = rank_sum - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


__all__ = ["auroc", "average_ranks"]
