"""Fig. 5: the teacher's heatmaps beside the student's Simulated Heatmaps (Eq. 2).

The student never draws a heatmap: it predicts (x, y, sigma_x, sigma_y) per joint, and
``distilkit.codecs.simulated_heatmaps`` turns them into the peak-1 Gaussians L_SH compares
with the raw teacher heatmaps. Both live on the teacher's grid (input / 4), so they are
shown there, pixel for pixel, with their difference on a diverging scale centred at 0.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import Normalize, TwoSlopeNorm

from distilkit.arrays import as_numpy
from distilkit.codecs import simulated_heatmaps
from distilkit.data.transforms import denormalize_image
from distilkit.keypoints import KEYPOINT_NAMES
from distilkit.viz.skeleton import draw_skeleton
from distilkit.viz.figures import pretty_joint


def simulated_for(student_out, heatmap_size: tuple[int, int]) -> torch.Tensor:
    """(N, K, h, w) simulated heatmaps of a student's PoseOutput on a teacher grid."""
    if student_out.sigmas is None:
        raise ValueError("the student predicts no sigmas: it has no Simulated Heatmaps")
    return simulated_heatmaps(student_out.coords.detach().float(),
                              student_out.sigmas.detach().float(), heatmap_size)


def heatmap_pair(teacher: torch.nn.Module, student: torch.nn.Module, images: torch.Tensor
                 ) -> dict[str, torch.Tensor]:
    """Teacher heatmaps, simulated heatmaps and their difference on a batch.

    Returns teacher (N, K, h, w), simulated (N, K, h, w), diff = simulated - teacher,
    sigmas (N, K, 2), coords (N, K, 2) normalised, scores (N, K), mse (N, K).
    """
    if teacher.kind != "heatmap":
        raise TypeError(f"{getattr(teacher, 'name', 'teacher')} is not a heatmap model")
    with torch.no_grad():
        t = teacher(images).heatmaps.float()
        s = student(images)
    sim = simulated_for(s, tuple(t.shape[-2:]))
    diff = sim - t
    return {"teacher": t, "simulated": sim, "diff": diff, "sigmas": s.sigmas.float(),
            "coords": s.coords.float(), "scores": s.scores.float(),
            "mse": diff.pow(2).mean(dim=(-2, -1))}


def plot_heatmap_comparison(image: torch.Tensor, teacher_hm: torch.Tensor,
                            simulated_hm: torch.Tensor, sigmas: torch.Tensor, *,
                            coords: torch.Tensor | None = None,
                            keypoints: Sequence[int] | None = None, triples_per_row: int = 3,
                            panel_size: float = 1.35, title: str = "") -> plt.Figure:
    """Per joint: teacher heatmap | simulated heatmap (sigma_x, sigma_y in the title) |
    simulated - teacher. One sample: teacher_hm, simulated_hm (K, h, w); sigmas (K, 2);
    coords (K, 2) normalised student prediction, drawn with the crop in the first panel.

    Teacher and simulated share one colour bar (the teacher is raw MSE-regressed output,
    so it can dip below 0 or pass 1: the scale covers both); the difference has its own,
    symmetric about 0 and common to all joints so joints can be compared.
    """
    t = as_numpy(teacher_hm, np.float32)
    s = as_numpy(simulated_hm, np.float32)
    sig = as_numpy(sigmas, np.float32)
    d = s - t
    ks = list(range(t.shape[0])) if keypoints is None else [int(k) for k in keypoints]
    lo, hi = min(0.0, float(t[ks].min())), max(1.0, float(t[ks].max()))
    dmax = max(float(np.abs(d[ks]).max()), 1e-6)
    value_norm = Normalize(vmin=lo, vmax=hi)
    diff_norm = TwoSlopeNorm(vcenter=0.0, vmin=-dmax, vmax=dmax)

    # the crop takes the first cell of the grid, the joints the rest; the colour bars a thin
    # row above (no header block beside them to leave empty)
    n_rows = int(np.ceil((len(ks) + 1) / triples_per_row))
    n_cols = 3 * triples_per_row
    fig = plt.figure(figsize=(panel_size * 3.25 * triples_per_row, panel_size * 1.45 * (n_rows + 0.6)),
                     layout="constrained")
    grid = fig.add_gridspec(n_rows + 1, n_cols, height_ratios=[0.09] + [1.0] * n_rows)
    crop_ax = fig.add_subplot(grid[1, 0:3])
    img = denormalize_image(image)
    crop_ax.imshow(img)
    if coords is not None:
        hgt, wid = img.shape[:2]
        xy = as_numpy(coords, np.float32) * np.array([wid, hgt])
        draw_skeleton(crop_ax, xy, np.ones(len(xy)), marker_size=2.5, linewidth=1.0)
    crop_ax.set_title("crop, student prediction", fontsize=7)
    crop_ax.set_axis_off()
    cm_value = plt.cm.ScalarMappable(norm=value_norm, cmap="viridis")
    cm_diff = plt.cm.ScalarMappable(norm=diff_norm, cmap="RdBu_r")
    half = n_cols // 2
    for cols, mappable, label in ((slice(0, half), cm_value, "heatmap value (teacher, simulated)"),
                                  (slice(n_cols - half, n_cols), cm_diff, "difference: simulated − teacher")):
        cb = fig.colorbar(mappable, cax=fig.add_subplot(grid[0, cols]), orientation="horizontal")
        cb.set_label(label, fontsize=8)
        cb.ax.tick_params(labelsize=7)
    for n, k in enumerate(ks):
        r, c = divmod(n + 1, triples_per_row)
        axes = [fig.add_subplot(grid[r + 1, 3 * c + j]) for j in range(3)]
        axes[0].imshow(t[k], cmap="viridis", norm=value_norm)
        axes[0].set_title(f"{pretty_joint(KEYPOINT_NAMES[k])}\nteacher", fontsize=7)
        axes[1].imshow(s[k], cmap="viridis", norm=value_norm)
        axes[1].set_title(f"simulated\nσx={sig[k, 0]:.2f} σy={sig[k, 1]:.2f}", fontsize=7)
        axes[2].imshow(d[k], cmap="RdBu_r", norm=diff_norm)
        axes[2].set_title(f"difference\nMSE={np.mean(d[k] ** 2):.4f}", fontsize=7)
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title or "teacher heatmaps vs the student's Simulated Heatmaps "
                 "(heatmap grid, σ in heatmap px)", fontsize=10)
    return fig


def plot_sigma_summary(sigmas: torch.Tensor, mse: torch.Tensor) -> plt.Figure:
    """Per joint over a batch: mean sigma_x, sigma_y (bars) and mean heatmap MSE (dots)."""
    sig = as_numpy(sigmas, np.float32).reshape(-1, sigmas.shape[-2], 2).mean(axis=0)
    err = as_numpy(mse, np.float32).reshape(-1, mse.shape[-1]).mean(axis=0)
    k = np.arange(len(sig))
    fig, ax = plt.subplots(figsize=(9, 3.2), layout="constrained")
    ax.bar(k - 0.2, sig[:, 0], width=0.4, label="σx")
    ax.bar(k + 0.2, sig[:, 1], width=0.4, label="σy")
    ax.axhline(2.0, color="gray", linestyle=":", linewidth=1, label="teacher target σ = 2")
    ax.set_ylabel("predicted σ (heatmap px)")
    ax.set_xticks(k, [pretty_joint(n) for n in KEYPOINT_NAMES[:len(k)]], rotation=45,
                  ha="right", fontsize=8)
    ax2 = ax.twinx()
    ax2.plot(k, err, "ko", markersize=4, label="MSE simulated vs teacher")
    ax2.set_ylabel("heatmap MSE")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    # above the axes, not over the bars
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=4,
              frameon=False)
    ax.set_title("student σ per joint and its heatmap error (mean over the crops)", fontsize=10, pad=22)
    return fig


__all__ = ["simulated_for", "heatmap_pair", "plot_heatmap_comparison", "plot_sigma_summary"]
