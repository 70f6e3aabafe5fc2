"""Model specs (``HEAD:timm/BACKBONE``): every head on two small timm backbones builds, trains a
step and evaluates; a timm teacher distils into a timm student through ``distilkit train``;
typos and size mismatches are errors that say what is wrong. Smoke sizes (64x48 input)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

from distilkit.distill import check_compatible
from distilkit.engine import TrainConfig
from distilkit.engine.evaluate import predict_batch
from distilkit.losses import LossConfig, compute_losses
from distilkit.models import HEADS, SpecConfig, build_model, get_config, parse_spec
from distilkit.weights import load_backbone

REPO = Path(__file__).resolve().parents[1]
BACKBONES = ("resnet10t", "mobilenetv3_small_050")
SPEC_HEADS = ("deeppose", "deeppose-flatten", "simplebaseline", "distilpose", "tokenpose")


def _batch(model, n: int = 2) -> dict:
    torch.manual_seed(0)
    h, w = model.input_size
    hh, hw = model.heatmap_size
    return {"image": torch.randn(n, 3, h, w), "coords": torch.rand(n, 17, 2),
            "coord_weights": torch.ones(n, 17), "heatmaps": torch.rand(n, 17, hh, hw) * 0.1,
            "heatmap_weights": torch.ones(n, 17)}


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("head", SPEC_HEADS)
def test_every_head_builds_trains_a_step_and_evaluates(head, backbone):
    model = build_model(f"{head}:timm/{backbone}-smoke")
    assert isinstance(model.config, SpecConfig) and model.name == f"{head}:timm/{backbone}-smoke"
    assert model.input_size == (64, 48) and model.heatmap_size == (16, 12)
    assert model.kind == ("regression" if head in ("deeppose", "deeppose-flatten", "distilpose") else "heatmap")
    assert isinstance(model.backbone, torch.nn.Module)
    assert model.feature_level.stride == (4 if head in ("distilpose", "tokenpose") else 16)

    batch = _batch(model)
    losses = LossConfig() if model.kind == "regression" else LossConfig(reg=False, heatmap=True)
    model.train()
    out = model(batch["image"])
    loss = sum(compute_losses(out, batch, losses).values())
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient (a layer the head never reads?)"
        assert torch.isfinite(p.grad).all(), name

    model.eval()
    coords, scores = predict_batch(model, batch["image"])
    assert coords.shape == (2, 17, 2) and scores.shape == (2, 17)
    assert (coords[..., 0] >= -1).all() and (coords[..., 0] <= 49).all()
    assert (coords[..., 1] >= -1).all() and (coords[..., 1] <= 65).all()


def test_spec_syntax_sizes_and_config_identity():
    assert parse_spec("deeppose-flatten:timm/resnet18-cpu").pool == "flatten"
    assert parse_spec("deeppose:timm/resnet18").pool == parse_spec("deeppose-gap:timm/resnet18").pool == "gap"
    assert set(HEADS) >= set(SPEC_HEADS)
    cfg = TrainConfig(out_dir=".", model="deeppose:timm/resnet10t", profile="smoke")
    assert cfg.model_name() == "deeppose:timm/resnet10t-smoke"      # the profile's suffix, as presets
    gap, flat = (TrainConfig(out_dir=".", model=m, profile="smoke").hash()
                 for m in ("deeppose:timm/resnet10t", "deeppose-flatten:timm/resnet10t"))
    assert gap == cfg.hash() and gap != flat
    spec = get_config("distilpose:timm/resnet10t-cpu")
    hash(spec)                                                      # frozen: hashable
    preset = get_config("distilpose-s-cpu")
    assert spec.encoder == preset.encoder and spec.input_size == preset.input_size
    assert get_config("deeppose:timm/resnet18").input_size == (256, 192)
    assert get_config("deeppose:timm/resnet18").resolved_feature_stride == 32
    assert get_config("deeppose:timm/resnet18-cpu").resolved_feature_stride == 16
    flat_head = build_model("deeppose-flatten:timm/resnet10t-smoke").head
    assert flat_head.fc.in_features == 256 * 4 * 3                 # ResNet stage 3 on a 4x3 grid
    assert build_model("deeppose:timm/resnet10t-smoke", input_size="128x96").heatmap_size == (32, 24)


@pytest.mark.parametrize("spec, named, suggested", [
    ("deepose:timm/resnet10t", "deepose", "deeppose"),
    ("deeppose:timm/resnet81", "resnet81", "resnet18"),
    ("tokenpose:timm/mobilenetv3_smal_050-smoke", "mobilenetv3_smal_050", "mobilenetv3_small_050"),
])
def test_a_typo_is_named_with_suggestions(spec, named, suggested):
    with pytest.raises(ValueError) as err:
        build_model(spec)
    assert named in str(err.value) and suggested in str(err.value)
    if "deepose:" in spec:
        assert all(h in str(err.value) for h in SPEC_HEADS)     # the heads are listed


def test_malformed_specs_say_how_to_write_one():
    with pytest.raises(ValueError, match="timm/NAME"):
        get_config("deeppose:resnet18")
    with pytest.raises(ValueError, match="spec HEAD:timm/BACKBONE"):
        get_config("no-such-model")


def test_heatmap_size_mismatch_names_both_sizes():
    teacher = build_model("simplebaseline:timm/resnet10t-smoke")
    student = build_model("deeppose:timm/resnet10t-smoke", heatmap_size=(32, 24))
    with pytest.raises(ValueError) as err:
        check_compatible(student, teacher, LossConfig(sh=True, cs=True))
    text = str(err.value)
    assert "16x12" in text and "32x24" in text and teacher.name in text and student.name in text
    check_compatible(build_model("deeppose:timm/mobilenetv3_small_050-smoke"), teacher,
                     LossConfig(sh=True, cs=True))                  # any pair of one size: fine


def test_token_layouts_that_differ_are_a_plain_error():
    teacher = build_model("tokenpose:timm/resnet10t-smoke")           # D 32
    student = build_model("distilpose:timm/resnet10t-smoke", dim=48)
    with pytest.raises(ValueError, match="token layouts differ.*width 48.*width 32.*drop kt,vt"):
        check_compatible(student, teacher, LossConfig(kt=True, vt=True))
    check_compatible(build_model("distilpose:timm/mobilenetv3_small_050-smoke"), teacher,
                     LossConfig(kt=True, vt=True, sh=True, cs=True))


@pytest.mark.parametrize("name", ["resnet10t", "convnext_atto"])
def test_a_local_timm_state_dict_loads_by_name(name, tmp_path):
    """Full-model names load; the classifier and the layers after the head's map are unused.
    ConvNeXt is one of the families timm renames under features_only (stages.0 -> stages_0)."""
    full = timm.create_model(name, pretrained=False).eval()
    path = tmp_path / f"{name}.pth"
    torch.save(full.state_dict(), path)
    model = build_model(f"deeppose:timm/{name}-smoke").eval()
    report = load_backbone(model, path, verbose=False)
    assert report.missing == []
    assert {k.split(".")[0] for k in report.unused} >= {"head" if name.startswith("convnext") else "fc"}
    x = torch.randn(1, 3, 64, 48)
    ref = full.forward_intermediates(x, indices=[model.feature_level.index], intermediates_only=True)[0]
    assert torch.allclose(model.forward_features(x), ref, atol=1e-5)
    clone = build_model(f"deeppose:timm/{name}-smoke")
    clone.load_state_dict(model.state_dict())                      # kit checkpoints round-trip
    assert all(torch.equal(a, b) for a, b in zip(clone.state_dict().values(), model.state_dict().values()))


def _train(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "distilkit.cli", "train", "--profile", "smoke", "--epochs", "1",
           "--max-train-instances", "32", "--max-val-instances", "16", "--no-progress", *args]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_a_timm_teacher_distils_into_a_timm_student_through_the_cli(smoke_root, tmp_path):
    weights = tmp_path / "mobilenetv3_small_050.pth"
    torch.save(timm.create_model("mobilenetv3_small_050", pretrained=False).state_dict(), weights)
    _train("--model", "simplebaseline:timm/resnet10t", "--data-root", str(smoke_root),
           "--out", str(tmp_path / "teacher"))
    done = _train("--model", "deeppose-flatten:timm/mobilenetv3_small_050", "--losses", "reg,sh,cs",
                  "--teacher", str(tmp_path / "teacher" / "best.pt"), "--init-backbone", str(weights),
                  "--data-root", str(smoke_root), "--out", str(tmp_path / "student"))
    assert "missing 0" in done.stdout and "classifier" in done.stdout    # the load report
    final = json.loads((tmp_path / "student" / "final_metrics.json").read_text())
    assert final["model"] == "deeppose-flatten:timm/mobilenetv3_small_050-smoke"
    assert math.isfinite(final["err_px"]) and final["kpt_score"] == "model"
    header = (tmp_path / "student" / "metrics.csv").read_text().splitlines()[0]
    assert "train_sh" in header and "train_cs" in header
    from distilkit import load_model
    student = load_model(tmp_path / "student" / "best.pt")          # rebuilt from the spec
    assert student.name == final["model"] and student.kind == "regression"
