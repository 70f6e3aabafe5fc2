"""A run's ``metrics.csv``: one row per epoch, written atomically, columns the union of the rows'
(evaluation epochs add metric columns)."""
from __future__ import annotations

import csv
from pathlib import Path

from distilkit.files import atomic_file


def read_rows(path: Path) -> list[dict]:
    """Rows of a metrics CSV; a row longer than the header (an older writer's bug) keeps its
    extra values under the names of the newest wider row's columns."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k is not None} for r in csv.DictReader(f)]


def write_rows(path: Path, rows: list[dict]) -> None:
    header: list[str] = []
    for r in rows:
        header += [k for k in r if k not in header]
    with atomic_file(path, "w") as f:
        writer = csv.DictWriter(f, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows(rows)


def append_row(path: Path, row: dict) -> None:
    """Append an epoch's row. Evaluation epochs add metric columns, so the file is rewritten
    with the union of the columns (a plain append would leave rows longer than the header)."""
    write_rows(path, read_rows(path) + [row])


def truncate_rows(path: Path, last_epoch: int) -> None:
    """On resume, drop rows of epochs after the checkpoint (they will be redone)."""
    rows = read_rows(path)
    if rows:
        write_rows(path, [r for r in rows if int(r["epoch"]) <= last_epoch])
