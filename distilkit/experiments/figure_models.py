"""The four models the figures compare, defined by the grid and found among the main job's runs.

Roles (the models of Fig. 3a, and the ones Figs. 3b, 5, 6 and the attributions need), each a
row of the grid, so a role is trained exactly as its row is:

    teacher   the Table 4 teacher (``grid.teacher_run("hrw48")``, teachers.csv's row)
    plain     DistilPose-S trained without distillation      (Table 4 row "none")
    tde       DistilPose-S distilled with L_KT + L_VT only    (Table 4 row "KT+VT")
    full      DistilPose-S with L_KT + L_VT + L_SH + L_CS     (Table 4 row "all")

``main_job_checkpoints`` finds the roles' run folders of a profile through ``collect_table``;
``publish`` commits them, ``viz.checkpoints`` falls back on the published or smoke ones.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from distilkit.experiments.grid import RunSpec, table4_rows, teacher_run
from distilkit.experiments.plan import Recipe
from distilkit.experiments.records import collect_table
from distilkit.losses import LossConfig
from distilkit.paths import repo_root, resolve

ROLES: tuple[str, ...] = ("teacher", "plain", "tde", "full")
ROLE_LABELS: dict[str, str] = {
    "teacher": "teacher (heatmap)",
    "plain": "student, no distillation",
    "tde": "student, TDE only",
    "full": "student, TDE + Sim. Heatmaps",
}
FIGURE_TEACHER = "hrw48"                         # grid.TEACHERS key of the teacher role
# Table 4 row label of each student role (distilkit.experiments.grid).
TABLE4_ROWS: dict[str, str] = {"plain": "none", "tde": "KT+VT", "full": "all"}
TEACHER_ROW = teacher_run(FIGURE_TEACHER).row    # its row in teachers.csv: "HRNet-W48 (teacher)"


def role_spec(role: str) -> RunSpec:
    """The grid row a role is: the teacher's run, or the student's Table 4 row."""
    if role == "teacher":
        return teacher_run(FIGURE_TEACHER)
    if role not in TABLE4_ROWS:
        raise ValueError(f"unknown role {role!r}; known: {ROLES}")
    return next(spec for spec in table4_rows() if spec.row == TABLE4_ROWS[role])


def loss_config(role: str) -> LossConfig:
    return role_spec(role).losses


def role_source(role: str) -> str:
    """Where the main job makes a role, for messages."""
    if role == "teacher":
        return f"the HRNet-W48-analog teacher (teachers.csv row '{TEACHER_ROW}')"
    return f"Table 4 row '{TABLE4_ROWS[role]}'"


def run_checkpoint(run_dir: str | Path) -> Path | None:
    """best.pt when the run has one, else last.pt (a run whose AP never became finite
    writes no best.pt), else None."""
    run_dir = Path(run_dir)
    for name in ("best.pt", "last.pt"):
        if (run_dir / name).is_file():
            return run_dir / name
    return None


def main_job_checkpoints(profile: str, repo: str | Path | None = None, *,
                         runs_root: str | Path | None = None) -> dict[str, Path]:
    """The roles the main job has already trained at this profile (possibly none), found in its
    run folders (``runs_root``, default ``runs/<profile>``) through ``collect_table``."""
    repo = Path(repo) if repo is not None else repo_root()
    runs_root = Path(runs_root) if runs_root is not None else repo / "runs" / profile
    if not runs_root.is_dir():
        return {}
    rows = pd.concat([collect_table(table, runs_root, Recipe(profile), repo=repo) for table in (0, 4)])
    rows = rows[rows["error"] == ""]
    found: dict[str, Path] = {}
    for role, label in {**TABLE4_ROWS, "teacher": TEACHER_ROW}.items():
        # lowest seed first (collect_table's order): the same run every time the notebooks run
        for run_dir in rows.loc[rows["row"] == label, "run_dir"]:
            ckpt = run_checkpoint(resolve(run_dir, repo))
            if ckpt is not None:
                found[role] = ckpt
                break
    return found
