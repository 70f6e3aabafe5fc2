"""Decoded images kept in memory: a training set decodes each image once per run instead of
once per crop per epoch (the loader worker's decoding was 8 of its 14 ms per cpu-profile batch).

The pixels kept are the very arrays ``read_image`` returns, made read-only, so every crop is
bit-identical to decoding the file each time; augmentation still draws per sample and per
epoch. They are decoded in the training process before the loader's workers fork, which share
them copy-on-write. A set is kept only when its decoded pixels fit under a limit
(``DEFAULT_LIMIT_BYTES``, or ``$DISTILKIT_DECODED_IMAGES_BYTES``; 0 turns it off): the cpu
profile's synthetic training set is about 1 GB.
"""
from __future__ import annotations

import os

import numpy as np

DEFAULT_LIMIT_BYTES = 2 * 10**9
LIMIT_ENV = "DISTILKIT_DECODED_IMAGES_BYTES"


def decoded_limit(limit: int | None = None) -> int:
    """Bytes of decoded pixels a set may keep: ``limit``, else the environment's, else 2 GB."""
    if limit is not None:
        return int(limit)
    value = os.environ.get(LIMIT_ENV, "").strip()
    if not value:
        return DEFAULT_LIMIT_BYTES
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"${LIMIT_ENV} must be a number of bytes, got {value!r}") from None


def decoded_bytes(dataset) -> int:
    """Bytes the dataset's images take decoded (RGB uint8, from the sizes its annotations declare,
    which the build checked against each file's header)."""
    total = 0
    for image_id in dict.fromkeys(inst.image_id for inst in dataset.instances):
        width, height = dataset.declared_size(image_id)
        total += int(width) * int(height) * 3
    return total


def keep_decoded(dataset, limit: int | None = None) -> bool:
    """Decode every image of ``dataset`` (a TopDownCocoDataset) once and keep it in memory, if
    they fit under ``decoded_limit(limit)``; True when kept."""
    if decoded_bytes(dataset) > decoded_limit(limit):
        return False
    images: dict[int, np.ndarray] = {}
    for image_id in dict.fromkeys(inst.image_id for inst in dataset.instances):
        image = dataset.read_image(image_id)
        image.flags.writeable = False      # a crop can never change what the next one reads
        images[image_id] = image
    dataset.decoded = images
    return True


__all__ = ["DEFAULT_LIMIT_BYTES", "LIMIT_ENV", "decoded_bytes", "decoded_limit", "keep_decoded"]
