"""The main job publishes its executed table, report, viz and learning-curve notebooks to
``results/notebooks/``: figures inline at a page's width, no widget views, under the size budget,
and never a copy that outlives the results it showed."""
from __future__ import annotations

import base64
import io
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from PIL import Image

from distilkit.experiments.published_notebooks import (
    MAX_IMAGE_WIDTH,
    WIDGET_VIEW,
    PublishedNotebooksTooLarge,
    publish_notebooks,
)


def _png(width: int, height: int) -> str:
    image = Image.effect_noise((width, height), 64).convert("RGB")     # noise: PNG cannot cheat on it
    out = io.BytesIO()
    image.save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def _executed(path: Path, *widths: int) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    cell = nbformat.v4.new_code_cell("plt.show()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": _png(w, w // 2), "text/plain": "<Figure>"},
                                           metadata={"image/png": {"width": w}}) for w in widths]
    cell.outputs.append(nbformat.v4.new_output("display_data", data={
        WIDGET_VIEW: {"model_id": "abc", "version_major": 2, "version_minor": 0}, "text/plain": "100%|##| 3/3"}))
    nb.cells = [cell]
    nbformat.write(nb, str(path))
    return path


def _image_widths(path: Path) -> list[int]:
    nb = nbformat.read(str(path), as_version=4)
    return [Image.open(io.BytesIO(base64.b64decode(o["data"]["image/png"]))).width
            for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]


@pytest.mark.parametrize("width, published", [(2400, MAX_IMAGE_WIDTH), (MAX_IMAGE_WIDTH + 1, MAX_IMAGE_WIDTH),
                                              (600, 600)])
def test_images_wider_than_a_page_are_scaled_down_and_widget_views_dropped(tmp_path, width, published):
    src = _executed(tmp_path / "viz.ipynb", width)
    out = publish_notebooks([src], tmp_path / "published")
    copy = tmp_path / "published" / "viz.ipynb"
    assert _image_widths(copy) == [published]
    nb = nbformat.read(str(copy), as_version=4)
    datas = [o["data"] for o in nb.cells[0].outputs]
    assert all(WIDGET_VIEW not in d for d in datas) and "100%|##| 3/3" in [d["text/plain"] for d in datas]
    assert "widgets" not in nb.metadata
    assert out["files"] == {"viz.ipynb": copy.stat().st_size} and out["total_bytes"] == copy.stat().st_size
    original = nbformat.read(str(src), as_version=4).cells[0].outputs[0]["data"]["image/png"]
    if width == published:     # nothing to scale: the image is the executed one, bit for bit
        assert datas[0]["image/png"] == original
    else:                      # scaled and palette-coded: fewer bytes, never more
        assert len(datas[0]["image/png"]) < len(original)


def test_over_the_budget_nothing_is_written_and_the_earlier_copies_stay(tmp_path):
    small = publish_notebooks([_executed(tmp_path / "a.ipynb", 300)], tmp_path / "published")
    before = (tmp_path / "published" / "a.ipynb").read_bytes()
    big = [_executed(tmp_path / "a.ipynb", 1000, 1000), _executed(tmp_path / "b.ipynb", 1000)]
    with pytest.raises(PublishedNotebooksTooLarge, match=r"a.ipynb .* MB, b.ipynb .* MB"):
        publish_notebooks(big, tmp_path / "published", max_total_bytes=2 * small["total_bytes"])
    assert (tmp_path / "published" / "a.ipynb").read_bytes() == before
    assert not (tmp_path / "published" / "b.ipynb").exists()


def test_a_notebook_that_failed_this_time_loses_its_earlier_published_copy(tmp_path):
    publish_notebooks([_executed(tmp_path / "a.ipynb", 300), _executed(tmp_path / "b.ipynb", 300)], tmp_path / "pub")
    out = publish_notebooks([tmp_path / "a.ipynb"], tmp_path / "pub", stale=("b",))
    assert out["removed"] == ["b.ipynb"] and sorted(p.name for p in (tmp_path / "pub").iterdir()) == ["a.ipynb"]


@pytest.mark.notebook
def test_the_main_jobs_figure_stage_publishes_its_table_report_and_curves_notebooks(tmp_path, drawn_png):
    from test_learning_curves import TERMS, _metrics

    from distilkit.experiments import TABLES
    from distilkit.experiments.figures import render_figures
    from distilkit.experiments.plan import Recipe, plan_jobs

    results, runs = tmp_path / "results", tmp_path / "runs"
    results.mkdir()
    specs = {s.row: s for s in TABLES[4]()}
    pd.DataFrame([{**specs[r].columns(), "seed": 0, "AP": ap, "err_px": e, "paper_AP": specs[r].paper_AP}
                  for r, ap, e in (("none", 0.2, 5.0), ("all", 0.3, 4.0))]).to_csv(results / "table4.csv", index=False)
    _, jobs = plan_jobs([4], Recipe("smoke"), seeds=[0], runs_dir=runs)
    for job in jobs:
        if job.spec.row in ("none", "all"):
            _metrics(job.run_dir, TERMS["plain" if job.spec.row == "none" else "full"])
    out = render_figures(profile="smoke", results_dir=results, runs_dir=runs, tables=(4,),
                         notebooks=("report", "learning_curves"), progress=False, log=print)
    assert out["failures"] == []
    published = results / "notebooks"
    assert sorted(p.name for p in published.iterdir()) == ["ablation_table_4.ipynb", "learning_curves.ipynb",
                                                          "report.ipynb"]
    assert out["published"]["total_bytes"] == sum(p.stat().st_size for p in published.iterdir())
    curves = nbformat.read(str(published / "learning_curves.ipynb"), as_version=4)
    shown = " ".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in curves.cells for o in c.get("outputs", []))
    assert "none s0" in shown and "all s0" in shown
    assert len(_image_widths(published / "learning_curves.ipynb")) == 1
    assert 0 < max(_image_widths(published / "report.ipynb")) <= MAX_IMAGE_WIDTH
    drawn_png(results / "figures" / "learning_curves.png")
    table = nbformat.read(str(published / "ablation_table_4.ipynb"), as_version=4)
    assert table.metadata.papermill.parameters["train"] is False    # shown from the folders, not retrained
