"""The engine: a fit lowers the loss, the teacher stays frozen, resume is exact, NaN stops."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch

from distilkit.distill import check_compatible, load_teacher
from distilkit.engine import NonFiniteLossError, TrainConfig, fit
from distilkit.models.checkpoint import load_checkpoint
import distilkit.engine.trainer as engine_fit
from distilkit.engine.schedule import lr_factor
from distilkit.losses import LossConfig
from distilkit.models import build_model
from distilkit.profiles import Schedule, with_epochs

ALL = LossConfig(kt=True, vt=True, sh=True, cs=True)


def _cfg(tmp_path, root, **kw) -> TrainConfig:
    base = dict(out_dir=str(tmp_path), model="distilpose-s", profile="smoke", data_root=str(root),
                progress=False)
    base.update(kw)
    return TrainConfig(**base)


def test_lr_schedule_warms_up_then_steps():
    s = Schedule(epochs=10, batch_size=4, lr=1e-3, warmup_iters=10, warmup_ratio=0.0, milestones=(5, 8))
    assert lr_factor(0, iters_per_epoch=20, schedule=s) == 0.0
    assert lr_factor(5, iters_per_epoch=20, schedule=s) == pytest.approx(0.5)
    assert lr_factor(50, iters_per_epoch=20, schedule=s) == 1.0
    assert lr_factor(100, iters_per_epoch=20, schedule=s) == pytest.approx(0.1)
    assert lr_factor(160, iters_per_epoch=20, schedule=s) == pytest.approx(0.01)


def test_lr_milestones_may_fall_inside_an_epoch():
    s = Schedule(epochs=2, batch_size=4, warmup_iters=0, milestones=(1.5,))
    assert lr_factor(29, iters_per_epoch=20, schedule=s) == 1.0
    assert lr_factor(30, iters_per_epoch=20, schedule=s) == pytest.approx(0.1)
    # an epochs override keeps the decay at the same share of the run
    assert with_epochs(s, 4).milestones == (3.0,)


def test_short_fit_lowers_the_loss(tmp_path, smoke_root):
    fit(_cfg(tmp_path, smoke_root, epochs=4))
    curve = pd.read_csv(tmp_path / "metrics.csv")
    assert list(curve["epoch"]) == [1, 2, 3, 4]
    assert curve["train_loss"].iloc[-1] < curve["train_loss"].iloc[0]
    assert {"AP", "AP50", "AR"} <= set(curve.columns)
    # last.pt is the state after the last epoch; best.pt the first epoch with the highest AP
    last, best = load_checkpoint(tmp_path / "last.pt"), load_checkpoint(tmp_path / "best.pt")
    best_row = curve.loc[curve["AP"].idxmax()]
    assert last["epoch"] == 4 and last["best_ap"] == pytest.approx(best_row["AP"])
    assert best["epoch"] == best_row["epoch"] and best["best_ap"] == pytest.approx(best_row["AP"])
    assert set(last["state_dict"]) == set(build_model("distilpose-s-smoke").state_dict())
    final = json.loads((tmp_path / "final_metrics.json").read_text())
    assert 0.0 <= final["PCK10"] <= 1.0 and 0.0 <= final["score_auc"] <= 1.0


def test_the_ground_truth_box_diagnostic_of_a_checkpoint_is_the_one_its_run_reported(
        tmp_path, smoke_root, smoke_teacher):
    from distilkit.engine.eval_checkpoint import checkpoint_error_metrics

    reported = json.loads((smoke_teacher.parent / "final_metrics.json").read_text())
    again = checkpoint_error_metrics(smoke_teacher)
    for key in ("err_px", "PCK10", "score_auc"):
        assert again[key] == pytest.approx(reported[key], abs=1e-9), key


def test_distillation_leaves_teacher_bit_identical_and_gradient_free(tmp_path, smoke_root, smoke_teacher):
    before = {k: v.clone() for k, v in load_checkpoint(smoke_teacher)["state_dict"].items()}
    teacher = load_teacher(smoke_teacher)
    assert not any(p.requires_grad for p in teacher.parameters())
    teacher.train()
    assert not teacher.model.training  # BN stays in eval mode under .train()
    fit(_cfg(tmp_path, smoke_root, losses=ALL, teacher=str(smoke_teacher), epochs=1))
    after = load_checkpoint(smoke_teacher)["state_dict"]
    assert all(torch.equal(before[k], after[k]) for k in before)
    terms = pd.read_csv(tmp_path / "metrics.csv").columns
    assert {"train_kt", "train_vt", "train_sh", "train_cs", "train_reg"} <= set(terms)


def test_token_loss_on_cnn_student_is_a_clear_error(smoke_teacher):
    student = build_model("deeppose-r50-smoke")
    teacher = load_teacher(smoke_teacher)
    with pytest.raises(ValueError, match="only 'sh' and 'cs' apply"):
        check_compatible(student, teacher, LossConfig(kt=True))
    check_compatible(student, teacher, LossConfig(sh=True, cs=True))  # allowed


def test_kill_and_resume_reaches_the_same_weights(tmp_path, smoke_root, monkeypatch):
    full = _cfg(tmp_path / "full", smoke_root, epochs=3, seed=3)
    fit(full)
    ref = load_checkpoint(tmp_path / "full" / "last.pt")["state_dict"]

    cut = _cfg(tmp_path / "cut", smoke_root, epochs=3, seed=3)
    calls = {"n": 0}
    original = engine_fit.compute_losses

    def interrupting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2 * _iters_per_epoch(tmp_path / "full") + 2:  # mid-way through epoch 3
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(engine_fit, "compute_losses", interrupting)
    with pytest.raises(KeyboardInterrupt):
        fit(cut)
    monkeypatch.setattr(engine_fit, "compute_losses", original)
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 2
    fit(_cfg(tmp_path / "cut", smoke_root, epochs=3, seed=3, resume=True))
    resumed = load_checkpoint(tmp_path / "cut" / "last.pt")["state_dict"]
    for k in ref:
        assert torch.equal(ref[k], resumed[k]), f"{k} differs after resume"
    assert list(pd.read_csv(tmp_path / "cut" / "metrics.csv")["epoch"]) == [1, 2, 3]


def _iters_per_epoch(run_dir) -> int:
    curve = pd.read_csv(run_dir / "metrics.csv")
    return int(curve["iteration"].iloc[0])


def test_nan_loss_stops_with_documented_error_and_keeps_checkpoint(tmp_path, smoke_root, monkeypatch):
    original = engine_fit.compute_losses
    fit(_cfg(tmp_path, smoke_root, epochs=1))
    good = load_checkpoint(tmp_path / "last.pt")
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        terms = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            terms["reg"] = terms["reg"] * float("nan")
        return terms

    monkeypatch.setattr(engine_fit, "compute_losses", poisoned)
    with pytest.raises(NonFiniteLossError, match="non-finite loss .* last good checkpoint is kept"):
        fit(_cfg(tmp_path, smoke_root, epochs=2, resume=True))
    kept = load_checkpoint(tmp_path / "last.pt")
    assert kept["epoch"] == good["epoch"] == 1
    assert all(torch.equal(good["state_dict"][k], kept["state_dict"][k]) for k in good["state_dict"])


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path, smoke_root):
    fit(_cfg(tmp_path, smoke_root, epochs=1))
    with pytest.raises(ValueError, match="last.pt: cannot resume.*another config"):
        fit(_cfg(tmp_path, smoke_root, epochs=2, lr=5e-4, resume=True))


@pytest.mark.parametrize("profile", ["smoke", "cpu"])
def test_an_epochs_override_is_the_same_experiment_as_the_schedule_it_resolves_to(profile):
    from distilkit.profiles import get_profile
    native = get_profile(profile).student_schedule.epochs
    plain = TrainConfig(out_dir="a", profile=profile)
    assert TrainConfig(out_dir="b", profile=profile, epochs=native).hash() == plain.hash()
    assert TrainConfig(out_dir="c", profile=profile, epochs=native + 1).hash() != plain.hash()


@pytest.mark.parametrize("switches, sh_mode_counts", [("reg", False), ("reg,kt,vt,cs", False),
                                                    ("reg,sh", True), ("reg,kt,vt,sh,cs", True)])
def test_sh_mode_is_part_of_the_experiment_only_where_l_sh_is_on(switches, sh_mode_counts):
    from distilkit.losses import parse_loss_switches
    authors, masked = (TrainConfig(out_dir="a", profile="smoke", losses=parse_loss_switches(switches, sh_mode=m))
                       for m in ("authors", "masked"))
    assert (authors.hash() != masked.hash()) is sh_mode_counts
    assert ("sh_mode" in authors._identity()["losses"]) is sh_mode_counts


def test_cli_teacher_to_distilled_student_end_to_end(tmp_path, smoke_root, smoke_teacher):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "distilkit.cli"]
    run = subprocess.run(cmd + ["train", "--profile", "smoke", "--model", "distilpose-s",
                                "--teacher", str(smoke_teacher), "--losses", "reg,kt,vt,sh,cs",
                                "--epochs", "1", "--data-root", str(smoke_root), "--no-progress",
                                "--out", str(tmp_path / "student")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    trained = json.loads(run.stdout.strip().splitlines()[-1])
    ev = subprocess.run(cmd + ["eval", "--checkpoint", str(tmp_path / "student" / "last.pt"),
                               "--no-progress"], capture_output=True, text=True, env=env, timeout=600)
    assert ev.returncode == 0, ev.stderr
    metrics = json.loads(ev.stdout.strip().splitlines()[-1])
    assert set(metrics) == {"AP", "AP50", "AP75", "APM", "APL", "AR", "unit"}
    # eval of the saved checkpoint reproduces the metric the run reported, in percent; the run
    # folder keeps the fraction
    assert metrics["AP"] == pytest.approx(trained["AP"], abs=1e-6) and metrics["unit"] == "percent"
    stored = json.loads((tmp_path / "student" / "final_metrics.json").read_text())
    assert metrics["AP"] == pytest.approx(100 * stored["AP"], abs=1e-6)
    # the run folder's record alone trains the same run again, to the same bits
    again = subprocess.run(cmd + ["train", "--config", str(tmp_path / "student" / "config.json"),
                                  "--no-progress", "--out", str(tmp_path / "again")],
                           capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr
    assert ((tmp_path / "again" / "final_metrics.json").read_bytes()
            == (tmp_path / "student" / "final_metrics.json").read_bytes())


@pytest.mark.slow
def test_torchrun_two_process_gloo_matches_single_process(tmp_path, smoke_root):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.fail("torchrun is not installed beside the interpreter")
    common = ["train", "--profile", "smoke", "--model", "distilpose-s", "--epochs", "2", "--seed", "1",
              "--data-root", str(smoke_root), "--no-progress", "--workers", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "distilkit.cli", *common, "--out", str(tmp_path / "one")],
                            capture_output=True, text=True, env=env, timeout=600)
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "distilkit.cli", *common,
                          "--out", str(tmp_path / "two")], capture_output=True, text=True, env=env,
                         timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = json.loads(single.stdout.strip().splitlines()[-1])
    two = json.loads([l for l in ddp.stdout.strip().splitlines() if l.startswith("{")][-1])
    # Same samples per step (the sharded sampler splits each global batch), but per-rank BN
    # statistics and augmentation draws differ: the metrics agree within a few AP points.
    assert abs(one["AP"] - two["AP"]) <= 5, (one, two)      # percent
    assert abs(one["AR"] - two["AR"]) <= 5, (one, two)
    curve = pd.read_csv(tmp_path / "two" / "metrics.csv")
    assert len(curve) == 2 and curve["train_loss"].notna().all()


def test_metrics_csv_stays_rectangular_when_only_some_epochs_evaluate(tmp_path, smoke_root):
    fit(_cfg(tmp_path, smoke_root, epochs=2, eval_every=2))
    curve = pd.read_csv(tmp_path / "metrics.csv")  # a ragged file would not parse
    assert list(curve["epoch"]) == [1, 2]
    assert pd.isna(curve["AP"].iloc[0]) and 0 <= curve["AP"].iloc[1] <= 1
