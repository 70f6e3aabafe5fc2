"""Complexity profiler: MAC conventions, the paper's numbers, rows and the CLI."""
from __future__ import annotations

import argparse
import csv

import pytest
import torch
from torch import nn

from distilkit.models import build_model
from distilkit.models.complexity import (add_cli, compare_with_paper, count_macs, count_params,
                                         load_paper_rows, profile_models)


def attention_gmacs(depth: int, tokens: int, dim: int) -> float:
    # per layer: Q K^T is heads * T * T * d_head = T^2 * D MACs, and A V the same again
    return 2 * depth * tokens ** 2 * dim / 1e9


@pytest.mark.parametrize("name", ["distilpose-s-smoke", "teacher-hrw48-smoke",
                                  "distilpose-l-cpu", "teacher-stemnet-cpu"])
def test_gmacs_exceed_paper_convention_by_the_attention_products(name):
    model = build_model(name)
    c = count_macs(model)
    enc = model.encoder
    expected = attention_gmacs(enc.depth, 17 + enc.num_patches, enc.dim)
    assert c["gmacs"] - c["gmacs_paper"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert c["gflops_mmcv"] > c["gmacs_paper"]


@pytest.mark.parametrize("name", ["simplebaseline-r50-smoke", "deeppose-r50-smoke",
                                  "simplebaseline-r50-cpu"])
def test_cnn_gmacs_equal_paper_convention(name):
    c = count_macs(build_model(name))
    assert c["gmacs"] == pytest.approx(c["gmacs_paper"], rel=1e-12)


class _Tiny(nn.Module):
    input_size = (8, 6)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU()
        self.deconv = nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, bias=False)
        self.fc = nn.Linear(2 * 16 * 12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.deconv(self.act(self.bn(self.conv(x)))).flatten(1))


def test_hand_counted_macs():
    c = count_macs(_Tiny())
    conv = 8 * 6 * 4 * 3 * 9          # output pixels * C_out * C_in * k*k
    deconv = 8 * 6 * 4 * 2 * 16       # input pixels * C_in * C_out * k*k
    fc = 2 * 16 * 12 * 5
    assert c["gmacs_paper"] * 1e9 == pytest.approx(conv + deconv + fc)
    assert c["gmacs"] * 1e9 == pytest.approx(conv + deconv + fc)
    bn, relu = 2 * 4 * 8 * 6, 4 * 8 * 6  # mmcv: 2 ops/element for affine BN, 1 for ReLU
    assert c["gflops_mmcv"] * 1e9 == pytest.approx(conv + deconv + fc + bn + relu)


@pytest.mark.parametrize("name, paper_gflops", [
    ("distilpose-s", 2.38), ("distilpose-l", 10.33), ("teacher-hrw48", 17.03),
])
def test_paper_gflops(name, paper_gflops):
    model = build_model(name)
    c = count_macs(model)
    assert c["gmacs_paper"] == pytest.approx(paper_gflops, rel=0.03)   # conv + linear MACs
    assert c["gflops_mmcv"] == pytest.approx(paper_gflops, rel=0.005)  # mmcv's full rule set
    enc = model.encoder
    assert c["gmacs"] - c["gmacs_paper"] == pytest.approx(
        attention_gmacs(enc.depth, 17 + enc.num_patches, enc.dim), rel=1e-9)


def test_profile_models_rows():
    rows = profile_models(["distilpose-s-smoke", "simplebaseline-r50-smoke"],
                          batch_sizes=(1, 2), repeats=1)
    assert [r["model"] for r in rows] == ["distilpose-s-smoke", "simplebaseline-r50-smoke"]
    for r in rows:
        model = build_model(r["model"])
        # the counts are the model's, not a placeholder
        assert r["params_m"] == pytest.approx(count_params(model) / 1e6)
        macs = count_macs(model)
        assert {k: r[k] for k in ("gmacs", "gmacs_paper", "gflops_mmcv")} == pytest.approx(
            {k: macs[k] for k in ("gmacs", "gmacs_paper", "gflops_mmcv")})
        # throughput is measured: a finite positive rate per batch size asked for
        assert {k for k in r if k.startswith("fps_")} == {"fps_b1", "fps_b2"}
        assert all(0 < r[k] < float("inf") for k in ("fps_b1", "fps_b2"))
        assert r["device"].startswith("cpu") and r["input_size"] == "64x48"


def test_paper_csv_and_comparison():
    rows = load_paper_rows()
    ours = {r["ours"]: r for r in rows if r["ours"]}
    assert set(ours) == {"distilpose-s", "distilpose-l", "teacher-hrw48", "teacher-stemnet",
                         "simplebaseline-r50", "deeppose-r50"}
    s = ours["distilpose-s"]
    assert (float(s["params_m"]), float(s["gflops"]), float(s["fps"])) == (5.36, 2.38, 40.2)
    assert float(ours["teacher-hrw48"]["params_m"]) == 69.41
    fake = {"model": "distilpose-s", "input_size": "256x192", "params_m": 5.364,
            "gmacs": 2.70, "gmacs_paper": 2.36, "gflops_mmcv": 2.38}
    (cmp,) = compare_with_paper([fake], rows)
    assert cmp["params_ratio"] == pytest.approx(5.364 / 5.36)
    assert cmp["gflops_mmcv_ratio"] == pytest.approx(1.0)
    assert compare_with_paper([{**fake, "input_size": "64x48"}], rows) == []


def test_cli(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers())
    out_csv = tmp_path / "profile.csv"
    args = parser.parse_args(["profile", "--models", "distilpose-s-smoke", "teacher-stemnet-smoke",
                              "--batch-sizes", "1", "2", "--repeats", "1", "--csv", str(out_csv)])
    assert args.func(args) == 0
    with open(out_csv, newline="") as f:
        written = list(csv.DictReader(f))
    assert [r["model"] for r in written] == ["distilpose-s-smoke", "teacher-stemnet-smoke"]
    assert {"params_m", "gmacs", "gmacs_paper", "fps_b1", "fps_b2", "device"} <= set(written[0])
    for r in written:                              # the model's counts, to the CSV's 4 decimals
        model = build_model(r["model"])
        assert r["params_m"] == f"{count_params(model) / 1e6:.4f}"
        assert r["gmacs"] == f"{count_macs(model)['gmacs']:.4f}"
    shown = capsys.readouterr()
    assert "distilpose-s-smoke" in shown.out
    # progress on stderr, a line before each stage of each model, in order
    stages = [line.split("s  ", 1)[1] for line in shown.err.splitlines()]
    assert stages == [f"[{i}/2] {name}: {stage}" for i, name in enumerate(
        ["distilpose-s-smoke", "teacher-stemnet-smoke"], 1) for stage in (
        "counting parameters and MACs at 64x48", "timing 4 forwards at batch 1", "timing 1 forwards at batch 2")]


@pytest.mark.parametrize("text, expected", [("64x48", (64, 48)), ("256X192", (256, 192)),
                                            ((32, 24), (32, 24)), (" 8 x 6 ", (8, 6))])
def test_sizes_are_written_height_first(text, expected):
    from distilkit.sizes import parse_hw

    assert parse_hw(text) == expected


@pytest.mark.parametrize("bad", ["64", "64x48x3", "axb", "0x48", (64,), 64])
def test_a_malformed_size_is_an_error_that_shows_it(bad):
    from distilkit.sizes import parse_hw

    with pytest.raises(ValueError, match="64x48|positive"):
        parse_hw(bad)
