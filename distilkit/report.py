"""Our tables beside the paper's, the AP gain per component, and the paper's conclusions
checked one by one. Used by ``notebooks/report.py``; writes ``results/REPORT.md``."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from distilkit.experiments.grid import TABLES

BASELINE = {  # row -> the row its improvement is measured against
    4: lambda row: "none (L1)" if "(L1)" in row else "none",
    5: lambda row: row.split(" / ")[0] + " / none",
    6: lambda row: "DeepPose",
}


def load_table(results_dir: str | Path, table: int) -> pd.DataFrame:
    path = Path(results_dir) / f"table{table}.csv"
    if not path.exists():
        return pd.DataFrame()
    df = pd.read_csv(path)
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
        ap = sub["AP"].astype(float) * 100
        paper = sub["paper_AP"].dropna()
        lines.append({"row": row, "student": sub["student"].iloc[0], "teacher": sub["teacher"].iloc[0],
                      "reg_loss": sub["reg_loss"].iloc[0], "seeds": len(sub), "AP": ap.mean(),
                      "AP_min": ap.min(), "AP_max": ap.max(),
                      "AP_std": ap.std(ddof=1) if len(sub) > 1 else np.nan,
                      "paper_AP": float(paper.iloc[0]) if len(paper) else np.nan})
    out = pd.DataFrame(lines)
    if table in BASELINE and not out.empty:
        ref = out.set_index("row")
        base_rows = out["row"].map(BASELINE[table])
        out["improv"] = [a - ref["AP"].get(b, np.nan) for a, b in zip(out["AP"], base_rows)]
        out["paper_improv"] = [p - ref["paper_AP"].get(b, np.nan) for p, b in zip(out["paper_AP"], base_rows)]
    return out


def plot_component_gains(summary4: pd.DataFrame, raw4: pd.DataFrame | None = None):
    """AP gain of each Table 4 row over no distillation: ours (bars, seed range) vs the paper."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    rows = summary4[summary4["row"] != "none"].reset_index(drop=True)
    x = np.arange(len(rows))
    base = summary4.set_index("row")["AP"]
    lo = rows["AP_min"] - rows["row"].map(BASELINE[4]).map(base)
    hi = rows["AP_max"] - rows["row"].map(BASELINE[4]).map(base)
    ax.bar(x - 0.2, rows["improv"], width=0.4, label="ours (mean over seeds)", color="tab:blue")
    yerr = np.vstack([(rows["improv"] - lo).clip(lower=0), (hi - rows["improv"]).clip(lower=0)])
    ax.errorbar(x - 0.2, rows["improv"], yerr=yerr, fmt="none", ecolor="k", capsize=3,
                label="seed range")
    ax.bar(x + 0.2, rows["paper_improv"], width=0.4, label="paper (COCO val)", color="tab:orange")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, rows["row"], rotation=30, ha="right")
    ax.set_ylabel("AP gain over no distillation (points)")
    ax.set_title("Table 4: gain per distillation component")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _ap(summary: pd.DataFrame, row: str) -> float:
    hit = summary[summary["row"] == row]
    return float(hit["AP"].iloc[0]) if len(hit) else np.nan


def conclusions(s4: pd.DataFrame, s5: pd.DataFrame, s6: pd.DataFrame, teachers: pd.DataFrame) -> list[dict]:
    """The paper's qualitative claims, each with whether it held here and the numbers."""
    out = []

    def claim(text, held, detail):
        out.append({"claim": text, "held": ("n/a" if held is None else ("yes" if held else "no")),
                    "detail": detail})

    if not s4.empty:
        none = _ap(s4, "none")
        t_ap = float(teachers["AP"].iloc[0]) * 100 if len(teachers) else np.nan
        claim("the HRNet-W48-analog teacher clearly beats the plain regression student",
              None if np.isnan(t_ap) else t_ap > none + 2, f"teacher {t_ap:.1f} vs student {none:.1f} AP")
        for row in ("CS", "SH", "CS+SH", "KT", "VT", "KT+VT", "all"):
            ap = _ap(s4, row)
            claim(f"{row} beats no distillation", None if np.isnan(ap) else ap > none,
                  f"{ap:.1f} vs {none:.1f} AP")
        smooth = s4[~s4["row"].str.contains("L1")]
        best = smooth.loc[smooth["AP"].idxmax(), "row"] if len(smooth) else "?"
        claim("all four together are best", best == "all", f"best row: {best}")
        l1n, l1a = _ap(s4, "none (L1)"), _ap(s4, "all (L1)")
        claim("control: distillation still helps over a plain L1 student",
              None if np.isnan(l1n) or np.isnan(l1a) else l1a > l1n, f"{l1a:.1f} vs {l1n:.1f} AP")
    if not s5.empty:
        for student in ("stemnet", "HRNet-W48-s3"):
            aps = [_ap(s5, f"{student} / {t}") for t in ("none", "stemnet", "HRNet-W48")]
            held = None if any(np.isnan(aps)) else aps[0] < aps[1] < aps[2]
            claim(f"{student} student: a stronger teacher gives a better student", held,
                  " < ".join(f"{a:.1f}" for a in aps) + " (none, stemnet, HRNet-W48 teacher)")
    if not s6.empty:
        a, b = _ap(s6, "DeepPose"), _ap(s6, "DeepPose + Simulated Heatmaps")
        claim("Simulated Heatmaps improve DeepPose", None if np.isnan(a) or np.isnan(b) else b > a,
              f"{b:.1f} vs {a:.1f} AP")
    return out


def _md_table(df: pd.DataFrame, cols: list[str]) -> str:
    cols = [c for c in cols if c in df.columns]
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    body = ""
    for _, r in df[cols].iterrows():
        cells = []
        for c in cols:
            v = r[c]
            cells.append("" if (isinstance(v, float) and np.isnan(v)) else
                         (f"{v:+.1f}" if c.endswith("improv") else f"{v:.1f}") if isinstance(v, float) else str(v))
        body += "| " + " | ".join(cells) + " |\n"
    return head + body


def write_report(results_dir: str | Path, fig_dir: str | Path | None = None) -> Path:
    results_dir = Path(results_dir)
    fig_dir = Path(fig_dir or results_dir / "figures")
    fig_dir.mkdir(parents=True, exist_ok=True)
    raw = {t: load_table(results_dir, t) for t in (4, 5, 6)}
    s = {t: summarize(raw[t], t) for t in (4, 5, 6)}
    teachers_csv = results_dir / "teachers.csv"
    teachers = pd.read_csv(teachers_csv) if teachers_csv.exists() else pd.DataFrame()
    t_hr = teachers[teachers["row"].str.startswith("HRNet")] if len(teachers) else teachers
    cols = ["row", "student", "teacher", "reg_loss", "seeds", "AP", "AP_min", "AP_max", "improv",
            "paper_AP", "paper_improv"]
    lines = ["# DistilPose ablations: ours vs the paper", ""]
    summary_json = results_dir / "reproduce_summary.json"
    if summary_json.exists():
        import json
        meta = json.loads(summary_json.read_text())
        lines += [f"Profile `{meta.get('profile')}`, {meta.get('runs')} runs, wall time "
                  f"{meta.get('wall_s', 0) / 60:.1f} min, commit `{meta.get('git_commit')}`.", ""]
    lines += ["AP is COCO keypoint AP (pycocotools, detector boxes, flip test) in %. Ours is on the",
              "embedded synthetic set with compact models (the `cpu` profile); the paper's is COCO val2017",
              "with full-size models, so compare directions and relative gains, not absolute values.", ""]
    if len(teachers):
        lines += ["## Teachers", "", _md_table(teachers.assign(AP=teachers["AP"] * 100),
                                                 ["row", "AP", "paper_AP", "wall_s"]), ""]
    for t, title in ((4, "Table 4: distillation components"), (5, "Table 5: teacher and student capacity"),
                     (6, "Table 6: CNN student with Simulated Heatmaps")):
        lines += [f"## {title}", ""]
        lines += [_md_table(s[t], cols) if not s[t].empty else "_no completed rows_", ""]
    if not s[4].empty and "improv" in s[4]:
        fig = plot_component_gains(s[4], raw[4])
        fig.savefig(fig_dir / "table4_component_gain.png", dpi=130)
        fig.savefig(fig_dir / "table4_component_gain.pdf")
        plt.close(fig)
        lines += ["![AP gain per component](figures/table4_component_gain.png)", ""]
    lines += ["## The paper's conclusions, here", "", "| claim | held | numbers |", "|---|---|---|"]
    for c in conclusions(s[4], s[5], s[6], t_hr):
        lines.append(f"| {c['claim']} | {c['held']} | {c['detail']} |")
    lines.append("")
    out = results_dir / "REPORT.md"
    out.write_text("\n".join(lines))
    return out
