"""What every visualisation notebook starts with: checkpoints, models, crops, out folder.

One call keeps the six notebooks to their parameters and figures, and makes them agree on
the models and the images: the same roles resolve to the same checkpoints (given, the
main job's, or the cached ones trained here) and the same (ids, count, seed) pick the same
crops.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch

from distilkit.viz.checkpoints import ROLES, ensure_checkpoints, load_models
from distilkit.viz.figures import resolve_path
from distilkit.viz.samples import Crops, data_root_of, load_val_crops


@dataclass
class VizSession:
    paths: dict[str, Path]              # role -> checkpoint
    models: dict[str, torch.nn.Module]  # role -> model, eval mode
    crops: Crops | None                 # the validation crops the figures share
    data_root: Path
    out_dir: Path                       # where figures go (created)


def open_session(profile: str = "smoke", *, given: Mapping[str, str | Path | None] | None = None,
                 roles: Sequence[str] = ROLES, cache_dir: str | Path | None = None,
                 data_root: str | Path | None = None, sample_ids: Sequence[int] | None = None,
                 num_samples: int = 3, seed: int = 0, out_dir: str | Path = "../results/figures",
                 threads: int | None = None, load_crops: bool = True) -> VizSession:
    """Resolve (or train) the checkpoints of ``roles``, load them, and pick the crops.

    Relative ``cache_dir`` / ``out_dir`` / ``data_root`` are taken from the notebooks
    folder (see ``distilkit.viz.figures.resolve_path``)."""
    if threads:
        torch.set_num_threads(int(threads))
    root_arg = None if data_root is None else str(resolve_path(data_root))
    paths = ensure_checkpoints(profile, None if cache_dir is None else resolve_path(cache_dir),
                               given=given, roles=tuple(roles), data_root=root_arg)
    models = load_models(paths)
    first = next(iter(paths.values()))
    root = data_root_of(first, root_arg)
    crops = None
    if load_crops:
        size = tuple(next(iter(models.values())).input_size)
        crops = load_val_crops(root, size, ids=sample_ids, num=num_samples, seed=seed)
    out = resolve_path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return VizSession(paths=paths, models=models, crops=crops, data_root=root, out_dir=out)


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


__all__ = ["VizSession", "open_session", "joint_point"]
