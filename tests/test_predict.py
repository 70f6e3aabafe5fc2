"""``distilkit predict`` and ``distilkit.predict``: the smoke synthetic set's validation images,
posed by every model kind, through the same crop, flip test, decoding and rescoring as
evaluation; the boxes-file layouts; and bad input as one ``error:`` line naming the file.

Checkpoints: the session's trained smoke teacher (heatmap) and random-weight smoke models of
the other kinds (prediction does not need a good model, only a well-formed one).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Subset

from distilkit.cli import main as cli_main
from distilkit.data.boxes import PersonBox, image_refs, read_boxes
from distilkit.data.coco_files import read_image_rgb
from distilkit.data.topdown import DEFAULT_DET_FILE, TopDownCocoDataset
from distilkit.engine.config import TrainConfig
from distilkit.engine.data import IndexedDataset
from distilkit.engine.evaluate import predict as evaluate_predict
from distilkit.evaluation.postprocess import postprocess_predictions
from distilkit.files import atomic_torch_save
from distilkit.geometry import bbox_to_center_scale, clip_bbox_xywh
from distilkit.models import build_model
from distilkit.predict import (RESULTS_FILE, crop_persons, keypoint_score_rule,
                               load_checkpoint_model, predict_files, predict_image)

K = 17
RANDOM_MODELS = {"student": ("distilpose-s-smoke", "distilpose-s"),
                 "deeppose": ("deeppose-r50-smoke", "deeppose-r50"),
                 "simplebaseline": ("simplebaseline-r50-smoke", "simplebaseline-r50")}
KINDS = ["student", "teacher", "deeppose", "simplebaseline"]


@pytest.fixture(scope="module")
def checkpoints(smoke_root, smoke_teacher, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("predict_ckpts")
    paths = {"teacher": smoke_teacher}
    for kind, (preset, base) in RANDOM_MODELS.items():
        torch.manual_seed(0)
        paths[kind] = folder / f"{kind}.pt"
        atomic_torch_save({"model_name": preset, "model_overrides": {},
                           "state_dict": build_model(preset).state_dict(),
                           "config": TrainConfig(out_dir=".", model=base, profile="smoke",
                                                 data_root=str(smoke_root)).to_dict()},
                          paths[kind])
    return paths


@pytest.fixture(scope="module")
def val_images(smoke_root) -> list[Path]:
    return sorted((smoke_root / "val2017").glob("*.jpg"))[:3]


def _expected_boxes(smoke_root: Path, images: list[Path]) -> dict[int, list[list[float]]]:
    """image id -> the det file's person boxes of that image, clipped, in file order."""
    dets = json.loads((smoke_root / DEFAULT_DET_FILE).read_text())
    out: dict[int, list[list[float]]] = {}
    for image in images:
        image_id = int(image.stem)
        h, w = read_image_rgb(image).shape[:2]
        out[image_id] = [list(clip_bbox_xywh(d["bbox"], w, h)) for d in dets
                         if d["image_id"] == image_id and d.get("category_id", 1) == 1]
    return out


def _crop_rect(bbox, input_size) -> tuple[np.ndarray, np.ndarray]:
    center, scale = bbox_to_center_scale(bbox, input_size[1] / input_size[0])
    return center - scale / 2, center + scale / 2


@pytest.mark.parametrize("kind", KINDS)
def test_predict_command_on_the_synthetic_val_images(kind, checkpoints, smoke_root, val_images,
                                                     tmp_path, drawn_png):
    out = tmp_path / "out"
    det = smoke_root / DEFAULT_DET_FILE
    assert cli_main(["predict", "--checkpoint", str(checkpoints[kind]), "--boxes", str(det),
                     "--out", str(out), *map(str, val_images)]) == 0
    results = json.loads((out / RESULTS_FILE).read_text())   # strict JSON
    expected = _expected_boxes(smoke_root, val_images)
    assert len(results) == sum(map(len, expected.values())) > 0   # one result per box
    model, _ = load_checkpoint_model(checkpoints[kind])
    heatmap = model.kind == "heatmap"
    inside_image = 0
    for image in val_images:
        h, w = read_image_rgb(image).shape[:2]
        mine = [r for r in results if r["image_id"] == int(image.stem)]
        assert np.allclose([r["bbox"] for r in mine], expected[int(image.stem)])
        for r in mine:
            assert r["category_id"] == 1 and r["file_name"] == str(image)
            kpts = np.asarray(r["keypoints"], dtype=np.float64)
            assert kpts.shape == (3 * K,) and np.isfinite(kpts).all() and np.isfinite(r["score"])
            xy, s = kpts.reshape(K, 3)[:, :2], kpts.reshape(K, 3)[:, 2]
            assert ((s >= 0) & (s <= 1)).all() and 0 <= r["score"] <= 1
            if heatmap:
                # a heatmap peak lies inside the crop, so back in the image inside the crop's
                # rectangle; and inside the image wherever that rectangle is
                lo, hi = _crop_rect(r["bbox"], model.input_size)
                assert ((xy >= lo - 1e-6) & (xy <= hi + 1e-6)).all()
                if (lo >= 0).all() and hi[0] <= w and hi[1] <= h:
                    assert ((xy >= 0) & (xy <= [w, h])).all()
                    inside_image += 1
        drawn_png(out / f"{image.stem}_pose.png")
    if heatmap:
        assert inside_image > 0


@pytest.mark.parametrize("kind", ["student", "teacher"])
def test_whole_image_is_one_box_of_the_image_size(kind, checkpoints, val_images, tmp_path):
    out = tmp_path / "out"
    assert cli_main(["predict", "--checkpoint", str(checkpoints[kind]), "--whole-image",
                     "--out", str(out), *map(str, val_images[:2])]) == 0
    results = json.loads((out / RESULTS_FILE).read_text())
    assert len(results) == 2
    for image, r in zip(val_images, results):
        h, w = read_image_rgb(image).shape[:2]
        assert r["image_id"] == int(image.stem) and r["bbox"] == [0.0, 0.0, float(w), float(h)]
        assert len(r["keypoints"]) == 3 * K and np.isfinite(r["keypoints"]).all()
    # without --boxes the whole image is the box, too
    model, ckpt = load_checkpoint_model(checkpoints[kind])
    default = [r for p in predict_files(model, val_images[:2],
                                        kpt_scores=keypoint_score_rule(model, ckpt))
               for r in p.results]
    assert np.allclose([r["keypoints"] for r in default], [r["keypoints"] for r in results])


@pytest.mark.parametrize("kind", ["student", "teacher"])
def test_predictions_are_evaluations_own(kind, checkpoints, smoke_root, val_images):
    """The crops are the dataset's, bit for bit, and the keypoints those of evaluation's
    predict + postprocess (without OKS-NMS) on the same detector boxes."""
    model, _ = load_checkpoint_model(checkpoints[kind])
    dataset = TopDownCocoDataset(smoke_root, "val", input_size=model.input_size,
                                 use_detections=True)
    ids = {int(p.stem) for p in val_images}
    index = [i for i, inst in enumerate(dataset.instances) if inst.image_id in ids]
    loader = DataLoader(Subset(IndexedDataset(dataset), index), batch_size=len(index))
    pred = evaluate_predict(model, loader, device=torch.device("cpu"))
    expected = postprocess_predictions(pred.coords, pred.scores, pred.centers, pred.scales,
                                       pred.bbox_scores, pred.image_ids, model.input_size,
                                       nms_thr=None)
    mine = [r for p in predict_files(model, val_images, boxes_file=smoke_root / DEFAULT_DET_FILE)
            for r in p.results]
    assert len(mine) == len(expected) == len(index)
    for r, e in zip(mine, expected):
        assert r["image_id"] == e["image_id"]
        assert r["keypoints"] == pytest.approx(e["keypoints"], abs=1e-3)
        assert r["score"] == pytest.approx(e["score"], abs=1e-5)
    inst = dataset.instances[index[0]]
    image = read_image_rgb(inst.image_file)
    crops, centers, scales, _ = crop_persons(image, [PersonBox(tuple(inst.bbox), inst.score)],
                                             model.input_size)
    assert torch.equal(crops[0], dataset[index[0]]["image"])
    assert np.allclose(centers[0], inst.center) and np.allclose(scales[0], inst.scale)


def test_student_without_cs_is_scored_as_evaluation_scores_it(checkpoints, val_images, tmp_path):
    model, ckpt = load_checkpoint_model(checkpoints["student"])
    assert keypoint_score_rule(model, ckpt) == "unit"        # trained without L_CS
    teacher, teacher_ckpt = load_checkpoint_model(checkpoints["teacher"])
    assert keypoint_score_rule(teacher, teacher_ckpt) == "model"
    image = read_image_rgb(val_images[0])
    boxes = [[10.0, 20.0, 60.0, 90.0, 0.7]]
    unit = predict_image(model, image, boxes, kpt_scores="unit")[0]
    assert np.asarray(unit["keypoints"][2::3]).tolist() == [1.0] * K
    assert unit["score"] == pytest.approx(0.7)               # Eq. 3 with unit scores: the box's
    own = predict_image(model, image, boxes, kpt_scores="model")[0]
    assert own["keypoints"][0::3] == unit["keypoints"][0::3]  # same keypoints, other scores
    assert np.asarray(own["keypoints"][2::3]).std() > 0
    out = tmp_path / "out"
    assert cli_main(["predict", "--checkpoint", str(checkpoints["student"]), "--kpt-scores",
                     "model", "--out", str(out), str(val_images[0])]) == 0
    assert json.loads((out / RESULTS_FILE).read_text())[0]["keypoints"][2::3] != [1.0] * K


def test_the_three_ways_of_naming_an_image_give_the_same_boxes(val_images, tmp_path):
    refs = image_refs(val_images)
    assert [r.image_id for r in refs] == [int(p.stem) for p in val_images]
    a, b = val_images[0], val_images[1]
    by_id = tmp_path / "by_id.json"
    by_id.write_text(json.dumps([
        {"image_id": int(a.stem), "bbox": [1, 2, 30, 40], "score": 0.5, "category_id": 1},
        {"image_id": int(b.stem), "bbox": [5, 6, 20, 20], "score": 0.9, "category_id": 1},
        {"image_id": int(a.stem), "bbox": [0, 0, 9, 9], "score": 0.9, "category_id": 2},  # not a person
        {"image_id": 999, "bbox": [0, 0, 9, 9], "score": 0.9, "category_id": 1}]))      # another image
    by_name = tmp_path / "by_name.json"
    by_name.write_text(json.dumps([{"file_name": a.name, "bbox": [1, 2, 30, 40], "score": 0.5},
                                   {"file_name": str(b), "bbox": [5, 6, 20, 20], "score": 0.9}]))
    per_image = tmp_path / "per_image.json"
    per_image.write_text(json.dumps({a.name: [[1, 2, 30, 40]], str(b): [[5, 6, 20, 20]]}))
    want = {int(a.stem): [(1.0, 2.0, 30.0, 40.0)], int(b.stem): [(5.0, 6.0, 20.0, 20.0)],
            int(val_images[2].stem): []}
    for path in (by_id, by_name, per_image):
        got = read_boxes(path, refs)
        assert {k: [p.bbox for p in v] for k, v in got.items()} == want
    assert [p.score for p in read_boxes(by_id, refs)[int(b.stem)]] == [0.9]
    assert [p.score for p in read_boxes(per_image, refs)[int(b.stem)]] == [1.0]
    # names that are not numbers: ids are the positions
    assert [r.image_id for r in image_refs(["x/a.jpg", "y/b.png"])] == [1, 2]


def test_a_box_outside_the_image_is_left_out(checkpoints, val_images):
    model, _ = load_checkpoint_model(checkpoints["student"])
    image = read_image_rgb(val_images[0])
    h, w = image.shape[:2]
    results = predict_image(model, image, [[w + 10.0, 0.0, 20.0, 20.0], [0.0, 0.0, 40.0, 50.0]])
    assert [r["bbox"] for r in results] == [[0.0, 0.0, 40.0, 50.0]]


def _bad(kind: str, tmp: Path, good_image: Path, good_ckpt: Path):
    """(checkpoint, images, extra args, the file the error must name) for one bad input."""
    if kind == "missing image":
        missing = tmp / "nowhere.jpg"
        return good_ckpt, [good_image, missing], [], missing
    if kind == "corrupt image":
        corrupt = tmp / "corrupt.jpg"
        corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is no JPEG")
        return good_ckpt, [good_image, corrupt], [], corrupt
    if kind == "boxes naming an unknown image":
        boxes = tmp / "boxes.json"
        boxes.write_text(json.dumps({good_image.name: [[0, 0, 10, 10]], "typo.jpg": [[0, 0, 5, 5]]}))
        return good_ckpt, [good_image], ["--boxes", str(boxes)], boxes
    if kind == "detections of other images only":
        boxes = tmp / "dets.json"
        boxes.write_text(json.dumps([{"image_id": 7, "bbox": [0, 0, 10, 10], "score": 0.9}]))
        return good_ckpt, [good_image], ["--boxes", str(boxes)], boxes
    if kind == "box that is no box":
        boxes = tmp / "nan.json"
        boxes.write_text(json.dumps({good_image.name: [[0, 0, 10]]}))
        return good_ckpt, [good_image], ["--boxes", str(boxes)], boxes
    bad_ckpt = tmp / "not_a_checkpoint.pt"
    bad_ckpt.write_bytes(b"not a checkpoint at all")
    return bad_ckpt, [good_image], [], bad_ckpt


@pytest.mark.parametrize("kind", ["missing image", "corrupt image", "boxes naming an unknown image",
                                  "detections of other images only", "box that is no box",
                                  "not a checkpoint"])
def test_bad_input_is_one_error_line_naming_the_file(kind, checkpoints, val_images, tmp_path,
                                                     capsys):
    ckpt, images, extra, named = _bad(kind, tmp_path, val_images[0], checkpoints["student"])
    out = tmp_path / "out"
    code = cli_main(["predict", "--checkpoint", str(ckpt), *extra, "--out", str(out),
                     *map(str, images)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and str(named) in err[0], err
    assert not (out / RESULTS_FILE).exists()                  # nothing predicted, nothing written


@pytest.mark.parametrize("command, shows", [
    ("predict", ["(default: predictions)", "(default: auto)", "(default: 32)", "examples:",
                 "distilkit predict --checkpoint"]),
    ("export", ["(default: 0.0001)", "(default: 17)", "examples:", "distilkit export --checkpoint"]),
])
def test_help_shows_defaults_and_an_example(command, shows, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")      # argparse wraps to the terminal: keep phrases whole
    with pytest.raises(SystemExit) as done:
        cli_main([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert [s for s in shows if s not in text] == []


def test_a_zero_size_box_gets_its_own_message(checkpoints, val_images, caplog):
    model, _ = load_checkpoint_model(checkpoints["student"])
    image = read_image_rgb(val_images[0])
    with caplog.at_level("WARNING", logger="distilkit.predict"):
        results = predict_image(model, image, [[5.0, 5.0, 0.0, 20.0], [0.0, 0.0, 40.0, 50.0]])
    assert [r["bbox"] for r in results] == [[0.0, 0.0, 40.0, 50.0]]
    assert [r.getMessage() for r in caplog.records] == \
        ["box [5.0, 5.0, 0.0, 20.0] has zero width or height; left out"]


def test_crops_are_built_and_run_one_batch_at_a_time(checkpoints, val_images, monkeypatch):
    import distilkit.predict as predict_module

    model, _ = load_checkpoint_model(checkpoints["student"])
    image = read_image_rgb(val_images[0])
    boxes = [[float(i % 20), float(i % 15), 30.0, 40.0] for i in range(23)]
    whole = predict_image(model, image, boxes, batch_size=23)
    cropped = []
    original = predict_module.crop_persons
    monkeypatch.setattr(predict_module, "crop_persons",
                        lambda img, chunk, size: cropped.append(len(chunk)) or original(img, chunk, size))
    streamed = predict_image(model, image, boxes, batch_size=5)
    assert cropped == [5, 5, 5, 5, 3]
    assert np.allclose([r["keypoints"] for r in streamed], [r["keypoints"] for r in whole], atol=1e-5)


def test_many_boxes_are_all_in_the_results_file_and_the_best_are_drawn(checkpoints, val_images, tmp_path,
                                                                       capsys, drawn_png):
    from distilkit.predict_output import MAX_DRAWN_PERSONS

    image = val_images[0]
    boxes = tmp_path / "boxes.json"
    n = MAX_DRAWN_PERSONS + 20
    boxes.write_text(json.dumps([{"file_name": image.name, "bbox": [i % 30, i % 20, 25, 35], "score": (i % 7) / 7}
                                 for i in range(n)]))
    out = tmp_path / "out"
    assert cli_main(["predict", "--checkpoint", str(checkpoints["student"]), "--boxes", str(boxes),
                     "--out", str(out), str(image)]) == 0
    results = json.loads((out / RESULTS_FILE).read_text())
    assert len(results) == n
    said = capsys.readouterr().out
    assert f"{n} person(s)" in said and f"drawn: the {MAX_DRAWN_PERSONS} highest-scoring of {n}" in said
    drawn_png(out / f"{image.stem}_pose.png")


def test_drawn_persons_keeps_the_highest_scores_in_their_order():
    from distilkit.predict_output import DrawnPersons

    drawn = DrawnPersons(limit=3)
    for score in [0.1, 0.9, 0.5, 0.9, 0.2, 0.7]:
        drawn.add({"score": score})
    results, numbers = drawn.numbered()
    assert numbers == [1, 3, 5] and [r["score"] for r in results] == [0.9, 0.9, 0.7]
    assert drawn.note() == " (drawn: the 3 highest-scoring of 6)"


@pytest.mark.parametrize("h, w, drawn", [(7000, 7000, (2048, 2048)), (300, 9000, (68, 2048)),
                                         (480, 640, (480, 640))])
def test_large_images_are_drawn_at_display_size_with_their_keypoints_scaled(h, w, drawn):
    from distilkit.viz.poses import display_scaled

    image = np.zeros((h, w, 3), np.uint8)
    keypoints = [v for k in range(K) for v in (w * (k + 1) / 18, h * (k + 1) / 18, 0.5)]
    result = {"keypoints": keypoints, "bbox": [0.0, 0.0, float(w), float(h)], "score": 0.5}
    small, (scaled,) = display_scaled(image, [result])
    assert small.shape[:2] == drawn
    fy, fx = drawn[0] / h, drawn[1] / w
    assert np.allclose(np.reshape(scaled["keypoints"], (K, 3)),
                       np.reshape(keypoints, (K, 3)) * [fx, fy, 1.0])
    assert np.allclose(scaled["bbox"], [0.0, 0.0, drawn[1], drawn[0]])
