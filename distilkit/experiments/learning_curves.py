"""Which run folders a learning-curves figure overlays: by default a table's rows as the main job
planned them (``notebooks/learning_curves.py``; drawn by ``viz.curves.plot_runs_curves``).

Unlike ``collect_table``, a run still training is included: its curve so far is the point of
looking. A folder without a metrics.csv (not started) is left out.
"""
from __future__ import annotations

from pathlib import Path

from distilkit.experiments.plan import Recipe, seed_folders
from distilkit.experiments.records import table_jobs


def table_run_folders(table: int, runs_root: str | Path, recipe: Recipe, *,
                      teachers: bool = False) -> dict[str, Path]:
    """``"<row> s<seed>"`` -> run folder, in the paper's row order and seeds ascending, for each
    of the table's rows with a metrics.csv under ``runs_root``; ``teachers``: the table's own
    teachers too (Table 4 shares its teacher, listed by table 0)."""
    runs_root = Path(runs_root).resolve()
    folders: dict[str, Path] = {}
    for job in table_jobs(table, recipe, runs_root=runs_root):
        if job.spec.losses.heatmap and not teachers:
            continue
        for seed, run_dir in seed_folders(job).items():
            if (run_dir / "metrics.csv").is_file():
                folders[f"{job.spec.row} s{seed}"] = run_dir
    return folders


def named_folders(run_dirs) -> dict[str, Path]:
    """A list of run folders (labelled by folder name) or a {label: folder} mapping, each
    checked to hold a metrics.csv (a clear error names the one that does not)."""
    runs = dict(run_dirs) if isinstance(run_dirs, dict) else {Path(p).name: p for p in run_dirs}
    out = {}
    for label, folder in runs.items():
        folder = Path(folder).expanduser()
        if not (folder / "metrics.csv").is_file():
            raise FileNotFoundError(f"{folder}: no metrics.csv, so no learning curve "
                                    "(not a run folder, or its first epoch has not ended)")
        out[str(label)] = folder
    return out


__all__ = ["named_folders", "table_run_folders"]
