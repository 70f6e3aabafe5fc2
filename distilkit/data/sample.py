"""One training or validation sample: the crop of one person instance, its keypoints in input
pixels, and the codec's targets (sample layout in docs/CONTRACTS.md)."""
from __future__ import annotations

import numpy as np
import torch

from distilkit.data.transforms import AugmentParams, crop_matrix, normalize_image
from distilkit.geometry import apply_affine, warp_image
from distilkit.keypoints import FLIP_INDEX


def crop_sample(image: np.ndarray, instance, params: AugmentParams, input_size: tuple[int, int],
                codec=None) -> dict:
    """The sample of ``instance`` (a ``topdown.Instance``) cropped from its RGB ``image`` with
    ``params``; with a codec, its encoded targets beside the keypoints."""
    matrix = crop_matrix(params, input_size)
    crop = warp_image(image, matrix, input_size)
    keypoints, visible = transform_keypoints(instance.keypoints, matrix, params.flip, input_size)
    sample = {
        "image": normalize_image(crop),
        "keypoints": torch.from_numpy(keypoints.astype(np.float32)),
        "keypoints_visible": torch.from_numpy(visible.astype(np.float32)),
    }
    if codec is not None:
        targets_of = labelled_after(instance.keypoints, params.flip) if getattr(codec, "partial_outside", False) \
            else visible
        for name, value in codec.encode(keypoints, targets_of).items():
            if name in sample or name == "meta":
                raise ValueError(f"codec field {name!r} clashes with a dataset field")
            sample[name] = torch.as_tensor(np.asarray(value))
    sample["meta"] = {
        "image_id": instance.image_id,
        "ann_id": instance.ann_id,
        "center": torch.tensor(params.center, dtype=torch.float32),
        "scale": torch.tensor(params.scale, dtype=torch.float32),
        "bbox_score": instance.score,
        "flipped": params.flip,
    }
    return sample


def labelled_after(keypoints_xyv: np.ndarray, flip: bool) -> np.ndarray:
    """(K,) 0/1: the keypoints labelled in the annotation, in the (flipped) crop's order."""
    labelled = (keypoints_xyv[:, 2] > 0).astype(np.float32)
    return labelled[list(FLIP_INDEX)] if flip else labelled


def transform_keypoints(keypoints_xyv: np.ndarray, matrix: np.ndarray, flip: bool,
                        input_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(K, 3) image keypoints -> ((K, 2) input px, (K,) 0/1 visible-and-inside).

    Unlabelled keypoints (v = 0) are set to (0, 0) so no garbage position leaks.
    """
    xy = apply_affine(keypoints_xyv[:, :2], matrix)
    labelled = keypoints_xyv[:, 2] > 0
    if flip:  # the matrix already mirrored x; now swap left/right identities
        xy, labelled = xy[list(FLIP_INDEX)], labelled[list(FLIP_INDEX)]
    h, w = input_size
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    visible = (labelled & inside).astype(np.float32)
    xy[~labelled] = 0.0
    return xy, visible
