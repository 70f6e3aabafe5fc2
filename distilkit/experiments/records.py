"""The run folder is the record; a results table is derived from the folders.

A run writes everything about itself into its own folder: ``config.json`` when it starts,
``metrics.csv`` per epoch, then ``run.json`` (commit, device, torch, host, start, finish, wall
time) and ``final_metrics.json`` when it finishes. A runner that fails a row writes
``error.txt`` there. ``collect_table`` reads the folders a table's recipe names and returns its
rows in the paper's order, seeds ascending; ``results/*.csv`` are exports of it, with
``results/configs.json`` (each exported row's config, ``row_configs``) beside them. No file is
shared between runs, so runners on one machine or many never need to agree on anything but
the folders.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from distilkit.experiments.grid import BRING_YOUR_OWN, TABLES, TEACHERS, teacher_run, teachers_needed
from distilkit.experiments.plan import Job, Recipe, plan_jobs, plan_teachers, seed_folders
from distilkit.experiments.row_configs import CONFIGS_FILE, config_entry, write_configs
from distilkit.files import atomic_write_text
from distilkit.losses import DISTILL_TERMS
from distilkit.paths import relative_to_repo
from distilkit.profiles import PROFILES
from distilkit.provenance import RUN_PROVENANCE, read_run_record
from distilkit.units import UNIT_COLUMN, frame_in_percent

METRICS = ("AP", "AP50", "AP75", "APM", "APL", "AR")
DIAGNOSTICS = ("err_px", "PCK10", "score_auc", "kpt_score", "AP_dark")
# The exported CSVs' columns, in order.
COLUMNS = ("table", "row", "student", "teacher", "model", *(term.column for term in DISTILL_TERMS), "reg_loss",
           "seed", *METRICS, "paper_AP", "wall_s", "git_commit", "config_hash", "profile", "device",
           "torch_version", "timestamp", "host", "epochs", "run_dir", "error", *DIAGNOSTICS, UNIT_COLUMN)
ERROR_FILE = "error.txt"
TEACHER_TABLE = 0     # teachers.csv: the teachers no table prints as a row of its own


def final_metrics(run_dir: Path, config_hash: str) -> dict | None:
    """The finished run's metrics, or None if the folder holds no finished run of this recipe."""
    try:
        metrics = json.loads((Path(run_dir) / "final_metrics.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict) or metrics.get("config_hash") not in (None, config_hash):
        return None
    return metrics


def is_finished(job: Job) -> bool:
    return final_metrics(job.run_dir, job.config.hash()) is not None


def error_of(run_dir: Path) -> str | None:
    """The one-line reason a runner recorded for a failed row, if any."""
    try:
        return (Path(run_dir) / ERROR_FILE).read_text().splitlines()[0]
    except (OSError, IndexError):
        return None


def run_row(job: Job, run_dir: Path, seed: int, repo: Path | None = None) -> dict | None:
    """One results row from a folder: finished (metrics and provenance), failed (its error),
    or None (not run, or still running)."""
    metrics = final_metrics(run_dir, job.config.hash())
    error = None if metrics is not None else error_of(run_dir)
    if metrics is None and error is None:
        return None
    record = read_run_record(run_dir) or {}
    metrics = metrics or {}
    row = {**job.spec.columns(job.config.losses), "seed": seed, **{k: metrics.get(k, "") for k in METRICS},
           "paper_AP": job.spec.paper_AP if job.spec.paper_AP is not None else "",
           "wall_s": record.get("wall_s", ""), "config_hash": job.config.hash(),
           "profile": job.config.profile, "epochs": job.config.schedule().epochs,
           "run_dir": relative_to_repo(run_dir, repo), "error": error or "",
           **{k: metrics.get(k, "") for k in DIAGNOSTICS},
           **{k: record.get(k, "") for k in RUN_PROVENANCE}}
    return {k: row.get(k, "") for k in COLUMNS}


def table_jobs(table: int, recipe: Recipe, *, runs_root: Path) -> list[Job]:
    """Seed-0 jobs of a table's rows, its own teachers first (table 0: the shared teachers)."""
    if table == TEACHER_TABLE:
        keys = [k for k in TEACHERS if teacher_run(k).table == TEACHER_TABLE]
        return plan_teachers(keys, recipe, runs_dir=runs_root)
    if table not in TABLES:
        raise ValueError(f"unknown table {table}; known: {sorted(TABLES)} and {TEACHER_TABLE} (teachers)")
    teachers, rows = plan_jobs([table], recipe, seeds=[0], runs_dir=runs_root)
    return [t for t in teachers if t.spec.table == table] + rows


def collect_table(table: int, runs_root: str | Path, recipe: Recipe | None = None, *,
                  repo: Path | None = None) -> pd.DataFrame:
    """A results table derived from the run folders under ``runs_root`` (e.g. ``runs/cpu``), its
    AP, AR and PCK in percent (``AP_unit``; the folders keep fractions, ``distilkit.units``).

    Rows in the paper's order, each row's seeds ascending, every seed whose folder holds a
    finished or failed run of this recipe. ``recipe`` defaults to the folder's name as profile.
    """
    rows = [row for _, _, row in _collected(table, runs_root, recipe, repo)]
    return frame_in_percent(pd.DataFrame(rows, columns=list(COLUMNS)))


def _collected(table: int, runs_root: str | Path, recipe: Recipe | None,
               repo: Path | None) -> list[tuple[Job, Path, dict]]:
    """(job, run folder, results row) of each finished or failed run of the table's recipe."""
    runs_root = Path(runs_root)
    if recipe is None:
        if runs_root.name not in PROFILES:
            raise ValueError(f"{runs_root}: pass a Recipe (profile one of {sorted(PROFILES)}); the "
                             "folder's name is not a profile")
        recipe = Recipe(runs_root.name)
    found = []
    for job in table_jobs(table, recipe, runs_root=runs_root.resolve()):
        for seed, run_dir in seed_folders(job).items():
            row = run_row(job, run_dir, seed, repo)
            if row is not None:
                found.append((job, run_dir, row))
    return found


def export_tables(tables: list[int], runs_root: str | Path, results_dir: str | Path,
                  recipe: Recipe | None = None) -> list[Path]:
    """Write ``table<N>.csv`` for each table (``bring_your_own.csv`` for table 7),
    ``teachers.csv`` when a table needs them, and ``configs.json``: every exported row's
    config by its config hash (``row_configs``; the first seed's folder of each)."""
    from distilkit.paths import repo_root

    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    written = []
    configs: dict[str, dict] = {}
    needs_teachers = any(teacher_run(k).table == TEACHER_TABLE for k in teachers_needed(tables))
    for table in ([TEACHER_TABLE] if needs_teachers else []) + list(tables):
        name = {TEACHER_TABLE: "teachers.csv", BRING_YOUR_OWN: "bring_your_own.csv"}.get(table, f"table{table}.csv")
        found = _collected(table, runs_root, recipe, None)
        frame = frame_in_percent(pd.DataFrame([row for _, _, row in found], columns=list(COLUMNS)))
        # atomic: two runners sharing a results folder may export at the same time
        atomic_write_text(results_dir / name, frame.to_csv(index=False, float_format="%.6g"))
        written.append(results_dir / name)
        for job, run_dir, _ in found:
            configs.setdefault(job.config.hash(), config_entry(job.config, run_dir, repo_root()))
    written.append(write_configs(results_dir / CONFIGS_FILE, configs))
    return written


__all__ = ["collect_table", "export_tables", "is_finished", "final_metrics", "run_row", "COLUMNS",
           "ERROR_FILE", "METRICS"]
