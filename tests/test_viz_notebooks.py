"""Execute the visualisation notebooks with papermill at the smoke profile.

The four smoke checkpoints (teacher, plain, TDE-only, full student; ``viz_checkpoints`` in
conftest.py) are trained once per session into a temporary folder and handed to every notebook as parameters, so nothing is
trained per notebook and nothing is written into the repository.
"""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"

# notebook -> (extra parameters, figure stems it must write as .png and .pdf)
CASES = {
    "viz_attention": ({"num_samples": 1}, ["attention_right_ankle_sample0",
                                           "attention_right_ankle_overview"]),
    "viz_features": ({"num_samples": 2}, ["feature_energy"]),
    "viz_heatmaps": ({"num_samples": 1}, ["heatmap_comparison_sample0", "heatmap_sigmas"]),
    "viz_confidence": ({"num_samples": 2, "reliability_crops": 40},
                       ["confidence_boxes", "confidence_reliability", "confidence_rescoring"]),
    "interpret": ({"num_samples": 1, "n_steps": 8}, ["attribution_right_ankle_sample0"]),
    "complexity": ({}, ["complexity_ap_vs_cost"]),
}
PATH_PARAMS = {"teacher": "teacher", "plain": "student_plain", "tde": "student_tde",
               "full": "student_full"}


def test_trained_checkpoints_are_cached(viz_checkpoints):
    """A second call with the same cache and teacher trains nothing (the six notebooks
    share one set of smoke models)."""
    from distilkit.viz.checkpoints import ensure_checkpoints

    cache = viz_checkpoints["plain"].parent.parent
    stamps = {r: p.stat().st_mtime_ns for r, p in viz_checkpoints.items()}
    again = ensure_checkpoints("smoke", cache, given={"teacher": viz_checkpoints["teacher"]},
                               use_main_job=False)
    assert again == viz_checkpoints
    assert {r: p.stat().st_mtime_ns for r, p in again.items()} == stamps


@pytest.mark.notebook
@pytest.mark.parametrize("name", list(CASES))
def test_viz_notebook_writes_its_figures(name, tmp_path, viz_checkpoints, drawn_png):
    import jupytext                            # dependencies of the kit: missing is a failure
    import papermill

    source = tmp_path / f"{name}.ipynb"
    jupytext.write(jupytext.read(NOTEBOOKS / f"{name}.py"), source)
    figures = tmp_path / "figures"
    extra, stems = CASES[name]
    params = {"profile": "smoke", "out_dir": str(figures), "cache_dir": str(tmp_path / "cache"),
              "threads": 1, **extra}
    params.update({PATH_PARAMS[role]: str(p) for role, p in viz_checkpoints.items()})
    if name == "complexity":
        params["results_dir"] = str(tmp_path / "no_results")   # ours from the checkpoints
    # pass only what the parameters cell defines: a typo there must not go unnoticed
    known = papermill.inspect_notebook(str(source))
    assert {"profile", "out_dir", "threads"} <= set(known), sorted(known)
    params = {k: v for k, v in params.items() if k in known}
    papermill.execute_notebook(str(source), str(tmp_path / f"{name}.out.ipynb"),
                               parameters=params, kernel_name="python3",
                               cwd=str(NOTEBOOKS), progress_bar=False)
    for stem in stems:
        png, pdf = figures / f"{stem}.png", figures / f"{stem}.pdf"
        drawn_png(png)
        assert pdf.is_file() and pdf.read_bytes()[:4] == b"%PDF", f"{pdf} missing"
    # the cache parameter is honoured: every model was given, so nothing was trained
    assert not (tmp_path / "cache").exists()
