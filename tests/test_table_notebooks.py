"""Every table runner and the report execute under papermill at the smoke profile."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from distilkit.experiments.records import COLUMNS
from distilkit.experiments.runner import notebook_ipynb
from distilkit.paths import notebooks_dir

pytestmark = pytest.mark.notebook

# A subset of rows per table keeps CI fast; the whole grids run in `make reproduce`.
ROWS = {4: ["none", "all"], 5: ["HRNet-W48-s3 / stemnet"], 6: None}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, smoke_root):
    return tmp_path_factory.mktemp("tables"), smoke_root


def _execute(name: str, out: Path, **params) -> Path:
    import papermill as pm

    src = notebook_ipynb(name, out / "nb")
    executed = out / f"{name}.executed.ipynb"
    pm.execute_notebook(str(src), str(executed), parameters=params, kernel_name="python3",
                        progress_bar=False, cwd=str(notebooks_dir()))
    return executed


@pytest.mark.parametrize("table", list(ROWS))
def test_the_table_notebook_runs_its_rows_and_exports_its_csv(table, workspace):
    out, root = workspace
    _execute("ablation_table", out, table=table, profile="smoke", data_root=str(root), rows=ROWS[table],
             noise_seeds=1, jobs=2, runs_dir=str(out / "runs"), results_dir=str(out / "results"),
             progress=False)
    exported = pd.read_csv(out / "results" / f"table{table}.csv")
    assert list(exported.columns) == list(COLUMNS)
    assert exported["AP"].notna().all() and exported["AP"].between(0, 1).all()
    if ROWS[table] is not None:
        assert set(ROWS[table]) <= set(exported["row"])


def test_report_notebook_writes_report_and_figure(workspace, drawn_png):
    from distilkit.experiments.report import render_report, report_data

    out, _ = workspace
    if not (out / "results" / "table4.csv").exists():
        pytest.skip("needs the table notebooks of this module to have run first")
    _execute("report", out, results_dir=str(out / "results"), out_dir=str(out / "results"),
             fig_dir=str(out / "results" / "figures"))
    # the kit's report of the tables the notebooks above exported, judged on their rows
    data = report_data(out / "results")
    assert (out / "results" / "REPORT.md").read_text() == render_report(data)
    assert set(ROWS[4]) <= set(data.summaries[4]["row"])
    assert data.conclusion("all>none").n_seeds == 1
    drawn_png(out / "results" / "figures" / "table4_component_gain.png")


def test_train_eval_notebook_alone_leaves_a_complete_run_folder(workspace, drawn_png):
    import json

    from distilkit.viz.curves import plot_learning_curves

    out, root = workspace
    run = out / "single"
    _execute("train_eval", out, profile="smoke", data_root=str(root), model="distilpose-s",
             losses="reg", epochs=1, out_dir=str(run), progress=False)
    drawn_png(run / "learning_curves.png")
    drawn_png(run / "predictions.png")
    # the curves drawn are the run's metrics: one epoch, evaluated once
    curve = pd.read_csv(run / "metrics.csv")
    ax_loss, ax_ap = plot_learning_curves(run / "metrics.csv").axes
    assert [line.get_label() for line in ax_ap.lines] == ["AP", "AP50", "AP75", "AR"]
    assert [line.get_ydata().tolist() for line in ax_ap.lines] == [
        curve[c].tolist() for c in ("AP", "AP50", "AP75", "AR")]
    assert {line.get_label() for line in ax_loss.lines} == {"reg", "loss"}   # loss terms, not the sample rate
    assert all(float(t).is_integer() for t in ax_loss.get_xticks())          # whole epochs
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "final_metrics.json").read_text())
    assert config["config_hash"] == metrics["config_hash"] and 0 <= metrics["AP"] <= 1
    assert json.loads((run / "run.json").read_text())["wall_s"] > 0
