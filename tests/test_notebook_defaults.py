"""Notebooks run with their defaults never write into the committed results/, and figures of
smoke models say the models are untrained."""
from __future__ import annotations

from pathlib import Path

import jupytext
import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from distilkit.paths import repo_root  # noqa: E402
from distilkit.viz.session import UNTRAINED_BANNER, VizSession, default_out_dir, default_profile  # noqa: E402

NOTEBOOKS = sorted(p.stem for p in (repo_root() / "notebooks").glob("*.py"))


def _parameters(name: str) -> dict:
    nb = jupytext.read(repo_root() / "notebooks" / f"{name}.py")
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    values: dict = {}
    exec(cell.source, {}, values)          # the cell is plain assignments
    return values


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_notebook_default_writes_under_results(name):
    for key, value in _parameters(name).items():
        if key.endswith(("out_dir", "fig_dir")) and value is not None:
            assert "results" not in Path(str(value)).parts, (name, key, value)


def test_default_figures_go_to_a_scratch_folder_under_runs():
    out = default_out_dir("smoke", "viz_heatmaps")
    assert out.is_relative_to(repo_root() / "runs") and "results" not in out.parts


def test_without_the_main_jobs_runs_the_notebooks_take_smoke_models(tmp_path, monkeypatch):
    # and without published models (tests/test_viz_sources.py covers those)
    monkeypatch.setattr("distilkit.viz.session.published_checkpoints", lambda profile, repo: {})
    monkeypatch.setattr("distilkit.viz.session.main_job_checkpoints", lambda profile, repo: {})
    assert default_profile() == "smoke"
    found = {r: tmp_path / f"{r}.pt" for r in ("teacher", "plain", "tde", "full")}
    monkeypatch.setattr("distilkit.viz.session.main_job_checkpoints", lambda profile, repo: found)
    assert default_profile() == "cpu"


@pytest.mark.parametrize("profile, stamped", [("smoke", True), ("cpu", False)])
def test_a_figure_of_smoke_models_carries_the_untrained_banner(profile, stamped, tmp_path):
    session = VizSession(paths={}, models={}, crops=None, data_root=tmp_path, out_dir=tmp_path, profile=profile)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    png, pdf = session.save(fig, "figure")
    assert png.exists() and pdf.exists()
    assert (UNTRAINED_BANNER in [t.get_text() for t in fig.texts]) is stamped
    plt.close(fig)
