"""The explorer of ``notebooks/explore.py``: pick a validation crop, a joint and a student (a
published model, the main job's, or any run folder's checkpoint) and see, for that joint, the
crop with the student's prediction, the teacher's heatmap beside the student's Simulated Heatmap
(Eq. 2), and the attention of the joint's keypoint token in the last TDE layer.

``explore_figure`` draws one state (tested like every figure); ``Explorer`` holds the ipywidgets
and redraws on each change. Each model runs once on the crops, on first use; a change of joint
or sample only redraws.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from distilkit.arrays import as_numpy
from distilkit.data.transforms import denormalize_image
from distilkit.experiments.figure_models import run_checkpoint
from distilkit.keypoints import KEYPOINT_NAMES
from distilkit.viz.attention import keypoint_attention, upsample_map
from distilkit.viz.figures import pretty_joint
from distilkit.viz.heatmaps import simulated_for
from distilkit.viz.samples import Crops
from distilkit.viz.skeleton import draw_skeleton


@dataclass
class ModelView:
    """One model's outputs on every crop, computed once."""

    coords: np.ndarray                 # (N, K, 2) input px
    scores: np.ndarray | None          # (N, K)
    sigmas: np.ndarray | None          # (N, K, 2) heatmap px
    heatmaps: np.ndarray | None        # (N, K, h, w): a heatmap model's, or a student's simulated ones
    attention: np.ndarray | None       # (N, K, gh, gw): the last layer's head mean per keypoint token


def model_view(model: torch.nn.Module, images: torch.Tensor, heatmap_size: tuple[int, int] | None = None
               ) -> ModelView:
    """Run ``model`` on ``images``; a regression student's Simulated Heatmaps are drawn on
    ``heatmap_size`` (the teacher's grid)."""
    if tuple(model.input_size) != tuple(images.shape[-2:]):
        raise ValueError(f"{getattr(model, 'name', 'the model')} takes {tuple(model.input_size)} crops, "
                         f"not {tuple(images.shape[-2:])}: pick a model of the crops' profile")
    tokens = hasattr(model, "encoder")
    with torch.no_grad():
        out = model(images, return_attention=True) if tokens else model(images)
    h, w = images.shape[-2:]
    coords = out.coords.float() * torch.tensor([w, h]) if out.coords is not None else None
    if model.kind == "heatmap":
        from distilkit.codecs.heatmap import quarter_decode

        heatmaps = out.heatmaps.float()
        px = quarter_decode(heatmaps)[0]
        coords = px * torch.tensor([w / heatmaps.shape[-1], h / heatmaps.shape[-2]])
    elif out.sigmas is not None and heatmap_size is not None:
        heatmaps = simulated_for(out, tuple(heatmap_size))
    else:
        heatmaps = None
    attention = None
    if tokens and out.attentions:
        enc = model.encoder
        last = [out.attentions[-1]]
        attention = torch.stack([
            torch.stack([keypoint_attention(last, k, enc.grid, num_keypoints=enc.num_keypoints, sample=i)[0]
                         .mean(dim=0) for k in range(enc.num_keypoints)]) for i in range(images.shape[0])]).numpy()
    return ModelView(coords=as_numpy(coords, np.float64),
                     scores=None if out.scores is None else as_numpy(out.scores.float(), np.float64),
                     sigmas=None if out.sigmas is None else as_numpy(out.sigmas.float(), np.float64),
                     heatmaps=None if heatmaps is None else as_numpy(heatmaps, np.float32),
                     attention=attention)


def _overlay(ax, crop: np.ndarray, grid_map: np.ndarray | None, title: str, missing: str, point=None,
             cmap: str = "magma", normalise: bool = False):
    """``grid_map`` (h, w) stretched over the crop; a panel saying ``missing`` without one."""
    ax.imshow(crop)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    if grid_map is None:
        ax.imshow(np.full(crop.shape[:2], 0.85), cmap="gray", vmin=0, vmax=1, alpha=0.8)
        ax.text(0.5, 0.5, missing, ha="center", va="center", fontsize=8, transform=ax.transAxes, wrap=True)
        return None
    up = upsample_map(torch.as_tensor(grid_map)[None], crop.shape[:2])[0].numpy()
    vmax = max(float(up.max()), 1e-8) if normalise else 1.0
    im = ax.imshow(up / (vmax if normalise else 1.0), cmap=cmap, alpha=0.6, vmin=0.0, vmax=1.0)
    if point is not None:
        ax.plot(*point, "o", color="cyan", markersize=5, markeredgecolor="black", markeredgewidth=0.8)
    return im


def explore_figure(crops: Crops, sample: int, joint: int, student: ModelView, teacher: ModelView, *,
                   student_label: str = "student", teacher_label: str = "teacher") -> plt.Figure:
    """Four panels for crop ``sample`` and keypoint ``joint``: the crop with the student's
    predicted skeleton (the joint ringed, its ground truth as a cross), the teacher's heatmap
    of the joint, the student's Simulated Heatmap of it (σ in heatmap px), and the joint
    token's attention in the student's last TDE layer (mean over heads, scaled to its peak)."""
    name = pretty_joint(KEYPOINT_NAMES[joint])
    crop = denormalize_image(crops.images[sample])
    fig, axes = plt.subplots(1, 4, figsize=(12.5, 4.2), layout="constrained")
    pred = student.coords[sample]
    axes[0].imshow(crop)
    draw_skeleton(axes[0], pred, np.full(len(pred), 2.0), marker_size=4, linewidth=1.5)
    axes[0].plot(*pred[joint], "o", ms=13, mfc="none", mec="cyan", mew=2)
    if float(crops.visible[sample, joint]) > 0:
        axes[0].plot(*as_numpy(crops.keypoints[sample, joint], np.float64), "x", color="white", ms=9, mew=2.5)
    score = "" if student.scores is None else f", score {student.scores[sample, joint]:.2f}"
    axes[0].set_title(f"{student_label}\n{name}{score} (ring; ground truth: x)", fontsize=9)
    axes[0].set_axis_off()
    t_map = None if teacher.heatmaps is None else teacher.heatmaps[sample, joint]
    peak = "" if t_map is None else f" (peak {t_map.max():.2f})"
    im = _overlay(axes[1], crop, None if t_map is None else np.clip(t_map, 0, None), f"{teacher_label}: heatmap{peak}",
                  "the teacher has no heatmaps", point=teacher.coords[sample, joint])
    sim = None if student.heatmaps is None else student.heatmaps[sample, joint]
    sig = "" if student.sigmas is None else " σ=({:.2f}, {:.2f})".format(*student.sigmas[sample, joint])
    _overlay(axes[2], crop, sim, f"Simulated Heatmap{sig}", "this student predicts no σ: no Simulated Heatmap",
             point=pred[joint])
    att = None if student.attention is None else student.attention[sample, joint]
    _overlay(axes[3], crop, att, "TDE attention of its token (last layer)",
             "no Token-distilling Encoder: no attention", point=pred[joint], cmap="jet", normalise=True)
    if im is not None:
        fig.colorbar(im, ax=axes[1:3], shrink=0.7, label="heatmap value")
    fig.suptitle(f"crop {sample} (val instance {int(crops.indices[sample])}), {name}", fontsize=11)
    return fig


@dataclass
class Explorer:
    """Dropdowns for sample, joint and model over ``crops``; ``widget`` shows them and the figure.

    ``choices``: label -> student checkpoint; ``teacher``: the heatmap teacher every student is
    compared with. ``draws`` counts the figures drawn (the browser test and the unit tests
    watch it change)."""

    crops: Crops
    choices: Mapping[str, str | Path]
    teacher: torch.nn.Module
    teacher_label: str = "teacher"
    joint: int | str = "right_ankle"
    views: dict[str, ModelView] = field(default_factory=dict)
    draws: int = 0
    last_figure: plt.Figure | None = None

    def __post_init__(self) -> None:
        import ipywidgets as w

        from distilkit.viz.samples import keypoint_index

        if not self.choices:
            raise ValueError("no model to explore: give at least one student checkpoint")
        self.teacher_view = model_view(self.teacher, self.crops.images)
        size = self.teacher_view.heatmaps.shape[-2:] if self.teacher_view.heatmaps is not None else None
        self._heatmap_size = None if size is None else tuple(int(s) for s in size)
        style = {"description_width": "initial"}
        self.sample_picker = w.Dropdown(description="sample", style=style, options=[
            (f"crop {i} (val {int(v)})", i) for i, v in enumerate(self.crops.indices)], value=0)
        self.joint_picker = w.Dropdown(description="joint", style=style, value=keypoint_index(self.joint),
                                       options=[(pretty_joint(n), k) for k, n in enumerate(KEYPOINT_NAMES)])
        self.model_picker = w.Dropdown(description="model", style=style, options=list(self.choices),
                                       layout=w.Layout(width="460px"))
        self.output = w.Output()
        for picker in (self.sample_picker, self.joint_picker, self.model_picker):
            picker.observe(lambda change: self.redraw(), names="value")
        self.widget = w.VBox([w.HBox([self.sample_picker, self.joint_picker, self.model_picker]), self.output])
        self.redraw()

    def view(self, label: str) -> ModelView:
        """The student's outputs on the crops (loaded and run on first use)."""
        if label not in self.views:
            from distilkit.models.checkpoint import load_model_from_checkpoint

            model = load_model_from_checkpoint(self.choices[label])[0].eval()
            if model.kind == "heatmap":
                raise ValueError(f"{self.choices[label]} is a heatmap model: the explorer compares a "
                                 "regression student with the teacher")
            self.views[label] = model_view(model, self.crops.images, self._heatmap_size)
        return self.views[label]

    def figure(self) -> plt.Figure:
        label = self.model_picker.value
        return explore_figure(self.crops, self.sample_picker.value, self.joint_picker.value, self.view(label),
                              self.teacher_view, student_label=label, teacher_label=self.teacher_label)

    def redraw(self) -> None:
        from IPython.display import clear_output, display

        with self.output:
            clear_output(wait=True)
            try:
                fig = self.figure()
            except (ValueError, TypeError, FileNotFoundError, RuntimeError) as err:
                print(f"cannot draw {self.model_picker.value!r}: {err}")
                return
            display(fig)
            plt.close(fig)
        if self.last_figure is not None:
            plt.close(self.last_figure)
        self.last_figure = fig
        self.draws += 1


def explorer_choices(paths: Mapping[str, Path], runs: Mapping[str, Path], labels: Mapping[str, str]
                     ) -> dict[str, Path]:
    """The models to offer: the session's students (``paths``: role -> checkpoint, ``labels``:
    role -> label), the last role first (the fully distilled student, whose σ were trained, is
    shown first), then each run folder's best.pt (else last.pt)."""
    choices = {labels.get(role, role): Path(p) for role, p in reversed(paths.items()) if role != "teacher"}
    for label, folder in runs.items():
        ckpt = run_checkpoint(folder)
        if ckpt is not None:
            choices[f"run {label}: {Path(folder).name}"] = ckpt
    return choices


__all__ = ["Explorer", "ModelView", "explore_figure", "explorer_choices", "model_view"]
