"""Execute notebooks/00_dataset_tour.py with papermill at the smoke profile."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "00_dataset_tour.py"


@pytest.mark.notebook
def test_dataset_tour_writes_figures(tmp_path, request, drawn_png):
    import jupytext                            # dependencies of the kit: missing is a failure
    import papermill
    request.getfixturevalue("smoke_root")  # generates the smoke set once; sets DISTILKIT_DATA

    source = tmp_path / "00_dataset_tour.ipynb"
    jupytext.write(jupytext.read(NOTEBOOK), source)
    figures = tmp_path / "figures"
    papermill.execute_notebook(
        str(source), str(tmp_path / "out.ipynb"),
        parameters={"profile": "smoke", "seed": 0, "out_dir": str(figures), "num_samples": 3},
        kernel_name="python3", cwd=str(NOTEBOOK.parent), progress_bar=False)

    written = sorted(p.name for p in figures.glob("dataset_tour_*.png"))
    for name in ("scenes", "crops", "augmented"):
        assert f"dataset_tour_{name}.png" in written, written
    for name in written:                       # crops and scenes: images, not empty axes
        drawn_png(figures / name, min_std=0.15)
