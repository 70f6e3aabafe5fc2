"""The training losses of DistilPose (paper Eq. 4-7) and the teacher's heatmap loss.

Every loss is a plain function of tensors; ``compute_losses`` picks the switched-on terms
from a ``LossConfig`` and returns them weighted, as a ``dict[str, Tensor]`` whose sum is
the training objective (Eq. 7). Each distillation term is one entry of ``DISTILL_TERMS`` (its
switch, weight, the teacher outputs it reads, its results column); docs/ARCHITECTURE.md says
how to add one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F

from distilkit.codecs import simulated_heatmaps
from distilkit.outputs import PoseOutput

RegLoss = Literal["smooth_l1", "l1"]
ShMode = Literal["authors", "masked"]
SH_MODES = ("authors", "masked")


@dataclass(frozen=True)
class LossConfig:
    """Which terms are on, and their weights (paper defaults: alpha1..alpha4). A distillation
    term's switch and weight are fields here and an entry of ``DISTILL_TERMS``."""

    reg: bool = True                 # L_reg: task loss on coordinates (students)
    reg_loss: RegLoss = "smooth_l1"  # the paper's; "l1" is the control the paper lacks
    smooth_l1_beta: float = 1.0      # torch/MMPose default
    kt: bool = False                 # L_KT: keypoint-token distillation
    vt: bool = False                 # L_VT: visual-token distillation
    sh: bool = False                 # L_SH: simulated vs teacher heatmaps
    cs: bool = False                 # L_CS: confidence vs teacher heatmap value
    heatmap: bool = False            # teacher training: MSE to Gaussian targets
    alpha_kt: float = 5e-4
    alpha_vt: float = 5e-4
    alpha_sh: float = 1.0
    alpha_cs: float = 1e-2
    alpha_reg: float = 1.0
    sh_mode: ShMode = "authors"      # L_SH as the authors' code computes it, or masked per sample

    def __post_init__(self):
        if self.sh_mode not in SH_MODES:
            raise ValueError(f"sh_mode must be one of {SH_MODES}, got {self.sh_mode!r}")

    @property
    def distills(self) -> bool:
        return any(getattr(self, term.name) for term in DISTILL_TERMS)

    @property
    def uses_tokens(self) -> bool:
        return any(name in TOKEN_OUTPUTS for name in self.teacher_outputs())

    def teacher_outputs(self) -> tuple[str, ...]:
        """The teacher's PoseOutput fields the switched-on terms read."""
        return _union(term.reads for term in DISTILL_TERMS if getattr(self, term.name))

    def switches(self) -> str:
        """Compact label such as ``reg+kt+vt+sh+cs``; used in run names and CSVs."""
        names = [n for n in SWITCHES if getattr(self, n)]
        return "+".join(names) or "none"


@dataclass(frozen=True)
class LossTerm:
    """One distillation term of Eq. 7, defined once: everything else (the ``--losses`` parser,
    the grid's and the results CSV's columns, the teacher store's fields) reads it from here."""

    name: str                   # its LossConfig switch, its --losses name, its key in the loss dict
    weight: str                 # its LossConfig weight field
    reads: tuple[str, ...]      # the teacher's PoseOutput fields it compares with
    column: str                 # its on/off column in the grid and the results CSVs
    # its unweighted value on one batch: (student output, batch, teacher output, LossConfig)
    loss: Callable[[PoseOutput, dict, PoseOutput, LossConfig], torch.Tensor]


def _union(groups) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for group in groups for name in group))


def parse_loss_switches(text: str, *, reg_loss: RegLoss = "smooth_l1",
                        sh_mode: ShMode = "authors") -> LossConfig:
    """``"reg,kt,vt,sh,cs"`` (or ``switches()``' ``"reg+kt"``) -> LossConfig. Unknown names are
    an error, not ignored."""
    names = {t.strip() for t in text.replace("+", ",").split(",") if t.strip() and t.strip() != "none"}
    unknown = names - set(SWITCHES)
    if unknown:
        raise ValueError(f"unknown loss switch(es) {sorted(unknown)}; known: {sorted(SWITCHES)}")
    return LossConfig(reg_loss=reg_loss, sh_mode=sh_mode, **{name: name in names for name in SWITCHES})


def regression_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                    *, kind: RegLoss = "smooth_l1", beta: float = 1.0) -> torch.Tensor:
    """L_reg on normalised coordinates.

    pred, target: (N, K, 2) in [0, 1]; weight: (N, K), 0 for invisible keypoints and for
    targets outside the input. Mean over all N*K*2 elements, masked ones counting as 0,
    as MMPose's SmoothL1Loss(use_target_weight=True) does, so the weights alpha1..4 keep
    the paper's relative scale.
    """
    w = weight.unsqueeze(-1)
    if kind == "smooth_l1":
        per = F.smooth_l1_loss(pred, target, reduction="none", beta=beta)
    elif kind == "l1":
        per = (pred - target).abs()
    else:
        raise ValueError(f"reg_loss must be 'smooth_l1' or 'l1', got {kind!r}")
    return (per * w).mean()


def token_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """L_KT / L_VT (Eq. 4): MSE between student and teacher tokens, mean over all elements."""
    if student.shape != teacher.shape:
        raise ValueError(
            f"token shapes differ: student {tuple(student.shape)} vs teacher {tuple(teacher.shape)}; "
            "token distillation needs the same token layout (no projection is used)")
    return F.mse_loss(student, teacher.detach())


def gaussian_window_on_grid(coords: torch.Tensor, sigmas: torch.Tensor,
                            heatmap_size: tuple[int, int]) -> torch.Tensor:
    """1 where a simulated Gaussian's 3-sigma window overlaps the heatmap grid, else 0.

    coords (N, K, 2) normalised, sigmas (N, K, 2) heatmap px -> (N, K). A prediction whose
    window lies entirely off the grid has nothing to compare with the teacher; the authors'
    L_SH drops it from the loss, as MMPose drops such targets.
    """
    h, w = heatmap_size
    with torch.no_grad():
        mu_x, mu_y = coords[..., 0] * w, coords[..., 1] * h
        reach_x, reach_y = 3 * sigmas[..., 0], 3 * sigmas[..., 1]
        on_grid = ((mu_x - reach_x < w) & (mu_y - reach_y < h)
                   & (mu_x + reach_x + 1 >= 0) & (mu_y + reach_y + 1 >= 0))
        return on_grid.to(coords.dtype)


def simulated_heatmap_loss(coords: torch.Tensor, sigmas: torch.Tensor,
                           teacher_heatmaps: torch.Tensor, weight: torch.Tensor,
                           mode: ShMode = "authors") -> torch.Tensor:
    """L_SH (Eq. 5): squared error between simulated and teacher heatmaps.

    coords (N, K, 2) normalised, sigmas (N, K, 2) heatmap px, teacher_heatmaps (N, K, H, W),
    weight (N, K). With m = weight * ``gaussian_window_on_grid`` (their target weight):

    * ``"authors"``: mean_k [ mean_i(m_ik^2) * mean_{j,h,w} (S_jk - T_jk)^2 ], S zero where
      its window misses the grid. Their Reg2HMLoss hands MMPose 0.x's JointsMSELoss an
      (N, K, 1, 1) weight, which broadcasts against each keypoint's (N, H*W) maps to
      (N, N, H*W): unlabelled keypoints are still pulled towards the teacher. The paper's
      numbers came from this objective.
    * ``"masked"``: mean over N, K, H, W of m * (S - T)^2, each sample masked by its own m.

    Eq. 5 sums over keypoints; both modes average over them, as the authors' code does (the
    mean keeps alpha_3 = 1 at the scale it was tuned for). docs/DEVIATIONS.md.
    """
    h, w = teacher_heatmaps.shape[-2:]
    window = gaussian_window_on_grid(coords, sigmas, (h, w))                # (N, K)
    simulated = simulated_heatmaps(coords, sigmas, (h, w))                   # (N, K, H, W)
    mask = weight * window
    target = teacher_heatmaps.detach()
    if mode == "masked":
        per_keypoint = (simulated - target).pow(2).mean(dim=(2, 3))          # (N, K)
        return (per_keypoint * mask).mean()
    if mode == "authors":
        unmasked = (simulated * window[..., None, None] - target).pow(2).mean(dim=(0, 2, 3))  # (K,)
        return (mask.pow(2).mean(dim=0) * unmasked).mean()
    raise ValueError(f"mode must be one of {SH_MODES}, got {mode!r}")


def teacher_value_at(coords: torch.Tensor, teacher_heatmaps: torch.Tensor) -> torch.Tensor:
    """H_T at the rounded predicted location (Eq. 6), 0 where it falls outside the grid.

    coords (N, K, 2) normalised; returns (N, K), no gradient. The location is
    ``round(x * W)``, the grid convention of the Simulated Heatmaps (mu = x * W); the authors
    read ``round(clamp(x, 0, 1) * (W - 1))`` (docs/DEVIATIONS.md).
    """
    n, k, h, w = teacher_heatmaps.shape
    with torch.no_grad():
        ix = torch.round(coords[..., 0] * w).long()
        iy = torch.round(coords[..., 1] * h).long()
        inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
        flat = (iy.clamp(0, h - 1) * w + ix.clamp(0, w - 1)).unsqueeze(-1)  # (N, K, 1)
        values = teacher_heatmaps.reshape(n, k, h * w).gather(2, flat).squeeze(-1)
        return torch.where(inside, values, torch.zeros_like(values))


def confidence_loss(coords: torch.Tensor, scores: torch.Tensor,
                    teacher_heatmaps: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """L_CS (Eq. 6): |H_T([x_k], [y_k]) - s_k| weighted by the keypoint weight, mean over N*K.

    Eq. 6 sums over keypoints; the authors' ScoreLoss (an L1 loss with target weights)
    averages over them and masks unlabelled keypoints, which is what produced the paper's
    numbers with alpha_4 = 1e-2.
    """
    target = teacher_value_at(coords, teacher_heatmaps)
    return ((target - scores).abs() * weight).mean()


def heatmap_mse_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Teacher loss: MSE to Gaussian targets, per-keypoint weighted (MMPose KeypointMSELoss)."""
    w = weight[:, :, None, None]
    return ((pred - target).pow(2) * w).mean()


def compute_losses(out: PoseOutput, batch: dict, config: LossConfig,
                   teacher: PoseOutput | None = None) -> dict[str, torch.Tensor]:
    """Weighted loss terms for one batch; their sum is Eq. 7 (or the teacher's MSE)."""
    terms: dict[str, torch.Tensor] = {}
    if config.heatmap:
        terms["heatmap"] = heatmap_mse_loss(out.heatmaps, batch["heatmaps"], batch["heatmap_weights"])
    if config.reg:
        terms["reg"] = config.alpha_reg * regression_loss(
            out.coords, batch["coords"], batch["coord_weights"],
            kind=config.reg_loss, beta=config.smooth_l1_beta)
    if config.distills:
        if teacher is None:
            raise ValueError("distillation losses are switched on but no teacher output was given")
        for term in DISTILL_TERMS:
            if getattr(config, term.name):
                terms[term.name] = getattr(config, term.weight) * term.loss(out, batch, teacher, config)
    if not terms:
        raise ValueError("no loss term is switched on")
    return terms


# Eq. 7's distillation terms, in its order (the order their weighted values are summed in).
DISTILL_TERMS: tuple[LossTerm, ...] = (
    LossTerm("kt", "alpha_kt", ("kpt_tokens",), "L_KT",
             lambda out, batch, teacher, config: token_loss(out.kpt_tokens, teacher.kpt_tokens)),
    LossTerm("vt", "alpha_vt", ("vis_tokens",), "L_VT",
             lambda out, batch, teacher, config: token_loss(out.vis_tokens, teacher.vis_tokens)),
    LossTerm("sh", "alpha_sh", ("heatmaps",), "L_SH",
             lambda out, batch, teacher, config: simulated_heatmap_loss(
                 out.coords, out.sigmas, teacher.heatmaps, batch["coord_weights"], mode=config.sh_mode)),
    LossTerm("cs", "alpha_cs", ("heatmaps",), "L_CS",
             lambda out, batch, teacher, config: confidence_loss(out.coords, out.scores, teacher.heatmaps,
                                                                 batch["coord_weights"])),
)
# The on/off fields of LossConfig, in the order ``switches()`` names them.
SWITCHES = ("reg", *(term.name for term in DISTILL_TERMS), "heatmap")
# Every teacher output a distillation term may read (what a teacher-output store keeps).
TEACHER_OUTPUTS = _union(term.reads for term in DISTILL_TERMS)
TOKEN_OUTPUTS = ("kpt_tokens", "vis_tokens")
