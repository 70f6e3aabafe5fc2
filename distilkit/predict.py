"""``distilkit predict``: a checkpoint's keypoints on a user's own images.

Top-down, exactly as evaluation runs (docs/ARCHITECTURE.md, "Evaluation"), through the very
functions evaluation uses, so a picture shows what the AP measured:

    person box  --geometry.bbox_to_center_scale / get_warp_matrix / warp_image-->  crop
    crop        --data.transforms.normalize_image-->  model input
    model input --engine.evaluate.predict_batch (flip test, decode)-->  keypoints in input px
    keypoints   --evaluation.postprocess_predictions (back to the image, Eq. 3)-->  COCO results

One difference, on purpose: no OKS-NMS. Evaluation suppresses a detector's duplicates over a
whole dataset; here each box is one person the user asked about, so there is one result per
box, in the boxes' order, each carrying its ``bbox``. Keypoint scores follow evaluation's rule
(``keypoint_score_rule``): a regression student trained without L_CS is scored with unit
keypoint scores, so its instance score is its box score.

Images are untrusted input: each is read by the dataset's reader (``read_image_rgb``), header
and pixel limit checked before decoding (``data.checks``), and a bad one is a ``DataError``
naming the file. Every image's header is checked before any is predicted, so a typo in the
last argument fails at once. Boxes: ``data.boxes``.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from distilkit.data.boxes import ImageRef, PersonBox, image_refs, read_boxes, whole_image_box
from distilkit.data.checks import check_image_file, image_pixel_limit
from distilkit.data.errors import DataError
from distilkit.data.topdown import read_image_rgb
from distilkit.data.transforms import normalize_image
from distilkit.engine.checkpoint import UnsafeCheckpointError, load_model_from_checkpoint
from distilkit.engine.config import TrainConfig
from distilkit.engine.evaluate import kpt_score_source, predict_batch
from distilkit.evaluation.coco import write_coco_results
from distilkit.evaluation.postprocess import postprocess_predictions
from distilkit.geometry import bbox_to_center_scale, clip_bbox_xywh, get_warp_matrix, warp_image

logger = logging.getLogger(__name__)

RESULTS_FILE = "keypoints.json"
KPT_SCORE_CHOICES = ("auto", "model", "unit")


# ------------------------------------------------------------------------------ checkpoints
def load_checkpoint_model(path: str | Path, device: str | torch.device = "cpu"
                          ) -> tuple[nn.Module, dict]:
    """The model (eval mode) and the checkpoint dict of a kit checkpoint, loaded weights-only.

    Whatever makes a file unusable -- missing, not a checkpoint, weights of another model -- is
    a DataError naming it (the command prints it as one line); a file that would run code stays
    an UnsafeCheckpointError.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "checkpoint file is missing")
    try:
        return load_model_from_checkpoint(path, map_location=device)
    except UnsafeCheckpointError:
        raise
    except (ValueError, KeyError, TypeError, RuntimeError) as err:
        first_line = (str(err).strip().splitlines() or [""])[0][:300]
        if str(path) in first_line:            # load_checkpoint's messages name the file already
            raise DataError(first_line) from None
        raise DataError(path, f"not a usable distilkit checkpoint ({type(err).__name__}: "
                              f"{first_line})") from None


def keypoint_score_rule(model: nn.Module, checkpoint: dict) -> str:
    """``"model"`` or ``"unit"``: the keypoint scores evaluation gives this checkpoint
    (``engine.evaluate.kpt_score_source`` on the losses it was trained with). A checkpoint with
    no training config keeps the model's scores."""
    config = checkpoint.get("config")
    if not isinstance(config, dict):
        return "model"
    return kpt_score_source(model, TrainConfig.from_dict(config).losses)


# ------------------------------------------------------------------------------ one image
def _as_person_boxes(boxes) -> list[PersonBox]:
    """PersonBoxes from PersonBoxes, [x, y, w, h] or [x, y, w, h, score] rows."""
    out = []
    for box in boxes:
        if isinstance(box, PersonBox):
            out.append(box)
            continue
        values = [float(v) for v in box]
        if len(values) not in (4, 5):
            raise ValueError(f"a box is [x, y, w, h] or [x, y, w, h, score], got {box!r}")
        out.append(PersonBox(tuple(values[:4]), values[4] if len(values) == 5 else 1.0))
    return out


def crop_persons(image_rgb: np.ndarray, boxes: Sequence[PersonBox], input_size: tuple[int, int]):
    """The evaluation crops of ``boxes``: (images (N, 3, H, W), centers (N, 2), scales (N, 2),
    the boxes kept (clipped to the image)). A box with nothing inside the image is left out
    with a WARNING, as the dataset leaves out a degenerate detection."""
    img_h, img_w = image_rgb.shape[:2]
    aspect = input_size[1] / input_size[0]
    crops, centers, scales, kept = [], [], [], []
    for box in boxes:
        clipped = clip_bbox_xywh(box.bbox, float(img_w), float(img_h))
        if clipped is None:
            logger.warning("box %s lies outside the %dx%d image; left out", list(box.bbox), img_w,
                           img_h)
            continue
        center, scale = bbox_to_center_scale(clipped, aspect)
        matrix = get_warp_matrix(center, scale, 0.0, input_size)   # test crops: no rotation
        crops.append(normalize_image(warp_image(image_rgb, matrix, input_size)))
        centers.append(center)
        scales.append(scale)
        kept.append(PersonBox(tuple(float(v) for v in clipped), box.score))
    h, w = input_size
    images = torch.stack(crops) if crops else torch.zeros((0, 3, h, w))
    return images, np.asarray(centers).reshape(-1, 2), np.asarray(scales).reshape(-1, 2), kept


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def predict_image(model: nn.Module, image_rgb: np.ndarray, boxes, *, flip_test: bool = True,
                  kpt_scores: str = "model", image_id: int = 0, batch_size: int = 32
                  ) -> list[dict]:
    """COCO keypoint results for the people in ``boxes`` of one (H, W, 3) uint8 RGB image.

    ``boxes``: PersonBoxes or [x, y, w, h(, score)] rows, image px. One result per box inside
    the image, in order: ``image_id``, ``category_id``, ``keypoints`` (17 x [x, y, score], image
    px), ``score`` (Eq. 3: box score x mean keypoint score above 0.2) and ``bbox`` (the box,
    clipped). ``kpt_scores="unit"`` scores every keypoint 1 (``keypoint_score_rule``).
    """
    if kpt_scores not in ("model", "unit"):
        raise ValueError(f"kpt_scores must be 'model' or 'unit', got {kpt_scores!r}")
    input_size = tuple(model.input_size)
    images, centers, scales, kept = crop_persons(image_rgb, _as_person_boxes(boxes), input_size)
    if not kept:
        return []
    device = next(model.parameters()).device
    coords, scores = [], []
    with _eval_mode(model):
        for start in range(0, len(images), batch_size):
            c, s = predict_batch(model, images[start:start + batch_size].to(device),
                                 flip_test=flip_test)
            coords.append(c)
            scores.append(s)
    coords, scores = np.concatenate(coords), np.concatenate(scores)
    if kpt_scores == "unit":
        scores = np.ones_like(scores)
    box_scores = np.array([b.score for b in kept])
    # nms_thr=None: one result per box the user gave (module docstring)
    results = postprocess_predictions(coords, scores, centers, scales, box_scores,
                                      [image_id] * len(kept), input_size, nms_thr=None)
    for result, box in zip(results, kept):
        result["bbox"] = list(box.bbox)
    return results


# ------------------------------------------------------------------------------ many files
@dataclass
class ImagePrediction:
    """One input image, decoded, and its results."""

    ref: ImageRef
    image: np.ndarray             # (H, W, 3) uint8 RGB
    results: list[dict]


def check_images(refs: Sequence[ImageRef], max_pixels: int | None = None) -> None:
    """Header-check every input image (exists, readable header, under the pixel limit) before
    any is decoded or predicted."""
    limit = image_pixel_limit(max_pixels)
    for ref in refs:
        check_image_file(ref.path, None, limit)


def predict_files(model: nn.Module, paths: Sequence[str | Path], *,
                  boxes_file: str | Path | None = None, flip_test: bool = True,
                  kpt_scores: str = "model", batch_size: int = 32,
                  max_pixels: int | None = None) -> Iterator[ImagePrediction]:
    """Predict image files one by one; without ``boxes_file`` each whole image is one person.

    Every image is header-checked and the boxes file read before the first prediction. Each
    result also carries the image's ``file_name`` (the path as given).
    """
    refs = image_refs(paths)
    check_images(refs, max_pixels)
    boxes = read_boxes(boxes_file, refs) if boxes_file is not None else None
    for ref in refs:
        if boxes is not None and not boxes[ref.image_id]:
            logger.warning("%s: the boxes file %s gives no box for it; nothing predicted",
                           ref.path, boxes_file)
        image = read_image_rgb(ref.path, max_pixels=max_pixels)
        person_boxes = boxes[ref.image_id] if boxes is not None else \
            [whole_image_box(image.shape[1], image.shape[0])]
        results = predict_image(model, image, person_boxes, flip_test=flip_test,
                                kpt_scores=kpt_scores, image_id=ref.image_id,
                                batch_size=batch_size)
        for result in results:
            result["file_name"] = str(ref.path)
        yield ImagePrediction(ref, image, results)


def drawn_name(ref: ImageRef, refs: Sequence[ImageRef]) -> str:
    """``<stem>_pose.png``; the image id goes in front when two inputs share a stem."""
    clash = sum(r.path.stem == ref.path.stem for r in refs) > 1
    return f"{ref.image_id}_{ref.path.stem}_pose.png" if clash else f"{ref.path.stem}_pose.png"


# ------------------------------------------------------------------------------ command
EXAMPLE = """\
examples:
  distilkit predict --checkpoint runs/cpu/distilpose-s-XXXX-s0/best.pt --whole-image person.jpg
  distilkit predict --checkpoint distilpose_s.pt --boxes dets.json --out preds/ \\
      000000397133.jpg 000000037777.jpg

boxes files: COCO-style detections [{"image_id" or "file_name", "bbox": [x, y, w, h],
"score", "category_id"}, ...] (detections of images not given are skipped) or boxes per
image {"img.jpg": [[x, y, w, h], ...]}.
Writes OUT/keypoints.json (COCO keypoint results, one per box, with "bbox" and "file_name")
and OUT/<image>_pose.png per input (hollow joints: keypoint score below 0.2)."""


def _run(args: argparse.Namespace) -> int:
    # Drawing lives in viz/, the room that draws; only this command reaches up to it, at call
    # time (the library functions above never draw).
    from distilkit.viz.poses import save_pose_image

    if args.threads:
        torch.set_num_threads(args.threads)
    model, ckpt = load_checkpoint_model(args.checkpoint, args.device)
    rule = keypoint_score_rule(model, ckpt) if args.kpt_scores == "auto" else args.kpt_scores
    out = Path(args.out)
    refs = image_refs(args.images)
    everything: list[dict] = []
    for pred in predict_files(model, args.images, boxes_file=args.boxes,
                              flip_test=not args.no_flip, kpt_scores=rule,
                              batch_size=args.batch_size):
        drawn = save_pose_image(out / drawn_name(pred.ref, refs), pred.image, pred.results)
        everything.extend(pred.results)
        scores = ", ".join(f"{r['score']:.2f}" for r in pred.results) or "none"
        print(f"{pred.ref.path}: {len(pred.results)} person(s), scores {scores} -> {drawn}")
    results_file = write_coco_results(everything, out / RESULTS_FILE)
    print(f"wrote {results_file}: {len(everything)} result(s) of {len(refs)} image(s); "
          f"{getattr(model, 'name', ckpt['model_name'])} ({model.kind}), keypoint scores: {rule}, "
          f"flip test {'off' if args.no_flip else 'on'}")
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="keypoints of a checkpoint on your own images (COCO results + drawings)",
        description="Top-down keypoints of a kit checkpoint on image files, with the crop, flip "
                    "test, decoding and rescoring of evaluation.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a kit checkpoint (trained or converted)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--boxes", metavar="JSON", help="person boxes per image (see below)")
    where.add_argument("--whole-image", action="store_true",
                       help="each whole image is one person (the default without --boxes)")
    p.add_argument("--out", default="predictions",
                   help="output folder (default: %(default)s)")
    p.add_argument("--no-flip", action="store_true", help="predict without the flip test "
                                                          "(default: flip test on, as evaluation)")
    p.add_argument("--kpt-scores", choices=KPT_SCORE_CHOICES, default="auto",
                   help="keypoint scores: auto = as evaluation scores this checkpoint (unit for a "
                        "student trained without L_CS), model, or unit (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="crops per forward pass (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's choice)")
    p.set_defaults(func=_run)


__all__ = ["load_checkpoint_model", "keypoint_score_rule", "crop_persons", "predict_image",
           "predict_files", "check_images", "ImagePrediction", "drawn_name", "add_cli",
           "RESULTS_FILE"]
