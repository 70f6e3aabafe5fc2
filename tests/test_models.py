"""Models: shapes, gradients, attention paths, token layouts, paper parameter counts."""
from __future__ import annotations

import math

import pytest
import torch

from distilkit import PoseOutput
from distilkit.models import (TokenEncoder, build_model, decode_heatmaps, get_config,
                              list_models, sine_position_embedding)
from distilkit.models.deploy import prepare_for_inference
from distilkit.models.hrnet import HRNet
from distilkit.models.resnet import ResNet
from distilkit.profiles import CPU, SMOKE

BASES = ["distilpose-s", "distilpose-l", "teacher-hrw48", "teacher-stemnet",
         "deeppose-r50", "simplebaseline-r50"]
TOKEN_BASES = BASES[:4]
K = 17


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_registry_has_every_size_of_every_architecture():
    assert set(list_models()) == {b + s for b in BASES for s in ("", "-cpu", "-smoke")}


# Every preset of the registry, at the two sizes the tests can afford, as timm tests its
# registry: a preset added to ``list_models()`` is tested here without editing this file.
ARCHITECTURES = sorted(n for n in list_models() if not n.endswith(("-cpu", "-smoke")))
PRESETS = [profile.model_name(a) for profile in (SMOKE, CPU) for a in ARCHITECTURES]


def test_the_presets_tested_are_every_smoke_and_cpu_size_preset_of_the_registry():
    assert sorted(PRESETS) == sorted(n for n in list_models() if n.endswith(("-cpu", "-smoke")))


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_runs_forward_and_backward_with_the_output_shapes_of_its_kind(name):
    """A batch of 2 at the preset's input size: PoseOutput shapes by kind, finite values, and a
    scalar loss on the outputs that carry a gradient (regression: coords, scores, sigmas;
    heatmap: heatmaps; the decoded coords and scores of heatmap models are gradient-free)
    reaches every trainable parameter with a finite, non-zero gradient: no part of any
    preset is left unused by its outputs."""
    torch.manual_seed(0)
    model = build_model(name).train()
    cfg = model.config
    h, w = model.input_size
    hh, hw = model.heatmap_size
    assert model.name == name and (h, w) == cfg.input_size and (hh, hw) == (h // 4, w // 4)
    k = cfg.num_keypoints
    x = torch.randn(2, 3, h, w)
    out = model(x)
    assert isinstance(out, PoseOutput) and out.attentions is None
    assert out.coords.shape == (2, k, 2) and out.scores.shape == (2, k)
    assert ((out.coords >= -0.25 / hw) & (out.coords <= 1 + 0.25 / hw)).all()
    if model.kind == "regression":
        assert out.sigmas.shape == (2, k, 2) and (out.sigmas > 0).all()
        assert out.heatmaps is None
        graded = [out.coords, out.scores, out.sigmas]
    else:
        assert model.kind == "heatmap" and out.sigmas is None
        assert out.heatmaps.shape == (2, k, hh, hw)
        assert not out.coords.requires_grad and not out.scores.requires_grad
        graded = [out.heatmaps]
    if cfg.arch == "token":
        e = cfg.encoder
        grid = (hh // e.patch_size[0], hw // e.patch_size[1])
        assert model.encoder.grid == grid
        assert out.kpt_tokens.shape == (2, k, e.dim)
        assert out.vis_tokens.shape == (2, grid[0] * grid[1], e.dim)
    else:
        assert out.kpt_tokens is None and out.vis_tokens is None
    for t in (out.coords, out.scores, out.sigmas, out.heatmaps, out.kpt_tokens, out.vis_tokens):
        assert t is None or torch.isfinite(t).all()

    sum(t.square().mean() for t in graded).backward()
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert len(params) == len(list(model.parameters()))          # nothing frozen by default
    assert sorted(n for n, p in params.items() if p.grad is None) == []
    assert sorted(n for n, p in params.items() if not torch.isfinite(p.grad).all()) == []
    assert sorted(n for n, p in params.items() if not p.grad.any()) == []


@pytest.mark.parametrize("name", [SMOKE.model_name(a) for a in ARCHITECTURES
                                  if get_config(a).head == "regression"])
def test_a_coordinate_loss_trains_only_the_coordinate_outputs_of_a_regression_head(name):
    """The head's last Linear makes 5 numbers per keypoint (x, y, score, sigma_x, sigma_y):
    a loss on the coordinates leaves the score and sigma rows without gradient, exactly."""
    torch.manual_seed(0)
    model = build_model(name).train()
    model(torch.randn(2, 3, *model.input_size)).coords.square().mean().backward()
    fc = model.head.fc
    weight = fc.weight.grad.view(-1, 5, fc.in_features)            # (1 or K, 5, in)
    bias = fc.bias.grad.view(-1, 5)
    assert (weight[:, :2].abs().sum(-1) > 0).all() and (bias[:, :2] != 0).all()
    assert not weight[:, 2:].any() and not bias[:, 2:].any()


@pytest.mark.parametrize("name", [b + "-smoke" for b in TOKEN_BASES] + ["distilpose-s-cpu"])
def test_explicit_attention_matches_sdpa(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.randn(2, 3, *model.input_size)
    with torch.no_grad():
        fast = model(x)
        slow = model(x, return_attention=True)
    for field in ("kpt_tokens", "vis_tokens", "coords", "scores"):
        torch.testing.assert_close(getattr(slow, field), getattr(fast, field), atol=1e-5, rtol=1e-5)
    enc = model.encoder
    t = K + enc.num_patches
    assert len(slow.attentions) == enc.depth
    for a in slow.attentions:
        assert a.shape == (2, enc.heads, t, t)
        torch.testing.assert_close(a.sum(-1), torch.ones(2, enc.heads, t))


@pytest.mark.parametrize("suffix", ["", "-cpu", "-smoke"])
def test_teachers_and_students_share_token_layout(suffix):
    layouts = set()
    for base in TOKEN_BASES:
        cfg = get_config(base + suffix)
        e = cfg.encoder
        h, w = cfg.input_size
        grid = (h // 4 // e.patch_size[0], w // 4 // e.patch_size[1])
        layouts.add((e.dim, grid))
    assert len(layouts) == 1
    # and the built encoders agree (cheap at -smoke / -cpu sizes)
    if suffix:
        encs = [build_model(b + suffix).encoder for b in TOKEN_BASES]
        assert len({(e.dim, e.num_patches, e.grid) for e in encs}) == 1
        assert encs[0].num_patches == 48 and encs[0].grid == (8, 6)


def test_hrnet_teacher_has_more_capacity_than_stemnet_teacher():
    for suffix in ("", "-cpu"):
        hr = build_model("teacher-hrw48" + suffix)
        st = build_model("teacher-stemnet" + suffix)
        assert n_params(hr.backbone) > 5 * n_params(st.backbone)
        assert n_params(hr) > 2 * n_params(st)
        depth = lambda m: sum(isinstance(x, torch.nn.Conv2d) for x in m.modules())  # noqa: E731
        assert depth(hr.backbone) > 3 * depth(st.backbone)


@pytest.mark.parametrize("name, paper_m", [
    ("distilpose-s", 5.36), ("distilpose-l", 21.27), ("teacher-hrw48", 69.41),
    ("simplebaseline-r50", 34.0), ("teacher-stemnet", 6.6),
])
def test_paper_parameter_counts(name, paper_m):
    model = build_model(name)
    assert model.input_size == (256, 192) and model.heatmap_size == (64, 48)
    assert n_params(model) / 1e6 == pytest.approx(paper_m, rel=0.02)


def test_paper_architecture_details():
    s = build_model("distilpose-s")
    e = s.encoder
    assert (e.dim, e.depth, e.heads, e.num_patches, e.grid) == (192, 12, 8, 256, (16, 16))
    assert s.backbone.out_channels == 256 and s.encoder.linear_patch_weight().shape == (192, 256 * 12)
    assert s.encoder.layers[0].mlp.fc1.out_features == 576
    assert s.encoder.pos_embed.shape == (1, 256, 192)
    t = build_model("teacher-hrw48")
    hr = t.backbone
    assert isinstance(hr, HRNet) and [len(st) for st in hr.stages] == [1, 4, 3]
    assert hr.out_channels == 48
    lin = [m for m in t.head.mlp if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in lin] == [(192, 384), (384, 64 * 48)]
    r = ResNet()
    assert r.out_channels == 2048 and r.stride == 32


def test_distilpose_s_paper_forward():
    model = build_model("distilpose-s").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 256, 192))
    assert out.kpt_tokens.shape == (1, K, 192) and out.vis_tokens.shape == (1, 256, 192)
    assert out.coords.shape == (1, K, 2) and torch.isfinite(out.sigmas).all()


def test_hrnet_stage3_and_stage4_outputs():
    x = torch.randn(1, 3, 64, 48)
    for stages in (3, 4):
        net = HRNet(width=8, num_stages=stages, stem_width=8, stage1_planes=8,
                    stage1_blocks=1, num_modules=(1, 2, 1), num_blocks=1)
        assert net(x).shape == (1, 8, 16, 12)


def test_overrides():
    m = build_model("distilpose-s-smoke", depth=2, dim=64, heads=4)
    assert (m.encoder.depth, m.encoder.dim, m.encoder.heads) == (2, 64, 4)
    m = build_model("teacher-stemnet-smoke", input_size="128x96")
    assert m.input_size == (128, 96) and m.heatmap_size == (32, 24)
    assert m.encoder.num_patches == 16 * 12
    out = m(torch.randn(1, 3, 128, 96))
    assert out.heatmaps.shape == (1, K, 32, 24)
    m = build_model("teacher-hrw48-smoke", width=12, num_stages=3)
    assert m.backbone.out_channels == 12
    with pytest.raises(TypeError):
        build_model("distilpose-s-smoke", not_a_field=1)
    with pytest.raises(ValueError):
        build_model("no-such-model")


def test_patchify_order_and_keypoint_tokens_first():
    enc = TokenEncoder(in_channels=2, feature_size=(4, 4), patch_size=(2, 2), dim=8,
                       depth=1, heads=2, num_keypoints=3)
    feat = torch.arange(2 * 4 * 4, dtype=torch.float32).view(1, 2, 4, 4)
    patches = enc.patchify(feat)                       # (1, 4, 2*2*2)
    assert patches.shape == (1, 4, 8)
    expected = feat[0, :, 0:2, 2:4].permute(1, 2, 0).reshape(-1)  # patch (row 0, col 1)
    torch.testing.assert_close(patches[0, 1], expected)
    kpt, vis, _ = enc(feat)
    assert kpt.shape == (1, 3, 8) and vis.shape == (1, 4, 8)
    # the conv patch embedding is exactly a Linear on the flattened patches
    as_linear = torch.nn.functional.linear(patches, enc.linear_patch_weight(), enc.patch_embed.bias)
    as_conv = enc.patch_embed(feat).flatten(2).transpose(1, 2)
    torch.testing.assert_close(as_conv, as_linear)
    assert enc.keypoint_tokens.std().item() == pytest.approx(0.02, rel=0.6)


def test_sine_position_embedding():
    gh, gw, d = 4, 3, 16
    pe = sine_position_embedding((gh, gw), d)
    assert pe.shape == (gh * gw, d)
    grid = pe.view(gh, gw, d)
    # first half depends on the row only, second half on the column only
    assert torch.allclose(grid[:, :1, : d // 2].expand(gh, gw, d // 2), grid[..., : d // 2])
    assert torch.allclose(grid[:1, :, d // 2:].expand(gh, gw, d // 2), grid[..., d // 2:])
    # DETR formula at (row 1, col 2), channel 2 of y (sin, freq index 2) and 3 of x (cos)
    y = 2 / (gh + 1e-6) * 2 * math.pi
    x = 3 / (gw + 1e-6) * 2 * math.pi
    half = d // 2
    assert grid[1, 2, 2].item() == pytest.approx(math.sin(y / 1e4 ** (2 * 1 / half)), abs=1e-6)
    assert grid[1, 2, half + 3].item() == pytest.approx(math.cos(x / 1e4 ** (2 * 1 / half)), abs=1e-6)


def test_decode_heatmaps_quarter_shift():
    h, w = 16, 12
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    mu = torch.tensor([[5.3, 7.0], [2.0, 3.8]])   # (x, y): right of 5 and below 3 -> +0.25
    hm = torch.stack([torch.exp(-((xs - mx) ** 2 + (ys - my) ** 2) / 8) for mx, my in mu])
    coords, scores = decode_heatmaps(hm[None])
    torch.testing.assert_close(coords[0] * torch.tensor([w, h]),
                               torch.tensor([[5.25, 7.0], [2.0, 3.75]]))
    assert scores.shape == (1, 2) and (scores > 0.9).all()


def test_regression_head_ranges_and_initial_sigma():
    model = build_model("distilpose-s-smoke").eval()
    with torch.no_grad():
        out = model(torch.randn(3, 3, 64, 48))
    assert ((out.coords > 0) & (out.coords < 1)).all() and ((out.scores > 0) & (out.scores < 1)).all()
    assert out.sigmas.mean().item() == pytest.approx(2.0, abs=0.2)


@pytest.mark.parametrize("name", ["teacher-hrw48-smoke", "distilpose-s-smoke",
                                  "simplebaseline-r50-smoke", "deeppose-r50-smoke"])
def test_deploy_rewrite_keeps_predictions(name):
    torch.manual_seed(0)
    model = build_model(name)
    with torch.no_grad():  # non-trivial BN statistics, so the fold is really tested
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    model.eval()
    fast = prepare_for_inference(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        a, b = model(x), fast(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(b.coords, a.coords, atol=1e-4, rtol=1e-4)
    if a.heatmaps is not None:
        torch.testing.assert_close(b.heatmaps, a.heatmaps, atol=1e-4, rtol=1e-4)
