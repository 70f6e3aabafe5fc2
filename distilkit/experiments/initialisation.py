"""Where each paper-profile row starts from: the authors' initialisation, per model.

    HRNet-W48 teacher            ImageNet HRNet-W48      ``hrnet_w48.pth`` (timm or MMPose names)
    SimpleBaseline, DeepPose     ImageNet ResNet-50      ``resnet50.pth`` (torchvision names)
    StemNet teacher, DistilPose-S  from scratch (StemNet's N(0, 0.001), ``models.stemnet``)
    DistilPose-L                 the trained HRNet-W48 teacher's first three stages: its row's
                                 ``best.pt``, so every L row waits for that teacher

Only the paper profile starts from these (``distilkit reproduce --profile paper --pretrained
DIR``); every other profile trains from scratch. A file enters a config hash by its sha256, a
teacher row's checkpoint by its run folder's name, which is its recipe's hash
(``engine.config``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from distilkit.data.errors import UsageError

# base model -> the file in --pretrained DIR it starts from
PRETRAINED_FILES: dict[str, str] = {
    "teacher-hrw48": "hrnet_w48.pth",
    "simplebaseline-r50": "resnet50.pth",
    "deeppose-r50": "resnet50.pth",
}
# base model -> the teacher key whose trained run it starts from
FROM_TEACHER: dict[str, str] = {"distilpose-l": "hrw48"}
WEIGHTS_GUIDE = "docs/PAPER_GRID.md, 'Pretrained weights for the paper profile'"
PAPER_PROFILES = ("paper",)


class MissingPretrained(UsageError):
    """The paper profile's initialisation files are not where the run needs them (``distilkit``
    prints it as one ``error:`` line and exits 2)."""


@dataclass(frozen=True)
class InitSource:
    """How one row starts: from scratch, a pretrained file, or a teacher row's checkpoint."""

    kind: str                    # "scratch" | "file" | "teacher"
    path: Path | None = None     # the file (kind file or teacher)

    def label(self) -> str:
        if self.kind == "scratch":
            return "scratch"
        if self.kind == "teacher":
            return f"teacher row {self.path.parent.name}/best.pt (waits for it)"
        return self.path.name + ("" if self.path.is_file() else " (MISSING)")


def uses_pretrained(profile: str) -> bool:
    return profile in PAPER_PROFILES


def init_source(model: str, *, profile: str, pretrained: Path | None, teacher_dirs: dict[str, Path]
                ) -> InitSource:
    """Where a run of base ``model`` starts at ``profile``. ``pretrained`` None: the files are not
    given (``--no-pretrained``, or ``--plan`` without them): those rows show as missing.
    ``teacher_dirs``: teacher key -> its run folder."""
    if not uses_pretrained(profile):
        return InitSource("scratch")
    if model in FROM_TEACHER:
        return InitSource("teacher", teacher_dirs[FROM_TEACHER[model]] / "best.pt")
    if model in PRETRAINED_FILES:
        folder = Path(pretrained) if pretrained is not None else Path("<--pretrained DIR>")
        return InitSource("file", folder / PRETRAINED_FILES[model])
    return InitSource("scratch")


def check_pretrained(pretrained: str | Path | None, *, profile: str) -> Path | None:
    """The --pretrained folder, resolved, once it holds every file the profile needs; None where
    the profile needs none. MissingPretrained (one line) names what is missing."""
    if not uses_pretrained(profile):
        return None
    needed = sorted(set(PRETRAINED_FILES.values()))
    if pretrained is None:
        raise MissingPretrained(
            f"the {profile} profile starts from {' and '.join(needed)} (ImageNet weights, as the authors): "
            f"pass --pretrained DIR holding them (how to get them: {WEIGHTS_GUIDE}), "
            "or --no-pretrained to train every row from scratch")
    folder = Path(pretrained).expanduser().resolve()
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise MissingPretrained(f"--pretrained {folder} lacks {', '.join(missing)} "
                                f"(how to get them: {WEIGHTS_GUIDE})")
    return folder


def teacher_run_of(init_backbone: str | None) -> Path | None:
    """The run folder an ``init_backbone`` checkpoint belongs to, when it is a kit run's
    ``best.pt`` (a row waits for that run); else None."""
    if not init_backbone:
        return None
    from distilkit.engine.config import run_folder_checkpoint
    path = Path(init_backbone)
    return path.parent if run_folder_checkpoint(path) else None


__all__ = [
    "FROM_TEACHER",
    "PRETRAINED_FILES",
    "InitSource",
    "MissingPretrained",
    "check_pretrained",
    "init_source",
    "teacher_run_of",
    "uses_pretrained",
]
