"""Each claim judged again against the previous reference, and what changed between the two.

A results folder may hold ``previous_reference/`` (that reference's table4-6.csv, teachers.csv
and reproduce_summary.json). Its claims are judged by the same rules (``report.report_data``
on that folder) and set beside the current ones. Where a verdict changed, the report lists the
changes between the two references that touch the claim's rows; each change is derived from
the data, never written per claim:

    loss scales   L_SH / L_CS averaged over keypoints and L_CS masked: rows with L_SH or L_CS
                  whose recipe (config_hash) changed
    fair scoring  a student without L_CS scored with unit keypoint scores: rows whose
                  ``kpt_score`` differs (a CSV without the column scored with the model's own)
    torch         the torch version differs (the summaries' machine.torch, else the rows')
    recipe        the row's config_hash differs
    rows          the row ran in only one of the two references
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from distilkit.units import read_percent_csv

PREVIOUS_DIR = "previous_reference"
CHANGES = ("loss scales", "fair scoring", "torch", "recipe", "rows")
CHANGE_TEXT = {
    "loss scales": "L_SH and L_CS averaged over keypoints as in the authors' code, L_CS masked",
    "fair scoring": "students trained without L_CS scored with unit keypoint scores (`kpt_score`)",
    "torch": "another torch version",
    "recipe": "another training recipe (`config_hash`)",
    "rows": "the row ran in only one of the two references",
}
TEACHER_ROW = "teacher"   # the claim's name for teachers.csv's HRNet-W48 row (report.conclusions)


@dataclass(frozen=True)
class ChangeReason:
    """One change between the references that touches a claim: ``key`` in CHANGES, and the
    claim's rows it touches (in the claim's order)."""

    key: str
    rows: tuple[str, ...]


@dataclass(frozen=True)
class PreviousVerdict:
    """A claim as the previous reference judged it. ``held_by_*``: its verdicts (None: not
    decided there, or not judged). ``ap_gain`` / ``err_gain``: its effect size, the smallest
    gain over the claim's comparisons (the one that decides it; nan without one). ``changed``:
    a verdict differs from the current one. ``reasons``: the changes touching the claim's rows,
    listed only where ``changed``."""

    key: str
    held_by_ap: bool | None
    held_by_err: bool | None
    ap_gain: float
    err_gain: float
    changed: bool
    reasons: tuple[ChangeReason, ...]


def read_rows(results_dir: str | Path) -> pd.DataFrame:
    """Every CSV row of a results folder (tables 4-6 and the teachers; AP and PCK in percent, by
    each CSV's ``AP_unit``), with a ``kpt_score`` column ("model" where the CSV predates it)."""
    frames = [read_percent_csv(p) for name in ("table4", "table5", "table6", "teachers")
              if (p := Path(results_dir) / f"{name}.csv").is_file()]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["row"])
    if "kpt_score" not in rows:
        rows["kpt_score"] = "model"
    rows["kpt_score"] = rows["kpt_score"].fillna("model")
    return rows


def rows_of(rows: pd.DataFrame, claim_row: str) -> pd.DataFrame:
    """The CSV rows a claim's row name stands for."""
    if claim_row == TEACHER_ROW:   # Table 5's "HRNet-W48-s3 / ..." students start so too
        teachers = rows["table"] == 0 if "table" in rows else True
        return rows[rows["row"].astype(str).str.startswith("HRNet") & teachers]
    return rows[rows["row"] == claim_row]


def _torch_versions(rows: pd.DataFrame, meta: dict | None) -> set[str]:
    version = ((meta or {}).get("machine") or {}).get("torch")
    if version:
        return {str(version)}
    return set(rows["torch_version"].dropna().astype(str)) if "torch_version" in rows else set()


def _flag(values: pd.Series) -> bool:
    """Any of a CSV's loss switches on (read back as bool, or as text)."""
    return bool(values.astype(str).str.lower().isin(["true", "1"]).any())


def row_changes(row: str, current: pd.DataFrame, previous: pd.DataFrame,
                torch_differs: bool) -> list[str]:
    """The keys of CHANGES that touch one claim row, from its CSV rows in both references."""
    now, before = rows_of(current, row), rows_of(previous, row)
    if now.empty or before.empty:
        return ["rows"]
    out = []
    # a CSV without config_hash (hand-made, or older than the column) says nothing of the recipe
    recipe = ("config_hash" in now and "config_hash" in before and
              set(now["config_hash"].astype(str)) != set(before["config_hash"].astype(str)))
    uses_sh_cs = any(_flag(frame[col]) for frame in (now, before) for col in ("L_SH", "L_CS")
                     if col in frame)
    if recipe and uses_sh_cs:
        out.append("loss scales")
    if set(now["kpt_score"].astype(str)) != set(before["kpt_score"].astype(str)):
        out.append("fair scoring")
    if torch_differs:
        out.append("torch")
    if recipe:
        out.append("recipe")
    return out


def _claim_rows(verdict) -> list[str]:
    seen: list[str] = []
    for c in verdict.comparisons:
        for row in (c.better, c.worse):
            if row not in seen:
                seen.append(row)
    return seen


def _smallest(values: list[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return min(finite) if finite else float("nan")


def compare_verdicts(current: list, previous: list, current_rows: pd.DataFrame,
                     previous_rows: pd.DataFrame, current_meta: dict | None = None,
                     previous_meta: dict | None = None) -> list[PreviousVerdict]:
    """One PreviousVerdict per current claim (``report.ClaimVerdict``s), in the same order."""
    by_key = {v.key: v for v in previous}
    torch_now = _torch_versions(current_rows, current_meta)
    torch_before = _torch_versions(previous_rows, previous_meta)
    torch_differs = bool(torch_now and torch_before and torch_now != torch_before)
    out = []
    for claim in current:
        old = by_key.get(claim.key)
        held = (old.held_by_ap, old.held_by_err) if old is not None else (None, None)
        changed = held != (claim.held_by_ap, claim.held_by_err)
        reasons: list[ChangeReason] = []
        if changed:
            touched = {row: row_changes(row, current_rows, previous_rows, torch_differs)
                       for row in _claim_rows(claim)}
            reasons = [ChangeReason(key, tuple(r for r, keys in touched.items() if key in keys))
                       for key in CHANGES if any(key in keys for keys in touched.values())]
        comps = old.comparisons if old is not None else ()
        out.append(PreviousVerdict(
            key=claim.key, held_by_ap=held[0], held_by_err=held[1],
            ap_gain=_smallest([c.ap_gain for c in comps]), err_gain=_smallest([c.err_gain for c in comps]),
            changed=changed, reasons=tuple(reasons)))
    return out


def previous_folder(results_dir: str | Path) -> Path | None:
    folder = Path(results_dir) / PREVIOUS_DIR
    return folder if folder.is_dir() else None


def previous_intro(meta: dict | None, verdicts: list[PreviousVerdict]) -> str:
    """The sentence above the conclusions table when a previous reference is beside it."""
    commit = (meta or {}).get("git_commit", "?")
    n_changed = sum(v.changed for v in verdicts)
    return (f"`previous`: the verdicts (COCO AP / err_px) of the previous reference "
            f"(`{PREVIOUS_DIR}/`, commit `{commit}`), judged by the same rules with its own margins, "
            f"and its effect size (the smallest AP and err_px gain among the claim's comparisons). "
            f"{n_changed} of {len(verdicts)} claims changed verdict; for each, `changed by` lists "
            "the changes between the two references that touch its rows: "
            + "; ".join(f"{k}: {t}" for k, t in CHANGE_TEXT.items()) + ".")


def previous_cells(v: PreviousVerdict) -> str:
    """The previous reference's cells of one conclusions row: verdicts, effect, changes."""
    def verdict(held):
        return "n/a" if held is None else ("yes" if held else "no")

    effect = ("" if np.isnan(v.ap_gain) and np.isnan(v.err_gain) else
              f"{v.ap_gain:+.2f} AP / {v.err_gain:+.2f} px")
    reasons = "; ".join(f"{r.key} ({', '.join(r.rows)})" for r in v.reasons)
    return f"{verdict(v.held_by_ap)} / {verdict(v.held_by_err)} | {effect} | {reasons} |"


__all__ = ["PREVIOUS_DIR", "CHANGES", "CHANGE_TEXT", "ChangeReason", "PreviousVerdict", "read_rows",
           "rows_of", "row_changes", "compare_verdicts", "previous_folder", "previous_intro",
           "previous_cells"]
