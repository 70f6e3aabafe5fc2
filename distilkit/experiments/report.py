"""Our tables beside the paper's, the AP gain per component, and the paper's conclusions
checked one by one: ``report_data`` reads a results folder into ``ReportData``, ``render_report``
formats it as ``results/REPORT.md``. Used by ``notebooks/report.py``.

The sections are rendered by ``report_tables`` (the tables, the gain figure), ``report_tolerance``
(how much error AP tolerates), ``report_confidence`` (what L_CS learns), ``report_claims`` (the
conclusions) and ``report_previous`` (the previous reference beside each claim)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from distilkit.experiments.report_claims import (AP_FLOOR, ERR_FLOOR, ClaimVerdict, conclusion_line,
                                                 conclusions, masked_sh_lines, noise_margins)
from distilkit.experiments.report_confidence import (score_ranking, score_ranking_lines,
                                                     score_ranking_verdict)
from distilkit.experiments.report_previous import (Side, compare_verdicts, previous_cells, previous_folder,
                                                   previous_intro, read_rows)
from distilkit.experiments.row_configs import read_configs
from distilkit.experiments.report_tables import (SUMMARY_COLUMNS, TABLE_TITLES, TEACHER_COLUMNS,
                                                 load_table, md_table, plot_component_gains, summarize)
from distilkit.experiments.report_tolerance import (error_tolerance, error_tolerance_lines,
                                                    plot_ap_vs_error)
from distilkit.units import read_percent_csv
from distilkit.paths import resolve
from distilkit.viz.figures import save_png_pdf

@dataclass
class ReportData:
    """Everything REPORT.md says, as data; ``render_report`` only formats it.

    ``meta``: ``reproduce_summary.json`` (None without it). ``teachers``: ``teachers.csv`` (AP and
    PCK10 in percent, read by its ``AP_unit``). ``summaries``: ``summarize`` of Tables 4, 5 and 6.
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
    teachers = read_percent_csv(teachers_csv) if teachers_csv.exists() else pd.DataFrame()
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
        previous = compare_verdicts(claims, old.conclusions,
                                    Side(read_rows(results_dir), meta, read_configs(results_dir)),
                                    Side(read_rows(folder), old.meta, read_configs(folder)))
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
        shown = teachers
        lines += ["## Teachers", "", md_table(shown, TEACHER_COLUMNS), ""]
    for t, title in TABLE_TITLES.items():
        summary = d.summaries[t]
        lines += [f"## {title}", ""]
        lines += [md_table(summary, SUMMARY_COLUMNS) if not summary.empty else "_no completed rows_", ""]
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
    lines += error_tolerance_lines(d.tolerance)
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
    lines += masked_sh_lines(d.conclusions, noise)
    if cs_section:
        lines += ["L_CS has no direct gradient to the coordinates, so neither column can credit it while AP "
                  "is low; "
                  "what it does learn is judged above (`score_auc`).", ""]
    return "\n".join(lines)


def _conclusions_table(d: ReportData) -> list[str]:
    """The conclusions table; with a previous reference, its verdicts beside each claim."""
    head = "| claim | held (COCO AP) | held (err_px) | seeds | seeds apart | numbers |"
    if d.previous is None:
        return [head, "|---|---|---|---|---|---|"] + [conclusion_line(c) for c in d.conclusions]
    lines = [previous_intro(d.previous_meta, d.previous), "",
             head + " previous (AP / err_px) | previous effect | changed by |", "|" + "---|" * 9]
    return lines + [f"{conclusion_line(c)} {previous_cells(v)}"
                    for c, v in zip(d.conclusions, d.previous)]


def write_figures(d: ReportData, fig_dir: str | Path) -> dict[str, plt.Figure]:
    """Draw the report's figures and save each as PNG and PDF into ``fig_dir``; return them by
    file stem (closed: their axes and artists stay readable)."""
    fig_dir = resolve(fig_dir)
    figures = {}
    if d.has_gain_figure:
        figures["table4_component_gain"] = plot_component_gains(d.summaries[4], err_margin=d.noise["err"],
                                                                ap_margin=d.noise["ap"])
    if d.tolerance is not None:
        figures["ap_vs_error"] = plot_ap_vs_error(d.tolerance["curve"], d.tolerance["runs"])
    for stem, fig in figures.items():
        save_png_pdf(fig, fig_dir, stem, dpi=130, tight=False)
        plt.close(fig)
    return figures


def write_report(results_dir: str | Path, fig_dir: str | Path | None = None,
                 out_dir: str | Path | None = None) -> Path:
    """``REPORT.md`` of the CSVs in ``results_dir``, written to ``out_dir`` (default: beside
    them), and its figures (default ``<out_dir>/figures``); relative folders are taken from the
    repository root (``paths.resolve``)."""
    results_dir = resolve(results_dir)
    out_dir = resolve(out_dir) if out_dir is not None else results_dir
    fig_dir = resolve(fig_dir) if fig_dir is not None else out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    d = report_data(results_dir)
    write_figures(d, fig_dir)
    out = out_dir / "REPORT.md"
    out.write_text(render_report(d))
    return out
