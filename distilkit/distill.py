"""Teacher-student wiring, kept outside the models (as DINOv2 keeps it outside its backbones).

The teacher is frozen: eval mode for good (``train()`` cannot flip it back), no gradients,
and it sees exactly the augmented batch the student sees.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from distilkit.losses import LossConfig
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
    from distilkit.engine.checkpoint import load_model_from_checkpoint  # engine imports this module

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
    if tuple(getattr(t, "input_size", ())) != tuple(getattr(student, "input_size", ())):
        raise ValueError(f"teacher {tname} input {t.input_size} != student {sname} input {student.input_size}")
    if tuple(getattr(t, "heatmap_size", ())) != tuple(getattr(student, "heatmap_size", ())):
        raise ValueError(f"teacher {tname} heatmaps {t.heatmap_size} != student grid {student.heatmap_size}")
    if losses.uses_tokens:
        s_tokens = token_layout(student)
        t_tokens = token_layout(t)
        if s_tokens is None:
            raise ValueError(f"L_KT/L_VT need a token student; {sname} has no keypoint/visual tokens "
                             "(for CNN students only 'sh' and 'cs' apply)")
        if t_tokens is None:
            raise ValueError(f"L_KT/L_VT need a token teacher; {tname} has no tokens")
        if tuple(s_tokens) != tuple(t_tokens):
            raise ValueError(f"token layouts differ: student {sname} {s_tokens} vs teacher {tname} {t_tokens}")
