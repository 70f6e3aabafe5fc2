"""The last step of the main job: the tables, the report and the figures, from the runs just made.

Each notebook runs through papermill against the main job's checkpoints and results of the
profile (the viz notebooks find them through ``experiments.figure_models``), writes its
figures to the results folder and is kept, executed, under ``runs/<profile>/notebooks/``;
the ones that ran are then published, made light, to ``<results>/notebooks/``
(``published_notebooks``). A notebook that fails is reported and the others still run.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from distilkit.experiments.runner import KERNEL_ARGS, notebook_ipynb
from distilkit.paths import notebooks_dir

# The report first: it only reads the CSVs. The rest load checkpoints and draw.
FIGURE_NOTEBOOKS = ("report", "viz_attention", "viz_heatmaps", "viz_features", "viz_confidence",
                    "interpret", "complexity", "learning_curves")


# The viz notebooks' parameter for each role's checkpoint (experiments.figure_models.ROLES).
ROLE_PARAMETERS = {"teacher": "teacher", "plain": "student_plain", "tde": "student_tde", "full": "student_full"}


def notebook_parameters(name: str, *, profile: str, results_dir: Path, threads: int | None,
                        models: dict[str, Path] | None = None, runs_dir: Path | None = None,
                        epochs: int | None = None) -> dict:
    """Papermill parameters; ``models`` (role -> checkpoint) pins the figures to those files."""
    fig_dir = str(results_dir / "figures")
    if name == "report":
        return {"results_dir": str(results_dir), "out_dir": str(results_dir), "fig_dir": fig_dir}
    params = {"profile": profile, "out_dir": fig_dir, "threads": threads}
    for role, path in (models or {}).items():
        params[ROLE_PARAMETERS[role]] = str(path)
    if name == "complexity":
        params["results_dir"] = str(results_dir)
    if name == "learning_curves":
        params = {"profile": profile, "runs_dir": str(runs_dir) if runs_dir else None, "epochs": epochs,
                  "out_dir": fig_dir}
    return params


@dataclass(frozen=True)
class NotebookRun:
    """One notebook the main job executes: ``notebooks/<source>.py``, kept as ``<name>.ipynb``."""

    source: str
    name: str
    parameters: dict


def table_runs(tables, *, profile: str, runs_dir: Path, results_dir: Path, data_root: str | None = None,
               epochs: int | None = None) -> list[NotebookRun]:
    """The ablation-table notebook once per table, showing the table from the run folders the
    main job just trained (``train=False``: a row that failed is not retried here)."""
    return [NotebookRun("ablation_table", f"ablation_table_{t}", dict(
        table=int(t), profile=profile, data_root=data_root, epochs=epochs, runs_dir=str(runs_dir),
        results_dir=str(results_dir), train=False, progress=False)) for t in tables]


def render_figures(*, profile: str, results_dir: str | Path, runs_dir: str | Path,
                   notebooks: tuple[str, ...] = FIGURE_NOTEBOOKS, threads: int | None = None,
                   progress: bool = True, log=print, models: dict[str, Path] | None = None,
                   tables: tuple[int, ...] = (), epochs: int | None = None, publish: bool = True) -> dict:
    """Execute the ablation-table notebook of each of ``tables``, then ``notebooks``, in order;
    ``publish``: the executed ones, made light, to ``<results_dir>/notebooks/``. Returns
    {"wall_s", "failures": [{"notebook", "error"}], "published": {...} (publish_notebooks)}.
    ``models``: the checkpoints the viz notebooks draw (default: what they resolve themselves);
    ``epochs``: the main job's override of the students' epochs (it names their folders)."""
    results_dir, runs_dir = Path(results_dir).resolve(), Path(runs_dir).resolve()
    runs = table_runs(tables, profile=profile, runs_dir=runs_dir, results_dir=results_dir, epochs=epochs) + [
        NotebookRun(name, name, notebook_parameters(name, profile=profile, results_dir=results_dir, threads=threads,
                                                    models=models, runs_dir=runs_dir, epochs=epochs))
        for name in notebooks]
    out_dir = runs_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    failures, executed = [], []
    t0 = time.perf_counter()
    for run in tqdm(runs, desc="report and figures", unit="notebook", disable=not progress):
        try:
            executed.append(_execute(run, out_dir, cache=runs_dir / ".notebooks"))
        except Exception as err:  # keep going: each notebook stands alone
            lines = str(err).strip().splitlines()
            msg = f"{type(err).__name__}: {lines[-1] if lines else ''}"
            failures.append({"notebook": run.name, "error": msg[:300]})
            log(f"FAILED notebook {run.name}: {msg} (executed notebook: {out_dir / f'{run.name}.ipynb'})")
    out = {"wall_s": round(time.perf_counter() - t0, 1), "failures": failures}
    if publish:
        from distilkit.experiments.published_notebooks import PublishedNotebooksTooLarge, publish_notebooks

        try:
            out["published"] = publish_notebooks(executed, results_dir / "notebooks",
                                                 stale=tuple(f["notebook"] for f in failures))
        except PublishedNotebooksTooLarge as err:
            failures.append({"notebook": "(published copies)", "error": str(err)[:300]})
            log(f"FAILED publishing the notebooks: {err}")
    return out


def _execute(run: NotebookRun, out_dir: Path, *, cache: Path) -> Path:
    import papermill as pm

    dst = out_dir / f"{run.name}.ipynb"
    pm.execute_notebook(str(notebook_ipynb(run.source, cache)), str(dst), parameters=run.parameters,
                        progress_bar=False, cwd=str(notebooks_dir()), kernel_name="python3",
                        extra_arguments=KERNEL_ARGS)
    return dst


__all__ = ["FIGURE_NOTEBOOKS", "NotebookRun", "render_figures", "notebook_parameters", "table_runs"]
