"""Published models: the main job's four figure models, compact, committed beside the results.

``results/models/<role>.pt`` holds one model of the visualisation notebooks' roles (teacher,
plain, tde, full: ``experiments.figure_models.ROLES``, each a row of the grid) as a weights-only file: the floating
tensors of its state dict in fp16 (integer buffers as they were) and what rebuilding it needs
(model name and overrides, config and its hash, the metrics, the run's commit). fp16 halves
the files, which matters because they are committed; ``load_model_from_checkpoint`` builds the
model in fp32 and casts the weights back, and the figures' outputs move by fp16 rounding only.

``results/models/MANIFEST.json`` records per role the file's sha256 and size, the run folder
it came from and that run's commit, so a clone (or a notebook) can check that a file is the
one published before loading it (``verified_models``).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Mapping

import torch

from distilkit.experiments.figure_models import (ROLES, loss_config, main_job_checkpoints, role_source,
                                                 role_spec)
from distilkit.files import atomic_file, atomic_write_text
from distilkit.models.checkpoint import load_checkpoint
from distilkit.paths import repo_root

MANIFEST = "MANIFEST.json"
FORMAT = "distilkit-published-1"
# Committed files: the cpu profile's four models are about 6 MB in fp16; a limit well above
# that catches a paper-size model (or an fp32 file) before it lands in git.
MAX_TOTAL_BYTES = 15_000_000
class PublishError(ValueError):
    """Published models that cannot be written or trusted; the message names the file."""


def default_models_dir() -> Path:
    return published_dir()


def published_dir(repo: str | Path | None = None) -> Path:
    """``results/models`` of the repository (``repo``, default this one)."""
    return (Path(repo) if repo is not None else repo_root()) / "results" / "models"


# ------------------------------------------------------------------------------ writing
def compact_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating tensors as fp16, every other tensor (BatchNorm's num_batches_tracked) unchanged;
    each a contiguous copy, so no tensor drags a larger storage into the file."""
    return {k: (v.detach().to(torch.float16) if v.is_floating_point() else v.detach()).contiguous().clone()
            for k, v in state_dict.items()}


def published_checkpoint(ckpt: dict, commit: str | None) -> dict:
    """The compact, weights-only-loadable form of a kit checkpoint: no optimizer, RNG or
    machine paths (the data root is re-derived from the config where the file is used)."""
    return {"format": FORMAT, "model_name": ckpt["model_name"],
            "model_overrides": dict(ckpt.get("model_overrides", {})),
            "config_hash": ckpt.get("config_hash"), "config": ckpt.get("config", {}),
            "metrics": dict(ckpt.get("metrics", {})), "git_commit": commit,
            **({"train_data": ckpt["train_data"]} if "train_data" in ckpt else {}),
            "state_dict": compact_state_dict(ckpt["state_dict"])}


def run_commit(run_dir: Path) -> str | None:
    """The commit a run was trained at, from its ``run.json`` (None without one)."""
    path = run_dir / "run.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text()).get("git_commit")
    except json.JSONDecodeError as err:
        raise PublishError(f"{path}: not valid JSON ({err})") from None


def _repo_relative(path: Path, repo: Path) -> str:
    path = path.resolve()
    try:
        return path.relative_to(repo.resolve()).as_posix()
    except ValueError:
        return path.as_posix()   # a run outside the repository (a test, another disk)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def publish_checkpoints(paths: Mapping[str, str | Path], out_dir: str | Path | None = None, *,
                        max_bytes: int = MAX_TOTAL_BYTES, repo: str | Path | None = None) -> dict:
    """Write ``<role>.pt`` for each role -> checkpoint of ``paths`` and ``MANIFEST.json`` into
    ``out_dir`` (default ``results/models``); return the manifest. Every file is built in
    memory first: above ``max_bytes`` in total nothing is written."""
    out_dir = Path(out_dir) if out_dir is not None else default_models_dir()
    repo = Path(repo) if repo is not None else repo_root()
    blobs: dict[str, bytes] = {}
    entries: dict[str, dict] = {}
    for role, path in paths.items():
        path = Path(path)
        ckpt = load_checkpoint(path)
        commit = run_commit(path.parent)
        buffer = io.BytesIO()
        torch.save(published_checkpoint(ckpt, commit), buffer)
        blobs[role] = buffer.getvalue()
        params = sum(v.numel() for v in ckpt["state_dict"].values() if v.is_floating_point())
        entries[role] = {"file": f"{role}.pt", "sha256": sha256_of(blobs[role]), "bytes": len(blobs[role]),
                         "source_run": _repo_relative(path.parent, repo), "source_checkpoint": path.name,
                         "model_name": ckpt["model_name"], "floating_values": params,
                         "config_hash": ckpt.get("config_hash"), "source_commit": commit,
                         "profile": ckpt.get("config", {}).get("profile")}
    total = sum(len(b) for b in blobs.values())
    if total > max_bytes:
        sizes = ", ".join(f"{r} {len(b) / 1e6:.2f} MB" for r, b in blobs.items())
        raise PublishError(f"{out_dir}: the published models would take {total / 1e6:.2f} MB "
                           f"({sizes}), above the {max_bytes / 1e6:.2f} MB limit for committed "
                           "models; nothing was written")
    profiles = {e["profile"] for e in entries.values()}
    manifest = {"format": FORMAT, "profile": profiles.pop() if len(profiles) == 1 else None,
                "total_bytes": total, "models": entries}
    out_dir.mkdir(parents=True, exist_ok=True)
    for role, blob in blobs.items():
        with atomic_file(out_dir / entries[role]["file"], "wb") as f:
            f.write(blob)
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def publish_models(profile: str = "cpu", runs_root: str | Path | None = None,
                   out_dir: str | Path | None = None, *, max_bytes: int = MAX_TOTAL_BYTES,
                   repo: str | Path | None = None) -> dict:
    """Publish the four roles the main job trained at ``profile`` (its run folders under
    ``runs_root``, default ``runs/<profile>``); a missing role is an error saying how to train it."""
    repo = Path(repo) if repo is not None else repo_root()
    runs_root = Path(runs_root) if runs_root is not None else repo / "runs" / profile
    found = main_job_checkpoints(profile, repo, runs_root=runs_root)
    missing = [r for r in ROLES if r not in found]
    if missing:
        what = "; ".join(f"{r}: {role_source(r)}" for r in missing)
        raise PublishError(f"{runs_root}: no finished run of the role(s) {', '.join(missing)} ({what}); "
                           f"train them with `distilkit reproduce --profile {profile}` "
                           f"(`make reproduce` for the cpu profile), then publish again")
    return publish_checkpoints({r: found[r] for r in ROLES}, out_dir, max_bytes=max_bytes, repo=repo)


# ------------------------------------------------------------------------------ reading
def read_manifest(models_dir: str | Path) -> dict | None:
    """``MANIFEST.json`` of a published-models folder; None when there is none."""
    path = Path(models_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise PublishError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("models"), dict):
        raise PublishError(f"{path}: has no 'models' mapping; not a published-models manifest")
    return manifest


def _listed_file(models_dir: Path, role: str, entry) -> Path:
    """The file a manifest entry names, which must be a plain file name inside ``models_dir``:
    a path leading elsewhere (``../../etc/passwd``, an absolute path, a symlink out) is refused
    before anything is read."""
    name = entry.get("file") if isinstance(entry, dict) else None
    manifest = models_dir / MANIFEST
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise PublishError(f"{manifest}: the file of {role!r} must be a file name inside "
                           f"{models_dir}, got {name!r}")
    path = models_dir / name
    if path.exists() and path.resolve().parent != models_dir.resolve():
        raise PublishError(f"{manifest}: the file of {role!r}, {name}, leads outside {models_dir}")
    return path


def _distillation_switches(losses: dict) -> set[str]:
    """The switches that tell the roles apart (plain regression is every student's)."""
    return {name for name in ("kt", "vt", "sh", "cs", "heatmap") if losses.get(name)}


def check_role(path: Path, role: str, manifest: Path) -> None:
    """PublishError unless the file's recorded losses and model are the role's: a manifest with
    its roles swapped would draw one model under another's name."""
    if role not in ROLES:
        raise PublishError(f"{manifest}: unknown role {role!r}; the roles are {sorted(ROLES)}")
    wanted_switches = _distillation_switches(asdict(loss_config(role)))
    ckpt = load_checkpoint(path)
    losses = ckpt.get("config", {}).get("losses", {}) if isinstance(ckpt.get("config"), dict) else {}
    switches = _distillation_switches(losses)
    model = str(ckpt.get("model_name", ""))
    wanted_model = "teacher-" if role == "teacher" else role_spec(role).model
    if switches != wanted_switches or not model.startswith(wanted_model):
        raise PublishError(f"{path}: listed as {role!r} in {manifest}, but it is {model} trained with "
                           f"losses {sorted(switches) or ['reg']}; {role!r} is a {wanted_model}* model "
                           f"trained with {sorted(wanted_switches) or ['reg']}")


def verified_models(models_dir: str | Path, roles: tuple[str, ...] | None = None) -> dict[str, Path]:
    """role -> file of the published models whose bytes match the manifest's sha256 and whose
    recorded losses and model are the role's (empty without a manifest). A file outside the
    folder, a missing file, a mismatch or a file of another role is an error naming the file: a
    changed model must not be drawn as the published one."""
    models_dir = Path(models_dir)
    manifest = read_manifest(models_dir)
    if manifest is None:
        return {}
    out: dict[str, Path] = {}
    for role, entry in manifest["models"].items():
        if roles is not None and role not in roles:
            continue
        path = _listed_file(models_dir, role, entry)
        if not path.is_file():
            raise PublishError(f"{path}: listed for {role!r} in {models_dir / MANIFEST} but missing")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != entry.get("sha256"):
            raise PublishError(f"{path}: sha256 {digest} does not match {entry.get('sha256')} in "
                               f"{models_dir / MANIFEST}; the file was changed after publishing "
                               "(restore it with git, or publish again)")
        check_role(path, role, models_dir / MANIFEST)
        out[role] = path
    return out


def published_checkpoints(profile: str, repo: str | Path | None = None) -> dict[str, Path]:
    """The published models (``results/models``) when their manifest says they were trained at
    ``profile``, each verified against its sha256 (a mismatch raises, naming the file); else {}."""
    folder = published_dir(repo)
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("profile") != profile:
        return {}
    return verified_models(folder, ROLES)


def published_note(paths: Mapping[str, Path], repo: str | Path | None = None) -> str | None:
    """One line saying which of ``paths`` are published models and the commit they were
    trained at; None when none is."""
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


# ------------------------------------------------------------------------------ command
EXAMPLES = """examples:
  distilkit publish                           # runs/cpu -> results/models (after make reproduce)
  distilkit publish --profile smoke --out /tmp/models
"""


def _run(args) -> int:
    manifest = publish_models(args.profile, args.runs_root, args.out)
    for role, e in manifest["models"].items():
        print(f"{role:8s} {e['file']:12s} {e['bytes'] / 1e6:6.2f} MB  from {e['source_run']}")
    where = Path(args.out or default_models_dir()) / MANIFEST
    print(f"total {manifest['total_bytes'] / 1e6:.2f} MB -> {where}")
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "publish", help="the main job's four figure models, fp16, into results/models",
        description="Write the teacher, plain, TDE-only and fully distilled student of the main "
                    "job as compact fp16 weights-only files with a MANIFEST.json (sha256, source "
                    "run and commit), for the visualisation notebooks of a fresh clone.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="cpu", help="the main job's profile (default: %(default)s)")
    p.add_argument("--runs-root", default=None,
                   help="the main job's run folders (default: runs/<profile>)")
    p.add_argument("--out", default=None, help="where the files go (default: results/models)")
    p.set_defaults(func=_run)


__all__ = ["MANIFEST", "FORMAT", "MAX_TOTAL_BYTES", "PublishError", "default_models_dir",
           "compact_state_dict", "published_checkpoint", "publish_checkpoints", "publish_models",
           "read_manifest", "verified_models", "published_dir", "published_checkpoints",
           "published_note", "add_cli"]
