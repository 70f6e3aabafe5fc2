"""Each claim judged again against the previous reference, and what changed between the two.

A results folder may hold ``previous_reference/`` (that reference's table4-6.csv, teachers.csv,
reproduce_summary.json and configs.json). Its claims are judged by the same rules
(``report.report_data`` on that folder) and set beside the current ones. Where a verdict
changed, the report lists the changes between the two references that touch the claim's rows;
each change is derived from the data, never written per claim:

    config fields  a row whose config_hash differs: the fields of its configs that differ
                   (``config_changes``: L_SH mode, loss weights, compile, epochs / schedule,
                   batch size, augmentation, model, initialisation, teacher, ...), each group
                   a reason of its own, with the fields before -> after
    configs unknown  a row whose config_hash differs where a reference holds no config for
                   its hash (no configs.json, or the hash not in it): said per side
    fair scoring   a student without L_CS scored with unit keypoint scores: rows whose
                   ``kpt_score`` differs (a CSV without the column scored with the model's own)
    torch          the torch version differs (the summaries' machine.torch, else the rows')
    machine        the summaries' machine differs beyond torch, or the rows' ``device``
    rows           the row ran in only one of the two references
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from distilkit.experiments.config_changes import REASONS, FieldChange, config_reasons
from distilkit.units import read_percent_csv

PREVIOUS_DIR = "previous_reference"
UNKNOWN_BEFORE, UNKNOWN_NOW = "previous configs unknown", "current configs unknown"
CHANGES = (*REASONS, UNKNOWN_BEFORE, UNKNOWN_NOW, "fair scoring", "torch", "machine", "rows")
CHANGE_TEXT = {
    "config fields": ("the fields of the rows' configs (`configs.json`: what each `config_hash` is made of) "
                      "that differ, before → after, in named groups (" + ", ".join(REASONS) + "; a "
                      "changed teacher by its own fields, `teacher.`...; `other` without fields: the hash "
                      "differs where no compared field does; `(absent)`: a field that side's hash does not hold)"),
    UNKNOWN_BEFORE: "the row's `config_hash` differs and the previous reference holds no config for it",
    UNKNOWN_NOW: "the row's `config_hash` differs and this reference holds no config for it",
    "fair scoring": "students trained without L_CS scored with unit keypoint scores (`kpt_score`)",
    "torch": "another torch version",
    "machine": "another machine (the summaries' `machine` beyond torch, or the rows' `device`)",
    "rows": "the row ran in only one of the two references",
}
TEACHER_ROW = "teacher"   # the claim's name for teachers.csv's HRNet-W48 row (report.conclusions)
SHOWN_FIELDS = 3          # fields a report cell names per reason; the rest counted


@dataclass(frozen=True)
class ChangeReason:
    """One change between the references that touches a claim: ``key`` in CHANGES, the
    claim's rows it touches (in the claim's order) and the differing fields behind it (config
    fields and machine; empty for the other keys)."""

    key: str
    rows: tuple[str, ...]
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True)
class Side:
    """One reference as the comparison reads it: its CSV rows (``read_rows``), its summary
    and its configs.json (None without them)."""

    rows: pd.DataFrame
    meta: dict | None = None
    configs: dict | None = None


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


def _torch_versions(side: Side) -> set[str]:
    version = ((side.meta or {}).get("machine") or {}).get("torch")
    if version:
        return {str(version)}
    rows = side.rows
    return set(rows["torch_version"].dropna().astype(str)) if "torch_version" in rows else set()


def machine_changes(now: Side, before: Side) -> tuple[FieldChange, ...]:
    """The summaries' machine fields that differ, torch aside (it is a reason of its own)."""
    new, old = ((s.meta or {}).get("machine") for s in (now, before))
    if not isinstance(new, dict) or not isinstance(old, dict):
        return ()
    return tuple(FieldChange(f"machine.{k}", str(old.get(k, "(absent)")), str(new.get(k, "(absent)")))
                 for k in sorted((set(new) | set(old)) - {"torch"}) if new.get(k) != old.get(k))


def _values(frame: pd.DataFrame, column: str) -> set[str]:
    return set(frame[column].dropna().astype(str)) if column in frame else set()


def config_changes_of(now: pd.DataFrame, before: pd.DataFrame, current: Side,
                      previous: Side) -> dict[str, tuple[FieldChange, ...]]:
    """reason -> fields for one claim row whose config_hash differs (none where it does not, or
    a CSV has no config_hash: a hand-made one says nothing of the recipe)."""
    new_h, old_h = _values(now, "config_hash"), _values(before, "config_hash")
    if not new_h or not old_h or new_h == old_h:
        return {}
    unknown = {key: () for key, side, hashes in ((UNKNOWN_BEFORE, previous, old_h), (UNKNOWN_NOW, current, new_h))
               if side.configs is None or not hashes <= set(side.configs)}
    if unknown:
        return unknown
    merged: dict[str, tuple[FieldChange, ...]] = {}
    for old in sorted(old_h):
        for new in sorted(new_h):
            for key, fields in config_reasons(previous.configs[old], current.configs[new],
                                              previous.configs, current.configs).items():
                merged[key] = tuple(dict.fromkeys(merged.get(key, ()) + fields))
    return merged or {"other": ()}


def row_changes(row: str, current: Side, previous: Side, torch_differs: bool,
                machine: tuple[FieldChange, ...] = ()) -> dict[str, tuple[FieldChange, ...]]:
    """The changes (keys of CHANGES -> their fields) that touch one claim row, from its CSV
    rows and configs in both references; ``machine``: the summaries' machine changes."""
    now, before = rows_of(current.rows, row), rows_of(previous.rows, row)
    if now.empty or before.empty:
        return {"rows": ()}
    out = config_changes_of(now, before, current, previous)
    if _values(now, "kpt_score") != _values(before, "kpt_score"):
        out["fair scoring"] = ()
    if torch_differs:
        out["torch"] = ()
    devices = _values(now, "device"), _values(before, "device")
    device = (FieldChange("device", ", ".join(sorted(devices[1])), ", ".join(sorted(devices[0]))),) \
        if all(devices) and devices[0] != devices[1] else ()
    if machine or device:
        out["machine"] = machine + device
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


def _reasons(claim, current: Side, previous: Side, torch_differs: bool,
             machine: tuple[FieldChange, ...]) -> tuple[ChangeReason, ...]:
    """The changes touching a claim's rows, in CHANGES order, each with its rows and fields."""
    touched = {row: row_changes(row, current, previous, torch_differs, machine) for row in _claim_rows(claim)}
    reasons = []
    for key in CHANGES:
        rows = tuple(r for r, changes in touched.items() if key in changes)
        if rows:
            fields = tuple(dict.fromkeys(f for changes in touched.values() for f in changes.get(key, ())))
            reasons.append(ChangeReason(key, rows, fields))
    return tuple(reasons)


def compare_verdicts(current: list, previous: list, current_side: Side,
                     previous_side: Side) -> list[PreviousVerdict]:
    """One PreviousVerdict per current claim (``report.ClaimVerdict``s), in the same order."""
    by_key = {v.key: v for v in previous}
    torch_now, torch_before = _torch_versions(current_side), _torch_versions(previous_side)
    torch_differs = bool(torch_now and torch_before and torch_now != torch_before)
    machine = machine_changes(current_side, previous_side)
    out = []
    for claim in current:
        old = by_key.get(claim.key)
        held = (old.held_by_ap, old.held_by_err) if old is not None else (None, None)
        changed = held != (claim.held_by_ap, claim.held_by_err)
        comps = old.comparisons if old is not None else ()
        out.append(PreviousVerdict(
            key=claim.key, held_by_ap=held[0], held_by_err=held[1],
            ap_gain=_smallest([c.ap_gain for c in comps]), err_gain=_smallest([c.err_gain for c in comps]),
            changed=changed,
            reasons=_reasons(claim, current_side, previous_side, torch_differs, machine) if changed else ()))
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
    reasons = "; ".join(reason_text(r) for r in v.reasons)
    return f"{verdict(v.held_by_ap)} / {verdict(v.held_by_err)} | {effect} | {reasons} |"


def reason_text(r: ChangeReason) -> str:
    """One reason as a report cell names it: its key, its first fields before → after, its rows."""
    shown = [f.text() for f in r.fields[:SHOWN_FIELDS]]
    if len(r.fields) > SHOWN_FIELDS:
        shown.append(f"+{len(r.fields) - SHOWN_FIELDS} more")
    fields = f": {', '.join(shown)}" if shown else ""
    return f"{r.key}{fields} ({', '.join(r.rows)})".replace("|", "\\|")


__all__ = ["PREVIOUS_DIR", "CHANGES", "CHANGE_TEXT", "ChangeReason", "Side", "PreviousVerdict", "read_rows",
           "rows_of", "row_changes", "config_changes_of", "machine_changes", "compare_verdicts",
           "previous_folder", "previous_intro", "previous_cells", "reason_text"]
