"""Teacher-student wiring, kept outside the models (as DINOv2 keeps it outside its backbones).

The teacher is frozen: eval mode for good (``train()`` cannot flip it back), no gradients,
and it sees exactly the augmented batch the student sees.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from distilkit.losses import LossConfig
from distilkit.models.checkpoint import load_model_from_checkpoint
from distilkit.outputs import PoseOutput


class FrozenTeacher(nn.Module):
    """Wraps a heatmap model so it can only ever run as a frozen feature/heatmap source."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.model.eval()

    def train(self, mode: bool = True) -> "FrozenTeacher":
        # The student's .train() must not put BN layers of the teacher back into batch-stat mode.
        super().train(False)
        self.model.eval()
        return self

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> PoseOutput:
        return self.model(images)

    @property
    def name(self) -> str:
        return getattr(self.model, "name", type(self.model).__name__)


def load_teacher(checkpoint: str | Path, device: torch.device | str = "cpu") -> FrozenTeacher:
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"teacher checkpoint {path} does not exist; train one first "
                                "(distilkit train --model teacher-... --out RUN_DIR) or fix the path")

    model, _ = load_model_from_checkpoint(path, map_location=device)
    if getattr(model, "kind", None) != "heatmap":
        raise ValueError(f"teacher checkpoint {path} holds a {getattr(model, 'kind', '?')} model "
                         f"({getattr(model, 'name', '?')}); a heatmap model is required")
    return FrozenTeacher(model.to(device))


def token_layout(model: nn.Module) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """((K, D), (P, D)) of a model's last-layer tokens, or None for a model without tokens.

    Read off one forward pass on a blank image, so any user model that fills
    PoseOutput.kpt_tokens / vis_tokens is supported without declaring anything.
    """
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        h, w = model.input_size
        with torch.no_grad():
            out = model(torch.zeros(1, 3, h, w, device=param.device, dtype=param.dtype))
    finally:
        model.train(was_training)
    if out.kpt_tokens is None or out.vis_tokens is None:
        return None
    return tuple(out.kpt_tokens.shape[1:]), tuple(out.vis_tokens.shape[1:])


def check_compatible(student: nn.Module, teacher: nn.Module | None, losses: LossConfig) -> None:
    """Fail early, with a reason, on switch combinations that cannot run."""
    sname = getattr(student, "name", type(student).__name__)
    if losses.distills and teacher is None:
        raise ValueError(f"losses {losses.switches()} need a teacher checkpoint (--teacher)")
    if losses.heatmap and getattr(student, "kind", None) != "heatmap":
        raise ValueError(f"the heatmap loss trains heatmap models; {sname} is a regression model")
    if (losses.reg or losses.distills) and getattr(student, "kind", None) != "regression":
        raise ValueError(f"{sname} is a heatmap model: train it with the 'heatmap' loss only")
    if teacher is None:
        return
    t = teacher.model if isinstance(teacher, FrozenTeacher) else teacher
    tname = getattr(t, "name", type(t).__name__)
    _check_sizes(student, sname, t, tname)
    if losses.uses_tokens:
        _check_token_layouts(student, sname, t, tname)


def _hw(size) -> str:
    return "x".join(str(int(v)) for v in size) if size else "?"


def _check_sizes(student: nn.Module, sname: str, teacher: nn.Module, tname: str) -> None:
    """The teacher sees the student's batch (one input size), and L_SH / L_CS compare the
    student's Simulated Heatmaps with the teacher's heatmaps pixel by pixel (one grid). Any
    heatmap teacher and regression student qualify when both agree, whatever their parts."""
    s_in, t_in = tuple(getattr(student, "input_size", ())), tuple(getattr(teacher, "input_size", ()))
    s_hm, t_hm = tuple(getattr(student, "heatmap_size", ())), tuple(getattr(teacher, "heatmap_size", ()))
    if s_hm != t_hm:
        raise ValueError(f"heatmap sizes differ: teacher {tname} makes {_hw(t_hm)} heatmaps, student "
                         f"{sname} simulates {_hw(s_hm)} (inputs {_hw(t_in)} and {_hw(s_in)}); "
                         "L_SH and L_CS compare them on one grid: build both at one size (the same "
                         "profile suffix, or the student with heatmap_size equal to the teacher's)")
    if s_in != t_in:
        raise ValueError(f"input sizes differ: teacher {tname} takes {_hw(t_in)}, student {sname} "
                         f"{_hw(s_in)}; the teacher sees the student's batch, so both need one input size")


def _check_token_layouts(student: nn.Module, sname: str, teacher: nn.Module, tname: str) -> None:
    """L_KT / L_VT compare tokens one to one; the kit has no projection between layouts
    (docs/DEVIATIONS.md), so unlike layouts are an error that says how they differ."""
    s_tokens = token_layout(student)
    t_tokens = token_layout(teacher)
    if s_tokens is None:
        raise ValueError(f"L_KT/L_VT need a token student; {sname} has no keypoint/visual tokens "
                         "(for CNN students only 'sh' and 'cs' apply)")
    if t_tokens is None:
        raise ValueError(f"L_KT/L_VT need a token teacher; {tname} has no tokens "
                         "(with a CNN teacher only 'sh' and 'cs' apply)")
    if tuple(s_tokens) != tuple(t_tokens):
        def say(layout) -> str:
            (k, d), (p, _) = layout
            return f"{k} keypoint and {p} visual tokens of width {d}"
        raise ValueError(f"token layouts differ: student {sname} has {say(s_tokens)}, teacher {tname} "
                         f"{say(t_tokens)}; L_KT/L_VT compare tokens one to one and the kit does not "
                         "project between layouts: use a teacher and student of one profile size "
                         "(same encoder D and patch grid), or drop kt,vt")
