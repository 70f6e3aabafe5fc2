"""ONNX export (``distilkit.export``, ``distilkit export``): every model kind exports with a
dynamic batch axis, onnxruntime matches PyTorch to 1e-4, BN folding keeps the function.

Smoke-size models with random weights whose BatchNorm statistics and head weights are spread
out (``_spread``), so outputs vary from input to input and folding is not an identity: a check
that passes on near-constant outputs would prove nothing.
"""
from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
import torch

from distilkit.cli import main as cli_main
from distilkit.engine.config import TrainConfig
from distilkit.export import ATOL, OnnxMismatchError, check_onnx, export_onnx, onnx_session
from distilkit.files import atomic_torch_save
from distilkit.models import build_model
from distilkit.predict import load_checkpoint_model

K = 17
MODELS = {  # preset -> (kind, base name for the config)
    "distilpose-s-smoke": ("regression", "distilpose-s"),
    "distilpose-l-smoke": ("regression", "distilpose-l"),
    "teacher-hrw48-smoke": ("heatmap", "teacher-hrw48"),
    "deeppose-r50-smoke": ("regression", "deeppose-r50"),
    "simplebaseline-r50-smoke": ("heatmap", "simplebaseline-r50"),
}


@torch.no_grad()
def _spread(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random BN statistics and affine terms, and heads large enough that outputs vary."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
            m.weight.copy_(0.5 + torch.rand(c, generator=gen))
            m.bias.copy_(0.1 * torch.randn(c, generator=gen))
    for name, p in model.named_parameters():
        if name.startswith(("head.", "encoder.patch_embed.")) and p.dim() > 1:
            p.copy_(torch.randn(p.shape, generator=gen) / p[0].numel() ** 0.5)   # unit gain
    return model.eval()


def _input_dims(path) -> list:
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    return [d.dim_param or d.dim_value for d in dims]


@pytest.mark.parametrize("fold_bn", [False, True], ids=["as-built", "bn-folded"])
@pytest.mark.parametrize("preset", list(MODELS))
def test_export_matches_pytorch_at_two_batch_sizes(preset, fold_bn, tmp_path):
    model = _spread(build_model(preset))
    path = tmp_path / f"{preset}.onnx"
    info = export_onnx(model, path, fold_bn=fold_bn)
    kind = MODELS[preset][0]
    expected_outputs = ("heatmaps",) if kind == "heatmap" else ("coords", "scores", "sigmas")
    assert info["outputs"] == expected_outputs
    h, w = model.input_size
    assert _input_dims(path) == ["batch", 3, h, w]

    report = check_onnx(path, model)                     # batch 1 and 3, against unfolded weights
    assert report.batch_sizes == (1, 3)
    assert set(report.max_abs_diff) == set(expected_outputs)
    assert 0.0 <= report.largest <= ATOL

    session = onnx_session(path)
    images = torch.randn(5, 3, h, w, generator=torch.Generator().manual_seed(1))
    outs = dict(zip([o.name for o in session.get_outputs()],
                    session.run(None, {"images": images.numpy()})))
    if kind == "heatmap":
        hh, hw = model.heatmap_size
        assert outs["heatmaps"].shape == (5, K, hh, hw)
        varying = outs["heatmaps"]
    else:
        assert outs["coords"].shape == (5, K, 2) and outs["scores"].shape == (5, K)
        assert outs["sigmas"].shape == (5, K, 2)
        assert ((outs["coords"] >= 0) & (outs["coords"] <= 1)).all()
        varying = outs["coords"]
    # the comparison means something: outputs differ between inputs by far more than ATOL
    assert float(np.std(varying, axis=0).max()) > 30 * ATOL

    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    if fold_bn:
        assert info["bn_folds"] > 0 and "BatchNormalization" not in ops
    assert "ArgMax" not in ops                           # heatmap decoding stays out of the graph


def test_the_check_catches_a_graph_of_other_weights(tmp_path):
    model = _spread(build_model("distilpose-s-smoke"))
    export_onnx(model, tmp_path / "s.onnx")
    other = _spread(build_model("distilpose-s-smoke"), seed=1)
    with pytest.raises(OnnxMismatchError, match="s.onnx"):
        check_onnx(tmp_path / "s.onnx", other)


def _kit_checkpoint(path, preset: str) -> None:
    model = _spread(build_model(preset))
    atomic_torch_save({"model_name": preset, "model_overrides": {}, "state_dict": model.state_dict(),
                       "config": TrainConfig(out_dir=".", model=MODELS[preset][1],
                                             profile="smoke").to_dict()}, path)


@pytest.mark.parametrize("preset", ["distilpose-s-smoke", "teacher-hrw48-smoke"])
def test_export_command_writes_and_checks(preset, tmp_path, capsys):
    ckpt, out = tmp_path / "model.pt", tmp_path / "model.onnx"
    _kit_checkpoint(ckpt, preset)
    assert cli_main(["export", "--checkpoint", str(ckpt), "--onnx", str(out), "--fold-bn",
                     "--check"]) == 0
    printed = capsys.readouterr().out
    largest = float(re.search(r"largest \|difference\| ([0-9.e+-]+)", printed).group(1))
    assert 0.0 <= largest <= ATOL
    assert _input_dims(out)[0] == "batch"
    check_onnx(out, load_checkpoint_model(ckpt)[0])      # the checkpoint's weights are in the file


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04garbage"],
                         ids=["empty", "garbage", "broken zip"])
def test_export_of_a_file_that_is_no_checkpoint_is_one_error_line(content, tmp_path, capsys):
    ckpt = tmp_path / "x.pt"
    ckpt.write_bytes(content)
    assert cli_main(["export", "--checkpoint", str(ckpt), "--onnx", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(ckpt) in err[0]
    assert not (tmp_path / "x.onnx").exists()
