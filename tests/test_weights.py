"""Pretrained backbones from local files: timm's HRNet, torchvision's ResNet-50 and a trained
teacher load into the kit's backbones with no missing key, and compute what the source computes."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import timm
import torch
import torchvision
from torch import nn

from distilkit.engine import TrainConfig
from distilkit.models import build_model
from distilkit.models.checkpoint import load_checkpoint
from distilkit.weights import WeightsError, load_backbone

INPUT = (128, 96)   # divisible by HRNet's and ResNet's stride 32


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture(scope="module")
def timm_hrnet_w48(tmp_path_factory):
    torch.manual_seed(0)
    net = timm.create_model("hrnet_w48", pretrained=False).eval()
    path = tmp_path_factory.mktemp("weights") / "hrnet_w48.pth"
    torch.save(net.state_dict(), path)
    return net, path


def _timm_stem(net, x):
    return net.act2(net.bn2(net.conv2(net.act1(net.bn1(net.conv1(x))))))


def _timm_three_stages(net, x):
    x = net.layer1(_timm_stem(net, x))
    ys = net.stage2([t(x) for t in net.transition1])
    xs = [ys[i] if isinstance(t, nn.Identity) else t(ys[-1]) for i, t in enumerate(net.transition2)]
    return net.stage3(xs)[0]


@torch.no_grad()
def test_timm_hrnet_w48_loads_into_the_teacher_and_computes_the_same(timm_hrnet_w48):
    net, path = timm_hrnet_w48
    model = build_model("teacher-hrw48").eval()
    report = load_backbone(model, path, verbose=False)
    assert report.missing == [] and len(report.loaded) == len(model.backbone.state_dict())
    assert {"classifier.weight", "classifier.bias"} <= set(report.unused)
    assert all(k.startswith(("classifier", "incre_modules", "downsamp_modules", "final_layer", "stage4.2.fuse_layers"))
               for k in report.unused)
    x = torch.randn(1, 3, *INPUT)
    assert _relative_error(model.backbone(x), net.stages(_timm_stem(net, x))[0]) < 1e-5


@torch.no_grad()
def test_timm_hrnet_w48_gives_distilpose_l_its_first_three_stages(timm_hrnet_w48):
    net, path = timm_hrnet_w48
    model = build_model("distilpose-l").eval()
    report = load_backbone(model, path, verbose=False)
    assert report.missing == []
    x = torch.randn(1, 3, *INPUT)
    assert _relative_error(model.backbone(x), _timm_three_stages(net, x)) < 1e-5


@pytest.mark.parametrize("preset", ["deeppose-r50", "simplebaseline-r50"])
@torch.no_grad()
def test_torchvision_resnet50_loads_with_only_the_classifier_unused(preset, tmp_path):
    torch.manual_seed(0)
    net = torchvision.models.resnet50(weights=None).eval()
    torch.save(net.state_dict(), tmp_path / "resnet50.pth")
    model = build_model(preset).eval()
    report = load_backbone(model, tmp_path / "resnet50.pth", verbose=False)
    assert report.missing == [] and sorted(report.unused) == ["fc.bias", "fc.weight"]
    x = torch.randn(1, 3, *INPUT)
    features = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2,
                             net.layer3, net.layer4)
    assert _relative_error(model.backbone(x), features(x)) < 1e-5


def test_a_trained_teacher_starts_distilpose_l_from_its_first_three_stages(smoke_teacher):
    model = build_model("distilpose-l-smoke")
    report = load_backbone(model, smoke_teacher, verbose=False)
    assert report.missing == []
    teacher = load_checkpoint(smoke_teacher)["state_dict"]
    for name, value in model.backbone.state_dict().items():
        assert torch.equal(value, teacher["backbone." + name]), name
    # the teacher's fourth stage and the branches only it fuses are what is left over
    assert report.unused and all(k.startswith(("stages.2.", "transitions.2.", "stages.1.")) for k in report.unused)


def test_weights_of_another_width_are_an_error_naming_file_and_shapes(tmp_path):
    torch.save(timm.create_model("hrnet_w32", pretrained=False).state_dict(), tmp_path / "w32.pth")
    with pytest.raises(WeightsError, match=r"w32.pth: .* has shape \(32, .*\), the backbone's .*\(48,"):
        load_backbone(build_model("teacher-hrw48"), tmp_path / "w32.pth", verbose=False)


def test_train_init_backbone_loads_prints_and_changes_the_config_hash(tmp_path, smoke_root, smoke_teacher):
    out = tmp_path / "l"
    run = subprocess.run([sys.executable, "-m", "distilkit.cli", "train", "--profile", "smoke",
                          "--model", "distilpose-l", "--epochs", "1", "--data-root", str(smoke_root),
                          "--init-backbone", str(smoke_teacher), "--no-progress", "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert f"{smoke_teacher} (kit checkpoint of teacher-hrw48-smoke): loaded" in run.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["init_backbone"] == str(smoke_teacher)
    plain = TrainConfig(out_dir=".", model="distilpose-l", profile="smoke", epochs=1, data_root=str(smoke_root))
    assert config["config_hash"] != plain.hash()
