"""The report's tables: our rows beside the paper's, one line per row over its seeds, and the
Table 4 figure of the gain per component."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from distilkit.experiments.grid import TABLES
from distilkit.units import read_percent_csv

BASELINE = {  # row -> the row its improvement is measured against
    4: lambda row: "none (L1)" if "(L1)" in row else "none",
    5: lambda row: row.split(" / ")[0] + " / none",
    6: lambda row: "DeepPose",
}


def load_table(results_dir: str | Path, table: int) -> pd.DataFrame:
    """A table's rows with an AP, AP and PCK in percent (read by the CSV's ``AP_unit``)."""
    path = Path(results_dir) / f"table{table}.csv"
    if not path.exists():
        return pd.DataFrame()
    df = read_percent_csv(path)
    if "AP" not in df.columns:
        return pd.DataFrame()
    return df[df["AP"].notna()].copy()


def summarize(df: pd.DataFrame, table: int) -> pd.DataFrame:
    """One line per paper row: mean and spread over seeds (AP in %), paper AP, improvements."""
    if df.empty:
        return pd.DataFrame()
    order = [s.row for s in TABLES.get(table, lambda: [])()]
    extra = [r for r in df["row"].unique() if r not in order]
    lines = []
    for row in order + extra:
        sub = df[df["row"] == row]
        if sub.empty:
            continue
        ap = sub["AP"].astype(float)
        err = sub["err_px"].astype(float) if "err_px" in sub else pd.Series([np.nan])
        paper = pd.to_numeric(sub["paper_AP"], errors="coerce").dropna()   # a row without one: "" or NaN
        lines.append({"row": row, "student": sub["student"].iloc[0], "teacher": sub["teacher"].iloc[0],
                      "reg_loss": sub["reg_loss"].iloc[0], "seeds": len(sub), "AP": ap.mean(),
                      "AP_min": ap.min(), "AP_max": ap.max(),
                      "AP_std": ap.std(ddof=1) if len(sub) > 1 else np.nan,
                      "paper_AP": float(paper.iloc[0]) if len(paper) else np.nan,
                      "err_px": err.mean(), "err_min": err.min(), "err_max": err.max(),
                      "PCK10": sub["PCK10"].astype(float).mean() if "PCK10" in sub else np.nan,
                      "score_auc": (pd.to_numeric(sub["score_auc"], errors="coerce").mean()
                                    if "score_auc" in sub else np.nan)})
    out = pd.DataFrame(lines)
    if table in BASELINE and not out.empty:
        ref = out.set_index("row")
        base_rows = out["row"].map(BASELINE[table])
        out["improv"] = [a - ref["AP"].get(b, np.nan) for a, b in zip(out["AP"], base_rows)]
        out["paper_improv"] = [p - ref["paper_AP"].get(b, np.nan) for p, b in zip(out["paper_AP"], base_rows)]
    return out


def plot_component_gains(summary4: pd.DataFrame, *, err_margin: float | None = None,
                         ap_margin: float | None = None):
    """Gain of each Table 4 row over its baseline (``none``; ``none (L1)`` for the L1 rows), with
    the seed range where a row ran more than one seed.

    Left: AP points, ours beside the paper's. Right: the err_px reduction (ours only; the paper
    reports no such number). Both panels draw their noise margin: a bar must clear it to count.
    The baselines themselves are not bars (their gain is 0 by definition); a row measured
    against another baseline than ``none`` names it under its label.
    """
    fig, (ax_ap, ax_err) = plt.subplots(1, 2, figsize=(12, 4.2))
    base_of = summary4["row"].map(BASELINE[4])
    rows = summary4[summary4["row"] != base_of].reset_index(drop=True)
    x = np.arange(len(rows))
    base_rows = rows["row"].map(BASELINE[4])
    several = rows["seeds"].to_numpy() > 1

    def bars_with_range(ax, gain, lo, hi, offset, label, color):
        ax.bar(x + offset, gain, width=0.4, label=label, color=color)
        yerr = np.vstack([(gain - lo).clip(lower=0), (hi - gain).clip(lower=0)])[:, several]
        if several.any():      # one seed has no range: no zero-width caps
            ax.errorbar((x + offset)[several], gain[several], yerr=yerr, fmt="none", ecolor="k", capsize=3)

    def margin(ax, value, unit):
        for sign in (1, -1):
            ax.axhline(sign * value, color="tab:red", ls="--", lw=1,
                       label=f"noise margin (±{value:.2f} {unit})" if sign == 1 else None)

    base_ap = summary4.set_index("row")["AP"]
    bars_with_range(ax_ap, rows["improv"], rows["AP_min"] - base_rows.map(base_ap),
                    rows["AP_max"] - base_rows.map(base_ap), -0.2, "ours (mean, seed range)", "tab:blue")
    ax_ap.bar(x + 0.2, rows["paper_improv"], width=0.4, label="paper (COCO val)", color="tab:orange")
    if ap_margin is not None:
        margin(ax_ap, ap_margin, "AP")
    ax_ap.set_ylabel("AP gain over the baseline (points)")
    ax_ap.set_title("Table 4: AP gain per component")

    if "err_min" in rows and rows["err_px"].notna().any():
        base_err = summary4.set_index("row")["err_px"]
        gain = base_rows.map(base_err) - rows["err_px"]           # positive = lower error
        bars_with_range(ax_err, gain, base_rows.map(base_err) - rows["err_max"],
                        base_rows.map(base_err) - rows["err_min"], 0.0, "ours (mean, seed range)",
                        "tab:green")
        if err_margin is not None:
            margin(ax_err, err_margin, "px")
    else:
        ax_err.text(0.5, 0.5, "no err_px in these results", ha="center", va="center",
                    transform=ax_err.transAxes)
    ax_err.set_ylabel("err_px reduction over the baseline (px)")
    ax_err.set_title("Table 4: localisation gain per component")
    labels = [row if base == "none" else f"{row}\nvs {base}" for row, base in zip(rows["row"], base_rows)]
    for ax in (ax_ap, ax_err):
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x, labels, rotation=30, ha="right")
        ax.legend(fontsize=8)
    fig.text(0.5, 0.01, "0 = the baseline: no distillation ('none', smooth L1); the (L1) rows against "
             "'none (L1)'", ha="center", fontsize=8, color="0.3")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def md_table(df: pd.DataFrame, cols: list[str]) -> str:
    cols = [c for c in cols if c in df.columns]
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    body = ""
    for _, r in df[cols].iterrows():
        cells = []
        for c in cols:
            v = r[c]
            cells.append("" if (isinstance(v, float) and np.isnan(v)) else
                         (f"{v:+.2f}" if c.endswith("improv") else f"{v:.2f}") if isinstance(v, float) else str(v))
        body += "| " + " | ".join(cells) + " |\n"
    return head + body


TABLE_TITLES = {4: "Table 4: distillation components", 5: "Table 5: teacher and student capacity",
                6: "Table 6: CNN student with Simulated Heatmaps"}
SUMMARY_COLUMNS = ["row", "student", "teacher", "reg_loss", "seeds", "AP", "AP_min", "AP_max",
                   "improv", "paper_AP", "paper_improv", "err_px", "PCK10", "score_auc"]
TEACHER_COLUMNS = ["row", "AP", "paper_AP", "err_px", "PCK10", "score_auc", "wall_s"]
