"""The bring-your-own table: planned, run and collected as the paper's tables are, and each
pooling's SH gain judged by the report's rule (a gain counts beyond the widest seed range)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from distilkit.experiments import collect_table
from distilkit.experiments.bring_your_own import gain_labels, paired_gains, sh_claims, verdict_lines
from distilkit.experiments.grid import BRING_YOUR_OWN, BYO_STUDENT_EPOCHS
from distilkit.experiments.plan import Recipe, plan_jobs
from distilkit.experiments.report_claims import ERR_FLOOR
from distilkit.units import frame_in_percent


def test_its_runs_are_planned_as_a_tables_teacher_first_in_plain_folder_names(tmp_path):
    teachers, rows = plan_jobs([BRING_YOUR_OWN], Recipe("smoke"), seeds=[0, 1], runs_dir=tmp_path)
    assert [t.run_dir.parent.name for t in teachers] == ["teachers"]
    assert [(j.spec.row, j.seed) for j in rows] == [
        (row, seed) for row in ("gap, plain", "gap + SH", "flatten, plain", "flatten + SH") for seed in (0, 1)]
    assert all(":" not in j.run_dir.name and j.run_dir.parent == tmp_path for j in rows)
    assert {j.config.epochs for j in rows} == {BYO_STUDENT_EPOCHS}
    assert {j.config.teacher for j in rows if "SH" in j.spec.row} == {str(teachers[0].run_dir / "best.pt")}


# err_px per seed (0, 1, 2): GAP's SH gain (0.6 px on every seed) is beyond the widest seed
# range of the rows (0.2 px); flatten's (0.05 px) is inside it.
ERR = {"gap, plain": (5.5, 5.6, 5.4), "gap + SH": (4.9, 5.0, 4.8),
       "flatten, plain": (5.4, 5.5, 5.3), "flatten + SH": (5.35, 5.45, 5.25)}


def _runs(err: dict = ERR) -> pd.DataFrame:
    """Finished runs as collect_table gives them (AP in percent, a blank where it knows nothing)."""
    return frame_in_percent(pd.DataFrame([
        {"row": row, "seed": seed, "AP": 0.010 + 0.001 * seed, "err_px": e, "student": row.split(" ")[0],
         "teacher": "-", "reg_loss": "smooth_l1", "paper_AP": ""}
        for row, values in err.items() for seed, e in enumerate(values)]))


def test_the_sh_gain_is_paired_by_seed():
    gains = paired_gains(_runs())
    assert gains["seed"].tolist() == [0, 1, 2, 0, 1, 2]
    assert gains.groupby("pooling")["err_px"].mean().round(6).to_dict() == {"flatten": 0.05, "gap": 0.6}
    assert gains["AP"].abs().max() < 1e-9                 # the same AP with and without SH


def test_a_gain_counts_beyond_the_widest_seed_range_as_the_report_judges():
    claims = sh_claims(_runs())
    assert {p: c.err_margin for p, c in claims.items()} == pytest.approx({"gap": 0.2, "flatten": 0.2})
    assert (claims["gap"].held_by_err, claims["flatten"].held_by_err) == (True, False)
    assert claims["gap"].seeds_apart_by_err is True
    assert gain_labels(_runs())[("err_px", "gap")] == "helps"
    assert gain_labels(_runs())[("err_px", "flatten")] == "inside the seed spread"
    lines = verdict_lines(_runs())
    assert "SH gains more with GAP than with flatten, against issue #6's answer" in lines[-1]


def test_the_margin_never_falls_below_the_reports_floor():
    steady = {row: (v[0],) * 3 for row, v in ERR.items()}      # no seed spread at all
    assert sh_claims(_runs(steady))["flatten"].err_margin == ERR_FLOOR


def test_a_row_without_finished_runs_is_not_judged():
    claims = sh_claims(_runs({k: v for k, v in ERR.items() if k != "flatten + SH"}))
    assert claims["flatten"].held_by_err is None and claims["gap"].held_by_err is True
    assert gain_labels(_runs({k: v for k, v in ERR.items() if k != "flatten + SH"}))[("AP", "flatten")] == "n/a"


@pytest.mark.notebook
def test_the_notebook_judges_the_folders_it_finds(tmp_path):
    """Run with train=False on folders of finished runs: it collects them as the grid names
    them, draws the figure and prints the verdict."""
    import papermill as pm

    from distilkit.experiments.runner import notebook_ipynb
    from distilkit.paths import notebooks_dir

    runs = tmp_path / "runs"
    teachers, rows = plan_jobs([BRING_YOUR_OWN], Recipe("smoke"), seeds=[0, 1, 2], runs_dir=runs)
    for job in teachers + rows:
        job.run_dir.mkdir(parents=True)
        err = ERR[job.spec.row][job.seed] if job in rows else 3.0
        (job.run_dir / "final_metrics.json").write_text(json.dumps(
            {"config_hash": job.config.hash(), "AP": 0.01, "err_px": err}))
    assert len(collect_table(BRING_YOUR_OWN, runs, Recipe("smoke"))) == 13
    executed = tmp_path / "executed.ipynb"
    pm.execute_notebook(str(notebook_ipynb("bring_your_own", tmp_path / "nb")), str(executed),
                        parameters=dict(profile="smoke", runs_dir=str(runs), results_dir=str(tmp_path / "out"),
                                        train=False),
                        kernel_name="python3", progress_bar=False, cwd=str(notebooks_dir()))
    assert (tmp_path / "out" / "figures" / "bring_your_own.png").is_file()
    text = Path(executed).read_text()
    assert "against issue #6" in text and "**gap**" in text
