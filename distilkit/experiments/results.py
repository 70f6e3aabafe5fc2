"""Results rows: one per run, with provenance, appended atomically to a table CSV."""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from distilkit.experiments.locks import exclusive
from distilkit.provenance import RUN_PROVENANCE, device_name, git_commit, provenance  # noqa: F401

METRICS = ("AP", "AP50", "AP75", "APM", "APL", "AR")
PROVENANCE = ("paper_AP", "wall_s", "git_commit", "config_hash", "profile", "device",
              "torch_version", "timestamp")


def read_rows(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def done_keys(path: str | Path) -> set[tuple[str, str]]:
    """(config_hash, seed) of rows that finished with a metric; failed rows are redone."""
    return {(r["config_hash"], str(r["seed"])) for r in read_rows(path) if r.get("AP") not in (None, "")}


def append_row(path: str | Path, row: dict) -> None:
    """Add one row, replacing an earlier row of the same run (config_hash, seed), e.g. a
    failed attempt, and every earlier row of the same table row made by another recipe (a
    changed profile or kit), whatever its seed: a row's mean and seed spread never mix two
    recipes. The file is rewritten via a temporary and os.replace, so a crash never leaves a
    half-written CSV. New columns extend the header (old rows get blanks)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    digest, seed = str(row.get("config_hash")), str(row.get("seed"))
    label = (str(row.get("table")), str(row.get("row")))

    def superseded(r: dict) -> bool:
        if (str(r.get("config_hash")), str(r.get("seed"))) == (digest, seed):
            return True
        same_row = (str(r.get("table")), str(r.get("row"))) == label
        return same_row and (str(r.get("seed")) == seed or str(r.get("config_hash")) != digest)

    # read-modify-write under a lock: another process may be appending to the same table
    with exclusive(path.with_name(f".{path.name}.lock")):
        old = read_rows(path)
        rows = [r for r in old if not superseded(r)]
        header = list(old[0].keys()) if old else []
        for key in row:
            if key not in header:
                header.append(key)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for r in _in_table_order(rows + [row]):
            writer.writerow({k: _fmt(r.get(k, "")) for k in header})
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_text(buf.getvalue())
        os.replace(tmp, path)


def _in_table_order(rows: list[dict]) -> list[dict]:
    """Grid rows in the paper's order, seeds ascending within a row, whatever order parallel
    runs finished in: two runs of the same grid write the same file. Rows outside the grids
    (e.g. ad hoc ``train_eval`` runs) follow, in the order they were written."""
    from distilkit.experiments.grid import row_order

    ranks: dict[tuple[str, str], int] = {}
    for table in sorted({str(r.get("table")) for r in rows if str(r.get("table")).isdigit()}, key=int):
        for label in row_order(int(table)):
            ranks[(table, label)] = len(ranks)

    def key(item: tuple[int, dict]) -> tuple[int, int]:
        i, r = item
        rank = ranks.get((str(r.get("table")), str(r.get("row"))))
        seed = str(r.get("seed", ""))
        if rank is None or not seed.isdigit():
            return len(ranks) + i, 0
        return rank, int(seed)
    return [r for _, r in sorted(enumerate(rows), key=key)]


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.6g}"
    return v
