"""Fig. 6: per-joint confidence boxes, whether confidence tracks correctness, and what
the Eq. 3 rescoring is worth in AP.

Correctness is ``distilkit.evaluation.correctness.is_correct_oks`` (used by every figure
and test here): joint k of an instance is CORRECT iff its per-joint OKS term
exp(-d^2 / (2 s^2 kappa_k^2)) >= 0.5, d in image px, s^2 = the instance's COCO ``area``,
kappa_k = 2 * OKS_SIGMAS[k] -- it "counts at least half a keypoint" at OKS. It is judged
only for labelled joints (v > 0); unlabelled ones are drawn grey.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.patches import Rectangle

from distilkit.arrays import as_numpy
from distilkit.evaluation.correctness import OKS_TERM_THR, is_correct_oks
# correct_radius: the name this figure's callers know the OKS rule's radius by
from distilkit.evaluation.correctness import oks_correct_radius as correct_radius
from distilkit.evaluation.oks import oks_terms
from distilkit.geometry import keypoints_to_image
from distilkit.keypoints import KEYPOINT_NAMES, OKS_SIGMAS
from distilkit.viz.figures import SHORT_NAMES

CORRECT_COLOR = "#1a9850"    # green
WRONG_COLOR = "#d73027"      # red
UNKNOWN_COLOR = "#9e9e9e"    # grey: no ground truth to judge against


# ----------------------------------------------------------------------------- the rule

def joint_correct(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, areas: np.ndarray,
                  *, thr: float = OKS_TERM_THR, sigmas: np.ndarray = OKS_SIGMAS
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``is_correct_oks`` on labelled joints: (correct (N, K) bool, judged (N, K) bool =
    labelled, terms (N, K)).

    ``correct`` is False wherever ``judged`` is False; use ``judged`` to mask."""
    correct, terms = is_correct_oks(pred, gt, areas, thr=thr, sigmas=sigmas)
    judged = np.asarray(visible) > 0
    return correct & judged, judged, terms


# ----------------------------------------------------------------------------- reliability

def reliability_bins(confidence: np.ndarray, correct: np.ndarray, *, n_bins: int = 10
                     ) -> dict[str, np.ndarray | float]:
    """Equal-width bins on [0, 1] (the last one closed): per bin the count, mean
    confidence and fraction correct (NaN for empty bins), plus the expected calibration
    error ECE = sum_b n_b / n * |frac_b - conf_b|."""
    conf = np.clip(np.asarray(confidence, dtype=float).ravel(), 0.0, 1.0)
    ok = np.asarray(correct, dtype=bool).ravel()
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.minimum(np.digitize(conf, edges[1:-1], right=False), n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    ok_sum = np.bincount(idx, weights=ok.astype(float), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(counts > 0, conf_sum / counts, np.nan)
        frac = np.where(counts > 0, ok_sum / counts, np.nan)
    filled = counts > 0
    ece = float((counts[filled] / max(len(conf), 1)
                 * np.abs(frac[filled] - mean_conf[filled])).sum())
    return {"edges": edges, "counts": counts, "mean_confidence": mean_conf,
            "fraction_correct": frac, "ece": ece}


def plot_reliability(ax, bins: dict, *, label: str = "", color: str = "C0") -> None:
    """Fraction correct against mean confidence per bin, the diagonal for reference,
    marker area by bin count."""
    filled = bins["counts"] > 0
    ax.plot([0, 1], [0, 1], ":", color="gray", linewidth=1)
    sizes = 15 + 120 * bins["counts"][filled] / max(bins["counts"].max(), 1)
    ax.plot(bins["mean_confidence"][filled], bins["fraction_correct"][filled], "-",
            color=color, linewidth=1.2)
    ax.scatter(bins["mean_confidence"][filled], bins["fraction_correct"][filled], s=sizes,
               color=color, label=f"{label} (ECE {bins['ece']:.3f})" if label else None,
               zorder=3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("predicted joint confidence (bin mean)")
    ax.set_ylabel("fraction of joints correct")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)


# ----------------------------------------------------------------------------- boxes

def box_color(correct: bool | None) -> str:
    """Green when correct, red when wrong, grey when there is nothing to judge."""
    if correct is None:
        return UNKNOWN_COLOR
    return CORRECT_COLOR if bool(correct) else WRONG_COLOR


def draw_confidence_boxes(ax, coords: np.ndarray, scores: np.ndarray,
                          correct: Sequence[bool | None], *, min_size: float = 2.0,
                          max_size: float = 6.0, fontsize: float = 5.5,
                          names: Sequence[str] = KEYPOINT_NAMES,
                          width: float | None = None) -> list[Rectangle]:
    """One box per joint centred on the prediction (coords (K, 2) in the axes' px).

    Side grows and the fill thickens with the score; the border is green/red/grey by
    ``correct``. The paper writes the joint and its score in the box; on a 64x48 crop the
    boxes of neighbouring joints coincide and their text overlapped, so each label goes to a
    column beside the crop (left joints right of it, the others left of it), spread to one
    line apart, with a thin line to its box. ``width``: the crop's width (default: from the
    coordinates)."""
    coords, scores = np.asarray(coords, float), np.clip(np.asarray(scores, float), 0.0, 1.0)
    boxes = []
    for k, ((x, y), s) in enumerate(zip(coords, scores)):
        side = min_size + (max_size - min_size) * s
        color = box_color(correct[k])
        rect = Rectangle((x - side / 2, y - side / 2), side, side, linewidth=1.2,
                         edgecolor=color, facecolor=(*to_rgb(color), 0.1 + 0.45 * s))
        ax.add_patch(rect)
        boxes.append(rect)
    width = float(width if width is not None else max(coords[:, 0].max() + 1, 1.0))
    for side_name, x_label, ha in (("left", width + 1.5, "left"), ("right", -2.5, "right")):
        members = [k for k, n in enumerate(names[:len(coords)]) if n.startswith("left_") == (side_name == "left")]
        for k, y_label in zip(members, _spread([coords[k, 1] for k in members], gap=4.2)):
            color = box_color(correct[k])
            ax.annotate(f"{SHORT_NAMES.get(names[k], names[k])} {scores[k]:.2f}", xy=tuple(coords[k]),
                        xytext=(x_label, y_label), ha=ha, va="center", fontsize=fontsize, color=color,
                        annotation_clip=False,
                        arrowprops=dict(arrowstyle="-", color=color, linewidth=0.5, alpha=0.7))
    return boxes


def _spread(ys: Sequence[float], *, gap: float) -> list[float]:
    """The same values in the same order, moved apart to at least ``gap`` (label lines)."""
    order = np.argsort(ys)
    placed = np.asarray(ys, float)[order].copy()
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    shift = max(0.0, (placed[-1] - np.max(ys)) / 2) if len(placed) else 0.0   # re-centre the column
    out = np.empty_like(placed)
    out[order] = placed - shift
    return out.tolist()


def plot_confidence_crops(images, coords: np.ndarray, scores: np.ndarray,
                          correct: np.ndarray, judged: np.ndarray, *, cols: int = 4,
                          panel_size: float = 3.6, title: str = "",
                          thr: float = OKS_TERM_THR) -> plt.Figure:
    """Crops with Fig. 6 boxes. coords (N, K, 2) input px; scores, correct, judged (N, K)."""
    from distilkit.data.transforms import denormalize_image

    n = len(images)
    cols = min(cols, n)
    rows = int(np.ceil(n / cols))
    # wide panels: the label columns sit beside each crop
    fig, axes = plt.subplots(rows, cols, squeeze=False, layout="constrained",
                             figsize=(panel_size * 1.5 * cols, panel_size * 1.4 * rows))
    for ax in axes.ravel():
        ax.set_axis_off()
    for i in range(n):
        ax = axes.ravel()[i]
        img = denormalize_image(images[i])
        ax.imshow(img)
        flags = [bool(c) if j else None for c, j in zip(correct[i], judged[i])]
        draw_confidence_boxes(ax, coords[i], scores[i], flags, width=img.shape[1])
        ax.set_xlim(-0.5, img.shape[1] - 0.5)
        ax.set_ylim(img.shape[0] - 0.5, -0.5)
        n_ok, n_j = int(correct[i].sum()), int(judged[i].sum())
        ax.set_title(f"{n_ok}/{n_j} labelled joints correct", fontsize=9)
    handles = [Rectangle((0, 0), 1, 1, edgecolor=c, facecolor="none", linewidth=1.5)
               for c in (CORRECT_COLOR, WRONG_COLOR, UNKNOWN_COLOR)]
    fig.legend(handles, [f"correct (OKS term ≥ {thr:g})", "wrong", "not labelled"],
               loc="outside lower center", ncols=3, fontsize=8)
    fig.suptitle(title or "joint confidence (box size and fill grow with the score)",
                 fontsize=10)
    return fig


def joint_confidence(model, crops, *, thr: float = OKS_TERM_THR) -> dict[str, np.ndarray]:
    """A regression model's joints on GT-box crops (``distilkit.viz.samples.Crops``),
    judged by the rule: coords_input (N, K, 2) input px, coords_image, scores, terms,
    correct, judged (N, K). No flip test: the figure shows what one forward predicts."""
    import torch

    h, w = model.input_size
    with torch.no_grad():
        out = model(crops.images)
    coords_in = as_numpy(out.coords, np.float32) * np.array([w, h])
    coords_img = keypoints_to_image(coords_in, crops.centers, crops.scales, (h, w))
    correct, judged, terms = joint_correct(coords_img, crops.gt_image[..., :2],
                                           crops.gt_image[..., 2], crops.areas, thr=thr)
    return {"coords_input": coords_in, "coords_image": coords_img,
            "scores": as_numpy(out.scores, np.float32), "terms": terms,
            "correct": correct, "judged": judged}


# ----------------------------------------------------------------------------- Eq. 3 gain

def detection_predictions(model, data_root: str | Path, *, flip_test: bool = True,
                          batch_size: int = 64, det_score_thr: float = 0.0):
    """The evaluation pipeline's predictions on the detector boxes of the val split
    (``distilkit.engine.evaluate.Predictions``), before any rescoring."""
    import torch
    from torch.utils.data import DataLoader

    from distilkit.data.topdown import TopDownCocoDataset
    from distilkit.engine.data import IndexedDataset
    from distilkit.engine.evaluate import predict

    dataset = TopDownCocoDataset(data_root, split="val", input_size=tuple(model.input_size),
                                 train=False, use_detections=True, det_score_thr=det_score_thr)
    loader = DataLoader(IndexedDataset(dataset), batch_size=batch_size, shuffle=False)
    return predict(model, loader, device=torch.device("cpu"), flip_test=flip_test)


def plot_rescoring(table, *, ax=None, rescore_thr: float = 0.2) -> plt.Figure:
    """Grouped bars: AP (%) per model under each instance score. ``table``: a DataFrame
    indexed by model label with columns box, eq3_all, eq3_thr (AP in percent)."""
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
    names = {"box": "box score only", "eq3_all": "Eq. 3: box x mean of all K scores",
             "eq3_thr": f"Eq. 3 as evaluated: mean of scores > {rescore_thr:g}"}
    x = np.arange(len(table))
    width = 0.8 / len(names)
    for j, (col, label) in enumerate(names.items()):
        vals = table[col].to_numpy(dtype=float)
        bars = ax.bar(x + (j - 1) * width, vals, width, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    ax.set_xticks(x, list(table.index), fontsize=8)
    ax.set_ylabel("AP (%) on detector boxes")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_ylim(0, max(5.0, float(table[list(names)].to_numpy(dtype=float).max()) * 1.3))
    ax.set_title("what instance rescoring (Eq. 3) adds over box scores alone", fontsize=10)
    return fig if fig is not None else ax.figure


def rescoring_gain(pred, ann_file: str | Path, input_size: tuple[int, int], *,
                   rescore_thr: float = 0.2) -> dict[str, dict[str, float]]:
    """COCO metrics of the same predictions under three instance scores.

    ``pred`` has coords (N, K, 2) input px, scores, centers, scales, bbox_scores,
    image_ids (``distilkit.engine.evaluate.Predictions``). Variants:
        box         box score alone (the keypoint scores are replaced by ones, so Eq. 3
                    returns the box score; COCOeval ignores the keypoint-score slot)
        eq3_all     box x mean of all K keypoint scores (Eq. 3 as printed)
        eq3_thr     box x mean of the scores above ``rescore_thr`` (the pipeline's)
    plus ``gain``: AP(variant) - AP(box) for the two Eq. 3 variants. OKS-NMS runs on
    each variant's own scores, as it would in deployment.
    """
    from distilkit.evaluation import evaluate_coco, postprocess_predictions

    args = (pred.centers, pred.scales, pred.bbox_scores, pred.image_ids, tuple(input_size))
    scores = np.asarray(pred.scores, dtype=float)
    variants = {
        "box": (np.ones_like(scores), 0.0),
        # every sigmoid score is > -1, so all K enter the mean
        "eq3_all": (scores, -1.0),
        "eq3_thr": (scores, rescore_thr),
    }
    out: dict[str, dict[str, float]] = {}
    for name, (ks, thr) in variants.items():
        results = postprocess_predictions(pred.coords, ks, *args, rescore_thr=thr)
        out[name] = evaluate_coco(results, ann_file)
    out["gain"] = {name: out[name]["AP"] - out["box"]["AP"] for name in ("eq3_all", "eq3_thr")}
    return out


__all__ = ["oks_terms", "joint_correct", "correct_radius", "reliability_bins",
           "plot_reliability", "box_color", "draw_confidence_boxes", "plot_confidence_crops",
           "joint_confidence", "detection_predictions", "plot_rescoring",
           "rescoring_gain", "CORRECT_COLOR", "WRONG_COLOR", "UNKNOWN_COLOR"]
