"""The report: the data its tables and verdicts are built from, and one golden rendering.

Every test but the golden one asserts the data (``report_data``, ``conclusions``,
``noise_margins``, ``score_ranking``, ``score_ranking_verdict``, ``error_tolerance``, the figures'
artists), never the report's wording: rewording a sentence of REPORT.md breaks only
``test_a_small_results_folder_renders_exactly_the_committed_report``.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from distilkit.experiments import TABLES  # noqa: E402
from distilkit.experiments.report import (ReportData, render_report, report_data,  # noqa: E402
                                          write_figures, write_report)
from distilkit.experiments.config_changes import FieldChange  # noqa: E402
from distilkit.experiments.report_claims import AP_FLOOR, ERR_FLOOR  # noqa: E402
from distilkit.experiments.report_tables import plot_component_gains, summarize  # noqa: E402

SMALL = Path(__file__).parent / "data" / "report_small"
GOLDEN = SMALL / "REPORT.golden.md"
REGENERATE = "DISTILKIT_REGENERATE_GOLDEN"


def _specs(table: int) -> dict:
    return {s.row: s for s in TABLES[table]()}


def _write(results: Path, table: int, runs: list[dict]) -> None:
    """``table<N>.csv`` with one line per run: the row's switch columns from the grid, then
    ``runs``' values (row, seed, AP as a fraction, err_px, ...)."""
    specs = _specs(table)
    pd.DataFrame([{**specs[r["row"]].columns(), "paper_AP": specs[r["row"]].paper_AP, **r}
                  for r in runs]).to_csv(results / f"table{table}.csv", index=False)


def _verdicts(d: ReportData) -> dict:
    """claim key -> (held by AP, held by err_px, fewest seeds, seeds apart by AP, by err_px)."""
    return {c.key: (c.held_by_ap, c.held_by_err, c.n_seeds, c.seeds_apart_by_ap,
                    c.seeds_apart_by_err) for c in d.conclusions}


# ----------------------------------------------------------------------------- golden

def test_tables_exported_in_percent_render_the_report_their_fractions_render(tmp_path):
    """The report reads each CSV by its ``AP_unit``: the small folder's tables written as the
    kit exports them now (percent, ``AP_unit``) render the same REPORT.md as their fractions."""
    from distilkit.units import frame_in_percent

    fractions, percent = tmp_path / "fractions", tmp_path / "percent"
    shutil.copytree(SMALL, fractions, ignore=shutil.ignore_patterns(GOLDEN.name))
    shutil.copytree(fractions, percent)
    for name in ("table4.csv", "table5.csv", "table6.csv", "teachers.csv", "ap_vs_error.csv"):
        frame = pd.read_csv(fractions / name)
        assert "AP_unit" not in frame
        frame_in_percent(frame).to_csv(percent / name, index=False)
    assert "AP_unit" in pd.read_csv(percent / "table4.csv")
    reports = [write_report(folder, tmp_path / f"figures_{folder.name}").read_text()
               for folder in (fractions, percent)]
    assert reports[0] == reports[1]


def test_a_small_results_folder_renders_exactly_the_committed_report(tmp_path):
    """The one test of the report's wording: ``tests/data/report_small/`` (hand-written CSVs
    covering every section: teachers, Tables 4-6 with missing rows and repeated seeds, the
    tolerance curve, score_auc) rendered to REPORT.md and compared byte for byte with
    ``REPORT.golden.md``.

    After an intended change of wording, regenerate the golden file explicitly, review its
    diff and commit it:

        DISTILKIT_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_report.py

    (the test then rewrites the file and skips). Figures go to a tmp folder, never into
    tests/data."""
    before = sorted(p.name for p in SMALL.iterdir())
    results = tmp_path / "results"
    shutil.copytree(SMALL, results, ignore=shutil.ignore_patterns(GOLDEN.name))
    written = write_report(results, tmp_path / "figures").read_bytes()
    assert sorted(p.name for p in SMALL.iterdir()) == before          # nothing written there
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "ap_vs_error.pdf", "ap_vs_error.png", "table4_component_gain.pdf",
        "table4_component_gain.png"]
    if os.environ.get(REGENERATE) == "1":
        GOLDEN.write_bytes(written)
        pytest.skip(f"{REGENERATE}=1: rewrote {GOLDEN}; review its diff and commit it")
    assert written == GOLDEN.read_bytes(), (
        f"REPORT.md of {SMALL} differs from {GOLDEN.name}; if the change is intended, "
        f"regenerate it with {REGENERATE}=1 and review the diff")


def test_write_report_writes_the_rendering_of_the_report_data_and_its_figures(tmp_path, drawn_png):
    results = tmp_path / "results"
    shutil.copytree(SMALL, results, ignore=shutil.ignore_patterns(GOLDEN.name))
    out = write_report(results)                                      # figures default: results/figures
    assert out == results / "REPORT.md"
    assert out.read_text() == render_report(report_data(results))
    # 12 x 4 in and 7 x 4.5 in at 130 dpi, not cropped
    assert drawn_png(results / "figures" / "table4_component_gain.png").shape == (546, 1560, 3)
    assert drawn_png(results / "figures" / "ap_vs_error.png").shape == (585, 910, 3)


# ----------------------------------------------------------------------------- tables and verdicts

@pytest.mark.parametrize("no_paper_ap", ["", None, float("nan")])
def test_a_row_without_a_paper_ap_summarises_to_nan_however_its_records_spell_it(no_paper_ap):
    """Run records spell a row without a paper figure (``all (masked L_SH)``) as "", a CSV
    read back as NaN: both summarise."""
    rows = pd.DataFrame([{"row": r, "student": "stemnet", "teacher": "HRNet-W48", "reg_loss": "smooth_l1",
                          "AP": 5.0, "err_px": 4.0, "paper_AP": p}
                         for r, p in (("all", "71.1"), ("all (masked L_SH)", no_paper_ap))])
    summary = summarize(rows, 4).set_index("row")
    assert summary.loc["all", "paper_AP"] == 71.1
    assert np.isnan(summary.loc["all (masked L_SH)", "paper_AP"])


def test_rows_are_summarised_over_seeds_and_claims_judged_against_the_floor_margins(tmp_path):
    aps = [0.31, 0.33, 0.31, 0.34, 0.36, 0.32, 0.37, 0.40, 0.35, 0.38, 0.385]
    errs = [5.0, 4.0, 5.5, 3.9, 3.5, 4.5, 3.4, 3.0, 4.2, 3.1, 3.3]
    runs = [{"row": s.row, "seed": 0, "AP": ap, "err_px": e}
            for s, ap, e in zip(TABLES[4](), aps, errs, strict=True)]
    runs.append({"row": "none", "seed": 1, "AP": 0.31, "err_px": 5.0})
    _write(tmp_path, 4, runs)
    pd.DataFrame([{"row": "HRNet-W48 (teacher)", "AP": 0.5, "paper_AP": 72.5, "wall_s": 1,
                   "err_px": 2.0}]).to_csv(tmp_path / "teachers.csv", index=False)
    d = report_data(tmp_path)

    none = d.summaries[4].set_index("row").loc["none"]
    assert none["seeds"] == 2                                         # two seeds, one line
    assert (none["AP"], none["AP_min"], none["AP_max"], none["err_px"]) == pytest.approx(
        (31.0, 31.0, 31.0, 5.0))
    assert d.summaries[4]["row"].tolist() == [s.row for s in TABLES[4]()]
    # the seeds agree exactly: the margins are the floors
    assert d.noise == pytest.approx({"ap": AP_FLOOR, "err": ERR_FLOOR, "ap_range": 0.0,
                                     "err_range": 0.0, "seeds": 2})
    v = _verdicts(d)
    assert v["all>each"] == (True, True, 1, None, None)
    assert v["SH>none"] == (False, False, 1, None, None)     # an AP tie is no gain; 5.5 px is worse
    assert v["CS>none"] == (True, True, 1, None, None)       # +2 AP, -1 px: above both margins
    assert v["teacher>none"] == (True, True, 1, None, None)
    assert v["all>all (masked L_SH)"] == (True, True, 1, None, None)   # 40.0 vs 38.5 AP, 3.0 vs 3.3 px
    (sh,) = d.conclusion("SH>none").comparisons
    assert (sh.better, sh.worse) == ("SH", "none")
    assert (sh.better_ap, sh.worse_ap, sh.better_err, sh.worse_err) == pytest.approx(
        (31.0, 31.0, 5.5, 5.0))
    assert (sh.ap_gain, sh.err_gain) == pytest.approx((0.0, -0.5))
    assert (sh.held_by_ap, sh.held_by_err) == (False, False)
    teacher = d.conclusion("teacher>none")
    assert (teacher.ap_margin, teacher.err_margin) == (2.0, ERR_FLOOR)   # "clearly": > 2 AP
    assert teacher.comparisons[0].ap_gain == pytest.approx(50.0 - 31.0)


def test_a_claim_with_a_missing_row_is_not_decided(tmp_path):
    # only the extremes ran (the CI subset): nothing says all four beat CS, SH, ...
    _write(tmp_path, 4, [{"row": "none", "seed": 0, "AP": 0.30, "err_px": 5.0},
                         {"row": "all", "seed": 0, "AP": 0.40, "err_px": 3.0}])
    d = report_data(tmp_path)
    v = _verdicts(d)
    assert v["all>each"] == (None, None, 1, None, None)
    assert v["all>none"] == (True, True, 1, None, None)
    assert v["SH>none"] == (None, None, 1, None, None)        # SH did not run
    assert d.noise["seeds"] == 1                                      # noise not measured
    # no Table 5 or 6: their claims are not judged at all
    assert [c.key for c in d.conclusions] == [
        "CS>none", "SH>none", "CS+SH>none", "KT>none", "VT>none", "KT+VT>none", "all>none",
        "all>each", "all (L1)>none (L1)", "all>all (masked L_SH)"]


def test_the_margins_are_the_measured_seed_spread(tmp_path):
    runs = [{"row": "none", "seed": i, "AP": ap, "err_px": e}
            for i, (ap, e) in enumerate([(0.30, 5.0), (0.33, 4.4), (0.31, 4.6)])]
    # CS gains 2.0 AP points and 0.57 px on the mean of none: inside its seed range of 3 AP / 0.6 px
    runs.append({"row": "CS", "seed": 0, "AP": 0.3333, "err_px": 4.1})
    _write(tmp_path, 4, runs)
    d = report_data(tmp_path)
    assert d.noise == pytest.approx({"ap": 3.0, "err": 0.6, "ap_range": 3.0, "err_range": 0.6,
                                     "seeds": 3})
    cs = d.conclusion("CS>none")
    assert (cs.held_by_ap, cs.held_by_err, cs.n_seeds, cs.seeds_apart_by_ap) == (False, False, 1, None)
    assert (cs.ap_margin, cs.err_margin) == pytest.approx((3.0, 0.6))
    assert (cs.comparisons[0].ap_gain, cs.comparisons[0].err_gain) == pytest.approx(
        (33.33 - (30 + 33 + 31) / 3, (5.0 + 4.4 + 4.6) / 3 - 4.1))


def test_beside_each_verdict_the_report_says_whether_the_seed_ranges_are_apart(tmp_path):
    runs = {"none": [(0.001, 7.0), (0.002, 6.0)],
            "SH": [(0.004, 5.5), (0.005, 6.5)],      # every seed above none by AP, not by err_px
            "VT": [(0.002, 5.0), (0.006, 5.2)]}      # AP ties none's best seed: not apart
    _write(tmp_path, 4, [{"row": r, "seed": i, "AP": ap, "err_px": e}
                         for r, seeds in runs.items() for i, (ap, e) in enumerate(seeds)])
    v = _verdicts(report_data(tmp_path))
    assert v["SH>none"] == (False, False, 2, True, False)
    assert v["VT>none"] == (False, True, 2, False, True)


def test_the_gain_plot_shows_the_err_px_reduction_beside_the_ap_gain():
    raw = pd.DataFrame([{**spec.columns(), "seed": 0, "AP": 0.0, "paper_AP": spec.paper_AP, "err_px": err}
                        for spec, err in zip(TABLES[4](), [9.0, 8.5, 8.0, 7.5, 8.7, 8.2, 7.9, 7.0, 8.0, 7.5])])
    fig = plot_component_gains(summarize(raw, 4), err_margin=0.4, ap_margin=0.7)
    ax_ap, ax_err = fig.axes
    heights = {t.get_text(): p.get_height() for t, p in zip(ax_err.get_xticklabels(), ax_err.patches)}
    assert heights["all"] == pytest.approx(9.0 - 7.0)          # against Smooth-L1 none
    # against none (L1), the L1 control, which the label names; the baselines are no bars
    assert heights["all (L1)\nvs none (L1)"] == pytest.approx(8.0 - 7.5)
    assert not {"none", "none (L1)"} & set(heights)
    for ax, margin in ((ax_err, 0.4), (ax_ap, 0.7)):           # both panels draw their noise margin
        assert sorted({line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "--"}) == [-margin, margin]
    assert not [c for ax in fig.axes for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]  # one seed


def test_the_gain_plot_draws_a_seed_range_only_where_a_row_ran_several_seeds():
    specs = {s.row: s for s in TABLES[4]()}
    raw = pd.DataFrame([{**specs[row].columns(), "seed": seed, "AP": ap, "paper_AP": specs[row].paper_AP,
                         "err_px": err}
                        for row, seed, ap, err in [("none", 0, 1.0, 6.0), ("none", 1, 2.0, 5.8), ("all", 0, 5.0, 4.8),
                                                   ("all", 1, 6.0, 4.6), ("CS", 0, 2.0, 5.5)]])
    fig = plot_component_gains(summarize(raw, 4), err_margin=0.2, ap_margin=1.0)
    for ax in fig.axes:
        (bars,) = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
        assert len(bars.lines[2][0].get_segments()) == 1          # "all" alone: CS ran one seed


def test_the_report_draws_the_component_gains_it_judges(tmp_path, drawn_png):
    _write(tmp_path, 4, [{"row": r, "seed": i, "AP": ap, "err_px": e}
                         for r, seeds in {"none": [(0.30, 5.0), (0.32, 4.8)],
                                          "SH": [(0.35, 4.5)], "all": [(0.40, 3.0)]}.items()
                         for i, (ap, e) in enumerate(seeds)])
    d = report_data(tmp_path)
    figures = write_figures(d, tmp_path / "figures")
    assert list(figures) == ["table4_component_gain"]                # no tolerance curve here
    ax_ap, ax_err = figures["table4_component_gain"].axes
    # every row but the baseline, ours beside the paper's in AP, ours alone in err_px
    assert [t.get_text() for t in ax_err.get_xticklabels()] == ["SH", "all"]
    assert [p.get_height() for p in ax_err.patches] == pytest.approx([4.9 - 4.5, 4.9 - 3.0])
    assert [p.get_height() for p in ax_ap.patches] == pytest.approx(
        [35 - 31, 40 - 31, 56.4 - 56.0, 71.6 - 56.0])
    margin = sorted({line.get_ydata()[0] for line in ax_err.lines if line.get_linestyle() == "--"})
    assert margin == pytest.approx([-d.noise["err"], d.noise["err"]])
    drawn_png(tmp_path / "figures" / "table4_component_gain.png")


# ----------------------------------------------------------------------------- error tolerance

def test_the_ap_floor_is_explained_when_the_tolerance_curve_is_in_the_results(tmp_path, drawn_png):
    _write(tmp_path, 4, [{"row": "none", "seed": 0, "AP": 0.0, "err_px": 7.0},
                         {"row": "all", "seed": 0, "AP": 0.01, "err_px": 6.0}])
    # Table 5's "stemnet / none" is Table 4's "none": the same run, one point
    _write(tmp_path, 5, [{"row": "stemnet / none", "seed": 0, "AP": 0.0, "err_px": 7.0}])
    assert report_data(tmp_path).tolerance is None

    curve = pd.DataFrame([{"input_size": "64x48", "err_px": e, "face_scale": f, "AP": ap}
                          for f, points in ((1.0, [(0, 1.0), (4, 0.02), (5, 0.005), (8, 0.0)]),
                                            (0.0, [(0, 1.0), (4, 0.4), (5, 0.2), (8, 0.02)]))
                          for e, ap in points])
    curve.to_csv(tmp_path / "ap_vs_error.csv", index=False)
    d = report_data(tmp_path)
    tol = d.tolerance
    assert (tol["file"], tol["input_size"], tol["first_below_1ap_err"]) == ("ap_vs_error.csv", "64x48", 5.0)
    assert tol["runs"][["row", "err_px", "AP", "kind"]].to_dict("records") == [
        {"row": "none", "err_px": 7.0, "AP": 0.0, "kind": "student"},
        {"row": "all", "err_px": 6.0, "AP": 1.0, "kind": "student"}]
    # "all" (1 AP at 6 px) is above the uniform curve (1/3 AP there); "none" (0 AP at 7 px) is not
    assert tol["models"] == pytest.approx({"err_lo": 6.0, "err_hi": 7.0, "uniform_ap_lo": 0.5 / 1.5,
                                           "uniform_ap_hi": 0.5 / 3, "n_above": 1, "n_runs": 2})

    ax, = write_figures(d, tmp_path / "figures")["ap_vs_error"].axes
    lines = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.lines}
    assert lines == {"face keypoints exact": ([0, 4, 5, 8], pytest.approx([100, 40, 20, 2])),
                     "uniform error on every keypoint": ([0, 4, 5, 8], pytest.approx([100, 2, 0.5, 0]))}
    teachers, students = ax.collections
    assert len(teachers.get_offsets()) == 0
    assert np.asarray(students.get_offsets()).tolist() == [[7.0, 0.0], [6.0, 1.0]]
    drawn_png(tmp_path / "figures" / "ap_vs_error.png")


# ----------------------------------------------------------------------------- L_CS

def test_l_cs_is_judged_by_how_well_the_scores_rank_keypoints(tmp_path):
    runs = [{"row": "none", "seed": i, "AP": 0.0, "err_px": 7.0, "score_auc": auc}
            for i, auc in enumerate([0.40, 0.48])]
    runs += [{"row": r, "seed": 0, "AP": 0.0, "err_px": 6.0, "score_auc": auc}
             for r, auc in (("CS", 0.80), ("all", 0.75), ("VT", 0.45))]
    _write(tmp_path, 4, runs)
    d = report_data(tmp_path)
    table = d.score_ranking.set_index("row")
    assert table.loc["CS", ["L_CS", "seeds", "score_auc", "err_px"]].tolist() == [True, 1, 0.80, 6.0]
    assert table.loc["none", ["L_CS", "seeds", "err_px"]].tolist() == [False, 2, 7.0]
    assert table.loc["none", ["score_auc", "auc_min", "auc_max"]].tolist() == pytest.approx([0.44, 0.40, 0.48])
    # rows: lowest with L_CS 0.75 > highest without (VT) 0.45 + the widest seed range 0.08
    assert d.score_verdict == pytest.approx({
        "held": True, "margin": 0.08, "measured": 0.08, "cs_min": 0.75, "other_max": 0.45,
        "cs_runs": 2, "other_runs": 3, "cs_run_min": 0.75, "other_run_max": 0.48,
        "runs_apart": True})

    runs[-1]["score_auc"] = 0.70                   # VT without L_CS now ranks within the margin
    _write(tmp_path, 4, runs)
    v = report_data(tmp_path).score_verdict
    assert (v["held"], v["cs_min"], v["other_max"], v["runs_apart"]) == (False, 0.75, 0.70, True)

    runs[-1]["score_auc"] = 0.76                   # and now a single run without it out-ranks one with it
    _write(tmp_path, 4, runs)
    v = report_data(tmp_path).score_verdict
    assert (v["held"], v["other_run_max"], v["runs_apart"]) == (False, 0.76, False)


def test_results_without_score_auc_have_no_l_cs_verdict(tmp_path):
    _write(tmp_path, 4, [{"row": r, "seed": 0, "AP": 0.0, "err_px": 6.0} for r in ("none", "CS")])
    d = report_data(tmp_path)
    assert d.score_ranking is None and d.score_verdict is None


# ----------------------------------------------------------------------------- previous reference

def _reference(folder: Path, runs: list[dict], torch_version: str) -> None:
    """A results folder with Table 4 (rows with config_hash / kpt_score as given), the teacher
    and a summary naming its torch."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    _write(folder, 4, runs)
    pd.DataFrame([{"table": 0, "row": "HRNet-W48 (teacher)", "AP": 0.5, "paper_AP": 72.5,
                   "err_px": 2.0, "config_hash": "t0"}]).to_csv(folder / "teachers.csv", index=False)
    (folder / "reproduce_summary.json").write_text(json.dumps(
        {"git_commit": "prev" if "previous" in folder.name else "now",
         "machine": {"torch": torch_version}}))


def _run(row: str, ap: float, err: float, config_hash: str, kpt_score: str = "model") -> dict:
    return {"row": row, "seed": 0, "AP": ap, "err_px": err, "config_hash": config_hash,
            "kpt_score": kpt_score}


def test_a_copy_of_the_current_reference_changes_no_verdict_and_lists_no_reason(tmp_path):
    runs = [_run("none", 0.01, 6.0, "n0"), _run("SH", 0.03, 5.0, "s0"), _run("CS", 0.01, 6.0, "c0")]
    _reference(tmp_path, runs, "2.14.1+cpu")
    _reference(tmp_path / "previous_reference", runs, "2.14.1+cpu")
    d = report_data(tmp_path)
    assert [p.key for p in d.previous] == [c.key for c in d.conclusions]
    assert not any(p.changed or p.reasons for p in d.previous)
    assert [(p.held_by_ap, p.held_by_err) for p in d.previous] == [
        (c.held_by_ap, c.held_by_err) for c in d.conclusions]
    assert d.previous_meta["git_commit"] == "prev"


def test_where_a_verdict_changed_the_changes_touching_its_rows_are_derived_from_the_data(tmp_path):
    from distilkit.experiments.report_previous import ChangeReason

    # now: a new hash for SH, fair scoring (the plain student scored with unit scores) and
    # torch 2.14.1; before: torch 2.13.0
    _reference(tmp_path, [_run("none", 0.01, 6.0, "n0", "unit"), _run("SH", 0.03, 5.0, "s1"),
                          _run("CS", 0.03, 5.0, "c1"), _run("KT", 0.01, 6.0, "k0", "unit")],
               "2.14.1+cpu")
    _reference(tmp_path / "previous_reference",
               [_run("none", 0.01, 6.0, "n0"), _run("SH", 0.01, 6.0, "s0"), _run("CS", 0.03, 5.0, "c0"),
                _run("KT", 0.03, 5.0, "k0")], "2.13.0+cpu")
    d = report_data(tmp_path)
    prev = {p.key: p for p in d.previous}
    now = {c.key: c for c in d.conclusions}
    assert (now["SH>none"].held_by_ap, now["SH>none"].held_by_err) == (True, True)
    sh = prev["SH>none"]
    assert (sh.held_by_ap, sh.held_by_err, sh.changed) == (False, False, True)
    assert (sh.ap_gain, sh.err_gain) == pytest.approx((0.0, 0.0))
    # neither reference has a configs.json: what changed in SH's recipe is unknown, said per side
    assert sh.reasons == (ChangeReason("previous configs unknown", ("SH",)),
                          ChangeReason("current configs unknown", ("SH",)),
                          ChangeReason("fair scoring", ("none",)), ChangeReason("torch", ("SH", "none")))
    kt = prev["KT>none"]                        # held before, not now: its hash did not change
    assert (kt.held_by_ap, kt.changed) == (True, True)
    assert kt.reasons == (ChangeReason("fair scoring", ("KT", "none")),
                          ChangeReason("torch", ("KT", "none")))
    cs = prev["CS>none"]                        # held in both: no reason listed
    assert (cs.changed, cs.reasons) == (False, ())
    assert (prev["teacher>none"].changed, prev["teacher>none"].reasons) == (False, ())


# A row's configs.json entry as the export writes it: the identity its hash is made of.
BASE = {"model": "distilpose-s", "model_name": "distilpose-s-cpu", "recipe_version": 2,
        "losses": {"sh": True, "sh_mode": "authors", "alpha_sh": 1.0, "reg_loss": "smooth_l1"},
        "schedule": {"batch_size": 16, "epochs": 8, "lr": 0.001, "milestones": [7]},
        "augment": {"rotation": 20.0, "flip_prob": 0.5},
        "model_config": {"backbone": {"width": 32}, "encoder": {"depth": 4}},
        "teacher": ["hrw48-aaaaaaaaaaaa", "best.pt"], "data_root": "/home/a/coco"}


def _entry(**changes) -> dict:
    """BASE with dotted-path changes ("losses.sh_mode": "masked"; None: the field left out)."""
    import copy

    identity = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = identity
        for key in parents:
            node = node[key]
        if value is None:
            node.pop(leaf)
        else:
            node[leaf] = value
    return {"config": {"out_dir": "/somewhere/else"}, "identity": identity}


@pytest.mark.parametrize("changes, reasons", [
    ({}, {}),
    ({"data_root": "/other/machine/coco"}, {}),                # where the data lives is no reason
    ({"losses__sh_mode": "masked"}, {"L_SH mode": [("losses.sh_mode", '"authors"', '"masked"')]}),
    ({"losses__alpha_sh": 0.5, "losses__reg_loss": "l1"},
     {"loss weights": [("losses.alpha_sh", "1.0", "0.5")],
      "regression loss": [("losses.reg_loss", '"smooth_l1"', '"l1"')]}),
    ({"compile": True}, {"compile": [("compile", "(absent)", "true")]}),
    ({"schedule__epochs": 6, "schedule__milestones": [5], "schedule__batch_size": 32},
     {"batch size": [("schedule.batch_size", "16", "32")],
      "epochs / schedule": [("schedule.epochs", "8", "6"), ("schedule.milestones", "[7]", "[5]")]}),
    ({"augment__rotation": 40.0}, {"augmentation": [("augment.rotation", "20.0", "40.0")]}),
    ({"model_config__backbone__width": 48, "model_config__backbone__init_std": 0.001},
     {"initialisation": [("model_config.backbone.init_std", "(absent)", "0.001")],
      "model": [("model_config.backbone.width", "32", "48")]}),
    ({"init_backbone": {"sha256": "ab"}}, {"initialisation": [("init_backbone.sha256", "(absent)", '"ab"')]}),
    ({"teacher": ["hrw48-bbbbbbbbbbbb", "best.pt"]},
     {"teacher": [("teacher", '["hrw48-aaaaaaaaaaaa", "best.pt"]', '["hrw48-bbbbbbbbbbbb", "best.pt"]')]}),
    ({"recipe_version": 3, "partial_heatmaps": True},
     {"input / heatmaps": [("partial_heatmaps", "(absent)", "true")], "kit version": [("recipe_version", "2", "3")]}),
    ({"new_field": 1}, {"other": [("new_field", "(absent)", "1")]}),
])
def test_a_changed_recipe_is_named_by_the_fields_that_differ(changes, reasons):
    from distilkit.experiments.config_changes import config_reasons

    got = config_reasons(_entry(), _entry(**changes))
    assert {k: [(f.path, f.before, f.after) for f in v] for k, v in got.items()} == reasons
    assert list(got) == [k for k in reasons] or not reasons      # in the report's order


def test_a_changed_teacher_is_named_by_its_own_differing_fields():
    from distilkit.experiments.config_changes import config_reasons

    teacher_before = {"identity": {"model": "teacher-hrw48", "schedule": {"epochs": 10}}}
    teacher_now = {"identity": {"model": "teacher-hrw48", "schedule": {"epochs": 12}, "compile": True}}
    before, now = _entry(), _entry(teacher=["hrw48-bbbbbbbbbbbb", "best.pt"], compile=True)
    got = config_reasons(before, now, {"aaaaaaaaaaaa": teacher_before}, {"bbbbbbbbbbbb": teacher_now})
    assert {k: [(f.path, f.before, f.after) for f in v] for k, v in got.items()} == {
        "compile": [("compile", "(absent)", "true")],
        "teacher": [("teacher.compile", "(absent)", "true"), ("teacher.schedule.epochs", "10", "12")]}


def test_an_entry_without_identity_is_compared_by_its_config_without_paths_or_display_switches():
    from distilkit.experiments.config_changes import field_changes

    before = {"config": {"out_dir": "/a/run", "teacher": "/a/runs/hrw48-x/best.pt", "progress": True,
                         "epochs": None, "losses": {"sh_mode": "authors"}}}
    now = {"config": {"out_dir": "/b/run", "teacher": "/b/runs/hrw48-x/best.pt", "progress": False,
                      "epochs": 6, "losses": {"sh_mode": "authors"}}}
    assert [(c.path, c.before, c.after) for c in field_changes(before, now)] == [("epochs", "null", "6")]


def _configs(folder: Path, entries: dict) -> None:
    import json

    (folder / "configs.json").write_text(json.dumps(entries))


def test_a_changed_verdict_lists_the_config_fields_machine_and_unknown_configs_of_its_rows(tmp_path):
    import json

    from distilkit.experiments.report_previous import ChangeReason, reason_text

    prev = tmp_path / "previous_reference"
    _reference(tmp_path, [_run("none", 0.01, 6.0, "n0"), _run("SH", 0.03, 5.0, "s1"),
                          _run("KT", 0.01, 6.0, "k1")], "2.14.1+cpu")
    _reference(prev, [_run("none", 0.01, 6.0, "n0"), _run("SH", 0.01, 6.0, "s0"),
                      _run("KT", 0.03, 5.0, "k0")], "2.14.1+cpu")
    _configs(tmp_path, {"s1": _entry(losses__sh_mode="masked", compile=True), "k1": _entry()})
    _configs(prev, {"s0": _entry()})                               # KT's k0 is not in it
    for folder, cpus in ((tmp_path, 16), (prev, 2)):
        summary = json.loads((folder / "reproduce_summary.json").read_text())
        summary["machine"]["cpus"] = cpus
        (folder / "reproduce_summary.json").write_text(json.dumps(summary))
    d = report_data(tmp_path)
    prev_of = {p.key: p for p in d.previous}
    machine = ChangeReason("machine", ("SH", "none"), (FieldChange("machine.cpus", "2", "16"),))
    assert prev_of["SH>none"].reasons == (
        ChangeReason("L_SH mode", ("SH",), (FieldChange("losses.sh_mode", '"authors"', '"masked"'),)),
        ChangeReason("compile", ("SH",), (FieldChange("compile", "(absent)", "true"),)), machine)
    assert prev_of["KT>none"].reasons == (ChangeReason("previous configs unknown", ("KT",)),
                                          replace(machine, rows=("KT", "none")))
    assert reason_text(prev_of["SH>none"].reasons[0]) == 'L_SH mode: losses.sh_mode "authors" → "masked" (SH)'
    assert 'L_SH mode: losses.sh_mode "authors" → "masked" (SH)' in render_report(d)


@pytest.mark.parametrize("masked_seeds, words", [(1, "a single seed"), (2, "2 seeds")])
def test_all_against_masked_l_sh_says_how_many_seeds_and_which_margin_judge_it(tmp_path, masked_seeds, words):
    from distilkit.experiments.report_claims import masked_sh_lines

    runs = [{"row": "none", "seed": s, "AP": 0.01, "err_px": 6.0 + s / 10} for s in range(3)]
    runs += [{"row": "all", "seed": s, "AP": 0.05 + s / 100, "err_px": 5.0} for s in range(3)]
    runs += [{"row": "all (masked L_SH)", "seed": s, "AP": 0.045, "err_px": 5.0} for s in range(masked_seeds)]
    _write(tmp_path, 4, runs)
    d = report_data(tmp_path)
    claim = d.conclusion("all>all (masked L_SH)")
    assert (claim.n_seeds, claim.ap_margin, claim.err_margin) == (masked_seeds, pytest.approx(2.0), pytest.approx(0.2))
    line = masked_sh_lines(d.conclusions, d.noise)[0]
    assert line.startswith(f"`all` vs `all (masked L_SH)`: {words} of `all (masked L_SH)` (`all`: 3)")
    assert "margin (2.00 AP / 0.20 px" in line and "+1.50 AP / +0.00 px, exceeds it by neither" in line
    assert line in render_report(d)
