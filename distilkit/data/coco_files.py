"""Reading a COCO-layout root's files, each error naming the file: the annotation file
(validated, bad person annotations counted and dropped, indexed by pycocotools), JSON files, and
images (header-checked before decoding). ``data.topdown`` builds its instances from them;
``evaluation.coco`` scores against the same checked annotations."""
from __future__ import annotations

import contextlib
import io
import json
import logging
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
from pycocotools.coco import COCO

from distilkit.data.checks import (Skips, area_problem, box_problem, check_size, file_signature,
                                   header_size, image_pixel_limit, is_int_id, is_number,
                                   keypoints_problem, open_image_file)
from distilkit.data.errors import DataError
from distilkit.keypoints import PERSON_CATEGORY

logger = logging.getLogger(__name__)

_IMAGE_KEYS = ("id", "file_name", "width", "height")
_ANN_KEYS = ("id", "image_id", "bbox", "keypoints")
_WARN_SKIPS = {"degenerate_box", "unknown_image", "bad_box", "bad_keypoints",
               "det_degenerate_box", "det_unknown_image", "det_bad_box", "det_bad_score"}


def read_image_rgb(path: str | Path, declared_size=None, max_pixels: int | None = None,
                   checked: tuple | None = None) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB; DataError if missing or unreadable.

    The header is checked first (size under ``max_pixels``, default ``image_pixel_limit()``,
    and equal to ``declared_size`` (width, height) when given), so a decompression bomb is
    refused before decoding -- unless the open file still has ``checked``, the signature
    ``check_image_file`` returned for it: Pillow's header parse costs about 0.1 ms, a
    quarter of a small synthetic sample, and an unchanged file needs no second look.
    Decoding is cv2.imdecode of the file's bytes, as always.
    """
    path = Path(path)
    limit = image_pixel_limit(max_pixels)
    with open_image_file(path) as f:   # one open: the bytes decoded are the ones checked
        if checked is None or file_signature(f) != checked:
            check_size(path, header_size(f, path, limit), declared_size, limit)
            f.seek(0)
        try:
            data = np.fromfile(f, dtype=np.uint8)
        except OSError as exc:
            raise DataError(path, f"image file cannot be read ({exc})") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DataError(path, "image file is corrupt or not a decodable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_json(path: str | Path, what: str):
    """json.load with DataError for a missing or unreadable file or malformed content."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"{what} file is missing")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise DataError(path, f"{what} file is not valid JSON ({exc})") from None
    except OSError as exc:
        raise DataError(path, f"{what} file cannot be read ({exc})") from None


def require_keys(record, keys, path, what: str) -> None:
    if not isinstance(record, dict):
        raise DataError(path, f"{what} is not a JSON object: {str(record)[:80]}")
    missing = [k for k in keys if k not in record]
    if missing:
        ident = record.get("id", record.get("image_id", "?"))
        raise DataError(path, f"{what} {ident} lacks required key(s) {missing}")


def _check_structure(data, path: Path) -> None:
    """Whole-file errors: the lists, required keys, integer ids, positive image sizes."""
    if not isinstance(data, dict):
        raise DataError(path, "annotation file must hold a JSON object")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise DataError(path, f"annotation file lacks a '{key}' list")
    for img in data["images"]:
        require_keys(img, _IMAGE_KEYS, path, "image")
        if not is_int_id(img["id"]):
            raise DataError(path, f"image id {img['id']!r} is not an integer")
        if not all(is_number(img[k]) and 0 < img[k] < float("inf") for k in ("width", "height")):
            raise DataError(path, f"image {img['id']} has width/height {img['width']!r}/"
                                  f"{img['height']!r}, not positive numbers")
    for ann in data["annotations"]:
        require_keys(ann, _ANN_KEYS, path, "annotation")
        if not (is_int_id(ann["id"]) and is_int_id(ann["image_id"])):
            raise DataError(path, f"annotation {ann['id']!r} has id/image_id {ann['id']!r}/"
                                  f"{ann['image_id']!r}, not integers")


def _annotation_problem(ann: dict, sizes: dict) -> tuple[str, str] | None:
    """(skip key, reason) for a person annotation with bad values, else None."""
    width, height = sizes.get(ann["image_id"], (None, None))
    problem = keypoints_problem(ann["keypoints"], width, height)
    if problem:
        return "bad_keypoints", problem
    problem = box_problem(ann["bbox"], width, height)
    if problem is None and "area" in ann:
        problem = area_problem(ann["area"])
    return ("bad_box", problem) if problem else None


def _usable_annotations(data: dict, skipped: Skips) -> list[dict]:
    """The annotations without person annotations holding bad values (counted)."""
    sizes = {img["id"]: (img["width"], img["height"]) for img in data["images"]}
    kept = []
    for ann in data["annotations"]:
        # other categories are never used (the dataset counts them as not_person)
        found = (_annotation_problem(ann, sizes)
                 if ann.get("category_id", 1) == PERSON_CATEGORY["id"] else None)
        if found is None:
            kept.append(ann)
        else:
            skipped.add(found[0], f"annotation {ann['id']}: {found[1]}")
    return kept


def log_skips(skipped: Counter, source_of) -> None:
    """One line per skip key: WARNING for bad input, INFO for intentional filters."""
    for key, count in sorted(skipped.items()):
        level = logging.WARNING if key in _WARN_SKIPS else logging.INFO
        example = skipped.example(key) if isinstance(skipped, Skips) else ""
        logger.log(level, "%s: skipped %d instance(s): %s%s", source_of(key), count, key,
                   example)


def load_coco(path: str | Path, skipped: Skips | None = None) -> COCO:
    """Validate a COCO keypoint annotation file and index it with pycocotools.

    Structural faults raise DataError. Person annotations with bad values are dropped
    before indexing and counted into ``skipped`` (``bad_keypoints``/``bad_box``); without
    a counter, a WARNING names the file and the counts.
    """
    path = Path(path)
    data = load_json(path, "annotation")
    _check_structure(data, path)
    counts = Skips() if skipped is None else skipped
    data["annotations"] = _usable_annotations(data, counts)
    if skipped is None:
        log_skips(counts, lambda key: path)
    data.setdefault("categories", [PERSON_CATEGORY])
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco
