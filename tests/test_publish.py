"""Published models: compact fp16 files that rebuild the trained models, a manifest whose sha256
guards them, a size limit, and clear errors for a tampered file or a missing role."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from distilkit.experiments.report_previous import read_rows
from distilkit.files import load_weights_only
from distilkit.models.checkpoint import load_checkpoint, load_model_from_checkpoint
from distilkit.publish import (MANIFEST, MAX_TOTAL_BYTES, PublishError, publish_checkpoints,
                               publish_models, read_manifest, verified_models)

ROLES = ("teacher", "plain", "tde", "full")
# fp16 keeps 11 significant bits (weights move by < 5e-4 relative). Measured on smoke models:
# every output within 1.1e-3 of its largest value (coords 7e-5, visual tokens 1.1e-3); the
# bound is a fraction of each output's largest absolute value, with 4x headroom.
RELATIVE_BOUND = 5e-3
RESULTS = Path(__file__).resolve().parents[1] / "results"   # the committed reference run


@pytest.fixture(scope="module")
def published(viz_checkpoints, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("published") / "models"
    publish_checkpoints(viz_checkpoints, out)
    return out


def test_the_manifest_records_each_file_and_its_sha256(published, viz_checkpoints):
    manifest = json.loads((published / MANIFEST).read_text())
    assert set(manifest["models"]) == set(ROLES)
    assert manifest["profile"] == "smoke"
    total = 0
    for role, entry in manifest["models"].items():
        data = (published / entry["file"]).read_bytes()
        assert entry["file"] == f"{role}.pt"
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)
        assert entry["config_hash"] == load_checkpoint(viz_checkpoints[role])["config_hash"]
        assert entry["source_run"] == viz_checkpoints[role].parent.resolve().as_posix()
        assert entry["source_commit"] == json.loads(
            (viz_checkpoints[role].parent / "run.json").read_text())["git_commit"]
        total += len(data)
    assert manifest["total_bytes"] == total
    assert verified_models(published) == {r: published / f"{r}.pt" for r in ROLES}


@pytest.mark.parametrize("role", ROLES)
def test_a_published_file_loads_weights_only_in_fp16_and_predicts_as_the_original(
        role, published, viz_checkpoints):
    raw = load_weights_only(published / f"{role}.pt")          # plain containers only
    floats = [v for v in raw["state_dict"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    original = load_checkpoint(viz_checkpoints[role])
    ints = {k for k, v in original["state_dict"].items() if not v.is_floating_point()}
    assert all(torch.equal(raw["state_dict"][k], original["state_dict"][k]) for k in ints)
    for key in ("model_name", "model_overrides", "config_hash", "config", "metrics"):
        # as JSON: a metric COCOeval could not compute is NaN in both, and NaN != NaN
        assert json.dumps(raw[key], sort_keys=True) == json.dumps(original[key], sort_keys=True), key

    model, _ = load_model_from_checkpoint(published / f"{role}.pt")
    reference, _ = load_model_from_checkpoint(viz_checkpoints[role])
    assert all(p.dtype == torch.float32 for p in model.parameters())
    images = torch.randn(4, 3, *model.input_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got, want = model(images), reference(images)
    compared = 0
    for name in ("coords", "scores", "sigmas", "heatmaps", "kpt_tokens", "vis_tokens"):
        a, b = getattr(got, name), getattr(want, name)
        assert (a is None) == (b is None), name
        if a is None:
            continue
        scale = float(b.abs().max()) or 1.0
        assert float((a - b).abs().max()) <= RELATIVE_BOUND * scale, (role, name)
        compared += 1
    assert compared >= 1


def test_a_tampered_file_is_refused_naming_it(published, tmp_path):
    copy = tmp_path / "models"
    copy.mkdir()
    for f in published.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    data = bytearray((copy / "tde.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "tde.pt").write_bytes(bytes(data))
    with pytest.raises(PublishError, match=r"tde\.pt: sha256 .* does not match"):
        verified_models(copy)
    (copy / "tde.pt").unlink()
    with pytest.raises(PublishError, match=r"tde\.pt: listed for 'tde' .* but missing"):
        verified_models(copy)


def _copy(published: Path, tmp_path: Path, change) -> Path:
    """A copy of the published folder whose manifest ``change`` edits."""
    copy = tmp_path / "models"
    copy.mkdir()
    for f in published.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((copy / MANIFEST).read_text())
    change(manifest["models"])
    (copy / MANIFEST).write_text(json.dumps(manifest))
    return copy


def _swap(models: dict, a: str, b: str) -> None:
    models[a], models[b] = models[b], models[a]


@pytest.mark.parametrize("a, b", [("tde", "full"), ("plain", "full"), ("teacher", "plain")])
def test_a_manifest_with_roles_swapped_is_refused_naming_the_file(published, tmp_path, a, b):
    copy = _copy(published, tmp_path, lambda models: _swap(models, a, b))
    with pytest.raises(PublishError, match=rf"{b}\.pt: listed as '{a}' .* but it is"):
        verified_models(copy)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "..", "sub/tde.pt"])
def test_a_manifest_path_leading_outside_its_folder_is_refused_before_reading(published, tmp_path,
                                                                              monkeypatch, name):
    from distilkit import publish

    copy = _copy(published, tmp_path, lambda models: models["tde"].update(file=name))
    read = []
    monkeypatch.setattr(publish.hashlib, "sha256", lambda *a: read.append(a) or hashlib.sha256(*a))
    with pytest.raises(PublishError, match="must be a file name inside"):
        verified_models(copy, roles=("tde",))
    assert read == []


def test_a_manifest_file_that_is_a_symlink_out_of_its_folder_is_refused(published, tmp_path):
    outside = tmp_path / "elsewhere.pt"
    outside.write_bytes((published / "tde.pt").read_bytes())
    copy = _copy(published, tmp_path, lambda models: None)
    (copy / "tde.pt").unlink()
    (copy / "tde.pt").symlink_to(outside)
    with pytest.raises(PublishError, match="leads outside"):
        verified_models(copy, roles=("tde",))


def test_above_the_size_limit_nothing_is_written(viz_checkpoints, tmp_path):
    out = tmp_path / "models"
    with pytest.raises(PublishError,
                       match=r"above the 0\.10 MB limit for committed models; nothing was written"):
        publish_checkpoints(viz_checkpoints, out, max_bytes=100_000)
    assert not out.exists()


def test_a_missing_role_is_named_with_how_to_train_it(tmp_path):
    runs = tmp_path / "runs" / "cpu"
    runs.mkdir(parents=True)
    with pytest.raises(PublishError) as err:
        publish_models("cpu", runs, tmp_path / "models", repo=tmp_path)
    message = str(err.value)
    assert all(role in message for role in ROLES)
    assert "make reproduce" in message and str(runs) in message
    assert not (tmp_path / "models").exists()


def test_the_command_reports_a_missing_role_as_an_error_line(tmp_path, capsys):
    from distilkit.cli import main

    (tmp_path / "runs").mkdir()
    assert main(["publish", "--runs-root", str(tmp_path / "runs"), "--out", str(tmp_path / "m")]) == 2
    assert "error:" in capsys.readouterr().err


def test_the_committed_models_are_the_reference_runs_figure_models():
    """results/models, what a fresh clone's viz notebooks load: the four roles, each file matching
    its sha256, under the size limit in all, trained by the committed reference (its commit; the
    AP stored in each file is its run's row in the committed CSVs), and each rebuilds a model
    whose predictions (coordinates, or the teacher's heatmaps) are finite, one per keypoint."""
    folder = RESULTS / "models"
    manifest = read_manifest(folder)
    files = verified_models(folder, ROLES)
    assert set(files) == set(ROLES) and manifest["profile"] == "cpu"
    assert manifest["total_bytes"] == sum(p.stat().st_size for p in files.values()) <= MAX_TOTAL_BYTES
    summary = json.loads((RESULTS / "reproduce_summary.json").read_text())
    rows = read_rows(RESULTS)
    rows = rows.set_index(rows["run_dir"].map(lambda d: Path(d).name))
    for role, entry in manifest["models"].items():
        assert entry["source_commit"] == summary["git_commit"], role
        row = rows.loc[[Path(entry["source_run"]).name]].iloc[0]   # a run in Tables 4 and 5: same row
        assert row["config_hash"] == entry["config_hash"] and pd.isna(row["error"]), role
        stored = load_weights_only(files[role])["metrics"]
        assert math.isclose(100 * stored["AP"], float(row["AP"]), rel_tol=1e-5, abs_tol=1e-7), role  # percent
        model, _ = load_model_from_checkpoint(files[role])
        images = torch.randn(2, 3, *model.input_size, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            out = model(images)
        predicted = out.coords if out.coords is not None else out.heatmaps
        assert predicted.shape[:2] == (2, 17) and bool(torch.isfinite(predicted).all()), role
