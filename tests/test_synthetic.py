"""The embedded synthetic COCO-17 set: layout, determinism, honest labels, detections, cache."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from distilkit.data.synthetic import (DET_FILE, KEYPOINT_PARTS, PARTS_PER_PERSON, SYNTH_PRESETS,
                                      add_cli, dataset_stats, ensure_synthetic,
                                      generate_synthetic, make_scene)
from distilkit.data.synthetic import writer
from distilkit.keypoints import PERSON_CATEGORY

TINY = dataclasses.replace(SYNTH_PRESETS["smoke"], num_train_images=10, num_val_images=6)


def _load(root: Path, split: str) -> dict:
    return json.loads((root / "annotations" / f"person_keypoints_{split}2017.json").read_text())


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout(smoke_root):
    for rel in ("annotations/person_keypoints_train2017.json",
                "annotations/person_keypoints_val2017.json", DET_FILE):
        assert (smoke_root / rel).is_file(), rel
    cfg = SYNTH_PRESETS["smoke"]
    for split, n in (("train", cfg.num_train_images), ("val", cfg.num_val_images)):
        data = _load(smoke_root, split)
        assert len(data["images"]) == n
        assert sorted(p.name for p in (smoke_root / f"{split}2017").glob("*.jpg")) == \
            sorted(img["file_name"] for img in data["images"])
        for img in data["images"][:4]:
            pixels = cv2.imread(str(smoke_root / f"{split}2017" / img["file_name"]))
            assert pixels.shape == (img["height"], img["width"], 3)
        assert data["categories"] == [PERSON_CATEGORY]
    assert not list(smoke_root.parent.glob(".*tmp*")), "temporary folder left behind"


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = _digest(generate_synthetic(tmp_path / "a", TINY, seed=3, progress=False))
    b = _digest(generate_synthetic(tmp_path / "b", TINY, seed=3, progress=False))
    c = _digest(generate_synthetic(tmp_path / "c", TINY, seed=4, progress=False))
    assert a == b
    ann = "annotations/person_keypoints_train2017.json"
    assert a[ann] != c[ann]


def test_output_independent_of_workers_and_chunking(tmp_path, monkeypatch):
    serial = _digest(generate_synthetic(tmp_path / "serial", TINY, seed=5, progress=False))
    monkeypatch.setattr(writer, "_SERIAL_BELOW", 0)
    monkeypatch.setattr(writer, "_CHUNK", 3)
    pooled = _digest(generate_synthetic(tmp_path / "pooled", TINY, seed=5, progress=False))
    assert serial == pooled


def test_annotations_valid(smoke_root):
    ann_ids = set()
    for split in ("train", "val"):
        data = _load(smoke_root, split)
        images = {img["id"]: img for img in data["images"]}
        assert len(data["annotations"]) >= len(images)      # about 1-3 people per image
        for ann in data["annotations"]:
            img = images[ann["image_id"]]
            assert ann["id"] not in ann_ids
            ann_ids.add(ann["id"])
            assert ann["category_id"] == 1 and ann["iscrowd"] == 0
            kp = np.array(ann["keypoints"], dtype=np.float64).reshape(17, 3)
            assert set(kp[:, 2]) <= {0, 1, 2}
            labelled = kp[:, 2] > 0
            assert ann["num_keypoints"] == int(labelled.sum())
            assert (kp[~labelled, :2] == 0).all()
            assert (kp[labelled, 0] >= 0).all() and (kp[labelled, 0] <= img["width"] - 1).all()
            assert (kp[labelled, 1] >= 0).all() and (kp[labelled, 1] <= img["height"] - 1).all()
            assert ann["area"] > 0
            x, y, w, h = ann["bbox"]
            assert w > 0 and h > 0 and x >= 0 and y >= 0
            assert x + w <= img["width"] and y + h <= img["height"]
            # The box covers every labelled keypoint (pixel containing it).
            assert (kp[labelled, 0] >= x - 1e-6).all() and (kp[labelled, 0] <= x + w).all()
            assert (kp[labelled, 1] >= y - 1e-6).all() and (kp[labelled, 1] <= y + h).all()


def test_visibility_is_read_from_owner_map():
    cfg = SYNTH_PRESETS["cpu"]
    causes = {"object": 0, "other person": 0, "own body": 0}
    for index in range(40):
        scene = make_scene(cfg, 0, "train", index)
        h, w = scene.owner.shape
        for p, person in enumerate(scene.people):
            mine = scene.owner // PARTS_PER_PERSON == p + 1
            assert person.area == int(mine.sum())
            for k, (x, y, v) in enumerate(person.keypoints):
                if v == 0:
                    assert x == 0 and y == 0
                    continue
                assert 0 <= x <= w - 1 and 0 <= y <= h - 1
                code = int(scene.owner[int(round(y)), int(round(x))])
                on_own_part = (code // PARTS_PER_PERSON == p + 1
                               and code % PARTS_PER_PERSON in KEYPOINT_PARTS[k])
                assert on_own_part == (v == 2), (index, p, k, code)
                if v == 1:
                    causes["object" if 0 < code < PARTS_PER_PERSON else
                           "other person" if code // PARTS_PER_PERSON != p + 1 else "own body"] += 1
    assert all(n > 0 for n in causes.values()), causes


def test_written_labels_match_in_memory_scene(smoke_root):
    data = _load(smoke_root, "val")
    image = data["images"][0]
    scene = make_scene(SYNTH_PRESETS["smoke"], 0, "val", 0)
    assert (image["width"], image["height"]) == (scene.width, scene.height)
    written = [np.array(a["keypoints"]).reshape(17, 3)
               for a in data["annotations"] if a["image_id"] == image["id"]]
    expected = [p.keypoints for p in scene.people if p.annotated]
    assert len(written) == len(expected)
    for got, want in zip(written, expected):
        np.testing.assert_allclose(got, want, atol=1e-9)


def test_flip_cue_front_back_and_profile():
    facing, lr_sign = [], {"front": [], "back": []}
    for index in range(60):
        for person in make_scene(SYNTH_PRESETS["cpu"], 1, "train", index).people:
            facing.append(person.facing)
            kp = person.keypoints
            if person.facing in lr_sign and kp[5, 2] > 0 and kp[6, 2] > 0:
                lr_sign[person.facing].append(np.sign(kp[5, 0] - kp[6, 0]))
    n = len(facing)
    for kind in ("front", "back", "profile"):
        assert facing.count(kind) / n > 0.1, (kind, facing.count(kind), n)
    # Geometry, not colour, tells left from right: a front-facing person's left shoulder is
    # mostly on the image right, a back-facing one's on the image left (tilted people aside).
    assert np.mean(lr_sign["front"]) > 0.3
    assert np.mean(lr_sign["back"]) < -0.3


def test_tilt_prob_sets_how_many_people_are_far_from_upright():
    from distilkit.data.synthetic.pose import sample_body

    def share_past_60_degrees(tilt_prob: float) -> float:
        rng = np.random.default_rng(0)
        # The torso's up axis in the image: upright people lean and bend by less than
        # 60 degrees but for a few deep bends; lying and upside-down ones are past it.
        ups = np.array([sample_body(rng, tilt_prob).torso_axes[:2, 1] for _ in range(400)])
        return float(np.mean(np.degrees(np.arctan2(np.abs(ups[:, 0]), ups[:, 1])) > 60))

    none, some, all_ = (share_past_60_degrees(t) for t in (0.0, 0.32, 1.0))
    assert none < 0.05
    assert none < some < all_
    assert all_ > 0.3


def _iou(a, b) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_detections(smoke_root):
    dets = json.loads((smoke_root / DET_FILE).read_text())
    data = _load(smoke_root, "val")
    images = {img["id"]: img for img in data["images"]}
    assert dets
    for det in dets:
        img = images[det["image_id"]]
        x, y, w, h = det["bbox"]
        assert det["category_id"] == 1 and 0 < det["score"] <= 1
        assert w > 0 and h > 0 and x >= 0 and y >= 0
        assert x + w <= img["width"] + 1e-6 and y + h <= img["height"] + 1e-6
    found = sum(any(d["image_id"] == a["image_id"] and _iou(d["bbox"], a["bbox"]) > 0.5
                    for d in dets) for a in data["annotations"])
    assert 0.7 * len(data["annotations"]) <= found <= len(data["annotations"])


def test_pycocotools_loads_and_gt_as_results_scores_ap_1(smoke_root):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with contextlib.redirect_stdout(io.StringIO()):
            train = COCO(str(smoke_root / "annotations" / "person_keypoints_train2017.json"))
            val = COCO(str(smoke_root / "annotations" / "person_keypoints_val2017.json"))
            assert len(train.getImgIds()) == SYNTH_PRESETS["smoke"].num_train_images
            results = [{"image_id": a["image_id"], "category_id": 1, "score": 1.0,
                        "keypoints": a["keypoints"]}
                       for a in val.loadAnns(val.getAnnIds()) if a["num_keypoints"] > 0]
            ev = COCOeval(val, val.loadRes(results), "keypoints")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


def test_dataset_stats(smoke_root):
    stats = dataset_stats(smoke_root)
    data = _load(smoke_root, "train")
    assert stats["train"]["images"] == len(data["images"])
    assert stats["train"]["people"] == len(data["annotations"])
    assert stats["train"]["keypoints"] == sum(a["num_keypoints"] for a in data["annotations"])
    assert 0.05 < stats["train"]["occluded_share"] < 0.6


def test_ensure_synthetic_caches_and_regenerates(tmp_path, monkeypatch):
    monkeypatch.setitem(SYNTH_PRESETS, "tiny", TINY)
    monkeypatch.setenv("DISTILKIT_DATA", str(tmp_path))
    root = ensure_synthetic("tiny", seed=2, progress=False)
    assert root == (tmp_path / "synthetic-tiny-seed2").resolve()
    calls = []
    real = writer.generate_synthetic
    monkeypatch.setattr(writer, "generate_synthetic",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    assert ensure_synthetic("tiny", seed=2, progress=False) == root
    assert calls == []                                   # cached: marker matches
    (root / writer.MARKER).write_text('{"hash": "stale"}')
    assert ensure_synthetic("tiny", seed=2, progress=False) == root
    assert calls == [1]                                  # stale marker: regenerated
    assert writer.is_current(root, TINY, 2)


def test_refuses_to_replace_a_foreign_folder(tmp_path):
    (tmp_path / "coco").mkdir()
    (tmp_path / "coco" / "mine.txt").write_text("user data")
    with pytest.raises(FileExistsError):
        generate_synthetic(tmp_path / "coco", TINY, progress=False)
    assert (tmp_path / "coco" / "mine.txt").exists()


def test_cli_synth(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers())
    args = parser.parse_args(["synth", "--profile", "smoke", "--out", str(tmp_path / "s"),
                              "--seed", "1", "--no-progress"])
    assert args.func(args) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "images" in line and "occluded" in line and " s" in line
    assert (tmp_path / "s" / DET_FILE).is_file()
