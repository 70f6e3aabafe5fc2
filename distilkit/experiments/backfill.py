"""Add ``score_auc`` to result CSVs written before training recorded it.

Training ends with ``err_px``, ``PCK10`` and ``score_auc`` on ground-truth boxes; rows trained
by an older kit lack ``score_auc``. This re-runs that diagnostic on each row's final checkpoint
(``last.pt``) and proves it scored the model the row was trained as: the recomputed ``err_px``
must equal the row's to ``tol`` px, or nothing is written. Every other cell is written back
byte for byte. The command is ``bench/backfill_score_auc.py``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from distilkit.engine.eval_checkpoint import checkpoint_error_metrics

TABLE_FILES = ("teachers.csv", "table4.csv", "table5.csv", "table6.csv")


def _missing(value) -> bool:
    return value is None or str(value).strip() in ("", "nan")


def backfill_score_auc(results_dir: str | Path, runs_root: str | Path, *, tol: float = 1e-3,
                       progress: bool = True) -> dict[str, int]:
    """Fill ``score_auc`` in every table CSV of ``results_dir``; returns rows filled per file.
    ``runs_root``: the clone the CSVs' ``run_dir`` paths are relative to."""
    results_dir, runs_root = Path(results_dir), Path(runs_root)
    # as text, so every other cell is written back byte for byte
    tables = {name: pd.read_csv(results_dir / name, dtype=str, keep_default_na=False)
              for name in TABLE_FILES if (results_dir / name).exists()}
    if not tables:
        raise FileNotFoundError(f"{results_dir}: none of {', '.join(TABLE_FILES)} is there")
    todo = []
    for name, df in tables.items():
        if "score_auc" not in df:
            df["score_auc"] = ""
        for i, row in df.iterrows():
            failed = "error" in df and not _missing(row.get("error"))
            if failed or not _missing(row["score_auc"]) or _missing(row.get("run_dir")):
                continue
            todo.append((name, i, str(row["run_dir"]), float(row["err_px"])))
    cache: dict[str, dict] = {}
    for name, i, run_dir, err_px in tqdm(todo, desc="score_auc", disable=not progress):
        if run_dir not in cache:
            ckpt = runs_root / run_dir / "last.pt"
            if not ckpt.exists():
                raise FileNotFoundError(f"{results_dir / name} row {i}: no checkpoint at {ckpt}")
            cache[run_dir] = checkpoint_error_metrics(ckpt)
        metrics = cache[run_dir]
        if abs(metrics["err_px"] - err_px) > tol:
            raise ValueError(f"{results_dir / name} row {i} ({run_dir}): the checkpoint gives err_px "
                             f"{metrics['err_px']:.4f}, the row says {err_px:.4f}: not the model the "
                             f"row was trained as; nothing written")
        tables[name].loc[i, "score_auc"] = repr(float(metrics["score_auc"]))
    filled = {}
    for name, df in tables.items():
        filled[name] = sum(1 for t in todo if t[0] == name)
        if filled[name]:
            tmp = results_dir / f".{name}.tmp"
            df.to_csv(tmp, index=False)
            os.replace(tmp, results_dir / name)
    return filled


__all__ = ["backfill_score_auc", "TABLE_FILES"]
