"""Our tables beside the paper's, the AP gain per component, and the paper's conclusions
checked one by one. Used by ``notebooks/report.py``; writes ``results/REPORT.md``."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from distilkit.experiments.grid import TABLES
from distilkit.experiments.report_confidence import (score_ranking, score_ranking_lines,
                                                     score_ranking_verdict)
from distilkit.experiments.report_previous import (compare_verdicts, previous_cells, previous_folder,
                                                   previous_intro, read_rows)
from distilkit.viz.figures import save_png_pdf

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
        err = sub["err_px"].astype(float) if "err_px" in sub else pd.Series([np.nan])
        paper = sub["paper_AP"].dropna()
        lines.append({"row": row, "student": sub["student"].iloc[0], "teacher": sub["teacher"].iloc[0],
                      "reg_loss": sub["reg_loss"].iloc[0], "seeds": len(sub), "AP": ap.mean(),
                      "AP_min": ap.min(), "AP_max": ap.max(),
                      "AP_std": ap.std(ddof=1) if len(sub) > 1 else np.nan,
                      "paper_AP": float(paper.iloc[0]) if len(paper) else np.nan,
                      "err_px": err.mean(), "err_min": err.min(), "err_max": err.max(),
                      "PCK10": sub["PCK10"].astype(float).mean() * 100 if "PCK10" in sub else np.nan,
                      "score_auc": (pd.to_numeric(sub["score_auc"], errors="coerce").mean()
                                    if "score_auc" in sub else np.nan)})
    out = pd.DataFrame(lines)
    if table in BASELINE and not out.empty:
        ref = out.set_index("row")
        base_rows = out["row"].map(BASELINE[table])
        out["improv"] = [a - ref["AP"].get(b, np.nan) for a, b in zip(out["AP"], base_rows)]
        out["paper_improv"] = [p - ref["paper_AP"].get(b, np.nan) for p, b in zip(out["paper_AP"], base_rows)]
    return out


def plot_component_gains(summary4: pd.DataFrame, *, err_margin: float | None = None):
    """Gain of each Table 4 row over its no-distillation baseline, with the seed range.

    Left: AP points, ours beside the paper's. Right: the err_px reduction (ours only; the paper
    reports no such number), where the noise margin is drawn: a bar must clear it to count.
    The right panel is the readable one while the students' AP is low.
    """
    fig, (ax_ap, ax_err) = plt.subplots(1, 2, figsize=(12, 4))
    rows = summary4[summary4["row"] != "none"].reset_index(drop=True)
    x = np.arange(len(rows))
    base_rows = rows["row"].map(BASELINE[4])

    def bars_with_range(ax, gain, lo, hi, offset, label, color):
        ax.bar(x + offset, gain, width=0.4, label=label, color=color)
        yerr = np.vstack([(gain - lo).clip(lower=0), (hi - gain).clip(lower=0)])
        ax.errorbar(x + offset, gain, yerr=yerr, fmt="none", ecolor="k", capsize=3)

    base_ap = summary4.set_index("row")["AP"]
    bars_with_range(ax_ap, rows["improv"], rows["AP_min"] - base_rows.map(base_ap),
                    rows["AP_max"] - base_rows.map(base_ap), -0.2, "ours (mean, seed range)", "tab:blue")
    ax_ap.bar(x + 0.2, rows["paper_improv"], width=0.4, label="paper (COCO val)", color="tab:orange")
    ax_ap.set_ylabel("AP gain over no distillation (points)")
    ax_ap.set_title("Table 4: AP gain per component")

    if "err_min" in rows and rows["err_px"].notna().any():
        base_err = summary4.set_index("row")["err_px"]
        gain = base_rows.map(base_err) - rows["err_px"]           # positive = lower error
        bars_with_range(ax_err, gain, base_rows.map(base_err) - rows["err_max"],
                        base_rows.map(base_err) - rows["err_min"], 0.0, "ours (mean, seed range)",
                        "tab:green")
        if err_margin is not None:
            for sign in (1, -1):
                ax_err.axhline(sign * err_margin, color="tab:red", ls="--", lw=1,
                               label=f"noise margin ({err_margin:.2f} px)" if sign == 1 else None)
    else:
        ax_err.text(0.5, 0.5, "no err_px in these results", ha="center", va="center",
                    transform=ax_err.transAxes)
    ax_err.set_ylabel("err_px reduction over no distillation (px)")
    ax_err.set_title("Table 4: localisation gain per component")
    for ax in (ax_ap, ax_err):
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x, rows["row"], rotation=30, ha="right")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_ap_vs_error(curve: pd.DataFrame, runs: pd.DataFrame):
    """COCO AP of ground truth with uniform error (``evaluation.tolerance``), one line per face
    error multiplier, with this run's models as points at their (err_px, AP)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for face_scale, sub in curve.groupby("face_scale"):
        label = ("uniform error on every keypoint" if face_scale == 1 else
                 "face keypoints exact" if face_scale == 0 else f"face error x{face_scale:g}")
        ax.plot(sub["err_px"], sub["AP"] * 100, marker=".", label=label)
    for kind, marker, color in (("teacher", "s", "tab:red"), ("student", "o", "tab:gray")):
        pts = runs[runs["kind"] == kind]
        ax.scatter(pts["err_px"], pts["AP"], marker=marker, color=color, zorder=3,
                   label=f"our {kind}s (err_px, AP)", edgecolor="k")
    ax.set_xlabel("mean keypoint error on GT boxes (input px)")
    ax.set_ylabel("COCO AP (%)")
    ax.set_title("How much error COCO AP tolerates at this input size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def error_tolerance(results_dir: str | Path, s: dict, teachers: pd.DataFrame) -> dict | None:
    """Why the AP column is low, as data: the tolerance curve of the committed side measurement
    (``bench/ap_vs_error.py``, ``ap_vs_error.csv`` in the results folder; None without it) and
    where this run's models sit on it.

    {"file": the curve's file name, "curve": the curve as read, "runs": one point per run
    (row, err_px, AP in %, kind "teacher" | "student"), "input_size",
    "first_below_1ap_err": the smallest uniform error (px) at which AP < 1 point,
    "models": None, or where the runs lie: {"err_lo", "err_hi", "uniform_ap_lo",
    "uniform_ap_hi": the curve's AP at those errors, "n_above": runs above the curve, "n_runs"}}.
    """
    path = Path(results_dir) / "ap_vs_error.csv"
    if not path.exists():
        return None
    curve = pd.read_csv(path)
    rows = [t[["row", "err_px", "AP"]] for t in s.values() if not t.empty]
    if len(teachers) and "err_px" in teachers:
        rows.append(teachers[["row", "err_px"]].assign(AP=teachers["AP"] * 100))
    # Table 5 repeats Table 4's none / all rows from the same runs: one point per run
    runs = (pd.concat(rows, ignore_index=True) if rows else
            pd.DataFrame(columns=["row", "err_px", "AP"])).dropna(subset=["err_px", "AP"])
    runs = runs.drop_duplicates(subset=["err_px", "AP"])
    runs = runs.assign(kind=np.where(runs["row"].str.contains("teacher", case=False), "teacher",
                                     "student"))
    uniform = curve[curve["face_scale"] == 1].sort_values("err_px")
    below = uniform[uniform["AP"] < 0.01]
    first_zero = float(below["err_px"].iloc[0]) if len(below) else float("nan")
    size = uniform["input_size"].iloc[0] if "input_size" in uniform and len(uniform) else "?"
    models = None
    if len(runs) and len(uniform):
        lo, hi = float(runs["err_px"].min()), float(runs["err_px"].max())
        at = np.interp([lo, hi], uniform["err_px"], uniform["AP"] * 100)
        above = runs[runs["AP"] > np.interp(runs["err_px"], uniform["err_px"], uniform["AP"] * 100)]
        models = {"err_lo": lo, "err_hi": hi, "uniform_ap_lo": float(at[0]),
                  "uniform_ap_hi": float(at[1]), "n_above": len(above), "n_runs": len(runs)}
    return {"file": path.name, "curve": curve, "runs": runs, "input_size": size,
            "first_below_1ap_err": first_zero, "models": models}


def _error_tolerance_lines(tol: dict | None) -> list[str]:
    if tol is None:
        return []
    text = (f"Ground-truth keypoints moved by uniform Gaussian noise and scored by the same COCOeval "
            f"(`{tol['file']}`, from `bench/ap_vs_error.py`; no model involved) show how much error AP "
            f"tolerates on {tol['input_size']} crops: it is below 1 AP point from a mean error of "
            f"{tol['first_below_1ap_err']:g} px, and "
            "the face keypoints, whose OKS sigmas are the smallest, account for most of the loss "
            "(the upper curve leaves them exact).")
    m = tol["models"]
    if m is not None:
        text += (f" Our models lie between {m['err_lo']:.2f} and {m['err_hi']:.2f} px, where uniform "
                 f"error scores {m['uniform_ap_lo']:.2f} to {m['uniform_ap_hi']:.2f} AP; "
                 f"{m['n_above']} of {m['n_runs']} score above the curve, "
                 "as errors concentrated on a few keypoints or instances do. At this input size "
                 "AP separates models only once their error nears the curve's knee, and `err_px` "
                 "is the readable measure until then.")
    return ["## How much error COCO AP tolerates here", "", text,
            "", "![AP vs error](figures/ap_vs_error.png)", ""]


def _value(summary: pd.DataFrame, row: str, col: str = "AP") -> float:
    hit = summary[summary["row"] == row] if len(summary) else summary
    return float(hit[col].iloc[0]) if len(hit) and col in hit else np.nan


# A difference smaller than the run-to-run noise is not a gain. The noise is measured: the
# widest seed range (max - min) among the Table 4 rows run at several seeds, never below these
# floors (an AP difference under half a point means nothing at any scale).
AP_FLOOR = 0.5       # AP points
ERR_FLOOR = 0.1      # input pixels


def noise_margins(raw4: pd.DataFrame) -> dict:
    """{"ap", "err": the margins a gain must exceed; "ap_range", "err_range": the measured seed
    ranges; "seeds": the most seeds any row was run at}."""
    ap_range = err_range = 0.0
    seeds = 1
    if len(raw4):
        for _, sub in raw4.groupby("row"):
            if len(sub) < 2:
                continue
            seeds = max(seeds, len(sub))
            ap = sub["AP"].astype(float) * 100
            ap_range = max(ap_range, float(ap.max() - ap.min()))
            if "err_px" in sub:
                err = sub["err_px"].astype(float)
                err_range = max(err_range, float(err.max() - err.min()))
    return {"ap": max(AP_FLOOR, ap_range), "err": max(ERR_FLOOR, err_range),
            "ap_range": ap_range, "err_range": err_range, "seeds": seeds}


@dataclass(frozen=True)
class Comparison:
    """One pairwise comparison of a claim: row ``better`` should beat row ``worse``.

    AP in %, err_px in input px (nan where a row is missing). ``ap_gain`` = better - worse AP,
    ``err_gain`` = worse - better err_px (positive: the better row is more accurate).
    ``held_by_*``: the gain exceeds the claim's margin (None: a row is missing).
    ``apart_by_*``: every seed of ``better`` beats every seed of ``worse`` (None unless both rows
    ran at two seeds or more)."""

    better: str
    worse: str
    better_ap: float
    worse_ap: float
    better_err: float
    worse_err: float
    ap_gain: float
    err_gain: float
    better_seeds: int | None
    worse_seeds: int | None
    held_by_ap: bool | None
    held_by_err: bool | None
    apart_by_ap: bool | None
    apart_by_err: bool | None


@dataclass(frozen=True)
class ClaimVerdict:
    """One of the paper's claims, judged: the data of one row of the report's conclusions table.

    ``key`` names the claim for code (stable); ``claim`` is the sentence the report prints.
    ``held_by_ap`` / ``held_by_err``: every comparison wins by more than ``ap_margin`` AP points /
    ``err_margin`` px (None: no comparison, or one with a missing row). ``n_seeds``: the fewest
    seeds behind any compared row (None: no row ran). ``seeds_apart_by_*``: in every comparison
    every seed of the better row beats every seed of the other (None where a row has one seed)."""

    key: str
    claim: str
    held_by_ap: bool | None
    held_by_err: bool | None
    n_seeds: int | None
    seeds_apart_by_ap: bool | None
    seeds_apart_by_err: bool | None
    ap_margin: float
    err_margin: float
    comparisons: tuple[Comparison, ...]


def _combine(values: list) -> bool | None:
    """All of them held; no comparison, or one with a missing row, decides nothing."""
    return None if not values or any(v is None for v in values) else all(values)


def conclusions(s4: pd.DataFrame, s5: pd.DataFrame, s6: pd.DataFrame, teachers: pd.DataFrame, *,
                ap_margin: float = AP_FLOOR, err_margin: float = ERR_FLOOR) -> list[ClaimVerdict]:
    """The paper's qualitative claims, each judged by COCO AP (higher is better) and by the
    err_px diagnostic (lower is better), with the numbers and the fewest seeds behind any
    compared row. A claim holds only if every comparison in it wins by more than the margin."""
    out: list[ClaimVerdict] = []

    def better(a: float, b: float, margin: float = 0.0) -> bool | None:
        return None if np.isnan(a) or np.isnan(b) else bool(a > b + margin)

    def seeds_of(summary: pd.DataFrame, row: str) -> int | None:
        n = _value(summary, row, "seeds")
        return None if np.isnan(n) else int(n)

    def claim(key: str, text: str, rows_a: list, rows_b: list, *, min_ap_gain: float = 0.0):
        """rows_a should beat rows_b: lists of (summary, row) pairs compared pairwise in order."""
        ap_m = max(ap_margin, min_ap_gain)
        comparisons = []
        for (sa, ra), (sb, rb) in zip(rows_a, rows_b):
            a_ap, b_ap = _value(sa, ra), _value(sb, rb)
            a_err, b_err = _value(sa, ra, "err_px"), _value(sb, rb, "err_px")
            na, nb = seeds_of(sa, ra), seeds_of(sb, rb)
            # every seed of a beats every seed of b (only where both rows have several seeds)
            several = na is not None and nb is not None and min(na, nb) >= 2
            comparisons.append(Comparison(
                better=ra, worse=rb, better_ap=a_ap, worse_ap=b_ap, better_err=a_err,
                worse_err=b_err, ap_gain=a_ap - b_ap, err_gain=b_err - a_err,
                better_seeds=na, worse_seeds=nb,
                held_by_ap=better(a_ap, b_ap, ap_m), held_by_err=better(-a_err, -b_err, err_margin),
                apart_by_ap=(better(_value(sa, ra, "AP_min"), _value(sb, rb, "AP_max"))
                             if several else None),
                apart_by_err=(better(-_value(sa, ra, "err_max"), -_value(sb, rb, "err_min"))
                              if several else None)))
        known = [n for c in comparisons for n in (c.better_seeds, c.worse_seeds) if n is not None]
        out.append(ClaimVerdict(
            key=key, claim=text,
            held_by_ap=_combine([c.held_by_ap for c in comparisons]),
            held_by_err=_combine([c.held_by_err for c in comparisons]),
            n_seeds=min(known) if known else None,
            seeds_apart_by_ap=_combine([c.apart_by_ap for c in comparisons]),
            seeds_apart_by_err=_combine([c.apart_by_err for c in comparisons]),
            ap_margin=ap_m, err_margin=err_margin, comparisons=tuple(comparisons)))

    if not s4.empty:
        base = (s4, "none")
        if len(teachers):
            t = pd.DataFrame([{"row": "teacher", "AP": float(teachers["AP"].iloc[0]) * 100, "seeds": 1,
                               "err_px": float(teachers["err_px"].iloc[0]) if "err_px" in teachers else np.nan}])
            claim("teacher>none",
                  "the HRNet-W48-analog teacher clearly beats the plain regression student (by > 2 AP)",
                  [(t, "teacher")], [base], min_ap_gain=2.0)
        for row in ("CS", "SH", "CS+SH", "KT", "VT", "KT+VT", "all"):
            claim(f"{row}>none", f"{row} beats no distillation", [(s4, row)], [base])
        others = ["CS", "SH", "CS+SH", "KT", "VT", "KT+VT"]  # a missing one makes the claim n/a
        claim("all>each", "all four together are best (beats every other Table 4 row)",
              [(s4, "all")] * len(others), [(s4, r) for r in others])
        claim("all (L1)>none (L1)", "control: distillation still helps over a plain L1 student",
              [(s4, "all (L1)")], [(s4, "none (L1)")])
    if not s5.empty:
        for student in ("stemnet", "HRNet-W48-s3"):
            claim(f"{student}: stronger teacher",
                  f"{student} student: a stronger teacher gives a better student (none < stemnet < HRNet-W48)",
                  [(s5, f"{student} / stemnet"), (s5, f"{student} / HRNet-W48")],
                  [(s5, f"{student} / none"), (s5, f"{student} / stemnet")])
    if not s6.empty:
        claim("SH>DeepPose", "Simulated Heatmaps improve DeepPose",
              [(s6, "DeepPose + Simulated Heatmaps")], [(s6, "DeepPose")])
    return out


def _verdict(held: bool | None) -> str:
    return "n/a" if held is None else ("yes" if held else "no")


def _conclusion_line(c: ClaimVerdict) -> str:
    """One row of the conclusions table."""
    apart = ("n/a" if c.seeds_apart_by_ap is None and c.seeds_apart_by_err is None else
             ", ".join(n for n, v in (("AP", c.seeds_apart_by_ap), ("err_px", c.seeds_apart_by_err))
                       if v) or "neither")
    numbers = "; ".join(f"{p.better}: {p.better_ap:.2f} AP / {p.better_err:.2f} px vs "
                        f"{p.worse}: {p.worse_ap:.2f} / {p.worse_err:.2f}" for p in c.comparisons)
    seeds = "" if c.n_seeds is None else c.n_seeds
    return (f"| {c.claim} | {_verdict(c.held_by_ap)} | {_verdict(c.held_by_err)} | {seeds} | "
            f"{apart} | {numbers} |")


def _md_table(df: pd.DataFrame, cols: list[str]) -> str:
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


@dataclass
class ReportData:
    """Everything REPORT.md says, as data; ``render_report`` only formats it.

    ``meta``: ``reproduce_summary.json`` (None without it). ``teachers``: ``teachers.csv`` as
    written (AP and PCK10 as fractions). ``summaries``: ``summarize`` of Tables 4, 5 and 6.
    ``noise``: ``noise_margins`` of Table 4. ``tolerance``: ``error_tolerance`` (None without
    the curve). ``score_ranking`` / ``score_verdict``: the L_CS section's table and verdict (None
    without score_auc). ``conclusions``: the paper's claims, judged with the noise margins.
    ``previous`` / ``previous_meta``: each claim as the previous reference judged it
    (``report_previous``) and that reference's summary; None without ``previous_reference/``."""

    meta: dict | None
    teachers: pd.DataFrame
    summaries: dict
    noise: dict
    tolerance: dict | None
    score_ranking: pd.DataFrame | None
    score_verdict: dict | None
    conclusions: list
    previous: list | None = None
    previous_meta: dict | None = None

    @property
    def data(self) -> str:
        return (self.meta or {}).get("data", "the embedded synthetic set")

    @property
    def profile(self) -> str:
        return (self.meta or {}).get("profile", "cpu")

    @property
    def has_gain_figure(self) -> bool:
        """Table 4 has rows, so the AP / err_px gain figure is drawn."""
        s4 = self.summaries[4]
        return not s4.empty and "improv" in s4

    def conclusion(self, key: str) -> ClaimVerdict:
        """The verdict on the claim ``key`` (``ClaimVerdict.key``)."""
        for c in self.conclusions:
            if c.key == key:
                return c
        raise KeyError(f"no claim {key!r}; judged: {[c.key for c in self.conclusions]}")


def report_data(results_dir: str | Path, *, with_previous: bool = True) -> ReportData:
    """Read a results folder (table4-6.csv, teachers.csv, ap_vs_error.csv,
    reproduce_summary.json, previous_reference/, each optional) and judge it. Writes nothing."""
    results_dir = Path(results_dir)
    raw = {t: load_table(results_dir, t) for t in (4, 5, 6)}
    s = {t: summarize(raw[t], t) for t in (4, 5, 6)}
    teachers_csv = results_dir / "teachers.csv"
    teachers = pd.read_csv(teachers_csv) if teachers_csv.exists() else pd.DataFrame()
    t_hr = teachers[teachers["row"].str.startswith("HRNet")] if len(teachers) else teachers
    summary_json = results_dir / "reproduce_summary.json"
    meta = json.loads(summary_json.read_text()) if summary_json.exists() else None
    noise = noise_margins(raw[4])
    ranking = score_ranking(raw[4])
    claims = conclusions(s[4], s[5], s[6], t_hr, ap_margin=noise["ap"], err_margin=noise["err"])
    previous = previous_meta = None
    folder = previous_folder(results_dir) if with_previous else None
    if folder is not None:
        old = report_data(folder, with_previous=False)
        previous_meta = old.meta
        previous = compare_verdicts(claims, old.conclusions, read_rows(results_dir), read_rows(folder),
                                    meta, old.meta)
    return ReportData(
        meta=meta, teachers=teachers, summaries=s, noise=noise,
        tolerance=error_tolerance(results_dir, s, teachers), score_ranking=ranking,
        score_verdict=score_ranking_verdict(ranking) if ranking is not None else None,
        conclusions=claims, previous=previous, previous_meta=previous_meta)


def render_report(d: ReportData) -> str:
    """REPORT.md's text for ``d``: formatting only, every number and verdict comes from ``d``."""
    lines = ["# DistilPose ablations: ours vs the paper", ""]
    meta = d.meta
    if meta is not None:
        lines += [f"Profile `{meta.get('profile')}`, {meta.get('runs')} runs, wall time "
                  f"{meta.get('wall_s', 0) / 60:.1f} min, commit `{meta.get('git_commit')}`.", ""]
    lines += ["AP is COCO keypoint AP (pycocotools, detector boxes, flip test) in %. Ours is on",
              f"{d.data} with the `{d.profile}` profile's models and schedules; the paper's is COCO val2017",
              "with full-size models, so compare directions and relative gains, not absolute values.",
              "`err_px` (mean keypoint error in input pixels on ground-truth boxes, lower is better) and",
              "`PCK10` (% of labelled keypoints within 0.1 x the input height) are a diagnostic the paper",
              "does not report: they separate models whose AP is still low. `score_auc` (AUROC of",
              "the per-keypoint scores against PCK10-correctness) is what the score loss L_CS trains.", ""]
    teachers = d.teachers
    if len(teachers):
        shown = teachers.assign(AP=teachers["AP"] * 100)
        if "PCK10" in shown:
            shown = shown.assign(PCK10=shown["PCK10"] * 100)
        lines += ["## Teachers", "", _md_table(shown, TEACHER_COLUMNS), ""]
    for t, title in TABLE_TITLES.items():
        summary = d.summaries[t]
        lines += [f"## {title}", ""]
        lines += [_md_table(summary, SUMMARY_COLUMNS) if not summary.empty else "_no completed rows_", ""]
    if d.has_gain_figure:
        lines += ["![AP and err_px gain per component](figures/table4_component_gain.png)", ""]
    noise = d.noise
    if noise["seeds"] > 1:
        measured = (f"Run-to-run noise, measured on the Table 4 student: the widest seed range "
                    f"(max - min) among the rows run at 2 to {noise['seeds']} seeds is "
                    f"{noise['ap_range']:.2f} AP points and {noise['err_range']:.2f} px of err_px.")
    else:
        measured = ("Run-to-run noise was not measured (every Table 4 row ran at one seed; "
                    "`distilkit reproduce --noise-seeds 3` measures it), so the margins are the floors "
                    "alone and a 'yes' below is weaker evidence than it reads.")
    lines += _error_tolerance_lines(d.tolerance)
    cs_section = (score_ranking_lines(d.score_ranking, d.score_verdict)
                  if d.score_ranking is not None else [])
    lines += cs_section
    lines += ["## The paper's conclusions, here", "",
              f"{measured} A claim holds only if each comparison wins by more than {noise['ap']:.2f} AP "
              f"points (COCO AP column) or {noise['err']:.2f} px of err_px (the measured ranges, floored "
              f"at {AP_FLOOR} AP and {ERR_FLOOR} px; the same margins judge Tables 5 and 6). "
              f"`seeds`: the fewest seeds behind any compared row. `seeds apart`: a fact beside the "
              "verdict, not one: in every comparison of the claim, every seed of the better row beats "
              "every seed of the other (n/a where a row has one seed; at 3 seeds against 3, a "
              "separation this complete in the predicted direction happens 1 time in 20 by chance).",
              ""]
    lines += _conclusions_table(d)
    lines.append("")
    if cs_section:
        lines += ["L_CS has no direct gradient to the coordinates, so neither column can credit it while AP "
                  "is low; "
                  "what it does learn is judged above (`score_auc`).", ""]
    return "\n".join(lines)


def _conclusions_table(d: ReportData) -> list[str]:
    """The conclusions table; with a previous reference, its verdicts beside each claim."""
    head = "| claim | held (COCO AP) | held (err_px) | seeds | seeds apart | numbers |"
    if d.previous is None:
        return [head, "|---|---|---|---|---|---|"] + [_conclusion_line(c) for c in d.conclusions]
    lines = [previous_intro(d.previous_meta, d.previous), "",
             head + " previous (AP / err_px) | previous effect | changed by |", "|" + "---|" * 9]
    return lines + [f"{_conclusion_line(c)} {previous_cells(v)}"
                    for c, v in zip(d.conclusions, d.previous)]


def write_figures(d: ReportData, fig_dir: str | Path) -> dict[str, plt.Figure]:
    """Draw the report's figures and save each as PNG and PDF into ``fig_dir``; return them by
    file stem (closed: their axes and artists stay readable)."""
    fig_dir = Path(fig_dir).resolve()  # save_png_pdf: relative = notebooks/
    figures = {}
    if d.has_gain_figure:
        figures["table4_component_gain"] = plot_component_gains(d.summaries[4],
                                                                err_margin=d.noise["err"])
    if d.tolerance is not None:
        figures["ap_vs_error"] = plot_ap_vs_error(d.tolerance["curve"], d.tolerance["runs"])
    for stem, fig in figures.items():
        save_png_pdf(fig, fig_dir, stem, dpi=130, tight=False)
        plt.close(fig)
    return figures


def write_report(results_dir: str | Path, fig_dir: str | Path | None = None,
                 out_dir: str | Path | None = None) -> Path:
    """``REPORT.md`` of the CSVs in ``results_dir``, written to ``out_dir`` (default: beside
    them), and its figures (default ``<out_dir>/figures``)."""
    results_dir = Path(results_dir)
    out_dir = Path(out_dir) if out_dir is not None else results_dir
    fig_dir = Path(fig_dir or out_dir / "figures").resolve()
    fig_dir.mkdir(parents=True, exist_ok=True)
    d = report_data(results_dir)
    write_figures(d, fig_dir)
    out = out_dir / "REPORT.md"
    out.write_text(render_report(d))
    return out
