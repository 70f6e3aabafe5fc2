"""`distilkit convert --from distilpose-mmpose`: the authors' checkpoints reproduce their outputs.

The authors' files are not downloadable here, so each test builds one: a re-creation of their
module naming (tests/authors_reference.py) with random weights, saved as MMPose 0.x saves
(`{'meta', 'state_dict'}`), converted, and compared output for output.
"""
from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from authors_reference import authors_like
from distilkit import load_model
from distilkit.convert import convert_authors_checkpoint
from distilkit.files import UnsafeCheckpointError, atomic_torch_save
from distilkit.models import build_model
from distilkit.weights import WeightsError


def _authors_file(tmp_path, preset: str, meta: dict | None = None, *, numpy_1x: bool | None = None):
    """Their file as MMPose 0.x wrote it: ``numpy_1x`` (the default for mmcv's own meta) names
    numpy's globals as numpy 1.x did (their files were written under numpy 1.22), not as this
    numpy 2 would."""
    if numpy_1x is None:
        numpy_1x = meta is None
    reference = authors_like(build_model(preset))
    path = tmp_path / "authors.pth"
    meta = {"mmcv_version": "1.3.8", "epoch": 300,
            "hook_msgs": {"best_score": np.float64(0.716), "last_ap": np.array([0.70, 0.716])}} \
        if meta is None else meta
    torch.save({"meta": meta, "state_dict": reference.state_dict()}, path)
    if numpy_1x:
        _rename_numpy_globals_as_numpy_1x(path)
    return reference, path


def _rename_numpy_globals_as_numpy_1x(path) -> None:
    """numpy 2's ``numpy._core.multiarray`` -> numpy 1.x's ``numpy.core.multiarray`` in the
    file's pickle (protocol 2 names a global as text ending in a newline, so no length changes)."""
    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as out:
        for info, data in entries:
            if info.filename.endswith("/data.pkl"):
                assert b"cnumpy._core.multiarray\n" in data
                data = data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
            out.writestr(info, data)
    names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    assert "numpy.core.multiarray.scalar" in names and not any("numpy._core" in n for n in names)


@pytest.mark.parametrize("numpy_1x", [True, False], ids=["numpy-1.x-file", "numpy-2-file"])
def test_their_meta_loads_under_the_numpy_that_wrote_it(numpy_1x, tmp_path):
    _, path = _authors_file(tmp_path, "distilpose-s-smoke", numpy_1x=numpy_1x)
    assert convert_authors_checkpoint(path, "distilpose-s-smoke")["model_name"] == "distilpose-s-smoke"


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


@pytest.mark.parametrize("poison", [float("nan"), float("inf")], ids=["NaN", "inf"])
def test_non_finite_weights_convert_with_one_warning_naming_file_and_tensors(tmp_path, caplog, poison):
    _, path = _authors_file(tmp_path, "distilpose-s-smoke")
    state = torch.load(path, weights_only=False)
    bad = ["backbone.conv1.weight", "keypoint_head.tokenhead.keypoint_token"]
    for key in bad:
        state["state_dict"][key] = torch.full_like(state["state_dict"][key], poison)
    torch.save(state, path)
    with caplog.at_level("WARNING", logger="distilkit.convert"):
        ckpt = convert_authors_checkpoint(path, "distilpose-s-smoke")
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and str(path) in warnings[0] and all(k in warnings[0] for k in bad), warnings
    converted = ckpt["state_dict"]["encoder.keypoint_tokens"]                    # converted as it is
    assert not torch.isfinite(converted).any()


def test_finite_weights_convert_without_a_warning(tmp_path, caplog):
    _, path = _authors_file(tmp_path, "distilpose-s-smoke")
    with caplog.at_level("WARNING", logger="distilkit.convert"):
        convert_authors_checkpoint(path, "distilpose-s-smoke")
    assert caplog.records == []


class _NotPlainData:
    pass


def test_a_meta_that_needs_more_than_plain_types_is_refused_naming_the_global(tmp_path):
    _, path = _authors_file(tmp_path, "distilpose-s-smoke", numpy_1x=True,
                            meta={"something": _NotPlainData(), "best_score": np.float64(0.7)})
    with pytest.raises(UnsafeCheckpointError, match=f"{path}.*_NotPlainData") as refused:
        convert_authors_checkpoint(path, "distilpose-s-smoke")
    assert "numpy" not in str(refused.value)        # the allowed numpy 1.x names are not blamed


def test_the_convert_command_writes_a_checkpoint_eval_can_read(tmp_path):
    _, path = _authors_file(tmp_path, "distilpose-s-smoke")
    out = tmp_path / "converted.pt"
    run = subprocess.run([sys.executable, "-m", "distilkit.cli", "convert", "--from", "distilpose-mmpose",
                          str(path), "--model", "distilpose-s-smoke", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "dropped ['keypoint_head.tokenhead.pos_embedding']" in run.stdout
    assert load_model(out).kind == "regression"


@pytest.mark.parametrize("preset", ["distilpose-s", "distilpose-l", "teacher-stemnet", "teacher-hrw48"])
def test_their_four_models_at_paper_size_convert_and_compute_what_theirs_compute(preset, tmp_path):
    """The four released models at the paper's size, in files whose pickles name numpy 1.x's
    globals, against the re-creation of their modules (HRNet-W48 as MMPose's, StemNet, heads)."""
    reference, path = _authors_file(tmp_path, preset)
    ckpt = convert_authors_checkpoint(path, preset)
    assert ckpt["model_name"] == preset
    model = build_model(preset, **ckpt["model_overrides"]).eval()
    model.load_state_dict(ckpt["state_dict"])
    images = torch.randn(1, 3, 256, 192, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out, expected = model(images), reference(images)
    if model.kind == "regression":
        pairs = zip((out.coords, out.scores, out.sigmas), expected)
    else:
        pairs = [(out.heatmaps.flatten(2), expected)]
    for ours, theirs in pairs:
        assert theirs.abs().max() > 1e-3                    # a live signal, not a vanished one
        assert float((ours - theirs).abs().max() / theirs.abs().max()) < 1e-4
