"""bench/recover_configs.py and what it recovered: the previous reference's per-row configs.

The committed ``results/previous_reference/configs.json`` was recovered by running that
reference's own planner (3a755c5) in a git worktree of it; each entry's identity must digest
to its row's config_hash, so the file is what the hashes were made of."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from distilkit.engine.config import _digest

REPO = Path(__file__).resolve().parents[1]
PREVIOUS = REPO / "results" / "previous_reference"
CSVS = ("table4.csv", "table5.csv", "table6.csv", "teachers.csv")


def _script():
    spec = importlib.util.spec_from_file_location("recover_configs", REPO / "bench" / "recover_configs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_previous_reference_holds_each_rows_config_whose_identity_is_its_hash():
    hashes = {h for name in CSVS for h in pd.read_csv(PREVIOUS / name)["config_hash"]}
    configs = json.loads((PREVIOUS / "configs.json").read_text())
    assert set(configs) == hashes
    for digest, entry in configs.items():
        assert _digest(entry["identity"]) == digest
        assert not Path(entry["config"]["out_dir"]).is_absolute()      # no machine's own paths


def _results(folder: Path, rows: list[tuple[str, str, str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"table": 4, "row": r, "config_hash": h, "git_commit": c} for r, h, c in rows]).to_csv(
        folder / "table4.csv", index=False)
    (folder / "reproduce_summary.json").write_text(json.dumps(
        {"profile": "cpu", "tables": [4], "seeds": 1, "noise_seeds": 3}))
    return folder


@pytest.mark.parametrize("planned, error", [
    ({"aaa": {}}, "made no run of 1 CSV hash(es): bbb (table4.csv: KT)"),
    ({}, "made no run of 2 CSV hash(es): aaa (table4.csv: none); bbb (table4.csv: KT)"),
])
def test_a_hash_the_commits_planner_did_not_make_fails_naming_it(tmp_path, monkeypatch, planned, error):
    script = _script()
    folder = _results(tmp_path / "ref", [("none", "aaa", "3a755c51d57c"), ("KT", "bbb", "3a755c51d57c")])
    seen = {}
    monkeypatch.setattr(script, "plan_at", lambda commit, grid, repo: seen.update(grid) or planned)
    with pytest.raises(SystemExit, match=error.replace("(", r"\(").replace(")", r"\)")):
        script.main(["3a755c5", str(folder)])
    assert seen == {"profile": "cpu", "tables": [4], "seeds": 1, "noise_seeds": 3}
    assert not (folder / "configs.json").exists()


def test_rows_of_another_commit_are_refused_and_the_recovered_ones_written(tmp_path, monkeypatch):
    script = _script()
    entry = {"config": {"out_dir": "runs/cpu/x"}, "identity": {"model": "x"}}
    monkeypatch.setattr(script, "plan_at", lambda commit, grid, repo: {"aaa": entry, "zzz": entry})
    other = _results(tmp_path / "other", [("none", "aaa", "a891c8434cc4")])
    with pytest.raises(SystemExit, match="table4.csv: row 'none' was made by commit a891c8434cc4, not 3a755c5"):
        script.main(["3a755c5", str(other)])
    folder = _results(tmp_path / "ref", [("none", "aaa", "3a755c51d57c"), ("none", "aaa", "3a755c51d57c")])
    assert script.main(["3a755c5", str(folder)]) == 0
    assert json.loads((folder / "configs.json").read_text()) == {"aaa": entry}   # the CSVs' hashes only
