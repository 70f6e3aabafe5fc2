"""The paper profile follows the authors' recipe: augmentation draws, evaluation cadence, and the
fair scoring of students whose score head no loss trained."""
from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from distilkit.data.transforms import (
    sample_augmentation,
    sample_scale_rotation,
)
from distilkit.engine import TrainConfig, fit
from distilkit.engine.evaluate import (
    Predictions,
    evaluate_predictions,
    kpt_score_source,
)
from distilkit.losses import LossConfig
from distilkit.models import build_model
from distilkit.profiles import PAPER, PROFILES, get_profile

N_DRAWS = 100_000


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_paper_students_draw_scale_and_rotation_as_hrnet_mmpose_0x():
    cfg = PAPER.augment
    assert cfg.hrnet_draws
    rng = np.random.default_rng(0)
    draws = np.array([sample_scale_rotation(rng, cfg) for _ in range(N_DRAWS)])
    scale, rot = draws[:, 0], draws[:, 1]
    # scale: clip(N * s + 1, 1 - s, 1 + s): P(|N| > 1) = 0.317 of draws sit on the bounds
    low, high = 1 - cfg.scale_factor, 1 + cfg.scale_factor
    assert scale.min() == pytest.approx(low) and scale.max() == pytest.approx(high)
    assert np.mean(np.isclose(scale, high)) == pytest.approx(1 - _phi(1), abs=0.005)
    assert np.mean(np.isclose(scale, low)) == pytest.approx(1 - _phi(1), abs=0.005)
    # rotation: 0 with p 1 - rot_prob, else clip(N * r, -2r, 2r): 4.6 % of those on the bounds
    rotated = rot[rot != 0]
    bound = 2 * cfg.rotation
    assert len(rotated) / N_DRAWS == pytest.approx(cfg.rot_prob, abs=0.01)
    assert rotated.min() == pytest.approx(-bound) and rotated.max() == pytest.approx(bound)
    assert np.mean(np.abs(rotated) == bound) == pytest.approx(2 * (1 - _phi(2)), abs=0.004)
    inside = rotated[np.abs(rotated) < bound]
    assert np.mean(inside) == pytest.approx(0, abs=0.5)
    # a normal clipped at 2 sigma: E[min(N^2, 4)] = (2 Phi(2) - 1) - 4 phi(2) + 4 (2 - 2 Phi(2))
    pdf2 = math.exp(-2) / math.sqrt(2 * math.pi)
    clipped_var = (2 * _phi(2) - 1) - 4 * pdf2 + 4 * 2 * (1 - _phi(2))
    assert np.std(rotated) == pytest.approx(cfg.rotation * math.sqrt(clipped_var), rel=0.01)
    assert np.mean(np.abs(inside) < cfg.rotation) == pytest.approx(
        (2 * _phi(1) - 1) / (2 * _phi(2) - 1), abs=0.01)


def test_the_kit_draws_stay_truncated_normals_for_the_cpu_profile():
    cfg = get_profile("cpu").augment
    assert not cfg.hrnet_draws
    rng = np.random.default_rng(1)
    draws = np.array([sample_scale_rotation(rng, cfg) for _ in range(20_000)])
    assert np.abs(draws[:, 0] - 1).max() <= cfg.scale_factor
    assert np.abs(draws[:, 1]).max() <= cfg.rotation
    assert not np.any(np.isclose(np.abs(draws[:, 0] - 1), cfg.scale_factor))   # truncated, not clipped


def _person(n_visible_upper: int, n_visible_lower: int):
    xy = np.stack([np.linspace(10, 50, 17), np.linspace(5, 95, 17)], axis=1)
    vis = np.zeros(17)
    vis[:n_visible_upper] = 2
    vis[11:11 + n_visible_lower] = 2
    return xy, vis


@pytest.mark.parametrize("upper, lower, half_rate, upper_share", [
    (11, 6, 0.3, _phi(0.5)),      # 17 visible: upper when N < 0.5, p 0.69
    (5, 3, 0.0, None),            # 8 visible: MMPose 0.x needs MORE than 8
    (7, 2, 0.3, 1.0),             # the lower half has only 2 joints: always the upper
])
def test_paper_half_body_follows_mmpose_0x(upper, lower, half_rate, upper_share):
    cfg = PAPER.augment
    xy, vis = _person(upper, lower)
    rng = np.random.default_rng(2)
    center, scale = np.array([30.0, 50.0]), np.array([60.0, 80.0])
    draws = [sample_augmentation(rng, cfg, center, scale, xy, vis, 0.75) for _ in range(20_000)]
    half = [d for d in draws if d.half_body]
    assert len(half) / len(draws) == pytest.approx(half_rate, abs=0.015)
    if upper_share is not None:
        upper_center_y = xy[:11][vis[:11] > 0, 1].mean()
        share = np.mean([np.isclose(d.center[1], upper_center_y) for d in half])
        assert share == pytest.approx(upper_share, abs=0.015)
    assert np.mean([d.flip for d in draws]) == pytest.approx(0.5, abs=0.015)


TEACHER, STUDENT = LossConfig(reg=False, heatmap=True), LossConfig(kt=True, vt=True, sh=True, cs=True)


@pytest.mark.parametrize("profile, losses, dark", [
    ("paper", TEACHER, True), ("paper", STUDENT, False), ("cpu", TEACHER, False), ("smoke", TEACHER, False)])
def test_paper_heatmap_teachers_are_evaluated_and_selected_with_dark(profile, losses, dark):
    config = TrainConfig(out_dir=".", model="teacher-hrw48", profile=profile, losses=losses,
                         data_root="/coco" if profile == "paper" else None)
    assert config.eval_dark() is dark
    assert ("dark" in config._identity() and config._identity()["dark"]) is dark   # cpu hashes kept


def test_a_profile_that_selects_teachers_with_dark_scores_every_evaluation_with_it(
        tmp_path, smoke_root, monkeypatch):
    from distilkit.engine import trainer

    monkeypatch.setitem(PROFILES, "smoke", replace(PROFILES["smoke"], dark_teacher_selection=True))
    calls, real = [], trainer.evaluate_model
    monkeypatch.setattr(trainer, "evaluate_model", lambda *a, **kw: calls.append(kw["dark"]) or real(*a, **kw))
    final = fit(TrainConfig(out_dir=str(tmp_path), model="teacher-hrw48", profile="smoke", losses=TEACHER,
                            data_root=str(smoke_root), epochs=1, max_train_instances=32, progress=False))
    assert calls == [True]                    # one evaluation, with DARK; no second pass for AP_dark
    assert final["AP_dark"] == final["AP"]


@pytest.mark.parametrize("model, losses, expected", [
    ("distilpose-s-smoke", LossConfig(), "unit"),
    ("distilpose-s-smoke", LossConfig(kt=True, vt=True, sh=True), "unit"),
    ("distilpose-s-smoke", LossConfig(cs=True), "model"),
    ("deeppose-r50-smoke", LossConfig(sh=True, cs=True), "model"),
    ("teacher-hrw48-smoke", LossConfig(reg=False, heatmap=True), "model"),
])
def test_a_score_head_no_loss_trained_is_not_used_for_ranking(model, losses, expected):
    assert kpt_score_source(build_model(model), losses) == expected


def test_unit_scoring_ranks_instances_by_their_box_score(tmp_path, smoke_root):
    """With unit keypoint scores Eq. 3 leaves each instance's score at its box score."""
    ann = smoke_root / "annotations" / "person_keypoints_val2017.json"
    images = json.loads(ann.read_text())["images"][:3]
    n = len(images)
    rng = np.random.default_rng(3)
    pred = Predictions(coords=rng.uniform(0, 48, (n, 17, 2)), scores=rng.uniform(0, 1, (n, 17)),
                       centers=np.tile([[100.0, 100.0]], (n, 1)), scales=np.tile([[90.0, 120.0]], (n, 1)),
                       bbox_scores=np.array([0.9, 0.5, 0.7])[:n],
                       image_ids=np.array([im["id"] for im in images]), index=np.arange(n))
    for mode in ("unit", "model"):
        evaluate_predictions(pred, ann, input_size=(64, 48), results_file=tmp_path / f"{mode}.json",
                             kpt_scores=mode)
    unit = {r["image_id"]: r["score"] for r in json.loads((tmp_path / "unit.json").read_text())}
    model = {r["image_id"]: r["score"] for r in json.loads((tmp_path / "model.json").read_text())}
    assert [unit[i] for i in pred.image_ids] == pytest.approx(list(pred.bbox_scores))
    assert [model[i] for i in pred.image_ids] != pytest.approx(list(pred.bbox_scores))
