"""Checks on dataset values and image files, shared by the dataset and the evaluator.

Value checks (``keypoints_problem``, ``box_problem``, ``score_problem``) return None for a
usable value or a short reason: the caller skips the record, counts it and logs the count.
Image checks raise ``DataError`` naming the file: they run before any pixel is decoded.

What counts as absurd is defined once, in ``far_outside``: a position farther than one
image width/height outside the image. No annotation tool or detector puts a person there;
values like 1e30 come from a unit or parsing bug and would otherwise train or score silently.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path

from PIL import Image

from distilkit.data.errors import DataError, UsageError
from distilkit.keypoints import NUM_KEYPOINTS

# COCO images are at most 640x640 (0.4 MP); 50 MP leaves room for other datasets and
# refuses a decompression bomb before it is decoded (a 20000x20000 RGB image is 1.2 GB).
# Pillow, which reads the headers, refuses above 2 * PIL.Image.MAX_IMAGE_PIXELS (179 MP)
# whatever this limit says: a higher limit needs that raised too.
MAX_IMAGE_PIXELS = 50_000_000
MAX_PIXELS_ENV = "DISTILKIT_MAX_IMAGE_PIXELS"
VISIBILITY_FLAGS = frozenset({0, 1, 2})   # 2.0 == 2: floats match too
# Detection scores are probabilities; the kit's Eq. 3 rescoring multiplies them in.
SCORE_RANGE = (0.0, 1.0)


class Skips(Counter):
    """Skipped records by reason key, with the first example of each for the log."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.examples: dict[str, str] = {}

    def add(self, key: str, example: str = "") -> None:
        self[key] += 1
        if example:
            self.examples.setdefault(key, example)

    def example(self, key: str) -> str:
        """' (first: ...)' for a log line, or '' when none was recorded."""
        text = self.examples.get(key, "")
        return f" (first: {text})" if text else ""


# ---------------------------------------------------------------------------- values
# Exact types: JSON gives int and float only, and bool (an int subclass) is no number.
_NUMBER_TYPES = frozenset({int, float})


def is_number(value) -> bool:
    """An int or float from JSON (a bool is not a number here, nor a numeric string)."""
    return type(value) in _NUMBER_TYPES


def is_int_id(value) -> bool:
    return type(value) is int


def far_outside(x: float, y: float, width: float, height: float) -> bool:
    """True when (x, y) lies farther than one image width/height outside the image.

    The one definition of an absurd position, for keypoints and box corners alike.
    """
    return x < -width or x > 2.0 * width or y < -height or y > 2.0 * height


def _numbers_problem(values, length: int, what: str) -> str | None:
    """Why ``values`` is not a list of ``length`` finite numbers, or None.

    Plain Python, not numpy: on 51 values it is several times faster, and load_coco runs
    it on every annotation of COCO train (262k).
    """
    if not isinstance(values, list) or len(values) != length:
        n = len(values) if isinstance(values, list) else type(values).__name__
        return f"{what} has {n} values, want {length}"
    if not _NUMBER_TYPES.issuperset(map(type, values)):
        return f"{what} holds a non-numeric value"
    if not all(map(math.isfinite, values)):
        return f"{what} holds a non-finite value"
    return None


def keypoints_problem(values, width: float | None = None,
                      height: float | None = None) -> str | None:
    """Why a flat [x, y, v] * K keypoint list is unusable, or None.

    Unusable: not 3K finite numbers, a visibility flag not in {0, 1, 2}, or (when the image
    size is known) a labelled keypoint ``far_outside`` the image.
    """
    problem = _numbers_problem(values, 3 * NUM_KEYPOINTS, "keypoints")
    if problem:
        return problem
    flags = values[2::3]
    if not VISIBILITY_FLAGS.issuperset(flags):
        return "keypoints hold a visibility flag not in {0, 1, 2}"
    if width is not None and any(far_outside(x, y, width, height) for x, y, v
                                 in zip(values[0::3], values[1::3], flags) if v > 0):
        return "a labelled keypoint lies farther than one image size outside the image"
    return None


def box_problem(bbox, width: float | None = None, height: float | None = None) -> str | None:
    """Why an [x, y, w, h] box is unusable, or None.

    Unusable: not 4 finite numbers, a negative width or height, or (when the image size is
    known) a box that overlaps the image but reaches ``far_outside`` it. A box entirely
    outside the image is left to the clipping step, which counts it as degenerate.
    """
    problem = _numbers_problem(bbox, 4, "bbox")
    if problem:
        return problem
    x, y, w, h = bbox
    if w < 0 or h < 0:
        return f"bbox has a negative size ({w:g} x {h:g})"
    if width is None:
        return None
    overlaps = x < width and y < height and x + w > 0 and y + h > 0
    if overlaps and (far_outside(x, y, width, height)
                     or far_outside(x + w, y + h, width, height)):
        return "bbox reaches farther than one image size outside the image"
    return None


def area_problem(area) -> str | None:
    """COCOeval divides by a GT ``area``: a non-finite or negative one poisons every OKS."""
    if not is_number(area) or not math.isfinite(area) or area < 0:
        return f"area {area!r} is not a finite number >= 0"
    return None


def score_problem(score) -> str | None:
    """Why a detection score is unusable (not a finite number in [0, 1]), or None."""
    if not is_number(score):
        return f"score {score!r} is not a number"
    if not math.isfinite(score) or not SCORE_RANGE[0] <= score <= SCORE_RANGE[1]:
        return f"score {score!r} is not in [{SCORE_RANGE[0]:g}, {SCORE_RANGE[1]:g}]"
    return None


# ---------------------------------------------------------------------------- images
def image_pixel_limit(override: int | None = None) -> int:
    """The pixel limit: ``override``, else $DISTILKIT_MAX_IMAGE_PIXELS, else the default."""
    if override is not None:
        value, source = override, "max_image_pixels"
    elif os.environ.get(MAX_PIXELS_ENV, "").strip():
        value, source = os.environ[MAX_PIXELS_ENV].strip(), f"${MAX_PIXELS_ENV}"
    else:
        return MAX_IMAGE_PIXELS
    try:
        limit = int(value)
    except (TypeError, ValueError):
        limit = 0
    if limit <= 0:
        raise UsageError(f"{source} must be a positive integer, got {value!r}")
    return limit


def resolve_inside(image_dir_real: Path, file_name, ann_file: Path, image_id) -> Path:
    """The real path of ``file_name`` under the (resolved) image folder, or DataError.

    ``..`` components, absolute names and symlinks are resolved first, so nothing that
    leads outside the folder is ever opened. The error names the annotation file that
    holds ``file_name``, the image id and the path it leads to.
    """
    where = f"image id {image_id}: file_name {file_name!r}"
    if not isinstance(file_name, str) or not file_name:
        raise DataError(ann_file, f"{where} is not a file name")
    try:
        real = Path(os.path.realpath(image_dir_real / file_name))
    except (OSError, ValueError) as exc:   # e.g. an embedded NUL byte
        raise DataError(ann_file, f"{where} cannot be resolved ({exc})") from None
    if not real.is_relative_to(image_dir_real):
        raise DataError(ann_file, f"{where} resolves to {real}, outside the image folder "
                                  f"{image_dir_real}; refused")
    return real


def open_image_file(path: Path):
    """open(path, 'rb') with DataError for a missing or unreadable file."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise DataError(path, "image file is missing") from None
    except OSError as exc:
        raise DataError(path, f"image file cannot be read ({exc})") from None


def header_size(f, path: Path, limit: int) -> tuple[int, int]:
    """(width, height) from the image header of open file ``f``; Pillow decodes nothing."""
    try:
        # Image.open parses the header only; pixels would be decoded by .load(), never called.
        return Image.open(f).size
    except Image.DecompressionBombError as exc:   # Pillow's own limit, above ours by default
        raise DataError(path, f"image is too large: {exc} (the kit's limit of {limit} pixels "
                              f"is max_image_pixels / ${MAX_PIXELS_ENV}; Pillow's is "
                              "PIL.Image.MAX_IMAGE_PIXELS); refused before decoding") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise DataError(path, f"image file is corrupt or not a readable image ({exc})") from None


def check_size(path: Path, size: tuple[int, int], declared, limit: int) -> None:
    """DataError when the header size exceeds ``limit`` pixels or differs from ``declared``."""
    w, h = size
    if w * h > limit:
        raise DataError(path, f"image is {w}x{h} = {w * h} pixels, over the limit of {limit} "
                              f"(max_image_pixels / ${MAX_PIXELS_ENV}); refused before decoding")
    if declared is not None and (w, h) != tuple(declared):
        raise DataError(path, f"image is {w}x{h} but the annotation declares "
                              f"{declared[0]}x{declared[1]} (width x height)")


def file_signature(f) -> tuple[int, ...]:
    """Identity and version of an open file: a replacement, a rename or a rewrite changes it
    (size, mtime, or ctime, which no user can set back; a same-size rewrite within one tick
    of the file system's clock is the one change it can miss)."""
    st = os.fstat(f.fileno())
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def check_image_file(path: Path, declared, limit: int) -> tuple[int, ...]:
    """Exists, header readable, size as declared, under the pixel limit: no decoding.

    Returns the checked file's ``file_signature``.
    """
    with open_image_file(path) as f:
        check_size(path, header_size(f, path, limit), declared, limit)
        return file_signature(f)
