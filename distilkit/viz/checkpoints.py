"""The four figure models as checkpoints, found or trained: one call for every notebook.

The roles are rows of the grid (``experiments.figure_models``). Resolution order per role: a
path the caller gives; else the main job's run of the same profile
(``figure_models.main_job_checkpoints``); else the published models (``results/models``,
``distilkit.publish``) when they were trained at this profile, each file checked against its
manifest's sha256; else a run trained here into ``runs_dir/<role>`` and reused on later calls
while its config is unchanged, so six notebooks train at most once.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Mapping

from torch import nn

from distilkit.engine import TrainConfig, fit
from distilkit.experiments.figure_models import ROLES, loss_config, main_job_checkpoints, role_spec, run_checkpoint
from distilkit.files import UnsafeCheckpointError
from distilkit.models.checkpoint import load_model_from_checkpoint
from distilkit.paths import repo_root
from distilkit.publish import published_checkpoints

REPO = repo_root()


def _loads(path: Path) -> bool:
    """Whether the current code can rebuild the model a cached checkpoint holds."""
    try:
        load_model_from_checkpoint(path)
    except UnsafeCheckpointError:
        raise  # a file that would run code is never silently trained over: the user must see it
    except (RuntimeError, ValueError, KeyError, TypeError):
        return False
    return True


def _train(role: str, profile: str, out_dir: Path, *, teacher: Path | None,
           data_root: str | None, seed: int, epochs: int | None, progress: bool) -> Path:
    model = role_spec(role).model
    losses = loss_config(role)
    config = TrainConfig(out_dir=str(out_dir), model=model, profile=profile, losses=losses,
                         teacher=str(teacher) if losses.distills else None, seed=seed,
                         epochs=epochs, data_root=data_root, progress=progress, resume=True)
    stamp = out_dir / "viz_config.json"
    same = stamp.is_file() and json.loads(stamp.read_text()).get("hash") == config.hash()
    ckpt = run_checkpoint(out_dir)
    if same and ckpt is not None and (out_dir / "final_metrics.json").is_file():
        if _loads(ckpt):
            return ckpt
        same = False  # trained before a model change: its weights no longer fit; redo
    # An interrupted run of this config resumes; a cached run of another config (other
    # teacher, schedule or data) starts afresh.
    out_dir.mkdir(parents=True, exist_ok=True)
    if not same:
        for name in ("best.pt", "last.pt", "final_metrics.json"):
            (out_dir / name).unlink(missing_ok=True)
    stamp.write_text(json.dumps({"hash": config.hash(), "role": role}))
    fit(replace(config, resume=same))
    ckpt = run_checkpoint(out_dir)
    if ckpt is None:
        raise RuntimeError(f"training {role} into {out_dir} wrote no checkpoint")
    return ckpt


def ensure_checkpoints(profile: str = "smoke", runs_dir: str | Path | None = None, *,
                       given: Mapping[str, str | Path | None] | None = None,
                       roles: tuple[str, ...] = ROLES, data_root: str | None = None,
                       use_main_job: bool = True, use_published: bool = True,
                       repo: str | Path = REPO, seed: int = 0,
                       epochs: int | None = None, progress: bool = False) -> dict[str, Path]:
    """A checkpoint path for each of ``roles``: given, the main job's, the published one of
    this profile, or trained here.

    ``runs_dir`` is the cache for runs trained here (default ``runs/<profile>/viz`` in the
    repository). Students trained here are distilled from the resolved teacher, so the
    teacher is resolved first whenever a distilled student has to be trained.
    """
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; known: {ROLES}")
    given = {k: v for k, v in (given or {}).items() if v is not None}
    runs_dir = Path(runs_dir) if runs_dir is not None else Path(repo) / "runs" / profile / "viz"
    published = published_checkpoints(profile, repo) if use_published else {}
    # per role, the main job's run wins over the published file of the same role
    found = {**published, **(main_job_checkpoints(profile, repo) if use_main_job else {})}
    paths: dict[str, Path] = {}
    for role, path in given.items():
        if not Path(path).is_file():
            raise FileNotFoundError(f"{role} checkpoint {path} does not exist")
        paths[role] = Path(path)

    def teacher_path() -> Path:
        if "teacher" not in paths:
            paths["teacher"] = found.get("teacher") or _train(
                "teacher", profile, runs_dir / "teacher", teacher=None, data_root=data_root,
                seed=seed, epochs=epochs, progress=progress)
        return paths["teacher"]

    for role in roles:
        if role in paths:
            continue
        if role == "teacher":
            teacher_path()
        elif role in found:
            paths[role] = found[role]
        else:
            paths[role] = _train(role, profile, runs_dir / role,
                                 teacher=teacher_path() if loss_config(role).distills else None,
                                 data_root=data_root, seed=seed, epochs=epochs, progress=progress)
    return {role: paths[role] for role in roles}


def load_models(paths: Mapping[str, str | Path]) -> dict[str, nn.Module]:
    """role -> model in eval mode, on the CPU."""
    return {role: load_model_from_checkpoint(p)[0].eval() for role, p in paths.items()}


__all__ = ["ensure_checkpoints", "load_models"]
