"""The paper's ablation grids (Tables 4, 5, 6) and the kit's own bring-your-own table as data:
one RunSpec per row.

Every row runs the same code path (``distilkit.engine.fit`` through the ``train_eval``
notebook) with switches; the "no distillation" baselines are ordinary rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from distilkit.losses import DISTILL_TERMS, LossConfig

# The paper's four distillation terms: its "all" rows switch on these, not every term the kit has.
ALL_DISTILL = ("kt", "vt", "sh", "cs")


@dataclass(frozen=True)
class TeacherSpec:
    """A teacher trained once per profile and shared by every table that needs it."""

    key: str          # "hrw48", "stemnet", "simplebaseline"
    model: str        # base preset name, or a model spec
    label: str        # as the paper names it
    paper_AP: float | None = None
    table: int = 0    # the table its row is printed in (0: teachers.csv, shared by tables)


TEACHERS: dict[str, TeacherSpec] = {
    "hrw48": TeacherSpec("hrw48", "teacher-hrw48", "HRNet-W48", 72.5),
    "stemnet": TeacherSpec("stemnet", "teacher-stemnet", "stemnet", None),
    "simplebaseline": TeacherSpec("simplebaseline", "simplebaseline-r50", "SimpleBaseline", 70.4, table=6),
    "simplebaseline_resnet18": TeacherSpec("simplebaseline_resnet18", "simplebaseline:timm/resnet18",
                                           "SimpleBaseline (timm/resnet18)", table=7),
}


@dataclass(frozen=True)
class RunSpec:
    table: int
    row: str                       # the paper's row label
    model: str                     # base preset name
    losses: LossConfig = field(default_factory=LossConfig)
    teacher: str | None = None     # key into TEACHERS
    paper_AP: float | None = None
    student: str = ""              # Table 5 / 6 labels
    teacher_label: str = "none"
    # TrainConfig field -> value on top of the row's config (loss weights, model_overrides,
    # init_backbone, ...); "losses" takes a partial dict, e.g. {"losses": {"alpha_sh": 0.5}}.
    # It reaches the trainer unchanged, through the run folder's config.json.
    overrides: dict = field(default_factory=dict, hash=False)

    def columns(self, losses: LossConfig | None = None) -> dict:
        """The row's columns of the results CSV, with the switches of the ``losses`` it trained
        (its config's, which the overrides may change; default: the row's own)."""
        losses = losses or self.losses
        return {"table": self.table, "row": self.row, "student": self.student or self.model,
                "teacher": self.teacher_label, "model": self.model,
                **{term.column: getattr(losses, term.name) for term in DISTILL_TERMS},
                "reg_loss": losses.reg_loss}


def _student(row: str, *terms: str, paper=None, reg_loss="smooth_l1", table=4) -> RunSpec:
    """A DistilPose-S row distilled from HRNet-W48 with ``terms`` (DISTILL_TERMS names)."""
    losses = LossConfig(reg_loss=reg_loss, **{name: True for name in terms})
    teacher = "hrw48" if losses.distills else None
    return RunSpec(table=table, row=row, model="distilpose-s", losses=losses, teacher=teacher,
                   paper_AP=paper, student="stemnet",
                   teacher_label="HRNet-W48" if teacher else "none")


def table4_rows() -> list[RunSpec]:
    """Table 4: which distillation losses (DistilPose-S student, HRNet-W48 teacher)."""
    rows = [
        _student("none", paper=56.0),
        _student("CS", "cs", paper=63.2),
        _student("SH", "sh", paper=56.4),
        _student("CS+SH", "cs", "sh", paper=64.1),
        _student("KT", "kt", paper=67.1),
        _student("VT", "vt", paper=61.7),
        _student("KT+VT", "kt", "vt", paper=67.5),
        _student("all", *ALL_DISTILL, paper=71.6),
        # The control the paper lacks: a plain L1 regression loss, without and with distillation.
        _student("none (L1)", reg_loss="l1"),
        _student("all (L1)", *ALL_DISTILL, reg_loss="l1"),
        # Whether the authors' L_SH matters: their weights broadcast over the batch (the default,
        # as the paper's numbers were made) against L_SH masked per sample (docs/DEVIATIONS.md).
        replace(_student("all (masked L_SH)", *ALL_DISTILL), overrides={"losses": {"sh_mode": "masked"}}),
    ]
    return rows


def table5_rows() -> list[RunSpec]:
    """Table 5: student capacity x teacher capacity, all four distillation losses."""
    paper = {("stemnet", None): 56.0, ("stemnet", "stemnet"): 63.6, ("stemnet", "hrw48"): 71.6,
             ("HRNet-W48-s3", None): 63.0, ("HRNet-W48-s3", "stemnet"): 66.8,
             ("HRNet-W48-s3", "hrw48"): 74.4}
    rows = []
    for student, model in (("stemnet", "distilpose-s"), ("HRNet-W48-s3", "distilpose-l")):
        for teacher in (None, "stemnet", "hrw48"):
            losses = LossConfig(**dict.fromkeys(ALL_DISTILL, True)) if teacher else LossConfig()
            label = TEACHERS[teacher].label if teacher else "none"
            rows.append(RunSpec(table=5, row=f"{student} / {label}", model=model, losses=losses,
                                teacher=teacher, paper_AP=paper[(student, teacher)],
                                student=student, teacher_label=label))
    return rows


def table6_rows() -> list[RunSpec]:
    """Table 6: DeepPose (ResNet) without and with Simulated Heatmaps from SimpleBaseline."""
    sb = TEACHERS["simplebaseline"]
    return [
        RunSpec(table=6, row="DeepPose", model="deeppose-r50", losses=LossConfig(), paper_AP=52.6,
                student="DeepPose", teacher_label="none"),
        RunSpec(table=6, row="DeepPose + Simulated Heatmaps", model="deeppose-r50",
                losses=LossConfig(sh=True, cs=True), teacher="simplebaseline", paper_AP=59.7,
                student="DeepPose", teacher_label=sb.label),
    ]


BRING_YOUR_OWN = 7      # not a table of the paper: notebooks/bring_your_own.py
BYO_STUDENT_EPOCHS = 3


def bring_your_own_rows() -> list[RunSpec]:
    """Simulated Heatmaps between timm models (the authors' issue #6): DeepPose students on
    timm's ResNet-18, with GAP and with flatten pooling, without and with L_SH + L_CS from a
    SimpleBaseline on the same backbone; students train ``BYO_STUDENT_EPOCHS`` epochs."""
    teacher = TEACHERS["simplebaseline_resnet18"]
    rows = []
    for pooling, head in (("gap", "deeppose"), ("flatten", "deeppose-flatten")):
        model, student = f"{head}:timm/resnet18", f"DeepPose ({pooling})"
        rows += [RunSpec(table=BRING_YOUR_OWN, row=f"{pooling}, plain", model=model, student=student,
                         overrides={"epochs": BYO_STUDENT_EPOCHS}),
                 RunSpec(table=BRING_YOUR_OWN, row=f"{pooling} + SH", model=model,
                         losses=LossConfig(sh=True, cs=True), teacher=teacher.key, student=student,
                         teacher_label=teacher.label, overrides={"epochs": BYO_STUDENT_EPOCHS})]
    return rows


TABLES = {4: table4_rows, 5: table5_rows, 6: table6_rows, BRING_YOUR_OWN: bring_your_own_rows}


def teacher_run(key: str) -> RunSpec:
    spec = TEACHERS[key]
    return RunSpec(table=spec.table, row=f"{spec.label} (teacher)", model=spec.model,
                   losses=LossConfig(reg=False, heatmap=True), paper_AP=spec.paper_AP,
                   student=spec.label, teacher_label="-")


def teachers_needed(tables: list[int]) -> list[str]:
    keys: list[str] = []
    for t in tables:
        for spec in TABLES[t]():
            if spec.teacher and spec.teacher not in keys:
                keys.append(spec.teacher)
    return keys

