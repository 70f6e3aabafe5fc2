"""One unit for AP: fractions inside the kit, percent wherever a person reads it. An exported CSV
states its unit in ``AP_unit``; one without the column holds fractions; nothing is guessed from
the values' size."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from distilkit.units import (PERCENT, UNIT_COLUMN, as_percent, frame_in_percent, metrics_in_percent, percent,
                             read_percent_csv)

REPO = Path(__file__).resolve().parents[1]


def test_metrics_become_percent_and_the_rest_stays():
    shown = metrics_in_percent({"AP": 0.0618, "AR": 0.1, "PCK10": 0.7, "err_px": 5.5, "APL": float("nan"),
                                "kpt_score": "model", "score_auc": 0.8})
    assert shown["AP"] == pytest.approx(6.18) and shown["AR"] == pytest.approx(10.0)
    assert shown["PCK10"] == pytest.approx(70.0) and math.isnan(shown["APL"])
    assert (shown["err_px"], shown["kpt_score"], shown["score_auc"]) == (5.5, "model", 0.8)
    assert percent(None) is None


@pytest.mark.parametrize("ap, unit, shown", [
    (0.4, None, 40.0),            # no column: fractions
    (0.4, "percent", 0.4),        # a small percent stays small: the column decides, not the size
    (56.0, "percent", 56.0),
])
def test_a_table_is_read_by_its_unit_column(ap, unit, shown, tmp_path):
    frame = pd.DataFrame([{"row": "none", "AP": ap, "PCK10": ap, "paper_AP": 56.0, "err_px": 5.0}])
    if unit:
        frame[UNIT_COLUMN] = unit
    frame.to_csv(tmp_path / "t.csv", index=False)
    read = read_percent_csv(tmp_path / "t.csv")
    assert read.loc[0, "AP"] == pytest.approx(shown) and read.loc[0, "PCK10"] == pytest.approx(shown)
    assert (read.loc[0, "paper_AP"], read.loc[0, "err_px"], read.loc[0, UNIT_COLUMN]) == (56.0, 5.0, "percent")


def test_an_unknown_unit_is_an_error_naming_the_file(tmp_path):
    pd.DataFrame([{"AP": 0.4, UNIT_COLUMN: "fraction?"}]).to_csv(tmp_path / "odd.csv", index=False)
    with pytest.raises(ValueError, match=r"odd\.csv: AP_unit must be 'percent'"):
        read_percent_csv(tmp_path / "odd.csv")


def test_a_converted_frame_is_not_converted_twice():
    once = frame_in_percent(pd.DataFrame([{"AP": 0.25}]))
    assert as_percent(once).loc[0, "AP"] == pytest.approx(25.0)


TABLES = ["table4.csv", "table5.csv", "table6.csv", "teachers.csv"]


@pytest.mark.parametrize("name", TABLES)
def test_the_previous_references_tables_hold_fractions_and_read_as_percent(name):
    raw = pd.read_csv(REPO / "results" / "previous_reference" / name)
    assert UNIT_COLUMN not in raw.columns          # written before the column: fractions
    shown = read_percent_csv(REPO / "results" / "previous_reference" / name)
    assert shown["AP"].tolist() == pytest.approx((raw["AP"] * 100).tolist(), nan_ok=True)
    pd.testing.assert_series_equal(shown["paper_AP"], raw["paper_AP"])   # the paper's, percent already


@pytest.mark.parametrize("name", TABLES)
def test_the_committed_tables_say_percent_and_read_unchanged(name):
    raw = pd.read_csv(REPO / "results" / name)
    assert set(raw[UNIT_COLUMN]) == {PERCENT}
    assert raw["AP"].max() > 1                     # percent, not a fraction labelled percent
    pd.testing.assert_frame_equal(read_percent_csv(REPO / "results" / name), raw)