"""Top-down COCO keypoint dataset: one person instance -> one affine-warped crop.

Works on any COCO-layout root (docs/PAPER_GRID.md, "One run at a time on real COCO"), real
or synthetic::

    ROOT/annotations/person_keypoints_{split}2017.json
    ROOT/{split}2017/<file_name>
    ROOT/person_detection_results/COCO_val2017_detections_AP_H_56_person.json

Instances: training uses GT boxes; validation uses detector boxes (default) or GT boxes.
GT annotations that are crowds or have no labelled keypoint are left out, as in MMPose.

Bad input -- errors (``DataError``, the message names the file and the problem):
  * annotation or detection file missing, unreadable, not valid JSON, or missing required
    keys (``images``/``annotations``; image ``id``/``file_name``/``width``/``height``;
    annotation ``id``/``image_id``/``bbox``/``keypoints``; detection
    ``image_id``/``bbox``/``score``);
  * in the annotation file, an image or annotation id that is not an integer, or an image
    whose ``width``/``height`` is not a positive number (ids and sizes are the file's
    structure: nothing after them can be trusted);
  * no usable instance left after filtering and skipping (empty annotation set);
  * every detection names an image id absent from the annotation file;
  * when the dataset is built, for every image an instance uses (each image once): a
    ``file_name`` that resolves (``..``, absolute path, symlink) outside ``ROOT/{split}2017/``
    (names the annotation file, the image id and the path; nothing outside is opened), a
    missing file, an unreadable image header, a header size other than the declared
    ``width``/``height``, or more pixels than ``max_image_pixels`` (default
    ``MAX_IMAGE_PIXELS`` = 50 M, or ``$DISTILKIT_MAX_IMAGE_PIXELS``): a decompression bomb
    is refused from its header, before decoding;
  * when a sample is read (``__getitem__``, ``load_scene``): the same header checks again
    for a file changed or replaced since the build (``checks.file_signature``), and a file
    that cannot be decoded.

Bad input -- counted, logged skips (``dataset.skipped`` holds the counts; a WARNING
names the file, the count and the first example):
  * a person annotation whose keypoints are not 51 finite numbers, hold a visibility flag
    not in {0, 1, 2}, or put a labelled keypoint farther than one image width/height
    outside the image (``checks.far_outside``): ``bad_keypoints`` -- an all-NaN annotation
    never reaches the loss;
  * a person annotation whose bbox is not 4 finite numbers, has a negative size, or overlaps
    the image but reaches farther than one image size outside it, or whose ``area`` is not
    a finite number >= 0: ``bad_box``. Both are dropped by ``load_coco``, so COCOeval
    (``evaluation.evaluate_coco``) never sees them either;
  * a box lying (after clipping to the image) entirely outside it: ``degenerate_box``
    (GT) / ``det_degenerate_box`` (detections);
  * a GT annotation naming an unknown image id: ``unknown_image``; a detection naming one,
    or an image id that is not an integer: ``det_unknown_image``;
  * a detection whose score is not a number (``"high"``), not finite, or not in [0, 1]:
    ``det_bad_score``; whose bbox is bad as above: ``det_bad_box``.
Intentional filters are counted too (logged at INFO): ``crowd``, ``no_keypoints``,
``not_person``, ``det_not_person``, ``det_below_threshold``, ``max_instances``.
Boxes partly outside the image are clipped to it, silently (that is normal COCO data).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset, get_worker_info

from distilkit.data.checks import MAX_IMAGE_PIXELS  # noqa: F401  (the default, offered here)
from distilkit.data.checks import (Skips, box_problem, check_image_file, image_pixel_limit, is_int_id,
                                   resolve_inside, score_problem)
from distilkit.data.coco_files import load_coco, load_json, log_skips, read_image_rgb, require_keys
from distilkit.data.errors import DataError
from distilkit.data.sample import crop_sample
from distilkit.data.transforms import AugmentConfig, AugmentParams, sample_augmentation, shifted_centers
from distilkit.geometry import bbox_to_center_scale, clip_bbox_xywh
from distilkit.keypoints import NUM_KEYPOINTS, PERSON_CATEGORY

DEFAULT_DET_FILE = "person_detection_results/COCO_val2017_detections_AP_H_56_person.json"
_DET_KEYS = ("image_id", "bbox", "score")
CENTER_SHIFT_STREAM = 0xC5        # the centre shift's random stream, apart from the augmentation's


@dataclass
class Instance:
    """One person to crop. ``keypoints`` is (K, 3) x, y, v in image px (zeros for detections)."""

    image_id: int
    ann_id: int
    image_file: Path        # the real path, checked to lie inside the image folder
    bbox: np.ndarray        # clipped [x, y, w, h]
    center: np.ndarray
    scale: np.ndarray
    score: float
    keypoints: np.ndarray


class TopDownCocoDataset(Dataset):
    """Per-instance crops of a COCO-layout root; sample layout in docs/CONTRACTS.md.

    ``max_image_pixels`` caps the pixels of any image it opens (default: the
    ``$DISTILKIT_MAX_IMAGE_PIXELS`` environment variable, else ``MAX_IMAGE_PIXELS``).
    """

    def __init__(self, root: str | Path, split: str = "train", input_size=(256, 192),
                 codec=None, train: bool | None = None, use_detections: bool | None = None,
                 det_score_thr: float = 0.0, det_file: str | Path | None = None,
                 aug: AugmentConfig | None = None, max_instances: int | None = None,
                 seed: int = 0, max_image_pixels: int | None = None) -> None:
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
        self.max_image_pixels = image_pixel_limit(max_image_pixels)
        self.skipped: Skips = Skips()        # a Counter, with first examples for the log
        self._image_dir_real = Path(os.path.realpath(self.image_dir))
        self._image_files: dict[int, Path] = {}
        self._checked: dict[int, tuple] = {}      # image id -> file_signature when checked
        self.decoded: dict[int, np.ndarray] = {}  # image id -> pixels kept (data.decoded)

        self.coco = load_coco(self.ann_file, self.skipped)
        if self.use_detections:
            instances = self._instances_from_detections()
            source = self.det_file
        else:
            instances = self._instances_from_gt()
            source = self.ann_file
        if max_instances is not None and len(instances) > max_instances:
            self.skipped["max_instances"] += len(instances) - max_instances
            instances = instances[:max_instances]
        log_skips(self.skipped, self._skip_source)
        if not instances:
            raise DataError(source, f"no usable instances for split '{split}' "
                                    f"(skipped: {dict(self.skipped) or 'none'})")
        # Fail now, before any training, rather than when an epoch first reaches the image.
        self._check_images(instances)
        self.instances: list[Instance] = instances
        if self.aug is not None and self.aug.center_shift_prob:
            self._shift_centers(seed)
        self.reseed(seed)

    # -- instance lists
    def image_path(self, image_id: int) -> Path:
        """The image's real path, checked once to lie inside ``ROOT/{split}2017/``."""
        path = self._image_files.get(image_id)
        if path is None:
            path = resolve_inside(self._image_dir_real, self.coco.imgs[image_id]["file_name"],
                                  self.ann_file, image_id)
            self._image_files[image_id] = path
        return path

    def declared_size(self, image_id: int) -> tuple[float, float]:
        """(width, height) as the annotation file declares them."""
        img = self.coco.imgs[image_id]
        return img["width"], img["height"]

    def read_image(self, image_id: int) -> np.ndarray:
        """The image, RGB; its header is parsed again only if the file changed since the build.
        Images kept decoded (``distilkit.data.decoded``) are those pixels, read-only."""
        if image_id in self.decoded:
            return self.decoded[image_id]
        return read_image_rgb(self.image_path(image_id), self.declared_size(image_id),
                              self.max_image_pixels, self._checked.get(image_id))

    def _check_images(self, instances: list[Instance]) -> None:
        """Header-check every image the instances use, each once (no decoding)."""
        for image_id in dict.fromkeys(inst.image_id for inst in instances):
            try:
                self._checked[image_id] = check_image_file(
                    self.image_path(image_id), self.declared_size(image_id),
                    self.max_image_pixels)
            except DataError as exc:
                raise DataError(exc.path, f"{exc.problem} (image id {image_id} of "
                                          f"{self.ann_file})") from None

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
            if ann["image_id"] not in self.coco.imgs:
                self.skipped["unknown_image"] += 1
                continue
            if ann.get("category_id", 1) != PERSON_CATEGORY["id"]:
                self.skipped["not_person"] += 1
                continue
            if ann.get("iscrowd", 0):
                self.skipped["crowd"] += 1
                continue
            # load_coco has checked a person annotation's values: 51 finite numbers
            kpts = np.asarray(ann["keypoints"], dtype=np.float64).reshape(NUM_KEYPOINTS, 3)
            if ann.get("num_keypoints", int((kpts[:, 2] > 0).sum())) == 0 \
                    or not (kpts[:, 2] > 0).any():
                self.skipped["no_keypoints"] += 1
            else:
                inst = self._make_instance(ann["image_id"], ann["id"], ann["bbox"], 1.0,
                                           kpts, "degenerate_box")
                if inst is not None:
                    out.append(inst)
        return out

    def _detection_skip(self, det: dict, index: int) -> tuple[str, str] | None:
        """(skip key, example) for a person detection, or None to use it."""
        image_id = det["image_id"]
        where = f"detection #{index} (image id {image_id!r})"
        if not is_int_id(image_id) or image_id not in self.coco.imgs:
            return "det_unknown_image", where
        problem = score_problem(det["score"])
        if problem:
            return "det_bad_score", f"{where}: {problem}"
        if det["score"] < self.det_score_thr:
            return "det_below_threshold", ""
        problem = box_problem(det["bbox"], *self.declared_size(image_id))
        if problem:
            return "det_bad_box", f"{where}: {problem}"
        return None

    def _instances_from_detections(self) -> list[Instance]:
        dets = load_json(self.det_file, "detection")
        if not isinstance(dets, list):
            raise DataError(self.det_file, "detection file must hold a JSON list")
        out, n_person = [], 0
        no_kpts = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float64)
        for index, det in enumerate(dets):
            require_keys(det, _DET_KEYS, self.det_file, "detection")
            if det.get("category_id", 1) != PERSON_CATEGORY["id"]:
                self.skipped["det_not_person"] += 1
                continue
            n_person += 1
            skip = self._detection_skip(det, index)
            if skip is not None:
                self.skipped.add(*skip)
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

    def _skip_source(self, key: str) -> Path:
        """The file a skip key counts records of (for the log line)."""
        if key.startswith("det_") or (key == "max_instances" and self.use_detections):
            return self.det_file
        return self.ann_file

    # -- randomness
    def _shift_centers(self, seed: int) -> None:
        """MMPose 0.x's once-per-build box centre shift (``transforms.shifted_centers``), from a
        stream of its own derived from ``seed``: the same boxes every epoch and every row."""
        rng = np.random.default_rng([seed, CENTER_SHIFT_STREAM])
        centers = np.array([inst.center for inst in self.instances])
        box_wh = np.array([inst.bbox[2:4] for inst in self.instances])
        for inst, center in zip(self.instances, shifted_centers(centers, box_wh, self.aug, rng)):
            inst.center = center

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
        return crop_sample(self.read_image(inst.image_id), inst, self.augment_params(index),
                           self.input_size, self.codec)

    # -- helpers for notebooks
    def load_scene(self, image_id: int) -> tuple[np.ndarray, list[dict]]:
        """Full image (RGB) and its GT annotations, for plotting whole scenes."""
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=[image_id], iscrowd=None))
        return self.read_image(image_id), anns
