"""`distilkit convert --from distilpose-mmpose`: the authors' checkpoints reproduce their outputs.

The authors' files are not downloadable here, so each test builds one: a re-creation of their
module naming (tests/authors_reference.py) with random weights, saved as MMPose 0.x saves
(`{'meta', 'state_dict'}`), converted, and compared output for output.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from authors_reference import authors_like
from distilkit import load_model
from distilkit.convert import convert_authors_checkpoint
from distilkit.engine.checkpoint import UnsafeCheckpointError, atomic_torch_save
from distilkit.models import build_model
from distilkit.weights import WeightsError


def _authors_file(tmp_path, preset: str, meta: dict | None = None):
    reference = authors_like(build_model(preset))
    path = tmp_path / "authors.pth"
    meta = {"mmcv_version": "1.3.8", "epoch": 300, "hook_msgs": {"best_score": np.float64(0.716)}} \
        if meta is None else meta
    torch.save({"meta": meta, "state_dict": reference.state_dict()}, path)
    return reference, path


@pytest.mark.parametrize("preset", ["distilpose-s-smoke", "teacher-stemnet-smoke"])
def test_a_converted_checkpoint_reproduces_the_authors_outputs(preset, tmp_path):
    reference, path = _authors_file(tmp_path, preset)
    ckpt = convert_authors_checkpoint(path, preset)
    assert ckpt["dropped_keys"] == [k for k in reference.state_dict() if k.endswith("pos_embedding")]
    atomic_torch_save(ckpt, tmp_path / "kit.pt")
    model = load_model(tmp_path / "kit.pt")                 # the head option travels in the file
    images = torch.randn(2, 3, *model.input_size)
    with torch.no_grad():
        out, expected = model(images), reference(images)
    if model.kind == "regression":
        coords, scores, sigmas = expected
        assert torch.allclose(out.coords, coords, atol=1e-5)
        assert torch.allclose(out.scores, scores, atol=1e-5)      # raw, as theirs: no sigmoid
        assert torch.allclose(out.sigmas, sigmas, atol=1e-5)      # plain softplus: no offset
        assert (out.scores < 0).any() or (out.scores > 1).any()   # the raw score really is raw
    else:
        assert torch.allclose(out.heatmaps.flatten(2), expected, atol=1e-5)


def test_a_file_with_keys_of_another_model_is_refused_naming_them(tmp_path):
    _, path = _authors_file(tmp_path, "distilpose-s-smoke")
    state = torch.load(path, weights_only=False)
    state["state_dict"]["keypoint_head.tokenhead.extra_layer.weight"] = torch.zeros(3)
    torch.save(state, path)
    with pytest.raises(WeightsError, match="extra_layer"):
        convert_authors_checkpoint(path, "distilpose-s-smoke")


class _NotPlainData:
    pass


def test_a_meta_that_needs_more_than_plain_types_is_refused_naming_the_global(tmp_path):
    _, path = _authors_file(tmp_path, "distilpose-s-smoke", meta={"something": _NotPlainData()})
    with pytest.raises(UnsafeCheckpointError, match=f"{path}.*_NotPlainData"):
        convert_authors_checkpoint(path, "distilpose-s-smoke")


def test_the_convert_command_writes_a_checkpoint_eval_can_read(tmp_path):
    _, path = _authors_file(tmp_path, "distilpose-s-smoke")
    out = tmp_path / "converted.pt"
    run = subprocess.run([sys.executable, "-m", "distilkit.cli", "convert", "--from", "distilpose-mmpose",
                          str(path), "--model", "distilpose-s-smoke", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "dropped ['keypoint_head.tokenhead.pos_embedding']" in run.stdout
    assert load_model(out).kind == "regression"
