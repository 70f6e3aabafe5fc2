"""What every visualisation notebook starts with: checkpoints, models, crops, out folder.

One call keeps the six notebooks to their parameters and figures, and makes them agree on
the models and the images: the same roles resolve to the same checkpoints (given, the
main job's, the published ones in ``results/models``, or the cached ones trained here) and the
same (ids, count, seed) pick the same crops.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch

from distilkit.experiments.figure_models import ROLES, main_job_checkpoints
from distilkit.paths import repo_root, resolve
from distilkit.publish import published_checkpoints, published_note
from distilkit.viz.checkpoints import ensure_checkpoints, load_models
from distilkit.viz.figures import save_png_pdf
from distilkit.viz.samples import Crops, data_root_of, load_val_crops


UNTRAINED_BANNER = ("SMOKE MODELS: trained for seconds on a tiny set. These figures show the "
                    "pipeline, not results; run `make reproduce` for trained models.")


@dataclass
class VizSession:
    paths: dict[str, Path]              # role -> checkpoint
    models: dict[str, torch.nn.Module]  # role -> model, eval mode
    crops: Crops | None                 # the validation crops the figures share
    data_root: Path
    out_dir: Path                       # where figures go (created)
    profile: str = "smoke"
    note: str | None = None             # which published models the figures use, and their commit

    @property
    def untrained(self) -> bool:
        return self.profile == "smoke"

    def save(self, fig, name: str, **kwargs) -> tuple[Path, Path]:
        """``save_png_pdf`` into ``out_dir``; a smoke model's figure carries the banner."""
        if self.untrained:
            fig.text(0.5, 0.005, UNTRAINED_BANNER, ha="center", va="bottom", fontsize=8, color="#b00020",
                     bbox=dict(facecolor="#fff3f3", edgecolor="#b00020", boxstyle="round,pad=0.3"))
        return save_png_pdf(fig, self.out_dir, name, **kwargs)


def default_profile(roles: Sequence[str] = ROLES, repo: Path | None = None) -> str:
    """``cpu`` when the main job has trained every one of ``roles`` in ``runs/cpu``, or when
    ``results/models`` publishes them at the cpu profile (sha256-checked), else ``smoke``
    (models trained here in seconds, into a scratch folder)."""
    repo = repo or repo_root()
    if set(roles) <= set(main_job_checkpoints("cpu", repo)):
        return "cpu"
    return "cpu" if set(roles) <= set(published_checkpoints("cpu", repo)) else "smoke"


def default_out_dir(profile: str, notebook: str, repo: Path | None = None) -> Path:
    """Figures of a notebook run with defaults: a scratch folder under ``runs/``, never the
    committed ``results/`` (only an explicit ``out_dir`` writes there, as the main job does)."""
    return (repo or repo_root()) / "runs" / profile / "figures" / notebook


def open_session(profile: str | None = None, *, given: Mapping[str, str | Path | None] | None = None,
                 roles: Sequence[str] = ROLES, cache_dir: str | Path | None = None,
                 data_root: str | Path | None = None, sample_ids: Sequence[int] | None = None,
                 num_samples: int = 3, seed: int = 0, out_dir: str | Path | None = None,
                 threads: int | None = None, load_crops: bool = True, notebook: str = "viz",
                 repo: Path | None = None) -> VizSession:
    """Resolve (or train) the checkpoints of ``roles``, load them, and pick the crops.

    ``profile=None``: the main job's cpu models when ``runs/cpu`` has them, else the published
    cpu models of ``results/models``, else smoke models (``default_profile``); ``out_dir=None``:
    ``default_out_dir``. Relative ``cache_dir`` / ``out_dir`` / ``data_root`` are taken from the
    repository root (``distilkit.paths.resolve``). On smoke models a banner says
    they are untrained; on published models one line says so and names their commit."""
    repo = repo or repo_root()
    profile = profile or default_profile(roles, repo)
    if out_dir is None:
        out_dir = default_out_dir(profile, notebook, repo)
    if profile == "smoke":
        _show_banner()
    if threads:
        torch.set_num_threads(int(threads))
    root_arg = None if data_root is None else str(resolve(data_root))
    paths = ensure_checkpoints(profile, None if cache_dir is None else resolve(cache_dir),
                               given=given, roles=tuple(roles), data_root=root_arg, repo=repo)
    models = load_models(paths)
    note = published_note(paths, repo)
    if note:
        print(note)
    first = next(iter(paths.values()))
    # A published file was trained on another machine: its data root there means nothing here,
    # so the crops come from the profile's synthetic set, generated here once and cached.
    published = note is not None and first in published_checkpoints(profile, repo).values()
    root = _synthetic_root(profile) if published and root_arg is None else data_root_of(first, root_arg)
    crops = None
    if load_crops:
        size = tuple(next(iter(models.values())).input_size)
        crops = load_val_crops(root, size, ids=sample_ids, num=num_samples, seed=seed)
    out = resolve(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return VizSession(paths=paths, models=models, crops=crops, data_root=root, out_dir=out,
                      profile=profile, note=note)


def _synthetic_root(profile: str) -> Path:
    from distilkit.data.synthetic import ensure_synthetic
    from distilkit.profiles import PROFILES

    synthetic = PROFILES[profile].synthetic
    if synthetic is None:
        raise ValueError(f"profile {profile!r} has no synthetic set: pass data_root")
    return Path(ensure_synthetic(synthetic, seed=0, progress=False))


def _show_banner() -> None:
    try:
        from IPython.display import Markdown, display
        display(Markdown(f"<div style='border:2px solid #b00020;background:#fff3f3;padding:8px'>"
                         f"<b>{UNTRAINED_BANNER}</b></div>"))
    except ImportError:
        print(UNTRAINED_BANNER)


def joint_point(crops: Crops, i: int, keypoint: int,
                fallback: torch.Tensor | None = None) -> tuple[float, float] | None:
    """Where to draw the joint's red dot on crop ``i``: its ground truth when labelled
    inside the crop, else ``fallback`` (N, K, 2) input px (e.g. the teacher's guess)."""
    if float(crops.visible[i, keypoint]) > 0:
        x, y = crops.keypoints[i, keypoint].tolist()
        return x, y
    if fallback is not None:
        x, y = fallback[i, keypoint].tolist()
        return x, y
    return None


__all__ = ["VizSession", "open_session", "joint_point", "default_profile", "default_out_dir",
           "UNTRAINED_BANNER"]
