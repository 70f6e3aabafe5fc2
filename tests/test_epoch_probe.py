"""bench/epoch_probe.py end to end at the smoke profile, on the rows ``none`` (two seeds) and
``KT`` and their teacher: today's recipe and teachers at batch 32, each in its own runs folder,
the CSV read back against the run folders and the report's rule, and a second run that trains
nothing; the students setting (1 epoch here) as ``--plan`` shows it."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from distilkit.engine import read_config

REPO = Path(__file__).resolve().parents[1]
TEACHER = "HRNet-W48 (teacher)"
# setting -> (student epochs, teacher batch) at the smoke profile (2 epochs, batch 16)
SETTINGS = {"today": (2, 16), "teachers_b32": (2, 32)}
ARGS = ["--profile", "smoke", "--student-epochs", "1", "--teacher-batch", "32", "--rows", "none,KT",
        "--noise-seeds", "2"]


def _probe_module():
    spec = importlib.util.spec_from_file_location("epoch_probe", REPO / "bench" / "epoch_probe.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module        # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def probe(tmp_path_factory, smoke_root):
    folder = tmp_path_factory.mktemp("epoch_probe")
    command = [sys.executable, "bench/epoch_probe.py", *ARGS, "--settings", "today,teachers",
               "--runs-dir", str(folder / "runs"), "--out", str(folder / "probe.csv")]
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    written = (folder / "probe.csv").read_text()
    finished = {p: p.stat().st_mtime_ns for p in (folder / "runs").glob("*/**/final_metrics.json")}
    second = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    return SimpleNamespace(runs=folder / "runs", out=folder / "probe.csv", first=first, second=second,
                           written=written, finished=finished, frame=pd.read_csv(folder / "probe.csv"))


def _lines(probe, setting: str, kind: str) -> pd.DataFrame:
    return probe.frame[(probe.frame["setting"] == setting) & (probe.frame["kind"] == kind)]


@pytest.mark.notebook
@pytest.mark.parametrize("setting", SETTINGS)
def test_each_setting_has_its_runs_with_the_folders_metrics_and_recipe(probe, setting):
    runs = _lines(probe, setting, "run")
    assert sorted(zip(runs["row"], runs["seed"])) == sorted([(TEACHER, 0), ("KT", 0), ("none", 0), ("none", 1)])
    epochs, batch = SETTINGS[setting]
    assert set(_lines(probe, setting, "margins")["student_epochs"]) == {epochs}
    assert set(probe.frame.loc[probe.frame["setting"] == setting, "teacher_batch"]) == {batch}
    assert (probe.frame["AP_unit"] == "percent").all()
    for _, run in runs.iterrows():
        run_dir = REPO / run["run_dir"] if not Path(run["run_dir"]).is_absolute() else Path(run["run_dir"])
        metrics = json.loads((run_dir / "final_metrics.json").read_text())
        assert run["AP"] == pytest.approx(100 * metrics["AP"], abs=1e-4)       # percent, as units gives it
        assert run["err_px"] == pytest.approx(metrics["err_px"], rel=1e-5)
        config = read_config(run_dir / "config.json")                          # what the run trained
        assert config.hash() == run["config_hash"] and run["config_hash"] in run_dir.name
        if run["row"] == TEACHER:
            assert config.schedule().batch_size == batch and config.schedule().epochs == 2
        else:
            assert config.schedule().epochs == epochs and config.schedule().batch_size == 16


@pytest.mark.notebook
@pytest.mark.parametrize("setting", SETTINGS)
def test_rows_and_margins_follow_the_reports_rule(probe, setting):
    runs = _lines(probe, setting, "run").set_index(["row", "seed"])
    none = runs.loc["none"]
    rows = _lines(probe, setting, "row").set_index("row")
    assert rows.loc["none", "seeds"] == 2 and rows.loc["KT", "seeds"] == 1
    assert rows.loc["none", "AP"] == pytest.approx(none["AP"].mean(), abs=1e-4)
    assert rows.loc["none", "err_px"] == pytest.approx(none["err_px"].mean(), rel=1e-5)
    # the widest seed range of a row run at several seeds, floored (report_claims.noise_margins)
    margins = _lines(probe, setting, "margins").iloc[0]
    assert margins["seeds"] == 2
    assert margins["ap_margin"] == pytest.approx(max(0.5, none["AP"].max() - none["AP"].min()), abs=1e-4)
    spread = none["err_px"].max() - none["err_px"].min()
    assert margins["err_margin"] == pytest.approx(max(0.1, spread), abs=1e-4)


@pytest.mark.notebook
@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("key, better, min_ap_gain", [("teacher>none", TEACHER, 2.0), ("KT>none", "KT", 0.0)])
def test_each_claim_on_the_probed_rows_is_judged_with_the_settings_margins(probe, setting, key, better,
                                                                          min_ap_gain):
    runs = _lines(probe, setting, "run").set_index(["row", "seed"])
    margins = _lines(probe, setting, "margins").iloc[0]
    claims = _lines(probe, setting, "claim").set_index("claim_key")
    # the report's claims whose rows were all trained, and the L_CS ranking on these rows
    assert set(claims.index) == {"teacher>none", "KT>none", "score_auc"}
    claim, none, winner = claims.loc[key], runs.loc["none"], runs.loc[(better, 0)]
    ap_gain, err_gain = winner["AP"] - none["AP"].mean(), none["err_px"].mean() - winner["err_px"]
    assert claim["ap_gain"] == pytest.approx(ap_gain, abs=1e-4)
    assert claim["err_gain"] == pytest.approx(err_gain, abs=1e-4)
    assert claim["ap_margin"] == pytest.approx(max(min_ap_gain, margins["ap_margin"]))
    assert claim["held_by_ap"] == (ap_gain > max(min_ap_gain, margins["ap_margin"]))
    assert claim["held_by_err"] == (err_gain > margins["err_margin"])
    # none and KT train no L_CS: the ranking claim cannot be judged, and says so (blank)
    assert pd.isna(claims.loc["score_auc", "held_by_score_auc"])


@pytest.mark.notebook
def test_a_run_two_settings_share_is_trained_once_and_linked(probe):
    today, b32 = probe.runs / "today", probe.runs / "teachers_b32"
    linked = sorted(p.name for p in b32.iterdir() if p.is_symlink())
    none = {p.name.rsplit("-", 1)[0] for p in today.glob("distilpose-s-*-s1")}   # only none ran 2 seeds
    assert linked == sorted(f"{prefix}-s{seed}" for prefix in none for seed in (0, 1))  # none: no teacher
    for link in linked:
        assert (b32 / link).resolve() == (today / link).resolve()
    own, theirs = next((b32 / "teachers").iterdir()), next((today / "teachers").iterdir())
    assert not own.is_symlink() and own.name != theirs.name                  # batch 32: its own teacher


@pytest.mark.notebook
def test_the_probe_prints_stages_and_an_eta_and_a_second_run_trains_nothing(probe):
    out = probe.first.stdout + probe.first.stderr
    for i, setting in enumerate(SETTINGS, 1):
        assert f"== epoch probe: setting {i}/2 '{setting}'" in out
    assert "the probe's ETA ~" in out and "== stage 2/4: teachers" in out and "job ETA" in out
    assert probe.second.returncode == 0, probe.second.stderr[-3000:]
    assert "started (" not in probe.second.stdout + probe.second.stderr
    assert {p: p.stat().st_mtime_ns for p in probe.runs.glob("*/**/final_metrics.json")} == probe.finished
    assert probe.out.read_text() == probe.written


@pytest.mark.notebook
def test_the_plan_names_each_settings_recipe_and_what_it_shares(probe, capsys):
    """After the run: today and teachers_b32 trained, the students setting shares today's teacher."""
    assert _probe_module().main([*ARGS, "--plan", "--runs-dir", str(probe.runs)]) == 0
    out = capsys.readouterr().out
    assert "== today (students 2 epochs, teachers at batch 16)" in out
    assert "== students1 (students 1 epochs, teachers at batch 16)" in out
    assert "== teachers_b32 (students 2 epochs, teachers at batch 32)" in out
    assert "0 of 4 runs shared with another setting" in out                 # today
    assert "1 of 4 runs shared with another setting" in out                 # students1: today's teacher
    assert "2 of 4 runs shared with another setting" in out                 # teachers_b32: none x2
    assert "0 of 3 runs done" in out and "2 of 2 runs done" in out             # students1's none x2, KT


@pytest.mark.parametrize("argv, message", [
    (["--settings", "today,fewer"], "unknown settings or rows ['fewer']"),
    (["--rows", "none,SH"], "unknown settings or rows ['SH']"),
    (["--jobs", "0"], "--jobs / --noise-seeds under 1"),
])
def test_a_mistyped_setting_or_row_is_one_error_line(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        _probe_module().parse_args(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err
