"""JupyterLab serves the jupytext percent-format notebooks as notebooks."""
from __future__ import annotations

from lab_server import REPO, lab_server


def test_lab_opens_percent_py_as_notebook(tmp_path):
    with lab_server(REPO / "notebooks", tmp_path) as lab:
        model = lab.get("/api/contents/00_dataset_tour.py?type=notebook&content=1")
    assert model["type"] == "notebook", model.get("type")
    cells = model["content"]["cells"]
    assert len(cells) > 3
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and tagged[0]["cell_type"] == "code"
    assert 'profile = "smoke"' in "".join(tagged[0]["source"])
