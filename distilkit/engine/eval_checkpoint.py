"""Evaluate a checkpoint on its profile's validation set (or another COCO root).

Only what evaluation needs is read: the val annotations, val images and detector boxes, so a
released checkpoint can be checked on a val-only COCO folder.
"""
from __future__ import annotations

from pathlib import Path

import torch

from distilkit.engine.config import TrainConfig
from distilkit.engine.data import build_val_data, resolve_data_root
from distilkit.engine.evaluate import (
    evaluate_model,
    keypoint_error_metrics,
    kpt_score_source,
)
from distilkit.models.checkpoint import load_model_from_checkpoint


def _load(checkpoint: str | Path, *, data_root, device: str, progress: bool,
          max_val_instances: int | None):
    model, ckpt = load_model_from_checkpoint(checkpoint, map_location=device)
    config = TrainConfig.from_dict(ckpt["config"])
    profile = config.resolved_profile()
    root = resolve_data_root(data_root if data_root is not None else config.data_root, profile,
                             seed=config.data_seed, progress=progress)
    model = model.to(torch.device(device))
    data = build_val_data(root=root, model=model, profile=profile, batch_size=profile.eval_batch_size,
                          max_val_instances=max_val_instances)
    return model, config, data


def evaluate_checkpoint(checkpoint: str | Path, *, data_root: str | Path | None = None,
                        flip_test: bool = True, dark: bool = False, device: str = "cpu",
                        progress: bool = False, max_val_instances: int | None = None,
                        authors_eval: bool = False) -> dict[str, float]:
    """COCO metrics on the detector boxes of the validation set.

    ``authors_eval``: the authors' test-time pipeline (``evaluate.predict_batch``), with the
    model's own keypoint scores in Eq. 3 as theirs used, whatever losses trained it.
    """
    model, config, data = _load(checkpoint, data_root=data_root, device=device, progress=progress,
                                max_val_instances=max_val_instances)
    kpt_scores = "model" if authors_eval else kpt_score_source(model, config.losses)
    return evaluate_model(model, data.val_loader, data.val_ann_file, device=torch.device(device),
                          flip_test=flip_test, dark=dark, progress=progress, kpt_scores=kpt_scores,
                          authors=authors_eval)


def checkpoint_error_metrics(checkpoint: str | Path, *, data_root: str | Path | None = None,
                             device: str = "cpu") -> dict[str, float]:
    """The ground-truth-box diagnostic (err_px, PCK10, score_auc) exactly as training computes
    it at the end of a run, with the run's own flip-test setting."""
    model, config, data = _load(checkpoint, data_root=data_root, device=device, progress=False,
                                max_val_instances=None)
    return keypoint_error_metrics(model, data.val_gt_loader, device=torch.device(device),
                                  flip_test=config.flip_test)
