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
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from distilkit.cli_args import positive_int
from distilkit.data.boxes import ImageRef, PersonBox, image_refs, read_boxes, whole_image_box
from distilkit.data.checks import check_image_file, image_pixel_limit
from distilkit.data.coco_files import read_image_rgb
from distilkit.data.errors import DataError
from distilkit.data.transforms import normalize_image
from distilkit.engine.config import TrainConfig
from distilkit.engine.evaluate import kpt_score_source, predict_batch
from distilkit.evaluation.postprocess import postprocess_predictions
from distilkit.files import UnsafeCheckpointError
from distilkit.geometry import bbox_to_center_scale, clip_bbox_xywh, get_warp_matrix, warp_image
from distilkit.models.checkpoint import load_model_from_checkpoint
from distilkit.predict_output import DrawnPersons, stream_coco_results

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


def training_data(checkpoint: dict) -> str:
    """What the checkpoint was trained on: ``"synthetic"``, ``"coco-layout"`` or ``"unknown"``.

    Checkpoints record it (``train_data``). Older ones, the published models among them, carry
    their run's profile and data root instead: no data root under a profile with a synthetic
    set means that set, and a data root the kit generated is named ``synthetic-<preset>-...``.
    """
    recorded = checkpoint.get("train_data")
    if recorded in ("synthetic", "coco-layout"):
        return recorded
    config = checkpoint.get("config")
    if not isinstance(config, dict):
        return "unknown"
    root = checkpoint.get("data_root") or config.get("data_root")
    if root:
        return "synthetic" if Path(str(root)).name.startswith("synthetic-") else "coco-layout"
    from distilkit.profiles import PROFILES
    profile = PROFILES.get(str(config.get("profile")))
    if profile is None:
        return "unknown"
    return "synthetic" if profile.synthetic else "coco-layout"


def synthetic_caveat(checkpoint: dict) -> str | None:
    """The one-line caveat for a model trained on the kit's synthetic figures (else None)."""
    if training_data(checkpoint) != "synthetic":
        return None
    return ("trained on the kit's small synthetic figures, not photographs: on real images its "
            "keypoints and scores are not to be trusted")


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


def kept_boxes(boxes: Sequence[PersonBox], width: int, height: int) -> list[PersonBox]:
    """The boxes clipped to a ``width`` x ``height`` image; a box of zero width or height, or
    with nothing inside the image, is left out with a WARNING saying which, as the dataset
    leaves out a degenerate detection."""
    kept = []
    for box in boxes:
        if not (box.bbox[2] > 0 and box.bbox[3] > 0):
            logger.warning("box %s has zero width or height; left out", list(box.bbox))
            continue
        clipped = clip_bbox_xywh(box.bbox, float(width), float(height))
        if clipped is None:
            logger.warning("box %s lies outside the %dx%d image; left out", list(box.bbox),
                           width, height)
            continue
        kept.append(PersonBox(tuple(float(v) for v in clipped), box.score))
    return kept


def crop_persons(image_rgb: np.ndarray, boxes: Sequence[PersonBox], input_size: tuple[int, int]):
    """The evaluation crops of ``boxes``: (images (N, 3, H, W), centers (N, 2), scales (N, 2),
    the boxes kept (clipped to the image, ``kept_boxes``))."""
    img_h, img_w = image_rgb.shape[:2]
    aspect = input_size[1] / input_size[0]
    crops, centers, scales = [], [], []
    kept = kept_boxes(boxes, img_w, img_h)
    for box in kept:
        center, scale = bbox_to_center_scale(np.asarray(box.bbox), aspect)
        matrix = get_warp_matrix(center, scale, 0.0, input_size)   # test crops: no rotation
        crops.append(normalize_image(warp_image(image_rgb, matrix, input_size)))
        centers.append(center)
        scales.append(scale)
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


def iter_image_results(model: nn.Module, image_rgb: np.ndarray, boxes, *, flip_test: bool = True,
                       kpt_scores: str = "model", image_id: int = 0, batch_size: int = 32
                       ) -> Iterator[dict]:
    """``predict_image``'s results one by one, ``batch_size`` boxes cropped, run and mapped
    back at a time: memory holds one batch of crops, whatever the number of boxes."""
    if kpt_scores not in ("model", "unit"):
        raise ValueError(f"kpt_scores must be 'model' or 'unit', got {kpt_scores!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    input_size = tuple(model.input_size)
    img_h, img_w = image_rgb.shape[:2]
    kept = kept_boxes(_as_person_boxes(boxes), img_w, img_h)
    device = next(model.parameters()).device
    with _eval_mode(model):
        for start in range(0, len(kept), batch_size):
            chunk = kept[start:start + batch_size]
            images, centers, scales, _ = crop_persons(image_rgb, chunk, input_size)
            coords, scores = predict_batch(model, images.to(device), flip_test=flip_test)
            if kpt_scores == "unit":
                scores = np.ones_like(scores)
            # nms_thr=None: one result per box the user gave (module docstring)
            results = postprocess_predictions(coords, scores, centers, scales,
                                              np.array([b.score for b in chunk]),
                                              [image_id] * len(chunk), input_size, nms_thr=None)
            for result, box in zip(results, chunk):
                result["bbox"] = list(box.bbox)
                yield result


def predict_image(model: nn.Module, image_rgb: np.ndarray, boxes, *, flip_test: bool = True,
                  kpt_scores: str = "model", image_id: int = 0, batch_size: int = 32
                  ) -> list[dict]:
    """COCO keypoint results for the people in ``boxes`` of one (H, W, 3) uint8 RGB image.

    ``boxes``: PersonBoxes or [x, y, w, h(, score)] rows, image px. One result per box inside
    the image, in order: ``image_id``, ``category_id``, ``keypoints`` (17 x [x, y, score], image
    px), ``score`` (Eq. 3: box score x mean keypoint score above 0.2) and ``bbox`` (the box,
    clipped). ``kpt_scores="unit"`` scores every keypoint 1 (``keypoint_score_rule``).
    """
    return list(iter_image_results(model, image_rgb, boxes, flip_test=flip_test,
                                   kpt_scores=kpt_scores, image_id=image_id, batch_size=batch_size))


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


def iter_files(model: nn.Module, paths: Sequence[str | Path], *,
               boxes_file: str | Path | None = None, flip_test: bool = True,
               kpt_scores: str = "model", batch_size: int = 32, max_pixels: int | None = None
               ) -> Iterator[tuple[ImageRef, np.ndarray, Iterator[dict]]]:
    """(ref, image, its results streamed) per image file; without ``boxes_file`` each whole
    image is one person. Every image is header-checked and the boxes file read before the
    first prediction (when this is called, not when the first image is asked for). Each result
    also carries the image's ``file_name`` (the path as given)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    refs = image_refs(paths)
    check_images(refs, max_pixels)
    boxes = read_boxes(boxes_file, refs) if boxes_file is not None else None
    return _each_file(model, refs, boxes, boxes_file, max_pixels,
                      {"flip_test": flip_test, "kpt_scores": kpt_scores, "batch_size": batch_size})


def _each_file(model, refs, boxes, boxes_file, max_pixels, options):
    for ref in refs:
        if boxes is not None and not boxes[ref.image_id]:
            logger.warning("%s: the boxes file %s gives no box for it; nothing predicted",
                           ref.path, boxes_file)
        image = read_image_rgb(ref.path, max_pixels=max_pixels)
        person_boxes = boxes[ref.image_id] if boxes is not None else \
            [whole_image_box(image.shape[1], image.shape[0])]
        results = iter_image_results(model, image, person_boxes, image_id=ref.image_id, **options)
        yield ref, image, ({**r, "file_name": str(ref.path)} for r in results)


def predict_files(model: nn.Module, paths: Sequence[str | Path], *,
                  boxes_file: str | Path | None = None, flip_test: bool = True,
                  kpt_scores: str = "model", batch_size: int = 32,
                  max_pixels: int | None = None) -> Iterator[ImagePrediction]:
    """``iter_files`` with each image's results as a list."""
    for ref, image, results in iter_files(model, paths, boxes_file=boxes_file,
                                          flip_test=flip_test, kpt_scores=kpt_scores,
                                          batch_size=batch_size, max_pixels=max_pixels):
        yield ImagePrediction(ref, image, list(results))


def drawn_name(ref: ImageRef, refs: Sequence[ImageRef]) -> str:
    """``<stem>_pose.png``; the image id goes in front when two inputs share a stem."""
    clash = sum(r.path.stem == ref.path.stem for r in refs) > 1
    return f"{ref.image_id}_{ref.path.stem}_pose.png" if clash else f"{ref.path.stem}_pose.png"


# ------------------------------------------------------------------------------ command
EXAMPLE = """\
examples:
  distilkit synth --profile smoke --out /tmp/smoke_coco             # a few synthetic images to try
  distilkit predict --checkpoint results/models/full.pt --out /tmp/preds \\
      --boxes /tmp/smoke_coco/person_detection_results/COCO_val2017_detections_AP_H_56_person.json \\
      /tmp/smoke_coco/val2017/000010000001.jpg /tmp/smoke_coco/val2017/000010000002.jpg
  distilkit predict --checkpoint distilpose_s.pt --whole-image person.jpg   # a converted paper model

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
    caveat = synthetic_caveat(ckpt)
    if caveat:
        print(f"note: {args.checkpoint} was {caveat}", flush=True)
    rule = keypoint_score_rule(model, ckpt) if args.kpt_scores == "auto" else args.kpt_scores
    out = Path(args.out)
    refs = image_refs(args.images)
    images = iter_files(model, args.images, boxes_file=args.boxes, flip_test=not args.no_flip,
                        kpt_scores=rule, batch_size=args.batch_size)
    with _removed_on_failure(out), stream_coco_results(out / RESULTS_FILE) as results_file:
        for ref, image, results in images:
            drawn = DrawnPersons()
            for result in results:
                drawn.add(results_file.add(result))
            shown, numbers = drawn.numbered()
            path = save_pose_image(out / drawn_name(ref, refs), image, shown, numbers=numbers,
                                   note=f"model {caveat}" if caveat else None)
            scores = ", ".join(f"{r['score']:.2f}" for r in shown[:8]) or "none"
            more = ", ..." if drawn.seen > 8 else ""
            print(f"{ref.path}: {drawn.seen} person(s), scores {scores}{more} -> {path}"
                  f"{drawn.note()}")
    print(f"wrote {results_file.path}: {results_file.count} result(s) of {len(refs)} image(s); "
          f"{getattr(model, 'name', ckpt['model_name'])} ({model.kind}), keypoint scores: {rule}, "
          f"flip test {'off' if args.no_flip else 'on'}")
    return 0


@contextlib.contextmanager
def _removed_on_failure(out: Path):
    """The output folder, removed again when this command made it and then failed."""
    made_here = not out.exists()
    try:
        yield
    except BaseException:
        if made_here:
            shutil.rmtree(out, ignore_errors=True)
        raise


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
    p.add_argument("--batch-size", type=positive_int, default=32,
                   help="crops per forward pass (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch intra-op threads (default: torch's choice)")
    p.set_defaults(func=_run)


__all__ = ["load_checkpoint_model", "keypoint_score_rule", "training_data", "synthetic_caveat", "crop_persons",
           "kept_boxes", "predict_image", "iter_image_results", "iter_files", "predict_files", "check_images",
           "ImagePrediction", "drawn_name", "add_cli",
           "RESULTS_FILE"]
