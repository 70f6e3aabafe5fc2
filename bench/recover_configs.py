"""Recover a results folder's per-row configs from the commit that made it.

    .venv/bin/python bench/recover_configs.py COMMIT RESULTS_DIR [--out RESULTS_DIR/configs.json]

A reference made before the export wrote ``configs.json`` (``experiments.row_configs``) holds
each row's recipe only as its ``config_hash``. This checks ``COMMIT`` out in a temporary git
worktree, runs that commit's own planner there in a subprocess (its ``distilkit`` first on
PYTHONPATH; the profile, tables, seeds and noise seeds of RESULTS_DIR's
``reproduce_summary.json``, as its ``reproduce`` planned them), and writes, for every
``config_hash`` of RESULTS_DIR's table4-6.csv and teachers.csv, the config that commit planned
(``config``, its paths relative to the worktree) and what its hash is made of (``identity``).

It refuses CSV rows whose ``git_commit`` is not COMMIT, and fails naming every CSV hash the
planner did not produce (a row of another recipe: ``--epochs``, a data root, another grid).
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from distilkit.experiments.row_configs import portable_config, write_configs  # noqa: E402

CSVS = ("table4.csv", "table5.csv", "table6.csv", "teachers.csv")

# Run inside the commit's worktree with its distilkit: plan as its reproduce did, print
# {hash: {"config", "identity"}} for every planned run (teachers included).
PLANNER = r"""
import importlib, inspect, json, sys
from pathlib import Path
reproduce = importlib.import_module("distilkit.experiments.reproduce")
import distilkit
assert Path(distilkit.__file__).resolve().is_relative_to(Path.cwd().resolve()), distilkit.__file__
grid = json.loads(sys.argv[1])
params = inspect.signature(reproduce.plan_runs).parameters
kw = dict(seeds=grid["seeds"], noise_seeds=grid["noise_seeds"], runs_dir=Path.cwd() / "runs" / grid["profile"])
if "recipe" in params:
    from distilkit.experiments.plan import Recipe
    args = (grid["tables"], Recipe(grid["profile"]))
else:
    args = (grid["tables"],)
    kw.update(profile=grid["profile"], data_root=None, epochs=None)
out = {}
for job in reproduce.plan_runs(*args, **kw):
    c = job.config
    identity = c.identity() if hasattr(c, "identity") else c._identity()
    out[c.hash()] = {"config": c.to_dict(), "identity": identity}
print(json.dumps(out, default=str))
"""


def csv_hashes(results_dir: Path, commit: str) -> dict[str, str]:
    """config_hash -> "<csv>: <row>" of every row; rows of another commit are refused."""
    found: dict[str, str] = {}
    for name in CSVS:
        path = results_dir / name
        if not path.is_file():
            continue
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                made_by = row.get("git_commit", "")
                if made_by and not (made_by.startswith(commit) or commit.startswith(made_by)):
                    sys.exit(f"{path}: row {row['row']!r} was made by commit {made_by}, not {commit}")
                found.setdefault(row["config_hash"], f"{name}: {row['row']}")
    if not found:
        sys.exit(f"{results_dir}: no config_hash in any of {CSVS}")
    return found


def planned_grid(results_dir: Path) -> dict:
    """The profile, tables, seeds and noise seeds its reproduce ran (reproduce_summary.json)."""
    path = results_dir / "reproduce_summary.json"
    try:
        summary = json.loads(path.read_text())
        return {k: summary[k] for k in ("profile", "tables", "seeds", "noise_seeds")}
    except (OSError, ValueError, KeyError) as err:
        sys.exit(f"{path}: needed for the grid the reference planned ({err!r})")


def plan_at(commit: str, grid: dict, repo: Path) -> dict[str, dict]:
    """Every run ``commit``'s planner makes of ``grid``: hash -> entry, paths relative to its worktree."""
    with tempfile.TemporaryDirectory(prefix="recover-configs-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(tree), commit],
                       check=True, capture_output=True, text=True)
        try:
            done = subprocess.run([sys.executable, "-c", PLANNER, json.dumps(grid)], cwd=tree,
                                  env={**_env(), "PYTHONPATH": str(tree)}, capture_output=True, text=True)
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)],
                           check=False, capture_output=True)
        if done.returncode != 0:
            sys.exit(f"the planner of {commit} failed:\n{done.stderr[-3000:]}")
        planned = json.loads(done.stdout.splitlines()[-1])
        return {digest: {"config": portable_config(e["config"], tree), "identity": e["identity"]}
                for digest, e in planned.items()}


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("commit")
    p.add_argument("results_dir", type=Path)
    p.add_argument("--out", type=Path, help="default: RESULTS_DIR/configs.json")
    args = p.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    hashes = csv_hashes(args.results_dir, args.commit)
    planned = plan_at(args.commit, planned_grid(args.results_dir), repo)
    missing = {h: where for h, where in hashes.items() if h not in planned}
    if missing:
        sys.exit(f"{args.commit}'s planner made no run of {len(missing)} CSV hash(es): "
                 + "; ".join(f"{h} ({where})" for h, where in missing.items()))
    out = write_configs(args.out or args.results_dir / "configs.json", {h: planned[h] for h in hashes})
    print(f"{out}: {len(hashes)} configs recovered from {args.commit}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
