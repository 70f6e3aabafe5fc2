"""The table runner: papermill rows, CSV schema, skip on re-run, failure isolation, report."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from distilkit.experiments import TABLES, table4_rows, table5_rows, table6_rows
from distilkit.experiments.plan import plan_jobs
from distilkit.experiments.records import COLUMNS, collect_table, run_row
from distilkit.experiments.reproduce import run_tables
from distilkit.experiments.runner import run_jobs


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
    _, jobs = plan_jobs([4, 5], profile="smoke", seeds=[0], runs_dir=tmp_path)
    by_row = {(j.spec.table, j.spec.row): j for j in jobs}
    assert by_row[(4, "none")].run_dir == by_row[(5, "stemnet / none")].run_dir
    assert by_row[(4, "all")].run_dir == by_row[(5, "stemnet / HRNet-W48")].run_dir
    assert by_row[(4, "none")].run_dir != by_row[(4, "none (L1)")].run_dir


def test_a_row_shared_with_a_repeated_row_gets_the_same_seeds(tmp_path):
    _, jobs = plan_jobs([4, 5], profile="smoke", seeds=[0], runs_dir=tmp_path,
                        extra_seeds={(4, "none"): [0, 1, 2]})
    seeds = {}
    for j in jobs:
        seeds.setdefault((j.spec.table, j.spec.row), []).append(j.seed)
    assert seeds[(4, "none")] == seeds[(5, "stemnet / none")] == [0, 1, 2]
    assert seeds[(4, "all")] == seeds[(5, "stemnet / HRNet-W48")] == [0]
    t5_none = sorted(j.run_dir for j in jobs if j.spec.row == "stemnet / none")
    assert t5_none == sorted(j.run_dir for j in jobs if j.spec.table == 4 and j.spec.row == "none")
    _, alone = plan_jobs([5], profile="smoke", seeds=[0], runs_dir=tmp_path,
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
    _, jobs = plan_jobs([4], profile="smoke", seeds=[0], runs_dir=tmp_path)
    job = jobs[0]
    record = {"wall_s": 321.0, "git_commit": "0123abcd", "device": "cpu:x86_64x2", "host": "box",
              "torch_version": "2.13.0+cpu", "timestamp": "2026-01-01T00:00:00+00:00"}
    _finished(job, 0, 0.1, record)
    old = _finished(job, 1, 0.2)      # a folder from before run records: no commit is better than a wrong one
    table = collect_table(4, tmp_path, profile="smoke").set_index("seed")
    assert {k: table.loc[0, k] for k in record} == record
    assert table.loc[0, "AP"] == 0.1
    assert table.loc[1, "git_commit"] == "" and table.loc[1, "wall_s"] == ""
    assert run_row(job, old, 1)["AP"] == 0.2


def test_collect_table_lists_the_papers_rows_in_order_seeds_ascending_and_only_this_recipe(tmp_path):
    _, jobs = plan_jobs([4], profile="smoke", seeds=[0], runs_dir=tmp_path)
    job = {j.spec.row: j for j in jobs}
    for label, seed in [("all", 1), ("none", 0), ("all (L1)", 0), ("all", 0), ("CS", 0), ("none", 2),
                        ("all", 2), ("none", 1)]:      # the order parallel runs finished in
        _finished(job[label], seed, 0.1)
    _finished(job["KT"], 0, 0.3, config_hash="another-recipe")   # a stale folder is not this recipe's
    table = collect_table(4, tmp_path, profile="smoke")
    assert list(table.columns) == list(COLUMNS)
    assert list(zip(table["row"], table["seed"])) == [
        ("none", 0), ("none", 1), ("none", 2), ("CS", 0), ("all", 0), ("all", 1), ("all", 2), ("all (L1)", 0)]


def test_a_teacher_row_comes_first_in_the_table_it_belongs_to(tmp_path):
    teachers, jobs = plan_jobs([6], profile="smoke", seeds=[0], runs_dir=tmp_path)
    for job in reversed(teachers + jobs):
        _finished(job, 0, 0.1)
    assert collect_table(6, tmp_path, profile="smoke")["row"].tolist() == [
        "SimpleBaseline (teacher)", "DeepPose", "DeepPose + Simulated Heatmaps"]


@pytest.mark.notebook
def test_table_rows_run_through_papermill_and_rerun_skips(tmp_path, smoke_root):
    kw = dict(profile="smoke", rows=["none", "all"], noise_seeds=1, jobs=2, runs_dir=tmp_path / "runs",
              results_dir=tmp_path / "results", data_root=str(smoke_root), progress=False)
    summary = run_tables([4], **kw)
    assert summary["failures"] == []
    table = pd.read_csv(tmp_path / "results" / "table4.csv")
    assert list(table.columns) == list(COLUMNS)
    assert sorted(table["row"]) == ["all", "none"]
    assert table["AP"].between(0, 1).all()
    assert table.set_index("row").loc["all", ["L_CS", "L_SH", "L_KT", "L_VT"]].all()
    teachers = pd.read_csv(tmp_path / "results" / "teachers.csv")
    assert teachers["row"].tolist() == ["HRNet-W48 (teacher)"]
    # each row keeps its executed notebook as the record
    for run_dir in table["run_dir"]:
        assert (Path(run_dir) / "train_eval.ipynb").exists()
    before = (tmp_path / "results" / "table4.csv").read_text()
    again = run_tables([4], **kw)
    assert again["failures"] == []
    assert (tmp_path / "results" / "table4.csv").read_text() == before  # nothing re-run


@pytest.mark.notebook
def test_a_failing_row_is_reported_and_the_others_are_kept(tmp_path, smoke_root):
    teacher_jobs, jobs = plan_jobs([6], profile="smoke", seeds=[0], runs_dir=tmp_path / "runs",
                                   data_root=str(smoke_root))
    plain = [j for j in jobs if j.spec.teacher is None][0]
    broken = replace(plain, spec=replace(plain.spec, row="broken"), run_dir=tmp_path / "runs" / "broken",
                     config=replace(plain.config, model="no-such-model", out_dir=str(tmp_path / "runs" / "broken")))
    failures = run_jobs([broken, plain], jobs_in_parallel=2, cache_dir=tmp_path / "nb", progress=False,
                        log=lambda m: None)
    assert [j.spec.row for j, _ in failures] == ["broken"]
    assert "no-such-model" in failures[0][1] or "unknown model" in failures[0][1]
    broken_row = run_row(broken, broken.run_dir, 0)          # the folder records the failure
    assert broken_row["AP"] == "" and broken_row["error"] == failures[0][1]
    assert 0 <= run_row(plain, plain.run_dir, 0)["AP"] <= 1


def test_report_renders_tables_and_conclusions(tmp_path):
    from distilkit.experiments.report import write_report

    rows = []
    aps = [0.31, 0.33, 0.31, 0.34, 0.36, 0.32, 0.37, 0.40, 0.35, 0.38]
    errs = [5.0, 4.0, 5.5, 3.9, 3.5, 4.5, 3.4, 3.0, 4.2, 3.1]
    for spec, ap, err in zip(TABLES[4](), aps, errs):
        rows.append({**spec.columns(), "seed": 0, "AP": ap, "paper_AP": spec.paper_AP, "err_px": err})
    rows.append({**TABLES[4]()[0].columns(), "seed": 1, "AP": 0.31, "paper_AP": 56.0, "err_px": 5.0})
    pd.DataFrame(rows).to_csv(tmp_path / "table4.csv", index=False)
    pd.DataFrame([{"row": "HRNet-W48 (teacher)", "AP": 0.5, "paper_AP": 72.5, "wall_s": 1,
                   "err_px": 2.0}]).to_csv(tmp_path / "teachers.csv", index=False)
    report = write_report(tmp_path).read_text()
    assert "| none | stemnet | none | smooth_l1 | 2 | 31.00 |" in report   # mean of two seeds
    # seeds agree exactly: the margins are the floors, 0.5 AP and 0.1 px
    assert "wins by more than 0.50 AP points (COCO AP column) or 0.10 px" in report
    assert "| all four together are best (beats every other Table 4 row) | yes | yes | 1 |" in report
    # a tie in AP is not a gain; err_px 5.5 vs 5.0 is worse
    assert "| SH beats no distillation | no | no | 1 | n/a | SH: 31.00 AP / 5.50 px vs none: 31.00 / 5.00 |" in report
    # CS: +2 AP points over none and 1.0 px better: above both margins
    assert "| CS beats no distillation | yes | yes | 1 |" in report
    assert "| the HRNet-W48-analog teacher clearly beats the plain regression student (by > 2 AP) | yes | yes | 1 |" in report
    assert (tmp_path / "figures" / "table4_component_gain.png").exists()


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


def test_a_claim_with_a_missing_row_is_not_decided(tmp_path):
    from distilkit.experiments.report import write_report

    # only the extremes ran (the CI subset): nothing says all four beat CS, SH, ...
    specs = {s.row: s for s in TABLES[4]()}
    rows = [{**specs[r].columns(), "seed": 0, "AP": ap, "paper_AP": specs[r].paper_AP, "err_px": e}
            for r, ap, e in (("none", 0.30, 5.0), ("all", 0.40, 3.0))]
    pd.DataFrame(rows).to_csv(tmp_path / "table4.csv", index=False)
    report = write_report(tmp_path).read_text()
    assert "| all four together are best (beats every other Table 4 row) | n/a | n/a |" in report
    assert "| all beats no distillation | yes | yes | 1 |" in report
    assert "Run-to-run noise was not measured" in report


def test_the_gain_plot_shows_the_err_px_reduction_beside_the_ap_gain():
    from distilkit.experiments.report import plot_component_gains, summarize

    raw = pd.DataFrame([{**spec.columns(), "seed": 0, "AP": 0.0, "paper_AP": spec.paper_AP, "err_px": err}
                        for spec, err in zip(TABLES[4](), [9.0, 8.5, 8.0, 7.5, 8.7, 8.2, 7.9, 7.0, 8.0, 7.5])])
    fig = plot_component_gains(summarize(raw, 4), err_margin=0.4)
    ax_ap, ax_err = fig.axes
    heights = {t.get_text(): p.get_height() for t, p in zip(ax_err.get_xticklabels(), ax_err.patches)}
    assert heights["all"] == pytest.approx(9.0 - 7.0)          # against Smooth-L1 none
    assert heights["all (L1)"] == pytest.approx(8.0 - 7.5)     # against none (L1), the L1 control
    assert sorted({line.get_ydata()[0] for line in ax_err.lines if line.get_linestyle() == "--"}) == [-0.4, 0.4]


def test_report_margins_are_the_measured_seed_spread(tmp_path):
    from distilkit.experiments.report import write_report

    specs = {s.row: s for s in TABLES[4]()}
    rows = [{**specs["none"].columns(), "seed": i, "AP": ap, "err_px": err, "paper_AP": 56.0}
            for i, (ap, err) in enumerate([(0.30, 5.0), (0.33, 4.4), (0.31, 4.6)])]
    # CS gains 2 AP points and 0.5 px on the mean of none: inside its seed range of 3 AP / 0.6 px
    rows.append({**specs["CS"].columns(), "seed": 0, "AP": 0.3333, "err_px": 4.1, "paper_AP": 63.2})
    pd.DataFrame(rows).to_csv(tmp_path / "table4.csv", index=False)
    report = write_report(tmp_path).read_text()
    assert "among the rows run at 2 to 3 seeds is 3.00 AP points and 0.60 px" in report
    assert "| CS beats no distillation | no | no | 1 | n/a |" in report


def test_report_says_beside_each_verdict_whether_the_seed_ranges_are_apart(tmp_path):
    from distilkit.experiments.report import write_report

    specs = {s.row: s for s in TABLES[4]()}
    runs = {"none": [(0.001, 7.0), (0.002, 6.0)],
            "SH": [(0.004, 5.5), (0.005, 6.5)],      # every seed above none by AP, not by err_px
            "VT": [(0.002, 5.0), (0.006, 5.2)]}      # AP ties none's best seed: not apart
    pd.DataFrame([{**specs[r].columns(), "seed": i, "AP": ap, "err_px": e, "paper_AP": 56.0}
                  for r, seeds in runs.items() for i, (ap, e) in enumerate(seeds)]).to_csv(
        tmp_path / "table4.csv", index=False)
    report = write_report(tmp_path).read_text()
    assert "| SH beats no distillation | no | no | 2 | AP |" in report
    assert "| VT beats no distillation | no | yes | 2 | err_px |" in report


def test_report_explains_the_ap_floor_when_the_tolerance_curve_is_in_the_results(tmp_path):
    from distilkit.experiments.report import write_report

    specs = {s.row: s for s in TABLES[4]()}
    pd.DataFrame([{**specs[r].columns(), "seed": 0, "AP": ap, "err_px": e, "paper_AP": 56.0}
                  for r, ap, e in (("none", 0.0, 7.0), ("all", 0.01, 6.0))]).to_csv(
        tmp_path / "table4.csv", index=False)
    # Table 5's "stemnet / none" is Table 4's "none": the same run, one point
    specs5 = {s.row: s for s in TABLES[5]()}
    pd.DataFrame([{**specs5["stemnet / none"].columns(), "seed": 0, "AP": 0.0, "err_px": 7.0,
                   "paper_AP": 56.0}]).to_csv(tmp_path / "table5.csv", index=False)
    assert "How much error COCO AP tolerates" not in write_report(tmp_path).read_text()

    pd.DataFrame([{"input_size": "64x48", "err_px": e, "face_scale": f, "AP": ap}
                  for f, curve in ((1.0, [(0, 1.0), (4, 0.02), (5, 0.005), (8, 0.0)]),
                                   (0.0, [(0, 1.0), (4, 0.4), (5, 0.2), (8, 0.02)]))
                  for e, ap in curve]).to_csv(tmp_path / "ap_vs_error.csv", index=False)
    report = write_report(tmp_path).read_text()
    assert "## How much error COCO AP tolerates here" in report
    assert "is below 1 AP point from a mean error of 5 px" in report
    assert "Our models lie between 6.00 and 7.00 px" in report
    # "all" (1 AP at 6 px) is above the uniform curve (0.5 -> 0 AP there); "none" (0 AP) is not
    assert "1 of 2 score above the curve" in report
    assert (tmp_path / "figures" / "ap_vs_error.png").exists()


def test_report_judges_l_cs_by_how_well_the_scores_rank_keypoints(tmp_path):
    from distilkit.experiments.report import write_report

    specs = {s.row: s for s in TABLES[4]()}
    rows = [{**specs["none"].columns(), "seed": i, "AP": 0.0, "err_px": 7.0, "paper_AP": 56.0,
             "score_auc": auc} for i, auc in enumerate([0.40, 0.48])]
    rows += [{**specs[r].columns(), "seed": 0, "AP": 0.0, "err_px": 6.0, "paper_AP": 60.0,
              "score_auc": auc} for r, auc in (("CS", 0.80), ("all", 0.75), ("VT", 0.45))]
    pd.DataFrame(rows).to_csv(tmp_path / "table4.csv", index=False)
    report = write_report(tmp_path).read_text()
    assert "| CS | on | 1 | 0.800 |  | 6.00 |" in report
    assert "| none | off | 2 | 0.440 | 0.400-0.480 | 7.00 |" in report
    # lowest with L_CS 0.75 > highest without 0.48 + the seed range 0.08
    assert "by more than 0.080 (the widest seed range, 0.080, floored at 0.02): **holds**" in report
    assert ("the lowest of the 2 runs with L_CS scores 0.750, the highest of the 3 runs without "
            "0.480; every run with L_CS ranks above every run without it.") in report

    rows[-1]["score_auc"] = 0.70                   # VT without L_CS now ranks within the margin
    pd.DataFrame(rows).to_csv(tmp_path / "table4.csv", index=False)
    report = write_report(tmp_path).read_text()
    assert "**does not hold** (lowest with L_CS 0.750, highest without 0.700)" in report
    assert "the highest of the 3 runs without 0.700; every run with L_CS ranks above" in report
    rows[-1]["score_auc"] = 0.76                   # and now a single run without it out-ranks one with it
    pd.DataFrame(rows).to_csv(tmp_path / "table4.csv", index=False)
    assert "0.760; the two groups overlap." in write_report(tmp_path).read_text()


def test_a_report_of_results_without_score_auc_has_no_l_cs_section(tmp_path):
    from distilkit.experiments.report import write_report

    specs = {s.row: s for s in TABLES[4]()}
    pd.DataFrame([{**specs[r].columns(), "seed": 0, "AP": 0.0, "err_px": 6.0, "paper_AP": 56.0}
                  for r in ("none", "CS")]).to_csv(tmp_path / "table4.csv", index=False)
    assert "What L_CS does here" not in write_report(tmp_path).read_text()


@pytest.mark.notebook
def test_render_figures_writes_the_report_and_keeps_going_past_a_failing_notebook(tmp_path):
    from distilkit.experiments.figures import render_figures

    results = tmp_path / "results"
    results.mkdir()
    specs = {s.row: s for s in TABLES[4]()}
    pd.DataFrame([{**specs[r].columns(), "seed": 0, "AP": ap, "err_px": e, "paper_AP": specs[r].paper_AP}
                  for r, ap, e in (("none", 0.2, 5.0), ("all", 0.3, 4.0))]).to_csv(results / "table4.csv", index=False)
    out = render_figures(profile="smoke", results_dir=results, runs_dir=tmp_path / "runs",
                         notebooks=("no_such_notebook", "report"), progress=False, log=lambda m: None)
    assert [f["notebook"] for f in out["failures"]] == ["no_such_notebook"]
    assert "no_such_notebook.py is missing" in out["failures"][0]["error"]
    assert "| all beats no distillation |" in (results / "REPORT.md").read_text()
    assert (tmp_path / "runs" / "notebooks" / "report.ipynb").exists()


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


def test_provenance_records_exactly_the_run_provenance_keys():
    from distilkit.provenance import RUN_PROVENANCE, provenance

    assert tuple(provenance()) == RUN_PROVENANCE
