"""The last step of the main job: the report and the figures, from the runs just made.

Each notebook runs through papermill against the main job's checkpoints and results of the
profile (the viz notebooks find them through ``distilkit.viz.checkpoints``), writes its
figures to the results folder and is kept, executed, under ``runs/<profile>/notebooks/``.
A notebook that fails is reported and the others still run.
"""
from __future__ import annotations

import time
from pathlib import Path

from tqdm.auto import tqdm

from distilkit.experiments.runner import KERNEL_ARGS, notebook_ipynb
from distilkit.paths import notebooks_dir

# The report first: it only reads the CSVs. The rest load checkpoints and draw.
FIGURE_NOTEBOOKS = ("report", "viz_attention", "viz_heatmaps", "viz_features", "viz_confidence",
                    "interpret", "complexity")


# The viz notebooks' parameter for each role's checkpoint (distilkit.viz.checkpoints.ROLES).
ROLE_PARAMETERS = {"teacher": "teacher", "plain": "student_plain", "tde": "student_tde", "full": "student_full"}


def notebook_parameters(name: str, *, profile: str, results_dir: Path, threads: int | None,
                        models: dict[str, Path] | None = None) -> dict:
    """Papermill parameters; ``models`` (role -> checkpoint) pins the figures to those files."""
    fig_dir = str(results_dir / "figures")
    if name == "report":
        return {"results_dir": str(results_dir), "out_dir": str(results_dir), "fig_dir": fig_dir}
    params = {"profile": profile, "out_dir": fig_dir, "threads": threads}
    for role, path in (models or {}).items():
        params[ROLE_PARAMETERS[role]] = str(path)
    if name == "complexity":
        params["results_dir"] = str(results_dir)
    return params


def render_figures(*, profile: str, results_dir: str | Path, runs_dir: str | Path,
                   notebooks: tuple[str, ...] = FIGURE_NOTEBOOKS, threads: int | None = None,
                   progress: bool = True, log=print, models: dict[str, Path] | None = None) -> dict:
    """Execute ``notebooks`` in order; returns {"wall_s", "failures": [{"notebook", "error"}]}.
    ``models``: the checkpoints the viz notebooks draw (default: what they resolve themselves)."""
    import papermill as pm

    results_dir, runs_dir = Path(results_dir).resolve(), Path(runs_dir).resolve()
    out_dir = runs_dir / "notebooks"
    cache = runs_dir / ".notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    t0 = time.perf_counter()
    for name in tqdm(notebooks, desc="report and figures", unit="notebook", disable=not progress):
        params = notebook_parameters(name, profile=profile, results_dir=results_dir, threads=threads,
                                     models=models)
        try:
            pm.execute_notebook(str(notebook_ipynb(name, cache)), str(out_dir / f"{name}.ipynb"),
                                parameters=params, progress_bar=False, cwd=str(notebooks_dir()),
                                kernel_name="python3", extra_arguments=KERNEL_ARGS)
        except Exception as err:  # keep going: each notebook stands alone
            lines = str(err).strip().splitlines()
            msg = f"{type(err).__name__}: {lines[-1] if lines else ''}"
            failures.append({"notebook": name, "error": msg[:300]})
            log(f"FAILED notebook {name}: {msg} (executed notebook: {out_dir / f'{name}.ipynb'})")
    return {"wall_s": round(time.perf_counter() - t0, 1), "failures": failures}


__all__ = ["FIGURE_NOTEBOOKS", "render_figures", "notebook_parameters"]
