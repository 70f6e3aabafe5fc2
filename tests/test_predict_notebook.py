"""Execute ``notebooks/predict.py`` with papermill at the smoke profile.

The notebook gets a smoke student checkpoint (random weights, on the session's smoke set) and a
temporary ``out_dir``, so it trains nothing and writes nothing into the repository.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "predict.py"
NUM_IMAGES = 2


@pytest.fixture(scope="module")
def smoke_student(smoke_root, tmp_path_factory) -> Path:
    from distilkit.files import atomic_torch_save
    from distilkit.engine.config import TrainConfig
    from distilkit.models import build_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("predict_nb") / "student.pt"
    atomic_torch_save({"model_name": "distilpose-s-smoke", "model_overrides": {},
                       "state_dict": build_model("distilpose-s-smoke").state_dict(),
                       "config": TrainConfig(out_dir=".", model="distilpose-s", profile="smoke",
                                             data_root=str(smoke_root)).to_dict()}, path)
    return path


@pytest.mark.notebook
def test_predict_notebook_shows_synthetic_scenes_and_the_photograph(smoke_student, smoke_root,
                                                                    tmp_path, drawn_png):
    import jupytext
    import papermill

    source = tmp_path / "predict.ipynb"
    jupytext.write(jupytext.read(NOTEBOOK), source)
    known = papermill.inspect_notebook(str(source))
    assert {"checkpoint", "profile", "out_dir", "cache_dir", "num_images", "threads"} <= set(known)
    assert known["checkpoint"]["default"] == "None"
    assert known["out_dir"]["default"].strip("\"'").startswith("runs/")   # from the repository root; never results/
    out = tmp_path / "figures"
    papermill.execute_notebook(str(source), str(tmp_path / "predict.out.ipynb"),
                               parameters={"checkpoint": str(smoke_student), "profile": "smoke",
                                           "out_dir": str(out), "cache_dir": str(tmp_path / "cache"),
                                           "num_images": NUM_IMAGES, "threads": 1},
                               kernel_name="python3", cwd=str(NOTEBOOK.parent), progress_bar=False)
    images = sorted((smoke_root / "val2017").glob("*.jpg"))[:NUM_IMAGES]
    for stem in [p.stem for p in images] + ["astronaut"]:
        for figure in (f"predict_{stem}", f"confidence_{stem}"):
            drawn_png(out / f"{figure}.png")
            assert (out / f"{figure}.pdf").read_bytes()[:4] == b"%PDF"
    results = json.loads((out / "keypoints.json").read_text())
    photo = [r for r in results if r["file_name"] == "skimage.data.astronaut()"]
    assert len(photo) == 1 and photo[0]["bbox"] == [0.0, 0.0, 512.0, 512.0]
    assert {r["image_id"] for r in results} == {int(p.stem) for p in images} | {0}
    assert all(len(r["keypoints"]) == 51 for r in results)
    assert not (tmp_path / "cache").exists()                 # the checkpoint was given: no training
    executed = json.loads((tmp_path / "predict.out.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for cell in executed["cells"]
                      for o in cell.get("outputs", []) if o.get("name") == "stdout")
    assert "not expected to work on real photographs" in printed     # said, not only in markdown
