"""Where the notebooks' models come from, per role: a given path, else the main job's run of the
profile, else the published models of results/models (sha256-checked), else smoke models
trained here. Each case builds a repository-like layout in tmp_path; nothing is written into
the real results/."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from distilkit.experiments.figure_models import loss_config, role_spec
from distilkit.publish import MANIFEST, PublishError, publish_checkpoints, published_checkpoints
from distilkit.viz.checkpoints import ensure_checkpoints
from distilkit.viz.session import default_profile, open_session

ROLES = ("teacher", "plain", "tde", "full")


def _fake_published(repo: Path, profile: str = "cpu") -> dict[str, Path]:
    """results/models with a manifest of ``profile`` over four small stand-in checkpoints."""
    folder = repo / "results" / "models"
    folder.mkdir(parents=True)
    models = {}
    for role in ROLES:
        # a stand-in with the record a published file is checked by: its role's model and losses
        model = "teacher-hrw48-cpu" if role == "teacher" else role_spec(role).model
        torch.save({"model_name": model, "state_dict": {}, "config": {"losses": asdict(loss_config(role))}},
                   folder / f"{role}.pt")
        data = (folder / f"{role}.pt").read_bytes()
        models[role] = {"file": f"{role}.pt", "sha256": hashlib.sha256(data).hexdigest(),
                        "bytes": len(data), "source_commit": "abc123"}
    (folder / MANIFEST).write_text(json.dumps({"profile": profile, "models": models}))
    return {role: folder / f"{role}.pt" for role in ROLES}


def _fake_main_job(repo: Path) -> dict[str, Path]:
    """runs/cpu with finished runs of the four roles (as the main job lays them out)."""
    from distilkit.experiments.plan import Recipe, plan_jobs

    teachers, jobs = plan_jobs([4], Recipe("cpu"), seeds=[0], runs_dir=repo / "runs" / "cpu")
    by_row = {j.spec.row: j for j in jobs}
    found = {}
    for role, job in (("teacher", teachers[0]), ("plain", by_row["none"]), ("tde", by_row["KT+VT"]),
                      ("full", by_row["all"])):
        job.run_dir.mkdir(parents=True, exist_ok=True)
        (job.run_dir / "final_metrics.json").write_text(json.dumps({"config_hash": job.config.hash()}))
        (job.run_dir / "best.pt").write_bytes(b"x")
        found[role] = job.run_dir / "best.pt"
    return found


@pytest.mark.parametrize("runs, published, profile, source", [
    (False, True, "cpu", "published"),     # a fresh clone after #27: the published models
    (True, True, "cpu", "runs"),           # the main job ran here: its runs win
    (True, False, "cpu", "runs"),
    (False, False, "smoke", None),         # neither: smoke models trained here
])
def test_each_role_comes_from_runs_then_published_then_smoke(runs, published, profile, source, tmp_path):
    expected = {"runs": _fake_main_job(tmp_path) if runs else None,
                "published": _fake_published(tmp_path) if published else None}
    assert default_profile(repo=tmp_path) == profile
    if source is not None:
        assert ensure_checkpoints("cpu", tmp_path / "cache", repo=tmp_path) == expected[source]


def test_published_models_of_another_profile_are_not_used(tmp_path):
    _fake_published(tmp_path, profile="paper")
    assert published_checkpoints("cpu", tmp_path) == {}
    assert default_profile(repo=tmp_path) == "smoke"


def test_a_published_file_that_changed_is_an_error_naming_it(tmp_path):
    files = _fake_published(tmp_path)
    files["full"].write_bytes(b"other weights")
    with pytest.raises(PublishError, match=r"full\.pt: sha256"):
        default_profile(repo=tmp_path)
    with pytest.raises(PublishError, match=r"full\.pt: sha256"):
        ensure_checkpoints("cpu", tmp_path / "cache", repo=tmp_path)


def test_a_session_on_published_models_loads_them_and_names_their_commit(
        viz_checkpoints, smoke_root, tmp_path, monkeypatch, capsys):
    """The real files (smoke-trained, published as if at the cpu profile): the session takes
    profile cpu, loads the fp16 files, shows no smoke banner, prints one line naming the source
    commit, and takes its crops from the profile's synthetic set."""
    manifest = publish_checkpoints(viz_checkpoints, tmp_path / "results" / "models", repo=tmp_path)
    manifest["profile"] = "cpu"        # the manifest is not under the sha256; the files are
    (tmp_path / "results" / "models" / MANIFEST).write_text(json.dumps(manifest))
    asked = []
    monkeypatch.setattr("distilkit.viz.session._synthetic_root",
                        lambda profile: asked.append(profile) or smoke_root)
    session = open_session(repo=tmp_path, num_samples=1)
    assert session.profile == "cpu" and not session.untrained
    assert session.paths == {r: tmp_path / "results" / "models" / f"{r}.pt" for r in ROLES}
    assert asked == ["cpu"] and session.data_root == smoke_root and len(session.crops) == 1
    commit = manifest["models"]["full"]["source_commit"]
    assert commit and commit in session.note
    out = capsys.readouterr().out
    assert out.count(session.note) == 1 and "SMOKE MODELS" not in out
    assert session.out_dir == tmp_path / "runs" / "cpu" / "figures" / "viz"
