"""The report's L_CS section: does the score loss give the student a confidence that knows
which of its keypoints are right?

In the paper L_CS alone adds 7.2 AP (Table 4). It has no direct gradient to a coordinate (the
teacher's heatmap is read at the rounded predicted location): the student's per-keypoint
score learns to read the teacher's heatmap where the student points, and the
instance score of Eq. 3 (box score x mean of the keypoint scores above 0.2) ranks good poses above bad
ones. Ranking only moves AP once AP is well above zero, so at a scale where AP is low
the section judges the mechanism itself: ``score_auc``, the AUROC of the scores against
per-keypoint correctness (PCK10 on ground-truth boxes; 0.5 = uninformative).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

AUC_FLOOR = 0.02     # a score_auc difference under this means nothing, whatever the seeds say


def _flag(value) -> bool:
    return str(value).strip().lower() in ("true", "1", "1.0")


def score_ranking(raw4: pd.DataFrame) -> pd.DataFrame | None:
    """Per Table 4 row: L_CS on or off, seeds, score_auc mean / min / max, err_px. None when
    the results carry no score_auc (written before training recorded it)."""
    if raw4.empty or "score_auc" not in raw4 or "L_CS" not in raw4:
        return None
    df = raw4.assign(score_auc=pd.to_numeric(raw4["score_auc"], errors="coerce"))
    df = df[df["score_auc"].notna()]
    if df.empty:
        return None
    lines = []
    for row, sub in df.groupby("row", sort=False):
        auc = sub["score_auc"].astype(float)
        lines.append({"row": row, "L_CS": _flag(sub["L_CS"].iloc[0]), "seeds": len(sub),
                      "score_auc": auc.mean(), "auc_min": auc.min(), "auc_max": auc.max(),
                      "err_px": sub["err_px"].astype(float).mean() if "err_px" in sub else np.nan})
    return pd.DataFrame(lines)


def score_ranking_verdict(table: pd.DataFrame) -> dict:
    """Holds when every row with L_CS out-ranks every row without it by more than the margin
    (the widest score_auc seed range, floored at AUC_FLOOR).

    {"held": bool, or None when every row has L_CS on or every row off; "margin"; "measured":
    the widest seed range; "cs_min" / "other_max": the lowest row mean with L_CS, the highest
    without; "cs_runs" / "other_runs": runs with and without; "cs_run_min" / "other_run_max":
    the lowest single run with L_CS, the highest without; "runs_apart": every run with L_CS
    above every run without (None unless there are runs of both)}."""
    ranges = (table["auc_max"] - table["auc_min"])[table["seeds"] > 1]
    measured = float(ranges.max()) if len(ranges) else 0.0
    margin = max(AUC_FLOOR, measured)
    with_cs, without = table[table["L_CS"]], table[~table["L_CS"]]
    held = None
    if len(with_cs) and len(without):
        held = bool(with_cs["score_auc"].min() > without["score_auc"].max() + margin)
    # Beside the verdict, run by run: does any single run without L_CS rank its keypoints as well
    # as the worst run with it? (A score head no loss trains is a random projection of the
    # keypoint token, informative by chance and in either direction, so its seeds spread widely.)
    cs_run_min = float(with_cs["auc_min"].min()) if len(with_cs) else np.nan
    other_run_max = float(without["auc_max"].max()) if len(without) else np.nan
    cs_runs, other_runs = int(with_cs["seeds"].sum()), int(without["seeds"].sum())
    return {"held": held, "margin": margin, "measured": measured,
            "cs_min": float(with_cs["score_auc"].min()) if len(with_cs) else np.nan,
            "other_max": float(without["score_auc"].max()) if len(without) else np.nan,
            "cs_runs": cs_runs, "other_runs": other_runs,
            "cs_run_min": cs_run_min, "other_run_max": other_run_max,
            "runs_apart": bool(cs_run_min > other_run_max) if cs_runs and other_runs else None}


def score_ranking_lines(table: pd.DataFrame, v: dict) -> list[str]:
    """Markdown lines for REPORT.md from ``score_ranking`` and ``score_ranking_verdict``."""
    verdict = {None: "cannot be judged (every row has L_CS on, or every row off)",
               True: "holds", False: "does not hold"}[v["held"]]
    lines = ["## What L_CS does here: a confidence that ranks the student's keypoints", "",
             "The score loss has no direct gradient to the coordinates; its AP gain in the paper comes "
             "through Eq. 3's "
             "instance score, which shows little while AP is low. `score_auc` measures the "
             "mechanism instead: the AUROC of a model's per-keypoint scores against whether each "
             "keypoint is within 0.1 x the input height of the truth (ground-truth boxes; 0.5 = the "
             "scores say nothing, 1 = every right keypoint outscores every wrong one).", "",
             "| row | L_CS | seeds | score_auc | range | err_px |", "|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        spread = f"{r['auc_min']:.3f}-{r['auc_max']:.3f}" if r["seeds"] > 1 else ""
        lines.append(f"| {r['row']} | {'on' if r['L_CS'] else 'off'} | {r['seeds']} | "
                     f"{r['score_auc']:.3f} | {spread} | {r['err_px']:.2f} |")
    lines += ["", f"Claim: every row trained with L_CS ranks its keypoints better than every row "
              f"trained without it, by more than {v['margin']:.3f} (the widest seed range, "
              f"{v['measured']:.3f}, floored at {AUC_FLOOR}): **{verdict}** (lowest with L_CS "
              f"{v['cs_min']:.3f}, highest without {v['other_max']:.3f}).", ""]
    if v["runs_apart"] is not None:
        lines += [f"Run by run: the lowest of the {v['cs_runs']} runs with L_CS scores "
                  f"{v['cs_run_min']:.3f}, the highest of the {v['other_runs']} runs without "
                  f"{v['other_run_max']:.3f}; " + ("every run with L_CS ranks above every run "
                  "without it." if v["runs_apart"] else "the two groups overlap.") +
                  " Without L_CS no loss trains the score head, so its scores are a random "
                  "projection of the keypoint token: informative by chance, in either direction, "
                  "which is why those rows' seeds spread so widely.", ""]
    return lines


__all__ = ["score_ranking", "score_ranking_verdict", "score_ranking_lines",
           "AUC_FLOOR"]
