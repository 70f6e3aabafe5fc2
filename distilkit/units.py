"""One unit for AP, stated: a fraction (0-1) inside the kit, percent wherever a person reads it.

Inside: ``final_metrics.json``, ``metrics.csv``, checkpoints and the published models hold AP,
AR and PCK as pycocotools returns them, fractions. Outside: the commands' output, the exported
CSVs, the notebooks, REPORT.md and the figures give them in percent, as the paper writes them.

An exported CSV states its unit in an ``AP_unit`` column (``percent``); a CSV without that
column holds fractions (the CSVs committed before the column existed). Readers go by the column,
never by the values' magnitude: an AP of 0.4 is a plausible fraction and a plausible percent.
``paper_AP`` is the paper's number, percent in every CSV.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

UNIT_COLUMN = "AP_unit"
PERCENT = "percent"
# the columns a person reads as percent: COCO's AP and AR family, DARK's AP, PCK
PERCENT_METRICS = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL", "AP_dark",
                   "PCK10")


def percent(fraction: float | None) -> float | None:
    """A fraction as percent (None and NaN stay as they are)."""
    if fraction is None:
        return None
    value = float(fraction)
    return value if math.isnan(value) else 100.0 * value


def metrics_in_percent(metrics: dict) -> dict:
    """A metrics dict (fractions, as the kit stores them) with its AP, AR and PCK in percent."""
    return {k: percent(v) if k in PERCENT_METRICS and isinstance(v, (int, float)) else v
            for k, v in metrics.items()}


def frame_in_percent(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame of fractions (run records) as an exported table: percent, ``AP_unit`` set."""
    out = frame.copy()
    for column in PERCENT_METRICS:
        if column in out.columns:
            out[column] = pd.to_numeric(out[column], errors="coerce") * 100.0
    out[UNIT_COLUMN] = PERCENT
    return out


def read_percent_csv(path: str | Path) -> pd.DataFrame:
    """An exported CSV with its AP, AR and PCK in percent, read by its ``AP_unit`` column
    (absent: fractions). Any other unit is a ValueError naming the file."""
    path = Path(path)
    frame = pd.read_csv(path)
    return as_percent(frame, path)


def as_percent(frame: pd.DataFrame, source: str | Path = "the table") -> pd.DataFrame:
    """``frame`` (read from ``source``) in percent, by its ``AP_unit`` column (absent: fractions)."""
    if UNIT_COLUMN not in frame.columns:
        return frame_in_percent(frame)
    units = set(frame[UNIT_COLUMN].dropna().astype(str))
    if units - {PERCENT}:
        raise ValueError(f"{source}: {UNIT_COLUMN} must be {PERCENT!r} (or the column absent for "
                         f"fractions), found {sorted(units)}")
    return frame.copy()


__all__ = ["UNIT_COLUMN", "PERCENT", "PERCENT_METRICS", "percent", "metrics_in_percent",
           "frame_in_percent", "read_percent_csv", "as_percent"]
