"""Person boxes for a user's own images: a boxes file, or the whole image as one person.

``distilkit predict`` is top-down: every person it poses is a box. Two file layouts say where
they are, for the images named on the command line::

    COCO-style detections    [{"image_id": 397133, "bbox": [x, y, w, h], "score": 0.98,
                               "category_id": 1}, ...]     ("file_name" may replace "image_id")
    boxes per image          {"img.jpg": [[x, y, w, h], ...], ...}

An image is named by its path as given, its resolved path, or its file name (when no other input
image has the same one); ``image_id`` is the image's id (``image_refs``: the number a COCO
file name holds, ``000000397133.jpg`` -> 397133, else its 1-based position in the input list).

The file is the user's input, so every fault is a ``DataError`` naming the file and the entry:
not JSON, a layout other than these two, a box that is not 4 finite numbers of non-negative
size, a score that is not a number in [0, 1], and an image that is not among the inputs where
that can only be a mistake: a key of the per-image layout (written for these images: a typo),
or a detections file none of whose detections is of an input image (the wrong file). A
detector's file covers a whole dataset, so detections of other images are left out, counted in
one INFO line, as are detections of another category (as the dataset leaves them out).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from distilkit.data.checks import box_problem, is_int_id, score_problem
from distilkit.data.coco_files import load_json
from distilkit.data.errors import DataError
from distilkit.keypoints import PERSON_CATEGORY

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PersonBox:
    """One person to pose: ``bbox`` [x, y, w, h] in image px and the detector's score (Eq. 3)."""

    bbox: tuple[float, float, float, float]
    score: float = 1.0


@dataclass(frozen=True)
class ImageRef:
    """An input image and the id its results carry."""

    path: Path
    image_id: int


def image_refs(paths: Sequence[str | os.PathLike]) -> list[ImageRef]:
    """Ids for the input images: the numbers their file names hold when every name is a number
    and no two are equal (COCO's ``000000397133.jpg``, so results line up with COCO's ids and a
    detections file's ``image_id``), else 1, 2, ... in the order given."""
    paths = [Path(p) for p in paths]
    stems = [p.stem for p in paths]
    if stems and all(s.isdigit() for s in stems) and len({int(s) for s in stems}) == len(stems):
        return [ImageRef(p, int(s)) for p, s in zip(paths, stems)]
    return [ImageRef(p, i) for i, p in enumerate(paths, start=1)]


def whole_image_box(width: float, height: float) -> PersonBox:
    """The whole image as one person (``--whole-image``), score 1."""
    return PersonBox((0.0, 0.0, float(width), float(height)), 1.0)


class UnknownImageError(DataError):
    """A boxes file names an image that is not among the inputs."""


class _Names:
    """Resolves an entry's image reference (name or id) to one of the input images."""

    def __init__(self, images: Sequence[ImageRef], boxes_file: Path) -> None:
        self.images = list(images)
        self.boxes_file = boxes_file
        self.by_id = {ref.image_id: ref for ref in self.images}
        self.by_name: dict[str, list[ImageRef]] = {}
        for ref in self.images:
            keys = {str(ref.path), ref.path.as_posix(), os.path.realpath(ref.path), ref.path.name}
            for key in keys:
                self.by_name.setdefault(key, []).append(ref)

    def _unknown(self, what: str, where: str) -> "UnknownImageError":
        shown = ", ".join(str(r.path) for r in self.images[:5])
        more = " ..." if len(self.images) > 5 else ""
        return UnknownImageError(self.boxes_file, f"{where} names {what}, which is not one of "
                                                  f"the {len(self.images)} input image(s) "
                                                  f"({shown}{more})")

    def by_file_name(self, name, where: str) -> ImageRef:
        if not isinstance(name, str) or not name:
            raise DataError(self.boxes_file, f"{where}: file_name {name!r} is not a file name")
        found = self.by_name.get(name) or self.by_name.get(os.path.realpath(name)) or []
        if len(found) > 1:
            raise DataError(self.boxes_file, f"{where}: file_name {name!r} matches several input "
                                             "images; name it by its path")
        if not found:
            raise self._unknown(f"image {name!r}", where)
        return found[0]

    def by_image_id(self, image_id, where: str) -> ImageRef:
        if not is_int_id(image_id):
            raise DataError(self.boxes_file, f"{where}: image_id {image_id!r} is not an integer")
        if image_id not in self.by_id:
            raise self._unknown(f"image id {image_id}", where)
        return self.by_id[image_id]


def _checked_box(bbox, score, boxes_file: Path, where: str) -> PersonBox:
    problem = box_problem(bbox)
    if problem is None:
        problem = score_problem(score)
    if problem:
        raise DataError(boxes_file, f"{where}: {problem}")
    return PersonBox(tuple(float(v) for v in bbox), float(score))


def _detection_image(det, names: _Names, where: str) -> ImageRef:
    if not isinstance(det, dict) or "bbox" not in det:
        raise DataError(names.boxes_file, f"{where} is not an object with a 'bbox': "
                                          f"{str(det)[:80]}")
    if "image_id" in det:
        return names.by_image_id(det["image_id"], where)
    if "file_name" in det:
        return names.by_file_name(det["file_name"], where)
    raise DataError(names.boxes_file, f"{where} has neither 'image_id' nor 'file_name'")


def _from_detections(records: list, names: _Names, out: dict[int, list[PersonBox]]) -> None:
    skipped = {"other images": 0, "other categories": 0}
    first_unknown: DataError | None = None
    for index, det in enumerate(records):
        where = f"detection #{index}"
        try:
            ref = _detection_image(det, names, where)
        except UnknownImageError as err:
            skipped["other images"] += 1
            first_unknown = first_unknown or err
            continue
        if det.get("category_id", PERSON_CATEGORY["id"]) != PERSON_CATEGORY["id"]:
            skipped["other categories"] += 1
            continue
        out[ref.image_id].append(_checked_box(det["bbox"], det.get("score", 1.0),
                                              names.boxes_file, f"{where} ({ref.path.name})"))
    if first_unknown is not None and not any(out.values()):
        raise DataError(names.boxes_file, f"no detection is of an input image; the first: "
                                          f"{first_unknown.problem}")
    if any(skipped.values()):
        logger.info("%s: left out detections of %s", names.boxes_file,
                    ", ".join(f"{k} ({v})" for k, v in skipped.items() if v))


def _from_mapping(mapping: dict, names: _Names, out: dict[int, list[PersonBox]]) -> None:
    for name, boxes in mapping.items():
        ref = names.by_file_name(name, f"entry {name!r}")
        if not isinstance(boxes, list):
            raise DataError(names.boxes_file, f"entry {name!r} is not a list of [x, y, w, h] boxes")
        for i, bbox in enumerate(boxes):
            out[ref.image_id].append(_checked_box(bbox, 1.0, names.boxes_file,
                                                  f"entry {name!r}, box #{i}"))


def read_boxes(boxes_file: str | os.PathLike, images: Sequence[ImageRef]
               ) -> dict[int, list[PersonBox]]:
    """image id -> its person boxes, in file order, for every input image (an image the file
    gives no box is present with an empty list)."""
    boxes_file = Path(boxes_file)
    data = load_json(boxes_file, "boxes")
    names = _Names(images, boxes_file)
    out: dict[int, list[PersonBox]] = {ref.image_id: [] for ref in images}
    if isinstance(data, list):
        _from_detections(data, names, out)
    elif isinstance(data, dict):
        _from_mapping(data, names, out)
    else:
        raise DataError(boxes_file, "boxes file must hold a list of COCO-style detections or an "
                                    "object of [x, y, w, h] lists per image")
    return out


__all__ = ["PersonBox", "ImageRef", "UnknownImageError", "image_refs", "whole_image_box", "read_boxes"]
