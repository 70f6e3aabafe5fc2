"""``make lab`` serves the jupytext percent-format notebooks as notebooks, as root too, with the
user's ARGS."""
from __future__ import annotations

import os
import subprocess

import pytest
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


@pytest.mark.parametrize("args", ["--no-browser --port=8899", "--ServerApp.token=abc"])
def test_make_lab_passes_args_and_allows_root_as_root(args):
    dry = subprocess.run(["make", "--no-print-directory", "-n", "-o", ".venv/.installed", "-C", str(REPO), "lab",
                          f"ARGS={args}"], capture_output=True, text=True, check=True).stdout
    assert dry.rstrip().endswith(args)
    assert ("--allow-root" in dry) == (os.geteuid() == 0)
