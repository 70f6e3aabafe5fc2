"""The four models the figures compare, found or trained: one call for every notebook.

Roles (the models of Fig. 3a, and the ones Figs. 3b, 5, 6 and the attributions need):

    teacher   heatmap teacher, teacher-hrw48 (Table 4's teacher)
    plain     DistilPose-S trained without distillation      (Table 4 row "none")
    tde       DistilPose-S distilled with L_KT + L_VT only    (Table 4 row "KT+VT")
    full      DistilPose-S with L_KT + L_VT + L_SH + L_CS     (Table 4 row "all")

Resolution order per role: a path the caller gives; else the main job's run of the same
profile (the run folders of the teacher and of the Table 4 row under ``runs/<profile>``, found
through ``collect_table``); else the published models (``results/models``, ``distilkit.publish``)
when they were trained at this profile, each file checked against its manifest's sha256; else
a run trained here into ``runs_dir/<role>`` and reused on later calls while its config is
unchanged, so six notebooks train at most once.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Mapping

import pandas as pd

from distilkit.files import UnsafeCheckpointError
from distilkit.models.checkpoint import load_checkpoint, load_model_from_checkpoint
from distilkit.paths import repo_root, resolve

REPO = repo_root()

ROLES: tuple[str, ...] = ("teacher", "plain", "tde", "full")
ROLE_LABELS: dict[str, str] = {
    "teacher": "teacher (heatmap)",
    "plain": "student, no distillation",
    "tde": "student, TDE only",
    "full": "student, TDE + Sim. Heatmaps",
}
# Table 4 row label of each student role in the results CSV (distilkit.experiments.grid).
TABLE4_ROWS: dict[str, str] = {"plain": "none", "tde": "KT+VT", "full": "all"}
TEACHER_ROW = "HRNet-W48 (teacher)"   # teachers.csv row of the main job's HRNet-W48-analog teacher


def loss_config(role: str):
    from distilkit.losses import LossConfig

    return {
        "teacher": LossConfig(reg=False, heatmap=True),
        "plain": LossConfig(),
        "tde": LossConfig(kt=True, vt=True),
        "full": LossConfig(kt=True, vt=True, sh=True, cs=True),
    }[role]


def run_checkpoint(run_dir: str | Path) -> Path | None:
    """best.pt when the run has one, else last.pt (a run whose AP never became finite
    writes no best.pt), else None."""
    run_dir = Path(run_dir)
    for name in ("best.pt", "last.pt"):
        if (run_dir / name).is_file():
            return run_dir / name
    return None


def main_job_checkpoints(profile: str, repo: str | Path = REPO, *,
                         runs_root: str | Path | None = None) -> dict[str, Path]:
    """The roles the main job has already trained at this profile (possibly none), found in its
    run folders (``runs_root``, default ``runs/<profile>``) through ``collect_table``."""
    from distilkit.experiments.records import collect_table

    runs_root = Path(runs_root) if runs_root is not None else Path(repo) / "runs" / profile
    if not runs_root.is_dir():
        return {}
    rows = pd.concat([collect_table(0, runs_root, profile=profile, repo=Path(repo)),
                      collect_table(4, runs_root, profile=profile, repo=Path(repo))])
    rows = rows[rows["error"] == ""]
    found: dict[str, Path] = {}
    for role, label in {**TABLE4_ROWS, "teacher": TEACHER_ROW}.items():
        # lowest seed first (collect_table's order): the same run every time the notebooks run
        for run_dir in rows.loc[rows["row"] == label, "run_dir"]:
            ckpt = run_checkpoint(resolve(run_dir, Path(repo)))
            if ckpt is not None:
                found[role] = ckpt
                break
    return found


def published_dir(repo: str | Path = REPO) -> Path:
    return Path(repo) / "results" / "models"


def published_checkpoints(profile: str, repo: str | Path = REPO) -> dict[str, Path]:
    """The published models (``results/models``) when their manifest says they were trained at
    ``profile``, each verified against its sha256 (a mismatch raises, naming the file); else {}."""
    from distilkit.publish import read_manifest, verified_models

    manifest = read_manifest(published_dir(repo))
    if manifest is None or manifest.get("profile") != profile:
        return {}
    return verified_models(published_dir(repo), ROLES)


def published_note(paths: Mapping[str, Path], repo: str | Path = REPO) -> str | None:
    """One line saying which of ``paths`` are published models and the commit they were
    trained at; None when none is."""
    from distilkit.publish import read_manifest

    folder = published_dir(repo)
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    entries = manifest["models"]
    used = [r for r, p in paths.items()
            if r in entries and Path(p).resolve() == (folder / entries[r]["file"]).resolve()]
    if not used:
        return None
    commits = sorted({str(entries[r].get("source_commit")) for r in used})
    return (f"These figures use the published reference models ({', '.join(used)}) from "
            f"{folder}, trained at the {manifest.get('profile')} profile at commit "
            f"{', '.join(commits)}.")


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
    from distilkit.engine import TrainConfig, fit

    model = "teacher-hrw48" if role == "teacher" else "distilpose-s"
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


def load_models(paths: Mapping[str, str | Path]) -> dict[str, "torch.nn.Module"]:
    """role -> model in eval mode, on the CPU."""
    return {role: load_model_from_checkpoint(p)[0].eval() for role, p in paths.items()}


def checkpoint_ap(path: str | Path) -> float:
    """The validation AP a checkpoint recorded at its last evaluation (NaN if none)."""
    ap = load_checkpoint(path).get("metrics", {}).get("AP")
    return float(ap) if ap is not None else float("nan")


__all__ = ["ROLES", "ROLE_LABELS", "TABLE4_ROWS", "loss_config", "run_checkpoint",
           "main_job_checkpoints", "published_dir", "published_checkpoints", "published_note",
           "ensure_checkpoints", "load_models", "checkpoint_ap"]
