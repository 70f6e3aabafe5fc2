"""Add the ``score_auc`` column to result CSVs written before training recorded it
(``distilkit.experiments.backfill``: each row's final checkpoint is scored again, and its
recomputed ``err_px`` must match the row's, or nothing is written).

    # the reference clone's runs, its results folder
    DISTILKIT_DATA=/tmp/fresh_data python bench/backfill_score_auc.py \\
        --results-dir results --runs-root /tmp/fresh

``run_dir`` in the CSVs is relative to the clone that trained them (``--runs-root``). Rows
that already have a ``score_auc``, and failed rows, are left as they are.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distilkit.experiments.backfill import backfill_score_auc  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results-dir", required=True, type=Path)
    p.add_argument("--runs-root", type=Path, default=Path(__file__).resolve().parents[1],
                   help="the clone whose runs/ the CSVs' run_dir columns point into")
    p.add_argument("--tol", type=float, default=1e-3, help="err_px agreement required, px")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(backfill_score_auc(args.results_dir, args.runs_root, tol=args.tol))


if __name__ == "__main__":
    main()
