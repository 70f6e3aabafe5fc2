"""The paper's qualitative claims, each judged by COCO AP and by err_px against the measured
run-to-run noise: the data of the report's conclusions table, and its lines."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


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
            ap = sub["AP"].astype(float)
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


def _better(a: float, b: float, margin: float = 0.0) -> bool | None:
    return None if np.isnan(a) or np.isnan(b) else bool(a > b + margin)


def _seeds_of(summary: pd.DataFrame, row: str) -> int | None:
    n = _value(summary, row, "seeds")
    return None if np.isnan(n) else int(n)


def judge_claim(key: str, text: str, rows_a: list, rows_b: list, *, ap_margin: float = AP_FLOOR,
                err_margin: float = ERR_FLOOR, min_ap_gain: float = 0.0) -> ClaimVerdict:
    """The report's rule for one claim, "rows_a beat rows_b" (lists of (summary, row) pairs,
    compared pairwise in order; a summary as ``report_tables.summarize`` makes it): held by AP /
    by err_px when every comparison wins by more than the margin, the seeds apart when every
    seed of the better row beats every seed of the other."""
    ap_m = max(ap_margin, min_ap_gain)
    comparisons = []
    for (sa, ra), (sb, rb) in zip(rows_a, rows_b):
        a_ap, b_ap = _value(sa, ra), _value(sb, rb)
        a_err, b_err = _value(sa, ra, "err_px"), _value(sb, rb, "err_px")
        na, nb = _seeds_of(sa, ra), _seeds_of(sb, rb)
        # every seed of a beats every seed of b (only where both rows have several seeds)
        several = na is not None and nb is not None and min(na, nb) >= 2
        comparisons.append(Comparison(
            better=ra, worse=rb, better_ap=a_ap, worse_ap=b_ap, better_err=a_err,
            worse_err=b_err, ap_gain=a_ap - b_ap, err_gain=b_err - a_err,
            better_seeds=na, worse_seeds=nb,
            held_by_ap=_better(a_ap, b_ap, ap_m), held_by_err=_better(-a_err, -b_err, err_margin),
            apart_by_ap=(_better(_value(sa, ra, "AP_min"), _value(sb, rb, "AP_max"))
                         if several else None),
            apart_by_err=(_better(-_value(sa, ra, "err_max"), -_value(sb, rb, "err_min"))
                          if several else None)))
    known = [n for c in comparisons for n in (c.better_seeds, c.worse_seeds) if n is not None]
    return ClaimVerdict(
        key=key, claim=text,
        held_by_ap=_combine([c.held_by_ap for c in comparisons]),
        held_by_err=_combine([c.held_by_err for c in comparisons]),
        n_seeds=min(known) if known else None,
        seeds_apart_by_ap=_combine([c.apart_by_ap for c in comparisons]),
        seeds_apart_by_err=_combine([c.apart_by_err for c in comparisons]),
        ap_margin=ap_m, err_margin=err_margin, comparisons=tuple(comparisons))


def conclusions(s4: pd.DataFrame, s5: pd.DataFrame, s6: pd.DataFrame, teachers: pd.DataFrame, *,
                ap_margin: float = AP_FLOOR, err_margin: float = ERR_FLOOR) -> list[ClaimVerdict]:
    """The paper's qualitative claims, each judged by COCO AP (higher is better) and by the
    err_px diagnostic (lower is better), with the numbers and the fewest seeds behind any
    compared row. A claim holds only if every comparison in it wins by more than the margin."""
    out: list[ClaimVerdict] = []

    def claim(key: str, text: str, rows_a: list, rows_b: list, *, min_ap_gain: float = 0.0):
        out.append(judge_claim(key, text, rows_a, rows_b, ap_margin=ap_margin, err_margin=err_margin,
                               min_ap_gain=min_ap_gain))

    if not s4.empty:
        base = (s4, "none")
        if len(teachers):
            t = pd.DataFrame([{"row": "teacher", "AP": float(teachers["AP"].iloc[0]), "seeds": 1,
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
        # the paper's numbers came from the authors' L_SH, whose weights broadcast over the batch
        claim("all>all (masked L_SH)", "the authors' L_SH beats L_SH masked per sample (all four losses)",
              [(s4, "all")], [(s4, "all (masked L_SH)")])
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


def conclusion_line(c: ClaimVerdict) -> str:
    """One row of the conclusions table."""
    apart = ("n/a" if c.seeds_apart_by_ap is None and c.seeds_apart_by_err is None else
             ", ".join(n for n, v in (("AP", c.seeds_apart_by_ap), ("err_px", c.seeds_apart_by_err))
                       if v) or "neither")
    numbers = "; ".join(f"{p.better}: {p.better_ap:.2f} AP / {p.better_err:.2f} px vs "
                        f"{p.worse}: {p.worse_ap:.2f} / {p.worse_err:.2f}" for p in c.comparisons)
    seeds = "" if c.n_seeds is None else c.n_seeds
    return (f"| {c.claim} | {_verdict(c.held_by_ap)} | {_verdict(c.held_by_err)} | {seeds} | "
            f"{apart} | {numbers} |")


MASKED_SH_CLAIM = "all>all (masked L_SH)"


def masked_sh_lines(claims: list[ClaimVerdict], noise: dict) -> list[str]:
    """What ``all`` vs ``all (masked L_SH)`` shows, said plainly: how many seeds of each ran,
    the noise rows' margin it is judged against, and whether the difference exceeds it. Empty
    where the claim was not judged or a row did not run."""
    c = next((c for c in claims if c.key == MASKED_SH_CLAIM), None)
    if c is None or not c.comparisons or c.comparisons[0].worse_seeds is None or np.isnan(c.comparisons[0].worse_ap):
        return []
    p = c.comparisons[0]
    runs = "a single seed" if p.worse_seeds == 1 else f"{p.worse_seeds} seeds"
    margin = (f"the noise rows' margin ({c.ap_margin:.2f} AP / {c.err_margin:.2f} px: the widest seed range "
              f"of the Table 4 rows run at up to {noise['seeds']} seeds, floored)" if noise["seeds"] > 1 else
              f"the floors alone ({c.ap_margin:.2f} AP / {c.err_margin:.2f} px; no row ran at several seeds)")
    exceeds = [name for name, held in (("AP", p.held_by_ap), ("err_px", p.held_by_err)) if held]
    verdict = (f"exceeds it by {' and '.join(exceeds)}" if exceeds else "exceeds it by neither measure")
    return [f"`all` vs `all (masked L_SH)`: {runs} of `all (masked L_SH)` (`all`: {p.better_seeds}), "
            f"judged against {margin}. The difference, {p.ap_gain:+.2f} AP / {p.err_gain:+.2f} px, "
            f"{verdict}; it tells whether this run of masked L_SH differs from `all` by more than "
            "the seed-to-seed noise, not how the two forms of L_SH compare in general.", ""]
