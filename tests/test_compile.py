"""Compiled models (issue 38): which models a profile compiles, how the config hash records it,
and that a compiled run is the same to the bit whether the runs folder's inductor cache was
cold or warm."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from distilkit.engine.config import TrainConfig
from distilkit.experiments.plan import Recipe
from distilkit.experiments.reproduce import INDUCTOR_CACHE, inductor_cache, plan_runs
from distilkit.profiles import CPU, SMOKE

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("model, compiled", [
    ("distilpose-s-cpu", True), ("distilpose-l-cpu", True), ("teacher-hrw48-cpu", True),
    ("teacher-stemnet-cpu", True), ("deeppose-r50-cpu", False), ("simplebaseline-r50-cpu", False)])
def test_the_cpu_profile_compiles_the_transformer_and_hrnet_models_and_smoke_none(model, compiled):
    assert CPU.compiles(model) is compiled
    assert SMOKE.compiles(model.replace("-cpu", "-smoke")) is False


@pytest.mark.parametrize("model, profile, compiled", [
    ("distilpose-s", "cpu", True), ("teacher-hrw48", "cpu", True), ("deeppose-r50", "cpu", False),
    ("distilpose-s", "smoke", False)])
def test_the_hash_records_a_compiled_run_and_eager_runs_keep_theirs(model, profile, compiled):
    chosen = TrainConfig(out_dir="a", model=model, profile=profile)
    eager, forced = replace(chosen, compile=False), replace(chosen, compile=True)
    assert chosen.compiles() is compiled and not eager.compiles() and forced.compiles()
    assert forced.hash() != eager.hash()
    assert chosen.hash() == (forced if compiled else eager).hash()   # flag or profile: one experiment
    assert "compile" not in json.dumps(eager._identity())


def test_the_reference_ran_compiled_and_no_compile_moves_only_the_compiled_models_rows(tmp_path, committed_hashes):
    """The committed reference ran the profile's default (compiled): its plan keeps every folder;
    with --no-compile only the ResNet rows, whose models and teacher run eager anyway, keep theirs."""
    committed = committed_hashes

    def kept(compile):
        runs = plan_runs([4, 5, 6], Recipe("cpu", compile=compile), seeds=1, noise_seeds=3, runs_dir=tmp_path)
        keys = {(str(j.spec.table), j.spec.row, str(j.seed)): j.config.hash() for j in runs}
        return len(runs), {key for key, digest in keys.items() if committed.get(key) == digest}

    runs, compiled = kept(None)
    assert runs == 24 and len(compiled) == 24
    assert kept(False)[1] == {("6", "SimpleBaseline (teacher)", "0"), ("6", "DeepPose", "0"),
                           ("6", "DeepPose + Simulated Heatmaps", "0")}


def test_rows_share_the_runs_folders_inductor_cache_and_a_set_one_is_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    with inductor_cache(tmp_path) as folder:
        assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / INDUCTOR_CACHE) == str(folder)
    assert "TORCHINDUCTOR_CACHE_DIR" not in os.environ
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    with inductor_cache(tmp_path) as folder:
        assert folder == tmp_path / "mine" == Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])


def _train(out: Path, cache: Path, data_root: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCHINDUCTOR_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-m", "distilkit.cli", "train", "--profile", "smoke", "--model", "deeppose-r50",
           "--compile", "--epochs", "1", "--max-train-instances", "32", "--max-val-instances", "8",
           "--workers", "0", "--no-progress", "--data-root", str(data_root), "--out", str(out)]
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads((out / "final_metrics.json").read_text())


def _graphs(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in (cache / "fxgraph").rglob("*") if p.is_file())


@pytest.mark.slow
def test_a_compiled_run_is_bit_identical_from_a_cold_and_a_warm_cache(tmp_path, smoke_root):
    cache = tmp_path / "cache"
    cold = _train(tmp_path / "cold", cache, smoke_root)
    graphs = _graphs(cache)
    assert graphs                                   # the compiled graphs went to the shared cache
    warm = _train(tmp_path / "warm", cache, smoke_root)
    assert _graphs(cache) == graphs                 # the second run compiled nothing new
    assert json.dumps(cold, sort_keys=True) == json.dumps(warm, sort_keys=True)
    config = json.loads((tmp_path / "cold" / "config.json").read_text())
    assert config["config"]["compile"] is True
    a, b = (torch.load(tmp_path / name / "last.pt", weights_only=False)["state_dict"] for name in ("cold", "warm"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
