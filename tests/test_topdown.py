"""TopDownCocoDataset on hand-made COCO-layout fixtures (no synthetic generator)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from distilkit.data.errors import DataError
from distilkit.data.topdown import DEFAULT_DET_FILE, TopDownCocoDataset
from distilkit.data.transforms import AugmentConfig, denormalize_image
from distilkit.engine.data import build_train_loader, start_epoch
from distilkit.engine.distributed import DistInfo
from distilkit.keypoints import FLIP_INDEX, PERSON_CATEGORY

K = 17
IMG_W, IMG_H = 400, 360


def person(rng, x0=100, y0=80, w=154, h=205, min_dist=16.0) -> np.ndarray:
    """17 labelled keypoints (x, y, v=2) inside a box, at least ``min_dist`` apart."""
    pts: list[np.ndarray] = []
    while len(pts) < K:
        p = rng.uniform([x0 + 4, y0 + 4], [x0 + w - 4, y0 + h - 4]).round()
        if all(np.hypot(*(p - q)) >= min_dist for q in pts):
            pts.append(p)
    return np.hstack([np.array(pts), np.full((K, 1), 2.0)])


def ann(ann_id, image_id, bbox, kpts, **extra) -> dict:
    kpts = np.asarray(kpts, dtype=float)
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "bbox": [float(v) for v in bbox], "keypoints": kpts.reshape(-1).tolist(),
            "num_keypoints": int((kpts[:, 2] > 0).sum()), "area": float(bbox[2] * bbox[3]),
            **extra}


def write_root(root: Path, split: str, images: dict[int, np.ndarray], anns: list[dict],
               ext: str = ".jpg", dets: list[dict] | None = None) -> Path:
    """COCO layout: images as files, an annotation JSON and optionally a detection JSON."""
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / f"{split}2017").mkdir(parents=True, exist_ok=True)
    infos = []
    for image_id, pixels in images.items():
        name = f"{image_id:012d}{ext}"
        cv2.imwrite(str(root / f"{split}2017" / name), pixels)
        infos.append({"id": image_id, "file_name": name,
                      "height": pixels.shape[0], "width": pixels.shape[1]})
    data = {"images": infos, "annotations": anns, "categories": [PERSON_CATEGORY]}
    (root / "annotations" / f"person_keypoints_{split}2017.json").write_text(json.dumps(data))
    if dets is not None:
        (root / DEFAULT_DET_FILE).parent.mkdir(parents=True, exist_ok=True)
        (root / DEFAULT_DET_FILE).write_text(json.dumps(dets))
    return root


def simple_root(tmp_path, split="train", n_images=3, dets=None) -> Path:
    rng = np.random.default_rng(0)
    images, anns = {}, []
    for i in range(1, n_images + 1):
        images[i] = rng.integers(0, 255, size=(IMG_H, IMG_W, 3), dtype=np.uint8)
        anns.append(ann(10 * i, i, [100, 80, 154, 205], person(rng)))
    return write_root(tmp_path, split, images, anns, dets=dets)


class DummyCodec:
    def encode(self, keypoints, visible):
        return {"coords": (keypoints / np.array([48.0, 64.0])).astype(np.float32),
                "coord_weights": np.asarray(visible, np.float32)}



def epoch_batches(ds, batch_size: int, workers: int, seed: int, epoch: int = 0) -> list[dict]:
    """One epoch of the training loader, built and started as ``fit`` builds and starts it."""
    loader, sampler, generator = build_train_loader(ds, batch_size=batch_size, workers=workers, seed=seed,
                                                    info=DistInfo())
    start_epoch(ds, sampler, generator, epoch, seed)
    return list(loader)

# ------------------------------------------------------------------------ samples
def test_sample_layout_and_collate(tmp_path):
    ds = TopDownCocoDataset(simple_root(tmp_path), "train", (64, 48), codec=DummyCodec(),
                            aug=AugmentConfig())
    s = ds[0]
    assert s["image"].shape == (3, 64, 48) and s["image"].dtype == torch.float32
    assert s["keypoints"].shape == (K, 2) and s["keypoints_visible"].shape == (K,)
    assert s["coords"].shape == (K, 2) and s["coord_weights"].shape == (K,)
    assert s["meta"]["ann_id"] == 10 and s["meta"]["bbox_score"] == 1.0
    batch = epoch_batches(ds, batch_size=3, workers=0, seed=0)[0]
    assert batch["image"].shape == (3, 3, 64, 48)
    assert batch["coords"].shape == (3, K, 2)
    assert batch["meta"]["center"].shape == (3, 2)
    assert batch["meta"]["flipped"].dtype == torch.bool
    assert sorted(batch["meta"]["image_id"].tolist()) == [1, 2, 3]


def test_no_codec_gives_base_fields(tmp_path):
    ds = TopDownCocoDataset(simple_root(tmp_path), "train", (64, 48), train=False)
    assert set(ds[0]) == {"image", "keypoints", "keypoints_visible", "meta"}
    assert ds[0]["meta"]["flipped"] is False


@pytest.mark.parametrize("workers", [0, 2])
def test_training_batches_are_a_function_of_seed_and_epoch(tmp_path, workers):
    ds = TopDownCocoDataset(simple_root(tmp_path, n_images=4), "train", (32, 24),
                            aug=AugmentConfig(flip_prob=0.5))

    def centers(seed, epoch):
        return torch.cat([b["meta"]["center"] for b in epoch_batches(ds, 2, workers, seed, epoch)])

    first = centers(7, 0)
    assert torch.equal(first, centers(7, 0))          # the same (seed, epoch): the same batches
    assert not torch.equal(first, centers(8, 0))      # another seed
    assert not torch.equal(first, centers(7, 1))      # another epoch


def test_worker_streams_are_seeded_and_distinct(tmp_path):
    # Four copies of one person: identical augmentation streams would give equal crops.
    kpts = person(np.random.default_rng(5))
    anns = [ann(i, 1, [100, 80, 154, 205], kpts) for i in range(1, 5)]
    root = write_root(tmp_path, "train", {1: np.zeros((IMG_H, IMG_W, 3), np.uint8)}, anns)
    ds = TopDownCocoDataset(root, "train", (32, 24), aug=AugmentConfig())
    run = lambda: [b["meta"]["scale"][0] for b in epoch_batches(ds, 1, 2, seed=7)]  # noqa: E731
    a, b = run(), run()
    assert all(torch.equal(x, y) for x, y in zip(a, b))        # deterministic per seed
    assert not torch.equal(a[0], a[1])                          # worker 0 != worker 1


def test_augmentation_keeps_keypoints_on_their_pixels(tmp_path):
    # Each keypoint is a flat disc whose grey level encodes its identity; PNG keeps it exact.
    rng = np.random.default_rng(1)
    kpts = person(rng)
    kpts[3, 2] = 1  # an occluded-but-labelled joint is still a visible target
    img = np.zeros((IMG_H, IMG_W, 3), np.uint8)
    level = lambda k: 40 + 12 * k  # noqa: E731
    for k, (x, y, _) in enumerate(kpts):
        cv2.circle(img, (int(x), int(y)), 3, (level(k),) * 3, -1)
    root = write_root(tmp_path, "train", {1: img}, [ann(1, 1, [100, 80, 154, 205], kpts)],
                      ext=".png")
    ds = TopDownCocoDataset(root, "train", (256, 192),
                            aug=AugmentConfig(half_body_prob=0.5), seed=3)
    n_checked, flips = 0, 0
    for _ in range(40):
        s = ds[0]
        crop = np.rint(denormalize_image(s["image"]) * 255)[..., 0]
        flipped = bool(s["meta"]["flipped"])
        flips += flipped
        for k in np.flatnonzero(s["keypoints_visible"].numpy()):
            x, y = s["keypoints"][k].tolist()
            source = FLIP_INDEX[k] if flipped else k
            xi, yi = min(int(round(x)), 191), min(int(round(y)), 255)
            assert abs(crop[yi, xi] - level(source)) <= 2, (k, flipped, x, y)
            if 6 <= x <= 185 and 6 <= y <= 249:
                ys, xs = np.mgrid[int(y) - 6:int(y) + 7, int(x) - 6:int(x) + 7]
                on = np.abs(crop[ys, xs] - level(source)) <= 2
                found = np.array([xs[on].mean(), ys[on].mean()])
                assert np.abs(found - [x, y]).max() < 1.0, (k, found, x, y)
                n_checked += 1
    assert n_checked > 200 and 5 < flips < 35


# ---------------------------------------------------------------------- bad input
def test_missing_image_names_the_file(tmp_path):
    # removed after the build (which checks every image up front: tests/test_bad_input_data.py)
    root = simple_root(tmp_path)
    ds = TopDownCocoDataset(root, "train", (64, 48))
    (root / "train2017" / "000000000002.jpg").unlink()
    with pytest.raises(DataError, match=r"000000000002\.jpg.*missing"):
        ds[1]


def test_corrupt_image_names_the_file(tmp_path):
    root = simple_root(tmp_path)
    ds = TopDownCocoDataset(root, "train", (64, 48))
    (root / "train2017" / "000000000001.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(DataError, match=r"000000000001\.jpg.*corrupt"):
        ds[0]


def test_missing_image_error_crosses_worker_processes(tmp_path):
    root = simple_root(tmp_path)
    ds = TopDownCocoDataset(root, "train", (64, 48))
    (root / "train2017" / "000000000001.jpg").unlink()
    with pytest.raises(DataError, match=r"000000000001\.jpg"):
        epoch_batches(ds, 3, workers=1, seed=0)


def test_malformed_or_missing_json(tmp_path):
    root = simple_root(tmp_path)
    ann_file = root / "annotations" / "person_keypoints_train2017.json"
    ann_file.write_text('{"images": [')
    with pytest.raises(DataError, match=r"person_keypoints_train2017\.json.*not valid JSON"):
        TopDownCocoDataset(root, "train")
    ann_file.unlink()
    with pytest.raises(DataError, match=r"person_keypoints_train2017\.json.*missing"):
        TopDownCocoDataset(root, "train")


def test_missing_keys(tmp_path):
    root = simple_root(tmp_path)
    ann_file = root / "annotations" / "person_keypoints_train2017.json"
    data = json.loads(ann_file.read_text())
    del data["annotations"][1]["bbox"]
    ann_file.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"annotation 20 lacks.*bbox"):
        TopDownCocoDataset(root, "train")
    ann_file.write_text(json.dumps({"images": data["images"]}))
    with pytest.raises(DataError, match="'annotations'"):
        TopDownCocoDataset(root, "train")


def test_empty_annotation_set(tmp_path):
    root = write_root(tmp_path, "train", {1: np.zeros((50, 50, 3), np.uint8)}, [])
    with pytest.raises(DataError, match=r"person_keypoints_train2017\.json.*no usable"):
        TopDownCocoDataset(root, "train")


def test_filters_crowd_and_unlabelled(tmp_path):
    rng = np.random.default_rng(2)
    anns = [ann(1, 1, [100, 80, 154, 205], person(rng)),
            ann(2, 1, [10, 10, 50, 50], person(rng), iscrowd=1),
            ann(3, 1, [10, 10, 50, 50], np.zeros((K, 3)))]
    root = write_root(tmp_path, "train", {1: np.zeros((IMG_H, IMG_W, 3), np.uint8)}, anns)
    ds = TopDownCocoDataset(root, "train")
    assert len(ds) == 1 and ds.skipped["crowd"] == 1 and ds.skipped["no_keypoints"] == 1


def test_box_outside_image_is_clipped_or_skipped(tmp_path, caplog):
    rng = np.random.default_rng(3)
    anns = [ann(1, 1, [-20, -10, 100, 100], person(rng, 0, 0, 80, 90, min_dist=5)),
            ann(2, 1, [1000, 50, 80, 80], person(rng))]
    root = write_root(tmp_path, "train", {1: np.zeros((IMG_H, IMG_W, 3), np.uint8)}, anns)
    with caplog.at_level(logging.WARNING, logger="distilkit.data.topdown"):
        ds = TopDownCocoDataset(root, "train", (64, 48))
    assert len(ds) == 1 and ds.skipped["degenerate_box"] == 1
    assert np.allclose(ds.instances[0].bbox, [0, 0, 80, 90])
    assert any("skipped 1" in r.message and "degenerate_box" in r.message
               for r in caplog.records)


def det(image_id, score, bbox=(100, 80, 154, 205), category_id=1) -> dict:
    return {"image_id": image_id, "category_id": category_id, "bbox": list(bbox),
            "score": score}


def test_detections_score_threshold_and_category(tmp_path):
    dets = [det(1, 0.1), det(1, 0.5), det(2, 0.9), det(2, 0.95, category_id=2)]
    root = simple_root(tmp_path, "val", n_images=2, dets=dets)
    ds = TopDownCocoDataset(root, "val", (64, 48), det_score_thr=0.4)
    assert len(ds) == 2
    assert ds.skipped["det_below_threshold"] == 1 and ds.skipped["det_not_person"] == 1
    scores = sorted(ds[i]["meta"]["bbox_score"] for i in range(len(ds)))
    assert scores == pytest.approx([0.5, 0.9])
    assert all(ds[i]["meta"]["ann_id"] == -1 for i in range(len(ds)))
    assert ds[0]["keypoints_visible"].sum() == 0
    assert len(TopDownCocoDataset(root, "val", (64, 48))) == 3
    gt = TopDownCocoDataset(root, "val", (64, 48), use_detections=False)
    assert len(gt) == 2 and gt[0]["meta"]["ann_id"] == 10


def test_unknown_detection_ids_are_counted_or_fatal(tmp_path, caplog):
    root = simple_root(tmp_path, "val", n_images=2, dets=[det(1, 0.9), det(77, 0.9)])
    with caplog.at_level(logging.WARNING, logger="distilkit.data.topdown"):
        ds = TopDownCocoDataset(root, "val", (64, 48))
    assert len(ds) == 1 and ds.skipped["det_unknown_image"] == 1
    assert any("COCO_val2017_detections" in r.message and "det_unknown_image" in r.message
               for r in caplog.records)
    bad = tmp_path / "all_unknown.json"
    bad.write_text(json.dumps([det(77, 0.9), det(78, 0.8)]))
    with pytest.raises(DataError, match=r"all_unknown\.json.*all 2 person detections"):
        TopDownCocoDataset(root, "val", det_file=bad)
    (root / DEFAULT_DET_FILE).unlink()
    with pytest.raises(DataError, match=r"COCO_val2017_detections.*missing"):
        TopDownCocoDataset(root, "val")


def test_detection_missing_keys(tmp_path):
    root = simple_root(tmp_path, "val", n_images=1, dets=[{"image_id": 1, "bbox": [0, 0, 9, 9]}])
    with pytest.raises(DataError, match=r"COCO_val2017_detections.*lacks.*score"):
        TopDownCocoDataset(root, "val")
