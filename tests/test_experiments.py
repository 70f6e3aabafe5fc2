"""The table runner: papermill rows, CSV schema, skip on re-run, failure isolation.

The report built from the tables is tested in test_report.py."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from distilkit.engine import read_config
from distilkit.experiments import TABLES, table4_rows, table5_rows, table6_rows
from distilkit.experiments.plan import Recipe, plan_jobs
from distilkit.experiments.records import COLUMNS, collect_table, run_row
from distilkit.experiments.reproduce import run_tables
from distilkit.experiments.runner import run_jobs
from distilkit.engine.scalars import read_scalars
from distilkit.losses import LossConfig


def test_grids_lay_out_the_papers_rows():
    t4 = table4_rows()
    switches = {(s.losses.cs, s.losses.sh, s.losses.kt, s.losses.vt) for s in t4 if s.losses.reg_loss == "smooth_l1"}
    assert len(switches) == 8                      # the 8 combinations of Table 4
    assert [s.paper_AP for s in t4[:8]] == [56.0, 63.2, 56.4, 64.1, 67.1, 61.7, 67.5, 71.6]
    assert {s.row for s in t4 if s.losses.reg_loss == "l1"} == {"none (L1)", "all (L1)"}
    t5 = table5_rows()
    assert {(s.student, s.teacher_label) for s in t5} == {
        (st, t) for st in ("stemnet", "HRNet-W48-s3") for t in ("none", "stemnet", "HRNet-W48")}
    assert all((s.teacher is None) == (not s.losses.distills) for s in t4 + t5)
    t6 = table6_rows()
    assert [s.losses.uses_tokens for s in t6] == [False, False]  # no TDE on the CNN student
    assert t6[1].losses.sh and t6[1].losses.cs and t6[1].teacher == "simplebaseline"


def test_rows_shared_between_tables_share_a_run_folder(tmp_path):
    _, jobs = plan_jobs([4, 5], Recipe("smoke"), seeds=[0], runs_dir=tmp_path)
    by_row = {(j.spec.table, j.spec.row): j for j in jobs}
    assert by_row[(4, "none")].run_dir == by_row[(5, "stemnet / none")].run_dir
    assert by_row[(4, "all")].run_dir == by_row[(5, "stemnet / HRNet-W48")].run_dir
    assert by_row[(4, "none")].run_dir != by_row[(4, "none (L1)")].run_dir


def test_a_row_shared_with_a_repeated_row_gets_the_same_seeds(tmp_path):
    _, jobs = plan_jobs([4, 5], Recipe("smoke"), seeds=[0], runs_dir=tmp_path,
                        extra_seeds={(4, "none"): [0, 1, 2]})
    seeds = {}
    for j in jobs:
        seeds.setdefault((j.spec.table, j.spec.row), []).append(j.seed)
    assert seeds[(4, "none")] == seeds[(5, "stemnet / none")] == [0, 1, 2]
    assert seeds[(4, "all")] == seeds[(5, "stemnet / HRNet-W48")] == [0]
    t5_none = sorted(j.run_dir for j in jobs if j.spec.row == "stemnet / none")
    assert t5_none == sorted(j.run_dir for j in jobs if j.spec.table == 4 and j.spec.row == "none")
    _, alone = plan_jobs([5], Recipe("smoke"), seeds=[0], runs_dir=tmp_path,
                         extra_seeds={(4, "none"): [0, 1, 2]})  # Table 5 run on its own
    assert sorted(j.run_dir for j in alone if j.spec.row == "stemnet / none") == t5_none


@pytest.mark.notebook
def test_a_row_sharing_a_folder_finished_in_the_same_invocation_is_not_trained_again(tmp_path, smoke_root):
    summary = run_tables([4, 5], profile="smoke", rows=["none", "stemnet / none"], noise_seeds=1,
                         jobs=2, runs_dir=tmp_path / "runs", results_dir=tmp_path / "results",
                         data_root=str(smoke_root), progress=False)
    assert summary["failures"] == []
    t4 = pd.read_csv(tmp_path / "results" / "table4.csv").set_index("row")
    t5 = pd.read_csv(tmp_path / "results" / "table5.csv").set_index("row")
    assert t5.loc["stemnet / none", "run_dir"] == t4.loc["none", "run_dir"]
    assert t5.loc["stemnet / none", "err_px"] == t4.loc["none", "err_px"]
    assert 0.0 <= t4.loc["none", "score_auc"] <= 1.0   # recorded by the run, not backfilled
    # the reused row carries the provenance of the run that trained it
    for col in ("git_commit", "timestamp", "torch_version"):
        assert t5.loc["stemnet / none", col] == t4.loc["none", col], col
    # ... and its own wall time, never 0
    assert t5.loc["stemnet / none", "wall_s"] == t4.loc["none", "wall_s"] > 0


def _finished(job, seed: int, ap: float, record: dict | None = None, config_hash: str | None = None):
    """A run folder as a finished run leaves it (metrics, and its run.json when ``record``)."""
    import json

    run_dir = job.run_dir if seed == job.seed else job.run_dir.with_name(
        f"{job.run_dir.name.rsplit('-s', 1)[0]}-s{seed}")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "final_metrics.json").write_text(json.dumps(
        {"config_hash": config_hash or job.config.hash(), "AP": ap, "err_px": 5.0}))
    if record is not None:
        (run_dir / "run.json").write_text(json.dumps(record))
    return run_dir


def test_a_row_carries_the_provenance_its_run_recorded_and_blank_where_it_recorded_none(tmp_path):
    _, jobs = plan_jobs([4], Recipe("smoke"), seeds=[0], runs_dir=tmp_path)
    job = jobs[0]
    record = {"wall_s": 321.0, "git_commit": "0123abcd", "device": "cpu:x86_64x2", "host": "box",
              "torch_version": "2.13.0+cpu", "timestamp": "2026-01-01T00:00:00+00:00"}
    _finished(job, 0, 0.1, record)
    old = _finished(job, 1, 0.2)      # a folder from before run records: no commit is better than a wrong one
    table = collect_table(4, tmp_path, Recipe("smoke")).set_index("seed")
    assert {k: table.loc[0, k] for k in record} == record
    assert table.loc[0, "AP"] == pytest.approx(10.0) and table.loc[0, "AP_unit"] == "percent"
    assert table.loc[1, "git_commit"] == "" and table.loc[1, "wall_s"] == ""
    assert run_row(job, old, 1)["AP"] == 0.2


def test_collect_table_lists_the_papers_rows_in_order_seeds_ascending_and_only_this_recipe(tmp_path):
    _, jobs = plan_jobs([4], Recipe("smoke"), seeds=[0], runs_dir=tmp_path)
    job = {j.spec.row: j for j in jobs}
    for label, seed in [("all", 1), ("none", 0), ("all (L1)", 0), ("all", 0), ("CS", 0), ("none", 2),
                        ("all", 2), ("none", 1)]:      # the order parallel runs finished in
        _finished(job[label], seed, 0.1)
    _finished(job["KT"], 0, 0.3, config_hash="another-recipe")   # a stale folder is not this recipe's
    table = collect_table(4, tmp_path, Recipe("smoke"))
    assert list(table.columns) == list(COLUMNS)
    assert list(zip(table["row"], table["seed"])) == [
        ("none", 0), ("none", 1), ("none", 2), ("CS", 0), ("all", 0), ("all", 1), ("all", 2), ("all (L1)", 0)]


def test_a_teacher_row_comes_first_in_the_table_it_belongs_to(tmp_path):
    teachers, jobs = plan_jobs([6], Recipe("smoke"), seeds=[0], runs_dir=tmp_path)
    for job in reversed(teachers + jobs):
        _finished(job, 0, 0.1)
    assert collect_table(6, tmp_path, Recipe("smoke"))["row"].tolist() == [
        "SimpleBaseline (teacher)", "DeepPose", "DeepPose + Simulated Heatmaps"]


def test_the_export_writes_each_rows_config_beside_the_tables(tmp_path, monkeypatch):
    from distilkit.engine import write_config
    from distilkit.engine.config import TrainConfig
    from distilkit.experiments.records import export_tables

    monkeypatch.setattr("distilkit.paths.repo_root", lambda: tmp_path)   # the runs inside "the clone"
    runs = tmp_path / "runs" / "smoke"
    teachers, jobs = plan_jobs([4, 6], Recipe("smoke"), seeds=[0], runs_dir=runs)
    row = {j.spec.row: j for j in jobs}
    for job in teachers + [row["none"], row["all"], row["DeepPose"]]:
        _finished(job, 0, 0.1)
    _finished(row["all"], 1, 0.2)
    # a run records the config it trained with (here: TensorBoard on, which the hash leaves out)
    write_config(replace(row["all"].config, tensorboard=True), row["all"].run_dir / "config.json")
    written = export_tables([4, 6], runs, tmp_path / "results", Recipe("smoke"))
    configs = json.loads((tmp_path / "results" / "configs.json").read_text())
    assert written[-1] == tmp_path / "results" / "configs.json"
    exported = {h for p in written[:-1] for h in pd.read_csv(p)["config_hash"]}
    assert set(configs) == exported == {j.config.hash() for j in teachers + [row["none"], row["all"], row["DeepPose"]]}
    for digest, entry in configs.items():          # each entry is its row's recipe, whole
        assert TrainConfig.from_dict(entry["config"]).hash() == digest
        assert entry["identity"] == json.loads(json.dumps(TrainConfig.from_dict(entry["config"]).identity()))
    all_entry = configs[row["all"].config.hash()]
    assert all_entry["config"]["tensorboard"] is True and all_entry["config"]["seed"] == 0
    assert all_entry["config"]["out_dir"] == str(row["all"].run_dir.relative_to(tmp_path))
    assert all_entry["config"]["teacher"].startswith("runs/smoke/teachers/hrw48-")
    assert all_entry["identity"]["losses"]["sh_mode"] == row["all"].config.losses.sh_mode
    before = (tmp_path / "results" / "configs.json").read_text()
    export_tables([4, 6], runs, tmp_path / "results", Recipe("smoke"))
    assert (tmp_path / "results" / "configs.json").read_text() == before     # deterministic


@pytest.mark.notebook
def test_table_rows_run_through_papermill_and_rerun_skips(tmp_path, smoke_root, monkeypatch):
    # a row's overrides reach the trainer through the run folder's config.json
    weighted = {"losses": {"alpha_cs": 0.02}}
    monkeypatch.setitem(TABLES, 4, lambda: [replace(s, overrides=weighted) if s.row == "CS" else s
                                            for s in table4_rows()])
    kw = dict(profile="smoke", rows=["none", "CS", "all"], noise_seeds=1, jobs=2, runs_dir=tmp_path / "runs",
              results_dir=tmp_path / "results", data_root=str(smoke_root), progress=False)
    summary = run_tables([4], **kw, tensorboard=True)
    assert summary["failures"] == []
    table = pd.read_csv(tmp_path / "results" / "table4.csv")
    assert list(table.columns) == list(COLUMNS)
    assert sorted(table["row"]) == ["CS", "all", "none"]
    assert table["AP"].between(0, 100).all() and (table["AP_unit"] == "percent").all()   # the folders keep fractions
    for run_dir, ap in zip(table["run_dir"], table["AP"]):
        assert ap == pytest.approx(100 * json.loads((Path(run_dir) / "final_metrics.json").read_text())["AP"], abs=1e-4)
    assert table.set_index("row").loc["all", ["L_CS", "L_SH", "L_KT", "L_VT"]].all()
    teachers = pd.read_csv(tmp_path / "results" / "teachers.csv")
    assert teachers["row"].tolist() == ["HRNet-W48 (teacher)"]
    configs = json.loads((tmp_path / "results" / "configs.json").read_text())   # each row's recipe beside them
    assert set(configs) == set(table["config_hash"]) | set(teachers["config_hash"])
    assert configs[table.set_index("row").loc["CS", "config_hash"]]["config"]["losses"]["alpha_cs"] == 0.02
    # each row keeps its executed notebook as the record: run from that row's config.json, no error
    trained = {}
    for row, run_dir in zip(table["row"], table["run_dir"]):
        nb = nbformat.read(Path(run_dir) / "train_eval.ipynb", as_version=4)
        assert nb.metadata.papermill.parameters["config_path"] == str(Path(run_dir) / "config.json")
        assert nb.metadata.papermill.exception is None
        scalars = read_scalars(run_dir)                     # --tensorboard passed on to each row
        assert [step for step, _ in scalars["loss/total"]] == pd.read_csv(Path(run_dir) / "metrics.csv")["epoch"].tolist()
        assert "val/AP (%)" in scalars
        trained[row] = read_config(Path(run_dir) / "config.json")
        assert Path(trained[row].out_dir).resolve() == Path(run_dir).resolve()
    assert trained["CS"].losses == LossConfig(cs=True, alpha_cs=0.02)
    assert trained["all"].losses == LossConfig(kt=True, vt=True, sh=True, cs=True)
    # the two rows distilled from one teacher at one seed shared its outputs; removed after them
    for row in ("CS", "all"):
        assert trained[row].teacher_store == str(tmp_path / "runs" / ".teacher_outputs")
    assert not (tmp_path / "runs" / ".teacher_outputs").exists()
    before = (tmp_path / "results" / "table4.csv").read_text()
    again = run_tables([4], **kw)
    assert again["failures"] == []
    assert (tmp_path / "results" / "table4.csv").read_text() == before  # nothing re-run


@pytest.mark.notebook
def test_a_failing_row_is_reported_and_the_others_are_kept(tmp_path, smoke_root):
    teacher_jobs, jobs = plan_jobs([6], Recipe("smoke", str(smoke_root)), seeds=[0],
                                   runs_dir=tmp_path / "runs")
    plain = [j for j in jobs if j.spec.teacher is None][0]
    broken = replace(plain, spec=replace(plain.spec, row="broken"), run_dir=tmp_path / "runs" / "broken",
                     config=replace(plain.config, model="no-such-model", out_dir=str(tmp_path / "runs" / "broken")))
    failures = run_jobs([broken, plain], jobs_in_parallel=2, cache_dir=tmp_path / "nb",
                        log=lambda m: None)
    assert [j.spec.row for j, _ in failures] == ["broken"]
    assert "no-such-model" in failures[0][1] or "unknown model" in failures[0][1]
    broken_row = run_row(broken, broken.run_dir, 0)          # the folder records the failure
    assert broken_row["AP"] == "" and broken_row["error"] == failures[0][1]
    assert 0 <= run_row(plain, plain.run_dir, 0)["AP"] <= 1


def test_a_run_folder_in_use_by_another_process_is_refused_not_shared(tmp_path):
    from distilkit.engine.locks import FolderBusyError, exclusive

    code = ("import sys, time; from distilkit.engine.locks import exclusive\n"
            "with exclusive(sys.argv[1]):\n    print('held', flush=True); time.sleep(30)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "run" / ".lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusyError, match="in use by another process"):
            with exclusive(tmp_path / "run" / ".lock", wait=False):
                pass
    finally:
        holder.kill()
        holder.wait()
    with exclusive(tmp_path / "run" / ".lock", wait=False):  # released when its holder died
        pass


@pytest.mark.notebook
def test_render_figures_writes_the_report_and_keeps_going_past_a_failing_notebook(tmp_path, drawn_png):
    from distilkit.experiments.figures import render_figures
    from distilkit.experiments.report import render_report, report_data

    results = tmp_path / "results"
    results.mkdir()
    specs = {s.row: s for s in TABLES[4]()}
    pd.DataFrame([{**specs[r].columns(), "seed": 0, "AP": ap, "err_px": e, "paper_AP": specs[r].paper_AP}
                  for r, ap, e in (("none", 0.2, 5.0), ("all", 0.3, 4.0))]).to_csv(results / "table4.csv", index=False)
    out = render_figures(profile="smoke", results_dir=results, runs_dir=tmp_path / "runs",
                         notebooks=("no_such_notebook", "report"), progress=False, log=lambda m: None)
    assert [f["notebook"] for f in out["failures"]] == ["no_such_notebook"]
    assert "no_such_notebook.py is missing" in out["failures"][0]["error"]
    # the report notebook wrote the kit's report of this results folder
    assert (results / "REPORT.md").read_text() == render_report(report_data(results))
    nb = nbformat.read(tmp_path / "runs" / "notebooks" / "report.ipynb", as_version=4)
    assert Path(nb.metadata.papermill.parameters["results_dir"]) == results.resolve()
    drawn_png(results / "figures" / "table4_component_gain.png")


def test_the_summary_names_folders_inside_the_repository_relative_to_it(tmp_path):
    import json

    from distilkit.experiments.reproduce import _write_summary
    from distilkit.paths import repo_root

    repo = repo_root()
    out = tmp_path / "reproduce_summary.json"
    _write_summary(out, {"wall_s": 1.0, "results_dir": str(repo / "results"), "runs_dir": str(tmp_path / "runs")})
    written = json.loads(out.read_text())
    assert written["results_dir"] == "results"              # a clone's own results/
    assert written["runs_dir"] == str(tmp_path / "runs")     # outside the repository: kept as given
    assert written["wall_s"] == 1.0


def test_provenance_records_exactly_the_run_provenance_keys_for_this_process_now():
    import datetime as dt
    import platform
    import re

    import torch

    from distilkit.provenance import RUN_PROVENANCE, device_name, provenance

    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    record = provenance()
    after = dt.datetime.now(dt.timezone.utc)
    assert tuple(record) == RUN_PROVENANCE
    assert record["torch_version"] == torch.__version__ and record["host"] == platform.node()
    assert record["device"] == device_name()
    assert re.fullmatch(r"[0-9a-f]{12}(-dirty)?|unknown", record["git_commit"])   # "unknown" outside git
    assert before <= dt.datetime.fromisoformat(record["timestamp"]) <= after


def test_the_main_jobs_figures_can_be_pinned_to_the_published_models(tmp_path):
    """render_figures(models=...) hands each viz notebook the files of its roles, under the
    parameter names the notebooks declare (a renamed parameter would silently unpin them)."""
    import re

    from distilkit.experiments.figures import FIGURE_NOTEBOOKS, ROLE_PARAMETERS, notebook_parameters
    from distilkit.paths import notebooks_dir

    models = {role: tmp_path / f"{role}.pt" for role in ROLE_PARAMETERS}
    params = notebook_parameters("viz_heatmaps", profile="cpu", results_dir=tmp_path, threads=1, models=models)
    assert {params[p] for p in ROLE_PARAMETERS.values()} == {str(v) for v in models.values()}
    assert "teacher" not in notebook_parameters("report", profile="cpu", results_dir=tmp_path, threads=1,
                                                models=models)
    declared = set()
    for name in FIGURE_NOTEBOOKS:
        cell = (notebooks_dir() / f"{name}.py").read_text().split('# %% tags=["parameters"]')[1].split("# %%")[0]
        names = set(re.findall(r"^(teacher|student_\w+)\s*=", cell, flags=re.M)) - {"student_role"}
        assert names <= set(ROLE_PARAMETERS.values()), (name, names)
        declared |= names
    assert declared == set(ROLE_PARAMETERS.values())
