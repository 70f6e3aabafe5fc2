"""Top-down inference and COCO evaluation: flip test, decode, back to the image, Eq. 3, OKS-NMS.

Evaluation runs in fp32 on every device, whatever precision training uses: the authors
evaluated and chose checkpoints in fp32, and a checkpoint must re-evaluate to the AP it reported.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from distilkit.codecs import (HeatmapCodec, flip_heatmaps, flip_regression_output,
                              flip_regression_output_as_authors, flip_shift)
from distilkit.engine.distributed import DistInfo, all_gather_objects, broadcast_object
from distilkit.evaluation import evaluate_coco, postprocess_predictions
from distilkit.evaluation.correctness import is_correct_pck10
from distilkit.evaluation.ranking import auroc
from distilkit.keypoints import FLIP_INDEX


@dataclass
class Predictions:
    """Per instance, in input pixels of the crop, with what maps them back to the image."""

    coords: np.ndarray        # (N, K, 2) input px
    scores: np.ndarray        # (N, K)
    centers: np.ndarray       # (N, 2)
    scales: np.ndarray        # (N, 2)
    bbox_scores: np.ndarray   # (N,)
    image_ids: np.ndarray     # (N,)
    index: np.ndarray         # (N,) dataset index, so shards can be merged without duplicates

    @staticmethod
    def concat(parts: list["Predictions"]) -> "Predictions":
        parts = [p for p in parts if len(p.index)]
        if not parts:
            raise ValueError("no predictions were made: the evaluation set is empty")
        merged = Predictions(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                               ("coords", "scores", "centers", "scales", "bbox_scores", "image_ids", "index")))
        _, first = np.unique(merged.index, return_index=True)
        return Predictions(*(getattr(merged, f)[first] for f in
                             ("coords", "scores", "centers", "scales", "bbox_scores", "image_ids", "index")))


def _images_flipped(images: torch.Tensor) -> torch.Tensor:
    return images.flip(-1)


# The authors' teachers decode with DARK at MMPose's modulate_kernel=11 (their test_cfg).
AUTHORS_DARK_KERNEL = 11


@torch.no_grad()
def predict_batch(model: nn.Module, images: torch.Tensor, *, flip_test: bool = True,
                  dark: bool = False, authors: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints in input pixels (N, K, 2) and their scores (N, K) for a batch of crops.

    ``authors=True`` is the authors' test-time pipeline (docs/DEVIATIONS.md): heatmaps flipped
    back with a whole-pixel shift and decoded with DARK (kernel 11); regression x flipped back
    as 1 - x, and flipped scores averaged without the left/right swap.
    """
    h, w = model.input_size
    out = model(images)
    if model.kind == "heatmap":
        heatmaps = out.heatmaps.float()
        if flip_test:
            flipped = model(_images_flipped(images)).heatmaps.float()
            # the exact sub-pixel realignment; theirs, one whole heatmap px, overshoots by 1 input px
            shift = True if authors else flip_shift(w, heatmaps.shape[-1])
            heatmaps = 0.5 * (heatmaps + flip_heatmaps(flipped, FLIP_INDEX, shift=shift))
        codec = HeatmapCodec(input_size=(h, w), heatmap_size=tuple(heatmaps.shape[-2:]),
                             blur_kernel_size=AUTHORS_DARK_KERNEL if authors else 0)
        return codec.decode(heatmaps.cpu().numpy(), dark=dark or authors)
    coords, scores = out.coords.float(), out.scores.float()
    if flip_test:
        f = model(_images_flipped(images))
        if authors:
            f_coords, f_scores = flip_regression_output_as_authors(f.coords.float(), f.scores.float())
        else:
            f_coords, f_scores, _ = flip_regression_output(
                f.coords.float(), f.scores.float(), None, FLIP_INDEX, input_width=w)
        coords = 0.5 * (coords + f_coords)
        scores = 0.5 * (scores + f_scores)
    px = coords.cpu().numpy() * np.array([w, h], dtype=np.float32)
    return px, scores.cpu().numpy()


@torch.no_grad()
def predict(model: nn.Module, loader, *, device: torch.device, flip_test: bool = True,
            dark: bool = False, progress: bool = False, authors: bool = False) -> Predictions:
    was_training = model.training
    model.eval()
    parts: list[Predictions] = []
    try:
        for batch in tqdm(loader, desc="eval", disable=not progress, leave=False):
            images = batch["image"].to(device, non_blocking=True)
            coords, scores = predict_batch(model, images, flip_test=flip_test, dark=dark, authors=authors)
            meta = batch["meta"]
            parts.append(Predictions(
                coords=coords, scores=scores,
                centers=meta["center"].numpy().astype(np.float64),
                scales=meta["scale"].numpy().astype(np.float64),
                bbox_scores=meta["bbox_score"].numpy().astype(np.float64),
                image_ids=meta["image_id"].numpy().astype(np.int64),
                index=batch["index"].numpy().astype(np.int64)))
    finally:
        model.train(was_training)
    return Predictions.concat(parts) if parts else Predictions(*(np.zeros((0,)) for _ in range(7)))


def kpt_score_source(model: nn.Module, losses) -> str:
    """Which keypoint scores a model is evaluated with: ``"model"`` or ``"unit"``.

    A regression model trained without L_CS has a score head no loss trained; Eq. 3 would
    rank its instances by noise (the authors' repository, issue #2: a no-distillation
    DistilPose-S stuck below 10 AP). It is scored as a traditional regression model is
    (MMPose's DeepPose reports 1 per keypoint): the instance score is the box score. Heatmap
    models keep their heatmap maxima, and students trained with L_CS their own scores.
    """
    if getattr(model, "kind", "regression") == "heatmap" or losses.cs:
        return "model"
    return "unit"


def evaluate_predictions(pred: Predictions, ann_file: str | Path, *, input_size: tuple[int, int],
                         results_file: str | Path | None = None, kpt_scores: str = "model"
                         ) -> dict[str, float]:
    """COCO metrics of the predictions; ``kpt_scores="unit"`` replaces every keypoint score by 1
    (``kpt_score_source``)."""
    if kpt_scores not in ("model", "unit"):
        raise ValueError(f"kpt_scores must be 'model' or 'unit', got {kpt_scores!r}")
    scores = pred.scores if kpt_scores == "model" else np.ones_like(pred.scores)
    results = postprocess_predictions(pred.coords, scores, pred.centers, pred.scales,
                                      pred.bbox_scores, pred.image_ids, input_size)
    if results_file is not None:
        from distilkit.evaluation import write_coco_results
        write_coco_results(results, results_file)
    return evaluate_coco(results, ann_file)


def evaluate_model(model: nn.Module, loader, ann_file: str | Path, *, device: torch.device,
                   info: DistInfo = DistInfo(), flip_test: bool = True, dark: bool = False,
                   progress: bool = False, results_file: str | Path | None = None,
                   kpt_scores: str = "model", authors: bool = False) -> dict[str, float]:
    """COCO keypoint metrics of ``model`` on the loader's instances; every rank gets them.
    The result records ``kpt_score``: which keypoint scores were used (``kpt_score_source``)."""
    local = predict(model, loader, device=device, flip_test=flip_test, dark=dark,
                    progress=progress and info.is_main, authors=authors)
    shards = all_gather_objects(local, info)
    metrics = None
    if info.is_main:
        merged = Predictions.concat(shards)
        metrics = evaluate_predictions(merged, ann_file, input_size=tuple(model.input_size),
                                       results_file=results_file, kpt_scores=kpt_scores)
        metrics["kpt_score"] = kpt_scores
    return broadcast_object(metrics, info)


@torch.no_grad()
def keypoint_error_metrics(model: nn.Module, loader, *, device: torch.device, flip_test: bool = True
                           ) -> dict[str, float]:
    """A diagnostic beside COCO AP: localisation error on ground-truth boxes.

    AP needs errors of a few input pixels before it moves off zero at small input sizes; these
    show which model localises better before then. ``err_px``: mean distance between predicted
    and labelled keypoints (input px, labelled keypoints inside the crop, flip test);
    ``PCK10``: the share of those within 0.1 x the input height (``is_correct_pck10``);
    ``score_auc``: how well the model's per-keypoint scores rank those PCK10-correct
    keypoints above the rest (AUROC, 0.5 = no information; NaN when all or none are
    correct). It is what L_CS trains, and what Eq. 3's rescoring relies on.
    """
    was_training = model.training
    model.eval()
    dists, confidences = [], []
    try:
        for batch in loader:
            images = batch["image"].to(device)
            coords, scores = predict_batch(model, images, flip_test=flip_test)
            gt = batch["keypoints"].numpy()
            vis = batch["keypoints_visible"].numpy() > 0
            dists.append(np.linalg.norm(coords - gt, axis=-1)[vis])
            confidences.append(np.asarray(scores, dtype=np.float64)[vis])
    finally:
        model.train(was_training)
    d = np.concatenate(dists) if dists else np.zeros(0)
    if d.size == 0:
        raise ValueError("no labelled keypoints in the ground-truth-box evaluation set")
    correct = is_correct_pck10(d, model.input_size[0])
    conf = np.concatenate(confidences)
    # a diagnostic must not fail a finished run: non-finite scores have no ranking to measure
    score_auc = auroc(conf, correct) if np.isfinite(conf).all() else float("nan")
    return {"err_px": float(d.mean()), "PCK10": float(correct.mean()), "score_auc": score_auc}
