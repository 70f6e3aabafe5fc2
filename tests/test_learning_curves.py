"""Learning curves across runs: the run folders a table's rows trained in (runs still training
included), each loss term and AP (%) against epoch per run, and the notebook that draws them,
published with the main job's notebooks."""
from __future__ import annotations

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from distilkit.experiments.learning_curves import named_folders, table_run_folders
from distilkit.experiments.plan import Recipe, plan_jobs
from distilkit.viz.curves import plot_runs_curves, read_curves

TERMS = {"plain": ("reg",), "full": ("reg", "kt", "vt", "sh", "cs")}


def _metrics(folder, terms, epochs=3, ap_every=2, scale=1.0):
    """A metrics.csv as the trainer writes it: train_* terms, their sum, AP on some epochs."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for epoch in range(1, epochs + 1):
        row = {"epoch": epoch, "lr": 1e-3, **{f"train_{t}": scale * (i + 1) / epoch for i, t in enumerate(terms)}}
        row["train_loss"] = sum(row[f"train_{t}"] for t in terms)
        row["train_samples_per_s"] = 100.0
        if epoch % ap_every == 0 or epoch == epochs:
            row["AP"] = 0.01 * epoch * scale
        rows.append(row)
    pd.DataFrame(rows).to_csv(folder / "metrics.csv", index=False)
    return folder


def _lines(fig) -> dict[str, dict[str, tuple[list, list]]]:
    """panel title -> run label -> (epochs, values) drawn."""
    return {ax.get_title(): {ln.get_label(): (list(ln.get_xdata()), list(ln.get_ydata())) for ln in ax.lines}
            for ax in fig.axes if ax.lines}


def test_each_term_and_ap_in_percent_per_run_one_panel_each(tmp_path):
    runs = {"plain": _metrics(tmp_path / "p", TERMS["plain"]), "full": _metrics(tmp_path / "f", TERMS["full"], scale=2)}
    fig = plot_runs_curves(runs)
    drawn = _lines(fig)
    assert set(drawn) == {"total loss (weighted sum)", "reg", "L_KT", "L_VT", "L_SH", "L_CS",
                          "validation AP (detector boxes, flip test)"}
    assert set(drawn["L_SH"]) == {"full"}                        # a term the plain run lacks
    assert set(drawn["reg"]) == {"plain", "full"}
    assert drawn["validation AP (detector boxes, flip test)"]["full"] == ([2, 3], pytest.approx([4.0, 6.0]))
    assert drawn["reg"]["plain"] == ([1, 2, 3], pytest.approx([1.0, 0.5, 1 / 3]))
    # one colour per run across panels, and a legend naming each run once
    assert {ln.get_color() for ax in fig.axes for ln in ax.lines if ln.get_label() == "full"} == \
        {next(ln.get_color() for ln in fig.axes[0].lines if ln.get_label() == "full")}
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["plain", "full"]
    plt.close(fig)


def test_read_curves_is_long_and_skips_unevaluated_epochs(tmp_path):
    frame = read_curves({"a": _metrics(tmp_path / "a", ("reg",), epochs=4, ap_every=2)})
    assert frame[frame["curve"] == "AP"]["epoch"].tolist() == [2, 4]
    assert sorted(set(frame["curve"])) == ["AP", "loss", "reg"]


def test_no_runs_is_a_clear_error():
    with pytest.raises(ValueError, match="no runs to draw"):
        plot_runs_curves({})


def test_the_default_runs_are_the_tables_rows_in_paper_order_seeds_ascending(tmp_path):
    _, jobs = plan_jobs([4], Recipe("smoke"), seeds=[0], runs_dir=tmp_path)
    by_row = {j.spec.row: j.run_dir for j in jobs}
    _metrics(by_row["all"], TERMS["full"])
    _metrics(by_row["none"], TERMS["plain"])
    _metrics(by_row["none"].with_name(by_row["none"].name[:-1] + "1"), TERMS["plain"])   # seed 1
    by_row["CS"].mkdir()                                   # started, no epoch ended: left out
    found = table_run_folders(4, tmp_path, Recipe("smoke"))
    assert list(found) == ["none s0", "none s1", "all s0"]
    assert found["all s0"] == by_row["all"].resolve()


def test_a_named_folder_without_metrics_is_refused_by_name(tmp_path):
    assert named_folders([_metrics(tmp_path / "run1", ("reg",))]) == {"run1": tmp_path / "run1"}
    with pytest.raises(FileNotFoundError, match="empty: no metrics.csv"):
        named_folders({"x": tmp_path / "empty"})
