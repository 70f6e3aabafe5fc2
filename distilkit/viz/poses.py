"""Predicted poses drawn on whole images, and their per-joint confidences.

What ``distilkit predict`` writes per image and what ``notebooks/predict.py`` shows. Input is a
list of COCO keypoint results (``distilkit.predict.predict_image``): 17 x [x, y, score] in
image px, an instance ``score`` and the ``bbox`` each was predicted in. A joint whose keypoint
score is below ``SCORE_THR`` (0.2, the threshold Eq. 3's rescoring averages above) is drawn
hollow: the model itself doubts it.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from distilkit.experiments.figure_models import main_job_checkpoints
from distilkit.files import atomic_file
from distilkit.keypoints import KEYPOINT_NAMES, NUM_KEYPOINTS
from distilkit.paths import resolve
from distilkit.viz.checkpoints import REPO, ensure_checkpoints
from distilkit.viz.figures import SHORT_NAMES
from distilkit.viz.skeleton import draw_box, draw_skeleton

SCORE_THR = 0.2
MIN_DRAWN_SIDE = 480   # px: small images are drawn larger so joints and labels stay legible
MAX_DRAWN_SIDE = 2048  # px: larger images are drawn at this size (a screen's, not the file's)


def result_keypoints(result: dict) -> tuple[np.ndarray, np.ndarray]:
    """(K, 2) image px and (K,) keypoint scores of one COCO result."""
    flat = np.asarray(result["keypoints"], dtype=np.float64).reshape(NUM_KEYPOINTS, 3)
    return flat[:, :2], flat[:, 2]


def draw_poses(ax, image_rgb: np.ndarray, results: list[dict], *,
               score_thr: float = SCORE_THR, boxes: bool = True,
               numbers: list[int] | None = None) -> None:
    """The image with each result's box (labelled with its number, by default its position,
    and its instance score) and skeleton."""
    ax.imshow(image_rgb)
    for i, result in enumerate(results):
        xy, scores = result_keypoints(result)
        if boxes and "bbox" in result:
            number = numbers[i] if numbers is not None else i
            draw_box(ax, result["bbox"], label=f"#{number} {result['score']:.2f}")
        # v-flags: 2 (filled) where the model is confident, 1 (hollow, dashed limbs) where not
        draw_skeleton(ax, xy, np.where(scores >= score_thr, 2, 1), vflags=True)
    h, w = image_rgb.shape[:2]
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_axis_off()


def display_scaled(image_rgb: np.ndarray, results: list[dict], max_side: int = MAX_DRAWN_SIDE
                   ) -> tuple[np.ndarray, list[dict]]:
    """The image shrunk to at most ``max_side`` px on its longer side and the results' keypoints
    and boxes scaled with it (unchanged when it is small enough)."""
    h, w = image_rgb.shape[:2]
    factor = max_side / max(h, w)
    if factor >= 1.0:
        return image_rgb, results
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    small = cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)
    fx, fy = size[0] / w, size[1] / h
    scaled = []
    for result in results:
        flat = np.asarray(result["keypoints"], dtype=np.float64).reshape(NUM_KEYPOINTS, 3)
        flat[:, 0] *= fx
        flat[:, 1] *= fy
        out = {**result, "keypoints": flat.reshape(-1).tolist()}
        if "bbox" in result:
            x, y, bw, bh = result["bbox"]
            out["bbox"] = [x * fx, y * fy, bw * fx, bh * fy]
        scaled.append(out)
    return small, scaled


def save_pose_image(path: str | Path, image_rgb: np.ndarray, results: list[dict], *,
                    score_thr: float = SCORE_THR, numbers: list[int] | None = None,
                    note: str | None = None) -> Path:
    """Write the drawn image as a PNG of the image's aspect: at least ``MIN_DRAWN_SIDE`` px on
    its longer side, and at most ``MAX_DRAWN_SIDE`` (a larger image is shrunk, the keypoints
    with it, so drawing costs the same for any image), ``note`` written across its foot. Uses a
    bare Figure, not pyplot, so a command drawing many images holds no figure after each is
    written."""
    image_rgb, results = display_scaled(image_rgb, results)
    h, w = image_rgb.shape[:2]
    zoom = max(1.0, MIN_DRAWN_SIDE / max(h, w))
    fig = Figure(figsize=(w * zoom / 100, h * zoom / 100), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    draw_poses(ax, image_rgb, results, score_thr=score_thr, numbers=numbers)
    if note:
        chars = max(20, int(w * zoom / 7.5))        # 9 pt DejaVu Sans: under 7.5 px a character
        fig.text(0.5, 0.01, textwrap.fill(note, chars), ha="center", va="bottom", fontsize=9,
                 color="white", bbox={"facecolor": "black", "alpha": 0.7, "edgecolor": "none", "pad": 2})
    path = Path(path)
    with atomic_file(path, "wb") as f:
        fig.savefig(f, dpi=100, format="png")
    return path


def plot_poses(image_rgb: np.ndarray, results: list[dict], *, title: str | None = None,
               score_thr: float = SCORE_THR, size: float = 4.0) -> plt.Figure:
    """The drawn image as a pyplot figure (for notebooks)."""
    h, w = image_rgb.shape[:2]
    fig, ax = plt.subplots(figsize=(size * w / max(h, w), size * h / max(h, w) + 0.3))
    draw_poses(ax, image_rgb, results, score_thr=score_thr)
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def plot_joint_confidences(results: list[dict], *, title: str | None = None,
                           score_thr: float = SCORE_THR) -> plt.Figure:
    """Per-joint keypoint scores, one row per person: a 0..1 colour table with the values,
    the joints below ``score_thr`` (hollow in the drawing) marked with a dot."""
    scores = np.array([result_keypoints(r)[1] for r in results]).reshape(-1, NUM_KEYPOINTS)
    n = max(len(scores), 1)
    fig, ax = plt.subplots(figsize=(8.5, 0.9 + 0.35 * n))
    shown = scores if len(scores) else np.full((1, NUM_KEYPOINTS), np.nan)
    im = ax.imshow(shown, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    for (i, k), s in np.ndenumerate(scores):
        ax.text(k, i, f"{s:.2f}" + ("•" if s < score_thr else ""), ha="center", va="center",
                fontsize=6, color="white" if s < 0.6 else "black")
    ax.set_xticks(range(NUM_KEYPOINTS),
                  [SHORT_NAMES.get(name, name) for name in KEYPOINT_NAMES], rotation=60,
                  fontsize=7)
    ax.set_yticks(range(len(scores)),
                  [f"#{i} ({r['score']:.2f})" for i, r in enumerate(results)], fontsize=7)
    ax.set_ylabel("person (instance score)", fontsize=7)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01).set_label("keypoint score", fontsize=7)
    ax.set_title(title or f"per-joint confidence (• below {score_thr})", fontsize=8)
    fig.tight_layout()
    return fig


def student_checkpoint(checkpoint: str | Path | None = None, *, profile: str = "smoke",
                       main_job_profile: str | None = "cpu", cache_dir: str | Path | None = None,
                       repo: str | Path = REPO) -> Path:
    """The checkpoint ``notebooks/predict.py`` shows: ``checkpoint`` when given; else the main
    job's fully distilled student (``runs/<main_job_profile>``) when it has one; else the
    ``profile`` one ``ensure_checkpoints`` finds or trains into ``cache_dir`` (smoke: seconds).
    Relative paths are taken from the repository root."""
    if checkpoint is not None:
        return resolve(checkpoint)
    if main_job_profile:
        found = main_job_checkpoints(main_job_profile, repo).get("full")
        if found is not None:
            return Path(found)
    cache = None if cache_dir is None else resolve(cache_dir)
    return ensure_checkpoints(profile, cache, roles=("full",), repo=repo)["full"]


__all__ = ["SCORE_THR", "MAX_DRAWN_SIDE", "display_scaled", "student_checkpoint", "result_keypoints", "draw_poses", "save_pose_image", "plot_poses",
           "plot_joint_confidences"]
