"""Every table runner and the report execute under papermill at the smoke profile."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from distilkit.experiments.runner import notebook_ipynb, notebooks_dir

pytestmark = pytest.mark.notebook

# A subset of rows per table keeps CI fast; the whole grids run in `make reproduce`.
ROWS = {
    "table4_ablation": ["none", "all"],
    "table5_capacity": ["HRNet-W48-s3 / stemnet"],
    "table6_cnn": None,
}
CSV = {"table4_ablation": "table4.csv", "table5_capacity": "table5.csv", "table6_cnn": "table6.csv"}
SCHEMA = ["table", "row", "student", "teacher", "L_CS", "L_SH", "L_KT", "L_VT", "reg_loss", "seed",
          "AP", "AP50", "AP75", "APM", "APL", "AR", "paper_AP", "wall_s", "git_commit", "config_hash",
          "profile", "device"]


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


@pytest.mark.parametrize("name", list(ROWS))
def test_table_notebook_writes_its_csv(name, workspace):
    out, root = workspace
    _execute(name, out, profile="smoke", data_root=str(root), rows=ROWS[name], noise_seeds=1, jobs=2,
             runs_dir=str(out / "runs"), results_dir=str(out / "results"), progress=False)
    table = pd.read_csv(out / "results" / CSV[name])
    assert list(table.columns[:len(SCHEMA)]) == SCHEMA
    assert table["AP"].notna().all() and table["AP"].between(0, 1).all()
    if ROWS[name] is not None:
        assert set(ROWS[name]) <= set(table["row"])


def test_report_notebook_writes_report_and_figure(workspace):
    out, _ = workspace
    if not (out / "results" / "table4.csv").exists():
        pytest.skip("needs the table notebooks of this module to have run first")
    _execute("report", out, results_dir=str(out / "results"), fig_dir=str(out / "results" / "figures"))
    report = (out / "results" / "REPORT.md").read_text()
    assert "## Table 4" in report and "## The paper's conclusions, here" in report
    assert (out / "results" / "figures" / "table4_component_gain.png").exists()


def test_train_eval_notebook_alone_writes_row_and_figures(workspace):
    out, root = workspace
    run = out / "single"
    _execute("train_eval", out, profile="smoke", data_root=str(root), model="distilpose-s",
             losses="reg", epochs=1, out_dir=str(run), progress=False, results_csv=str(out / "single.csv"))
    assert (run / "learning_curves.png").exists() and (run / "predictions.png").exists()
    row = pd.read_csv(out / "single.csv")
    assert len(row) == 1 and 0 <= row["AP"].iloc[0] <= 1
