"""Top-down COCO keypoint dataset: one person instance -> one affine-warped crop.

Works on any COCO-layout root (docs/DESIGN.md "On-disk layout"), real or synthetic::

    ROOT/annotations/person_keypoints_{split}2017.json
    ROOT/{split}2017/<file_name>
    ROOT/person_detection_results/COCO_val2017_detections_AP_H_56_person.json

Instances: training uses GT boxes; validation uses detector boxes (default) or GT boxes.
GT annotations that are crowds or have no labelled keypoint are left out, as in MMPose.

Bad input -- errors (``DataError``, the message names the file and the problem):
  * annotation or detection file missing, not valid JSON, or missing required keys
    (``images``/``annotations``; image ``id``/``file_name``/``width``/``height``;
    annotation ``id``/``image_id``/``bbox``/``keypoints``; detection
    ``image_id``/``bbox``/``score``);
  * no usable instance left after filtering (empty annotation set);
  * every detection names an image id absent from the annotation file;
  * an image file that is missing or cannot be decoded (raised by ``__getitem__``).

Bad input -- counted, logged skips (``dataset.skipped`` holds the counts; a WARNING
names the file and the count):
  * a box lying (after clipping to the image) entirely outside it: ``degenerate_box``
    (GT) / ``det_degenerate_box`` (detections);
  * a GT annotation or a detection naming an unknown image id: ``unknown_image`` /
    ``det_unknown_image``.
Intentional filters are counted too (logged at INFO): ``crowd``, ``no_keypoints``,
``not_person``, ``det_not_person``, ``det_below_threshold``, ``max_instances``.
Boxes partly outside the image are clipped to it, silently (that is normal COCO data).
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from pycocotools.coco import COCO
from torch.utils.data import Dataset, get_worker_info

from distilkit.data.errors import DataError
from distilkit.data.transforms import (AugmentConfig, AugmentParams, apply_affine,
                                       bbox_to_center_scale, clip_bbox_xywh, crop_matrix,
                                       normalize_image, sample_augmentation, warp_image)
from distilkit.keypoints import FLIP_INDEX, NUM_KEYPOINTS, PERSON_CATEGORY

logger = logging.getLogger(__name__)

DEFAULT_DET_FILE = "person_detection_results/COCO_val2017_detections_AP_H_56_person.json"
_IMAGE_KEYS = ("id", "file_name", "width", "height")
_ANN_KEYS = ("id", "image_id", "bbox", "keypoints")
_DET_KEYS = ("image_id", "bbox", "score")
_WARN_SKIPS = {"degenerate_box", "unknown_image", "det_degenerate_box", "det_unknown_image"}


@dataclass
class Instance:
    """One person to crop. ``keypoints`` is (K, 3) x, y, v in image px (zeros for detections)."""

    image_id: int
    ann_id: int
    image_file: Path
    bbox: np.ndarray        # clipped [x, y, w, h]
    center: np.ndarray
    scale: np.ndarray
    score: float
    keypoints: np.ndarray


# ----------------------------------------------------------------------------- files
def read_image_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB; DataError if missing or unreadable."""
    path = Path(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(path, "image file is missing") from None
    except OSError as exc:
        raise DataError(path, f"image file cannot be read ({exc})") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DataError(path, "image file is corrupt or not a decodable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_json(path: str | Path, what: str):
    """json.load with DataError for a missing file or malformed content."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"{what} file is missing")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"{what} file is not valid JSON ({exc})") from None


def _require(record, keys, path, what: str) -> None:
    if not isinstance(record, dict):
        raise DataError(path, f"{what} is not a JSON object: {str(record)[:80]}")
    missing = [k for k in keys if k not in record]
    if missing:
        ident = record.get("id", record.get("image_id", "?"))
        raise DataError(path, f"{what} {ident} lacks required key(s) {missing}")


def load_coco(path: str | Path) -> COCO:
    """Validate a COCO keypoint annotation file and index it with pycocotools."""
    data = load_json(path, "annotation")
    if not isinstance(data, dict):
        raise DataError(path, "annotation file must hold a JSON object")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise DataError(path, f"annotation file lacks a '{key}' list")
    for img in data["images"]:
        _require(img, _IMAGE_KEYS, path, "image")
    for ann in data["annotations"]:
        _require(ann, _ANN_KEYS, path, "annotation")
        if len(ann["bbox"]) != 4 or len(ann["keypoints"]) != 3 * NUM_KEYPOINTS:
            raise DataError(path, f"annotation {ann['id']} has a bbox of length "
                                  f"{len(ann['bbox'])} / keypoints of length "
                                  f"{len(ann['keypoints'])} (want 4 / {3 * NUM_KEYPOINTS})")
    data.setdefault("categories", [PERSON_CATEGORY])
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco


# --------------------------------------------------------------------------- dataset
class TopDownCocoDataset(Dataset):
    """Per-instance crops of a COCO-layout root; sample layout in docs/CONTRACTS.md."""

    def __init__(self, root: str | Path, split: str = "train", input_size=(256, 192),
                 codec=None, train: bool | None = None, use_detections: bool | None = None,
                 det_score_thr: float = 0.0, det_file: str | Path | None = None,
                 aug: AugmentConfig | None = None, max_instances: int | None = None,
                 seed: int = 0) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        self.root = Path(root)
        self.split = split
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.aspect_ratio = self.input_size[1] / self.input_size[0]
        self.codec = codec
        self.train = (split == "train") if train is None else bool(train)
        # Augment only when training; train=True with aug=None gives plain GT crops.
        self.aug = aug if self.train else None
        self.use_detections = (split == "val") if use_detections is None else use_detections
        self.det_score_thr = float(det_score_thr)
        self.det_file = Path(det_file) if det_file is not None else self.root / DEFAULT_DET_FILE
        self.ann_file = self.root / "annotations" / f"person_keypoints_{split}2017.json"
        self.image_dir = self.root / f"{split}2017"
        self.skipped: Counter = Counter()

        self.coco = load_coco(self.ann_file)
        if self.use_detections:
            instances = self._instances_from_detections()
            source = self.det_file
        else:
            instances = self._instances_from_gt()
            source = self.ann_file
        if max_instances is not None and len(instances) > max_instances:
            self.skipped["max_instances"] += len(instances) - max_instances
            instances = instances[:max_instances]
        self._log_skips(source)
        if not instances:
            raise DataError(source, f"no usable instances for split '{split}' "
                                    f"(skipped: {dict(self.skipped) or 'none'})")
        self.instances: list[Instance] = instances
        self.reseed(seed)

    # -- instance lists
    def image_path(self, image_id: int) -> Path:
        return self.image_dir / self.coco.imgs[image_id]["file_name"]

    def _make_instance(self, image_id, ann_id, bbox, score, keypoints, skip_key):
        img = self.coco.imgs[image_id]
        box = clip_bbox_xywh(bbox, float(img["width"]), float(img["height"]))
        if box is None:
            self.skipped[skip_key] += 1
            return None
        center, scale = bbox_to_center_scale(box, self.aspect_ratio)
        return Instance(int(image_id), int(ann_id), self.image_path(image_id), box,
                        center, scale, float(score), keypoints)

    def _instances_from_gt(self) -> list[Instance]:
        out = []
        for ann in sorted(self.coco.dataset["annotations"], key=lambda a: (a["image_id"], a["id"])):
            kpts = np.asarray(ann["keypoints"], dtype=np.float64).reshape(NUM_KEYPOINTS, 3)
            if ann["image_id"] not in self.coco.imgs:
                self.skipped["unknown_image"] += 1
            elif ann.get("category_id", 1) != PERSON_CATEGORY["id"]:
                self.skipped["not_person"] += 1
            elif ann.get("iscrowd", 0):
                self.skipped["crowd"] += 1
            elif ann.get("num_keypoints", int((kpts[:, 2] > 0).sum())) == 0 \
                    or not (kpts[:, 2] > 0).any():
                self.skipped["no_keypoints"] += 1
            else:
                inst = self._make_instance(ann["image_id"], ann["id"], ann["bbox"], 1.0,
                                           kpts, "degenerate_box")
                if inst is not None:
                    out.append(inst)
        return out

    def _instances_from_detections(self) -> list[Instance]:
        dets = load_json(self.det_file, "detection")
        if not isinstance(dets, list):
            raise DataError(self.det_file, "detection file must hold a JSON list")
        out, n_person = [], 0
        no_kpts = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float64)
        for det in dets:
            _require(det, _DET_KEYS, self.det_file, "detection")
            if det.get("category_id", 1) != PERSON_CATEGORY["id"]:
                self.skipped["det_not_person"] += 1
                continue
            n_person += 1
            if det["image_id"] not in self.coco.imgs:
                self.skipped["det_unknown_image"] += 1
            elif float(det["score"]) < self.det_score_thr:
                self.skipped["det_below_threshold"] += 1
            else:
                inst = self._make_instance(det["image_id"], -1, det["bbox"], det["score"],
                                           no_kpts, "det_degenerate_box")
                if inst is not None:
                    out.append(inst)
        if n_person and self.skipped["det_unknown_image"] == n_person:
            raise DataError(self.det_file, f"all {n_person} person detections name image "
                                           f"ids absent from {self.ann_file}")
        out.sort(key=lambda inst: inst.image_id)  # stable: keeps file order per image
        return out

    def _log_skips(self, source: Path) -> None:
        for key, count in sorted(self.skipped.items()):
            level = logging.WARNING if key in _WARN_SKIPS else logging.INFO
            logger.log(level, "%s: skipped %d instance(s): %s", source, count, key)

    # -- randomness
    def reseed(self, seed: int) -> None:
        """Reset the augmentation stream (DataLoader workers reseed themselves)."""
        self._rng = np.random.default_rng(seed)
        self._rng_pid = os.getpid()

    def _worker_rng(self) -> np.random.Generator:
        # Forked workers inherit an identical generator; give each its own stream,
        # derived from the loader's per-epoch, per-worker seed (deterministic).
        info = get_worker_info()
        if info is not None and self._rng_pid != os.getpid():
            self.reseed(info.seed % 2**63)
        return self._rng

    # -- samples
    def __len__(self) -> int:
        return len(self.instances)

    def augment_params(self, index: int) -> AugmentParams:
        """The crop parameters for one draw: fixed box, or a random augmentation."""
        inst = self.instances[index]
        if self.aug is None:
            return AugmentParams(center=inst.center.copy(), scale=inst.scale.copy())
        return sample_augmentation(self._worker_rng(), self.aug, inst.center, inst.scale,
                                   inst.keypoints[:, :2], inst.keypoints[:, 2],
                                   self.aspect_ratio)

    def __getitem__(self, index: int) -> dict:
        inst = self.instances[index]
        params = self.augment_params(index)
        matrix = crop_matrix(params, self.input_size)
        crop = warp_image(read_image_rgb(inst.image_file), matrix, self.input_size)
        keypoints, visible = self.transform_keypoints(inst.keypoints, matrix, params.flip)

        sample = {
            "image": normalize_image(crop),
            "keypoints": torch.from_numpy(keypoints.astype(np.float32)),
            "keypoints_visible": torch.from_numpy(visible.astype(np.float32)),
        }
        if self.codec is not None:
            for name, value in self.codec.encode(keypoints, visible).items():
                if name in sample or name == "meta":
                    raise ValueError(f"codec field {name!r} clashes with a dataset field")
                sample[name] = torch.as_tensor(np.asarray(value))
        sample["meta"] = {
            "image_id": inst.image_id,
            "ann_id": inst.ann_id,
            "center": torch.tensor(params.center, dtype=torch.float32),
            "scale": torch.tensor(params.scale, dtype=torch.float32),
            "bbox_score": inst.score,
            "flipped": params.flip,
        }
        return sample

    def transform_keypoints(self, keypoints_xyv, matrix, flip: bool):
        """(K, 3) image keypoints -> ((K, 2) input px, (K,) 0/1 visible-and-inside).

        Unlabelled keypoints (v = 0) are set to (0, 0) so no garbage position leaks.
        """
        xy = apply_affine(keypoints_xyv[:, :2], matrix)
        labelled = keypoints_xyv[:, 2] > 0
        if flip:  # the matrix already mirrored x; now swap left/right identities
            xy, labelled = xy[list(FLIP_INDEX)], labelled[list(FLIP_INDEX)]
        h, w = self.input_size
        inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
        visible = (labelled & inside).astype(np.float32)
        xy[~labelled] = 0.0
        return xy, visible

    # -- helpers for notebooks
    def load_scene(self, image_id: int) -> tuple[np.ndarray, list[dict]]:
        """Full image (RGB) and its GT annotations, for plotting whole scenes."""
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=[image_id], iscrowd=None))
        return read_image_rgb(self.image_path(image_id)), anns
