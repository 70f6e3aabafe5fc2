"""The bring-your-own table (``grid.bring_your_own_rows``, table 7): does Simulated Heatmaps help
a DeepPose student on a timm backbone, with GAP and with flatten pooling (the authors' issue #6)?

Its rows run and are collected like the paper's tables (``run_tables``, ``collect_table``), and
each pooling's SH gain is judged by the report's rule (``report_claims.judge_claim``): it counts
when it exceeds the widest seed range of the table's rows, never below the report's floors.
"""
from __future__ import annotations

import pandas as pd

from distilkit.experiments.grid import BRING_YOUR_OWN
from distilkit.experiments.report_claims import ClaimVerdict, judge_claim, noise_margins
from distilkit.experiments.report_tables import summarize
from distilkit.models import build_model
from distilkit.profiles import get_profile
from distilkit.units import PERCENT_METRICS, as_percent

POOLINGS = ("gap", "flatten")
NUMERIC = ("paper_AP", "err_px", "score_auc", "wall_s")   # blank in collect_table where unknown


def paired_gains(runs: pd.DataFrame) -> pd.DataFrame:
    """Per pooling and seed, the SH row's gain over the plain row of the same seed (same initial
    weights and batches): ``err_px`` = plain - SH (positive: less error), ``AP`` = SH - plain in
    AP points. ``runs``: as ``collect_table`` gives them. Seeds where either run is missing or
    failed are left out."""
    runs = as_percent(runs)
    done = runs[runs["AP"].notna()]
    gains = []
    for pooling in POOLINGS:
        plain = done[done["row"] == f"{pooling}, plain"].set_index("seed")
        sh = done[done["row"] == f"{pooling} + SH"].set_index("seed")
        for seed in sorted(set(plain.index) & set(sh.index)):
            gains.append({"pooling": pooling, "seed": seed,
                          "err_px": float(plain.at[seed, "err_px"]) - float(sh.at[seed, "err_px"]),
                          "AP": float(sh.at[seed, "AP"]) - float(plain.at[seed, "AP"])})
    return pd.DataFrame(gains, columns=["pooling", "seed", "err_px", "AP"])


def sh_claims(runs: pd.DataFrame) -> dict[str, ClaimVerdict]:
    """pooling -> "SH improves that student", judged by AP and by err_px against the noise of
    this table's own rows (``report_claims.noise_margins``)."""
    done = _fractions(runs[runs["AP"].notna()])
    summary, margins = summarize(done, BRING_YOUR_OWN), noise_margins(done)
    return {pooling: judge_claim(f"{pooling}: SH", f"SH improves the DeepPose student with {pooling} pooling",
                                 [(summary, f"{pooling} + SH")], [(summary, f"{pooling}, plain")],
                                 ap_margin=margins["ap"], err_margin=margins["err"])
            for pooling in POOLINGS}


def gain_labels(runs: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(metric, pooling) -> the verdict under that pooling's bar: "helps", "inside the seed
    spread", or "n/a" (a row has no finished run)."""
    return {(metric, pooling): "n/a" if held is None else "helps" if held else "inside the seed spread"
            for pooling, c in sh_claims(runs).items()
            for metric, held in (("err_px", c.held_by_err), ("AP", c.held_by_ap))}


def verdict_lines(runs: pd.DataFrame) -> list[str]:
    """The notebook's verdict: each pooling's claim, then issue #6's prediction (SH should gain
    less with GAP than with flatten), judged with the same err_px margin."""
    claims, gains = sh_claims(runs), paired_gains(runs)
    lines = []
    for pooling, c in claims.items():
        (p,) = c.comparisons
        lines.append(f"- **{pooling}**: err_px {p.worse_err:.2f} -> {p.better_err:.2f} px, AP "
                     f"{p.worse_ap:.2f} -> {p.better_ap:.2f}: SH helps by err_px: {_held(c.held_by_err)}, "
                     f"by AP: {_held(c.held_by_ap)} (margins {c.err_margin:.2f} px, {c.ap_margin:.2f} AP; "
                     f"every seed apart by err_px: {_held(c.seeds_apart_by_err)}).")
    err = gains.groupby("pooling")["err_px"].mean()
    if set(POOLINGS) <= set(err.index):
        margin = claims["gap"].err_margin
        diff = err["flatten"] - err["gap"]
        answer = ("SH gains more with flatten than with GAP, as issue #6's answer predicts" if diff > margin
                  else "SH gains more with GAP than with flatten, against issue #6's answer" if -diff > margin
                  else "GAP does not keep Simulated Heatmaps from working here: the two gains are "
                       "within the margin")
        lines.append(f"- Issue #6: {answer} ({err['gap']:+.2f} px with GAP, {err['flatten']:+.2f} px "
                     f"with flatten; margin {margin:.2f} px).")
    return lines


def _fractions(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` as the report's functions read a committed CSV: numbers where a CSV reader makes
    them (a blank is NaN), AP, AR and PCK as fractions (``collect_table`` gives percent:
    ``distilkit.units``)."""
    runs = as_percent(runs)
    numeric = {c: pd.to_numeric(runs[c], errors="coerce") for c in (*PERCENT_METRICS, *NUMERIC) if c in runs}
    return runs.assign(**{c: v / 100 if c in PERCENT_METRICS else v for c, v in numeric.items()})


def _held(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "no")


def head_table(models: list[str], profile: str) -> pd.DataFrame:
    """Per model spec: the timm feature map its head reads at the profile's input size, and the
    grid that map has (where GAP and flatten pooling differ)."""
    lines = []
    for spec in dict.fromkeys(models):
        model = build_model(get_profile(profile).model_name(spec))
        level, (h, w) = model.feature_level, model.input_size
        lines.append({"model": model.name, "timm map": level.module, "stride": level.stride,
                      "channels": level.channels, "grid": f"{h // level.stride}x{w // level.stride}",
                      "head params": sum(p.numel() for p in model.head.parameters()),
                      "params (M)": round(sum(p.numel() for p in model.parameters()) / 1e6, 2)})
    return pd.DataFrame(lines)


__all__ = ["POOLINGS", "paired_gains", "sh_claims", "gain_labels", "verdict_lines", "head_table"]
