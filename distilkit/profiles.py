"""Run profiles: the three scales (docs/ARCHITECTURE.md) as data, never as code forks.

A profile fixes the input size, the data (a synthetic preset or a real COCO root),
the model size suffix and the schedules. Everything else runs the same code path.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from distilkit.data.transforms import AugmentConfig


@dataclass(frozen=True)
class Schedule:
    """Adam with linear warm-up and step decay (the paper's recipe, scaled)."""

    epochs: int
    batch_size: int
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_iters: int = 500
    warmup_ratio: float = 1e-3       # lr at iteration 0 = lr * warmup_ratio
    milestones: tuple[float, ...] = ()  # epochs (may be fractional) at which lr is multiplied by gamma
    gamma: float = 0.1
    grad_clip: float | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    input_size: tuple[int, int]          # (H, W)
    heatmap_size: tuple[int, int]        # (H, W)
    model_suffix: str                    # "-cpu" -> distilpose-s-cpu, "" -> paper sizes
    synthetic: str | None                # synthetic preset generated when no data_root is given
    teacher_schedule: Schedule
    student_schedule: Schedule
    workers: int = 2
    eval_batch_size: int = 64
    det_score_thr: float = 0.0
    # Per-epoch COCO evaluation costs time; evaluate every `eval_every` epochs and at the end.
    eval_every: int = 1
    max_train_instances: int | None = None
    threads: int | None = None           # torch intra-op threads; None = leave as is
    # Target Gaussian of heatmap teachers, heatmap px. The paper's 2 px on a 64x48 map is 1/32
    # of the map's height; a smaller map needs a smaller sigma for the same relative width.
    heatmap_sigma: float = 2.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # heatmap teachers' own recipes by base model name; a teacher not named trains with ``augment``
    teacher_augment: dict[str, AugmentConfig] = field(default_factory=dict)
    # Heatmap teachers evaluated, and their best checkpoint chosen, with DARK decoding (the
    # authors' teacher configs: post_process='unbiased', modulate_kernel=11).
    dark_teacher_selection: bool = False
    # Heatmap targets of a labelled keypoint just outside the crop: False, weight 0 (the kit's
    # rule); True, its partial Gaussian with weight 1 while its 3-sigma window meets the map
    # (MMPose 0.x's TopDownGenerateTarget, which never clears the labels of cropped-out joints).
    partial_heatmaps: bool = False
    # Base model names trained under torch.compile (a run's --no-compile turns it off); the
    # measurement behind a profile's choice is cited where it is set.
    compiled_models: tuple[str, ...] = ()

    def augment_for(self, *, teacher: bool, model: str = "") -> AugmentConfig:
        """The augmentation a run of ``model`` (a base preset name) trains with: a heatmap
        teacher may have its own config's factors."""
        return self.teacher_augment.get(model, self.augment) if teacher else self.augment

    def model_name(self, base: str) -> str:
        """Resolve a base preset name (``distilpose-s``) to this profile's size."""
        for suffix in ("-cpu", "-smoke"):
            if base.endswith(suffix):
                return base
        return base + self.model_suffix

    def compiles(self, model_name: str) -> bool:
        """Whether this profile trains ``model_name`` (``distilpose-s-cpu``) compiled."""
        base = model_name
        for suffix in ("-cpu", "-smoke"):
            base = base.removesuffix(suffix)
        return base in self.compiled_models


SMOKE = Profile(
    name="smoke",
    input_size=(64, 48),
    heatmap_size=(16, 12),
    model_suffix="-smoke",
    synthetic="smoke",
    teacher_schedule=Schedule(epochs=2, batch_size=16, lr=1e-3, warmup_iters=5),
    student_schedule=Schedule(epochs=2, batch_size=16, lr=1e-3, warmup_iters=5),
    workers=0,
    eval_batch_size=32,
)

CPU = Profile(
    name="cpu",
    input_size=(64, 48),
    heatmap_size=(16, 12),
    model_suffix="-cpu",
    synthetic="cpu",
    # Why these values: results/README.md, "How the cpu profile was chosen".
    teacher_schedule=Schedule(epochs=8, batch_size=16, lr=1e-3, warmup_iters=300,
                              milestones=(7,)),
    # Students 6 epochs, not 8 (issue 39's probe, results/epoch_probe.csv: every probed claim
    # that holds at 8 epochs holds at 6, with its margin); the decay at 5.25 is 7 of 8 scaled.
    student_schedule=Schedule(epochs=6, batch_size=16, lr=1e-3, warmup_iters=300,
                              milestones=(5.25,)),
    heatmap_sigma=2.0,
    workers=1,
    eval_every=1000,  # evaluate once, at the end: per-epoch COCOeval would dominate
    augment=AugmentConfig(half_body_prob=0.0, rot_prob=0.3, rotation=20.0, scale_factor=0.15),
    # torch.compile, one thread, steady state, side by side (issue 38's profile of the reference):
    # 1.15x a DistilPose-S step, 1.17x DistilPose-L, 1.18x the HRNet-W48 teacher, but 0.88x
    # DeepPose, so the ResNet models stay eager (bench/main_job_speed.py measures it again:
    # results/main_job_speed.csv). A cold compile costs about a minute of CPU per model type,
    # paid once per runs folder: every row shares one inductor cache (reproduce.INDUCTOR_CACHE).
    compiled_models=("distilpose-s", "distilpose-l", "teacher-hrw48", "teacher-stemnet"),
)

# The authors' recipe (yshMars/DistilPose configs on MMPose 0.x), shared by every paper-profile
# run: HRNet draws (rot p 0.6, half-body p 0.3, flip 0.5) and the dataset's centre shift.
_MMPOSE_0X = dict(rot_prob=0.6, half_body_prob=0.3, flip_prob=0.5, hrnet_draws=True,
                  center_shift_prob=0.3, center_shift_range=0.2)
# rotation 45, scale 0.35: the DistilPose students' and the StemNet teacher's configs
_ROT45 = AugmentConfig(rotation=45.0, scale_factor=0.35, **_MMPOSE_0X)
# rotation 40, scale 0.5: the HRNet-W48 teacher's config and MMPose's SimpleBaseline-R50
_ROT40 = AugmentConfig(rotation=40.0, scale_factor=0.5, **_MMPOSE_0X)

PAPER = Profile(
    name="paper",
    input_size=(256, 192),
    heatmap_size=(64, 48),
    model_suffix="",
    synthetic=None,
    # 8 GPUs: teachers 64 per GPU (their configs' samples_per_gpu; the paper's text), students
    # 32 per GPU (the DistilPose configs)
    teacher_schedule=Schedule(epochs=300, batch_size=512, lr=1e-3, warmup_iters=500,
                              milestones=(200, 260)),
    student_schedule=Schedule(epochs=300, batch_size=256, lr=1e-3, warmup_iters=500,
                              milestones=(200, 260)),
    workers=8,
    eval_batch_size=128,
    augment=_ROT45,
    teacher_augment={"teacher-hrw48": _ROT40, "simplebaseline-r50": _ROT40, "teacher-stemnet": _ROT45},
    partial_heatmaps=True,
    eval_every=10,   # as the authors' configs: COCO evaluation every 10 epochs and at the end
    dark_teacher_selection=True,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (SMOKE, CPU, PAPER)}


def get_profile(name: str | Profile) -> Profile:
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None


def with_epochs(schedule: Schedule, epochs: int | None) -> Schedule:
    """Override the number of epochs, scaling the decay milestones with it."""
    if epochs is None or epochs == schedule.epochs:
        return schedule
    ratio = epochs / schedule.epochs
    milestones = tuple(sorted({m * ratio for m in schedule.milestones if m * ratio < epochs}))
    return replace(schedule, epochs=epochs, milestones=milestones)


__all__ = ["Schedule", "Profile", "PROFILES", "SMOKE", "CPU", "PAPER", "get_profile", "with_epochs"]
