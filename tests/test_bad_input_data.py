"""Spec: what the data side does with each kind of bad input (distilkit/data/topdown.py's
docstring lists the same cases).

Every case builds its bad input in tmp_path from the hand-made COCO fixtures of
tests/test_topdown.py and expects one of:
  * ``Fatal(words)``: building the dataset raises DataError whose message holds every word
    (the file, the image id, the path or the sizes), and nothing outside the data root
    (the image planted next to it, say) was opened;
  * ``Skipped(key, file)``: the bad record is skipped, ``dataset.skipped[key] == 1``, the
    other instances are kept (all finite), and a WARNING names the file, the count and the key.
In both, nothing under tmp_path is written or changed. Further down: the checks at read time,
the bomb's time and memory, and results files (always strict JSON).
"""
from __future__ import annotations

import json
import logging
import math
import os
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from distilkit.data import coco_files, topdown
from distilkit.data.checks import MAX_IMAGE_PIXELS, MAX_PIXELS_ENV, far_outside
from distilkit.data.coco_files import read_image_rgb
from distilkit.data.errors import DataError
from distilkit.data.topdown import DEFAULT_DET_FILE, TopDownCocoDataset
from distilkit.evaluation import evaluate_coco, to_coco_results, write_coco_results
from test_topdown import IMG_H, IMG_W, K, ann, det, person, simple_root, write_root

ANN = "person_keypoints_train2017.json"
VAL_ANN = "person_keypoints_val2017.json"
DETS = Path(DEFAULT_DET_FILE).name
BOMB_SIDE = 20_000          # 400 M pixels: 1.2 GB once decoded to BGR


# ------------------------------------------------------------------------ bad-input helpers
def bomb_png(path: Path, width: int, height: int) -> Path:
    """A valid all-black 1-bit PNG of width x height, written row by row (a few kB on disk)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    z = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)             # filter byte + packed bits
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))
    return path


def edit_json(path: Path, edit) -> None:
    """Rewrite a JSON file through ``edit(data)`` (NaN/Infinity written as Python does)."""
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def gt_root(tmp_path: Path, edit=None) -> Path:
    """Three images, one person each; ``edit(data)`` changes the annotation file."""
    root = simple_root(tmp_path / "root")
    if edit is not None:
        edit_json(root / "annotations" / ANN, edit)
    return root


def det_root(tmp_path: Path, bad: dict) -> Path:
    """Val root with three good detections and ``bad`` (one per image)."""
    dets = [det(1, 0.9), det(2, 0.8), det(3, 0.7), bad]
    return simple_root(tmp_path / "root", "val", dets=dets)


def outside_image(tmp_path: Path) -> Path:
    """A perfectly readable image just outside the data root."""
    path = tmp_path / "outside" / "secret.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.zeros((IMG_H, IMG_W, 3), np.uint8))
    return path


def set_file_name(name):
    def edit(data):
        data["images"][0]["file_name"] = name
    return edit


def set_ann(key, value, index=1):
    def edit(data):
        data["annotations"][index][key] = value
    return edit


def set_keypoint(i, value, index=1):
    def edit(data):
        data["annotations"][index]["keypoints"][i] = value
    return edit


def swap_image(tmp_path: Path, make) -> Path:
    """Root whose image 1 is replaced by ``make(path)`` (after the JSON was written)."""
    root = gt_root(tmp_path)
    make(root / "train2017" / "000000000001.jpg")
    return root


# ------------------------------------------------------------------------------ the cases
@dataclass
class Fatal:
    words: tuple[str, ...]


@dataclass
class Skipped:
    key: str
    file: str


def _dotdot(tmp_path):
    outside_image(tmp_path)
    return gt_root(tmp_path, set_file_name("../../outside/secret.jpg")), {}


def _absolute(tmp_path):
    return gt_root(tmp_path, set_file_name(str(outside_image(tmp_path)))), {}


def _symlink_out(tmp_path):
    secret = outside_image(tmp_path)
    root = gt_root(tmp_path)
    link = root / "train2017" / "000000000001.jpg"
    link.unlink()
    link.symlink_to(secret)
    return root, {}


def _write_jpeg(w, h):
    return lambda path: cv2.imwrite(str(path), np.zeros((h, w, 3), np.uint8))


def _bomb_root(tmp_path, side=BOMB_SIDE):
    """A side x side image whose annotation declares exactly that size."""
    root = gt_root(tmp_path)
    bomb_png(root / "train2017" / "bomb.png", side, side)

    def edit(data):
        data["images"][0].update(file_name="bomb.png", width=side, height=side)
    edit_json(root / "annotations" / ANN, edit)
    return root, {}


def _all_nan_keypoints(tmp_path):
    def edit(data):
        for a in data["annotations"]:
            a["keypoints"] = [math.nan] * (3 * K)
    return gt_root(tmp_path, edit), {}


CASES = {
    # ---- the data root is a boundary
    "file_name with ..": (_dotdot, Fatal((ANN, "image id 1", "../../outside/secret.jpg",
                                           "outside the image folder"))),
    "absolute file_name": (_absolute, Fatal((ANN, "image id 1", "outside/secret.jpg",
                                             "outside the image folder"))),
    "symlink leading out": (_symlink_out, Fatal((ANN, "image id 1", "outside/secret.jpg",
                                                 "outside the image folder"))),
    "file_name not a string": (lambda t: (gt_root(t, set_file_name(7)), {}),
                               Fatal((ANN, "image id 1", "not a file name"))),
    # ---- every used image is checked when the dataset is built
    "missing image": (lambda t: (swap_image(t, Path.unlink), {}),
                      Fatal(("000000000001.jpg", "missing", "image id 1", ANN))),
    "corrupt header": (lambda t: (swap_image(t, lambda p: p.write_bytes(b"\xff\xd8\xffjunk")),
                                  {}),
                       Fatal(("000000000001.jpg", "corrupt", "image id 1", ANN))),
    "size not as declared": (lambda t: (swap_image(t, _write_jpeg(300, 200)), {}),
                             Fatal(("000000000001.jpg", "300x200", f"{IMG_W}x{IMG_H}",
                                    "image id 1"))),
    "over max_image_pixels": (lambda t: (gt_root(t), {"max_image_pixels": 1000}),
                              Fatal(("000000000001.jpg", f"{IMG_W}x{IMG_H}",
                                     str(IMG_W * IMG_H), "limit of 1000"))),
    "over $DISTILKIT_MAX_IMAGE_PIXELS": (lambda t: (gt_root(t), {"env": "1000"}),
                                         Fatal(("000000000001.jpg", "limit of 1000",
                                                MAX_PIXELS_ENV))),
    "decompression bomb": (_bomb_root, Fatal(("bomb.png", str(BOMB_SIDE ** 2),
                                              f"limit of {MAX_IMAGE_PIXELS}", "before decoding"))),
    "bomb under Pillow's own limit": (lambda t: _bomb_root(t, 8000),
                                      Fatal(("bomb.png", "8000x8000 = 64000000",
                                             f"limit of {MAX_IMAGE_PIXELS}", "before decoding"))),
    # ---- structure of the annotation file
    "image id not an integer": (lambda t: (gt_root(t, lambda d: d["images"][0].update(id="1")),
                                           {}), Fatal((ANN, "'1'", "not an integer"))),
    "image width not a number": (
        lambda t: (gt_root(t, lambda d: d["images"][0].update(width="wide")), {}),
        Fatal((ANN, "image 1", "'wide'"))),
    "nothing usable left": (_all_nan_keypoints, Fatal((ANN, "no usable instances",
                                                       "bad_keypoints"))),
    "every detection score bad": (
        lambda t: (simple_root(t / "root", "val", dets=[det(1, "high"), det(2, math.nan)]), {}),
        Fatal((DETS, "no usable instances", "det_bad_score"))),
    # ---- annotation values: counted, logged skips
    "NaN keypoint": (lambda t: (gt_root(t, set_keypoint(0, math.nan)), {}),
                     Skipped("bad_keypoints", ANN)),
    "inf keypoint": (lambda t: (gt_root(t, set_keypoint(4, math.inf)), {}),
                     Skipped("bad_keypoints", ANN)),
    "keypoint at 1e30": (lambda t: (gt_root(t, set_keypoint(3, 1e30)), {}),
                         Skipped("bad_keypoints", ANN)),
    "visibility flag 3": (lambda t: (gt_root(t, set_keypoint(2, 3)), {}),
                          Skipped("bad_keypoints", ANN)),
    "keypoint a string": (lambda t: (gt_root(t, set_keypoint(0, "12")), {}),
                          Skipped("bad_keypoints", ANN)),
    "keypoints of wrong length": (
        lambda t: (gt_root(t, lambda d: d["annotations"][1]["keypoints"].pop()), {}),
        Skipped("bad_keypoints", ANN)),
    "NaN bbox": (lambda t: (gt_root(t, set_ann("bbox", [math.nan, 80, 154, 205])), {}),
                 Skipped("bad_box", ANN)),
    "negative-size bbox": (lambda t: (gt_root(t, set_ann("bbox", [100, 80, -154, 205])), {}),
                           Skipped("bad_box", ANN)),
    "bbox reaching 1e30": (lambda t: (gt_root(t, set_ann("bbox", [100, 80, 1e30, 205])), {}),
                           Skipped("bad_box", ANN)),
    "bbox of strings": (lambda t: (gt_root(t, set_ann("bbox", ["a", "b", "c", "d"])), {}),
                        Skipped("bad_box", ANN)),
    "bbox of length 3": (lambda t: (gt_root(t, set_ann("bbox", [100, 80, 154])), {}),
                         Skipped("bad_box", ANN)),
    "NaN area": (lambda t: (gt_root(t, set_ann("area", math.nan)), {}), Skipped("bad_box", ANN)),
    # ---- detection values: counted, logged skips
    "NaN score": (lambda t: (det_root(t, det(1, math.nan)), {}), Skipped("det_bad_score", DETS)),
    "inf score": (lambda t: (det_root(t, det(1, math.inf)), {}), Skipped("det_bad_score", DETS)),
    "score 'high'": (lambda t: (det_root(t, det(1, "high")), {}), Skipped("det_bad_score", DETS)),
    "score above 1": (lambda t: (det_root(t, det(1, 1.5)), {}), Skipped("det_bad_score", DETS)),
    "negative score": (lambda t: (det_root(t, det(1, -0.1)), {}), Skipped("det_bad_score", DETS)),
    "detection bbox NaN": (lambda t: (det_root(t, det(1, 0.9, bbox=(math.nan, 0, 9, 9))), {}),
                           Skipped("det_bad_box", DETS)),
    "detection bbox of strings": (lambda t: (det_root(t, det(1, 0.9, bbox=("a",) * 4)), {}),
                                  Skipped("det_bad_box", DETS)),
    "detection bbox negative": (lambda t: (det_root(t, det(1, 0.9, bbox=(9, 9, -5, 9))), {}),
                                Skipped("det_bad_box", DETS)),
    "detection image_id a string": (lambda t: (det_root(t, det("1", 0.9)), {}),
                                    Skipped("det_unknown_image", DETS)),
    "detection image_id a list": (lambda t: (det_root(t, det([1], 0.9)), {}),
                                  Skipped("det_unknown_image", DETS)),
}


_OPENED: list[str] | None = None


def _audit(event: str, args) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, bytes, Path)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)      # inert unless a test sets _OPENED


def _snapshot(folder: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")
            if not p.is_symlink()}


def _build_recording_opens(root: Path, split: str, kwargs: dict):
    global _OPENED
    _OPENED = []
    try:
        return TopDownCocoDataset(root, split, (64, 48), **kwargs), list(_OPENED)
    except DataError as exc:
        exc.opened = list(_OPENED)
        raise
    finally:
        _OPENED = None


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(case, tmp_path, caplog, monkeypatch):
    build, expected = CASES[case]
    root, kwargs = build(tmp_path)
    if "env" in kwargs:
        monkeypatch.setenv(MAX_PIXELS_ENV, kwargs.pop("env"))
    else:
        monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    split = "val" if (root / DEFAULT_DET_FILE).exists() else "train"
    before = _snapshot(tmp_path)
    if isinstance(expected, Fatal):
        with pytest.raises(DataError) as err:
            _build_recording_opens(root, split, kwargs)
        for word in expected.words:
            assert word in str(err.value), (word, str(err.value))
        outside = [p for p in map(Path, err.value.opened)
                   if p.resolve().is_relative_to(tmp_path.resolve())
                   and not p.resolve().is_relative_to(root.resolve())]
        assert outside == [], f"opened outside the data root: {outside}"
    else:
        with caplog.at_level(logging.WARNING, logger="distilkit.data.topdown"):
            ds, _ = _build_recording_opens(root, split, kwargs)
        kept = 3 if split == "val" else 2        # three good detections / two good people
        assert ds.skipped[expected.key] == 1 and len(ds) == kept, dict(ds.skipped)
        assert all(np.isfinite(i.keypoints).all() and np.isfinite(i.bbox).all()
                   for i in ds.instances)
        assert any(r.levelno == logging.WARNING and expected.file in r.message
                   and f"skipped 1 instance(s): {expected.key}" in r.message
                   for r in caplog.records), [r.message for r in caplog.records]
    assert _snapshot(tmp_path) == before, "the dataset wrote or changed a file"


# ------------------------------------------------------------- checks at read time, cheaply
def test_image_swapped_after_build_is_refused_before_decoding(tmp_path, monkeypatch):
    root = gt_root(tmp_path)
    ds = TopDownCocoDataset(root, "train", (64, 48))
    image = root / "train2017" / "000000000001.jpg"
    _write_jpeg(300, 200)(image)
    with pytest.raises(DataError, match=r"000000000001\.jpg.*300x200.*400x360"):
        ds[0]
    bomb_png(image, BOMB_SIDE, BOMB_SIDE)

    def no_decoding(*args):
        raise AssertionError("a refused image was decoded")
    monkeypatch.setattr(coco_files.cv2, "imdecode", no_decoding)
    with pytest.raises(DataError, match=rf"000000000001\.jpg.*limit of {MAX_IMAGE_PIXELS}"):
        ds[0]
    with pytest.raises(DataError, match=r"limit of"):
        read_image_rgb(image)                      # the default limit applies standalone


def test_an_unchanged_image_is_not_parsed_twice(tmp_path, monkeypatch):
    """The build checked it; only a changed file (size, mtime, ctime, inode) is parsed again."""
    root = gt_root(tmp_path)
    ds = TopDownCocoDataset(root, "train", (64, 48))
    parsed = []
    real = coco_files.header_size
    monkeypatch.setattr(coco_files, "header_size", lambda f, p, n: parsed.append(p) or real(f, p, n))
    ds[0]
    assert parsed == []
    image = root / "train2017" / "000000000001.jpg"
    image.write_bytes(image.read_bytes() + b"\0")    # a new version (bytes after EOI are ignored)
    ds[0]
    assert parsed == [image]


def test_bomb_is_refused_fast_with_little_memory(tmp_path):
    """Building a dataset whose one image is a 20000x20000 PNG (1.2 GB decoded) is refused fast,
    and the refusal adds next to nothing to the process's peak memory (which, with a CUDA build
    of torch imported, is about 1 GB before any data is touched)."""
    root, _ = _bomb_root(tmp_path)
    script = (
        "import resource, time\n"
        "from distilkit.data.topdown import TopDownCocoDataset\n"
        "from distilkit.data.errors import DataError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "t = time.perf_counter()\n"
        "try:\n"
        f"    TopDownCocoDataset({str(root)!r}, 'train', (64, 48))\n"
        "except DataError as exc:\n"
        "    print('refused', time.perf_counter() - t, before, resource.getrusage("
        "resource.RUSAGE_SELF).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "refused", out
    seconds, before_kib, peak_kib = float(out[1]), int(out[2]), int(out[3])
    assert seconds < 1.0 and peak_kib - before_kib < 64 * 1024, (seconds, before_kib, peak_kib)


def test_valid_images_decode_exactly_as_cv2(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, size=(IMG_H, IMG_W, 3), dtype=np.uint8)
    for ext in (".jpg", ".png"):
        path = tmp_path / f"a{ext}"
        cv2.imwrite(str(path), pixels)
        expected = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        assert np.array_equal(read_image_rgb(path, (IMG_W, IMG_H)), expected)


def test_shared_images_are_checked_once(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    anns = [ann(i, 1, [100, 80, 154, 205], person(rng)) for i in (1, 2, 3)]
    root = write_root(tmp_path, "train", {1: np.zeros((IMG_H, IMG_W, 3), np.uint8)}, anns)
    seen = []
    real = topdown.check_image_file
    monkeypatch.setattr(topdown, "check_image_file", lambda *a: seen.append(a[0]) or real(*a))
    assert len(TopDownCocoDataset(root, "train", (64, 48))) == 3 and len(seen) == 1


def test_far_outside_is_one_image_size_beyond_the_edges():
    assert [far_outside(x, 0.0, 400, 360) for x in (-401.0, -400.0, 0.0, 800.0, 801.0)] == \
        [True, False, False, False, True]
    assert far_outside(0.0, 721.0, 400, 360) and not far_outside(0.0, -360.0, 400, 360)


def test_bad_pixel_limit_setting_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match=MAX_PIXELS_ENV):
        TopDownCocoDataset(gt_root(tmp_path), "train", (64, 48))


# ----------------------------------------------------------------- results and evaluation
def _strict_json(text: str):
    def refuse(name):
        raise AssertionError(f"bare {name} in a results file")
    return json.loads(text, parse_constant=refuse)


def test_results_with_non_finite_values_are_written_as_strict_json(tmp_path, caplog):
    good = to_coco_results([1], np.ones((1, K, 2)), np.full((1, K), 0.5), np.array([0.9]))[0]
    bad = dict(good, score=math.nan, keypoints=[math.inf] + good["keypoints"][1:-1] + [math.nan])
    path = tmp_path / "results.json"
    with caplog.at_level(logging.WARNING, logger="distilkit.evaluation.coco"):
        write_coco_results([good, bad], path)
    written = _strict_json(path.read_text())
    assert written[0] == good
    assert written[1]["score"] == 0.0 and written[1]["keypoints"][0] == 0.0
    assert written[1]["keypoints"][-1] == 0.0 and written[1]["keypoints"][1:-1] == \
        bad["keypoints"][1:-1]
    assert math.isnan(bad["score"])                             # the caller's dict is untouched
    assert any(str(path) in r.message and "3 non-finite value(s) in 1 of 2" in r.message
               for r in caplog.records)
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_to_coco_results_zeroes_non_finite_predictions(caplog):
    kpts = np.ones((2, K, 2))
    kpts[1, 3] = np.nan
    with caplog.at_level(logging.WARNING, logger="distilkit.evaluation.coco"):
        res = to_coco_results([1, 2], kpts, np.full((2, K), 0.5), np.array([np.inf, 0.5]))
    assert res[0]["score"] == 0.0 and res[1]["keypoints"][9:11] == [0.0, 0.0]
    assert _strict_json(json.dumps(res)) == res
    assert any("3 non-finite value(s) in 2 of 2" in r.message for r in caplog.records)


def _val_gt(tmp_path, edit=None) -> Path:
    root = simple_root(tmp_path / "gt", "val")
    if edit is not None:
        edit_json(root / "annotations" / VAL_ANN, edit)
    return root / "annotations" / VAL_ANN


def test_a_nan_prediction_scores_nothing(tmp_path):
    """pycocotools matches a NaN keypoint to any person (NaN < threshold is False): an
    all-NaN prediction would score AP 1. Zeroed, it scores what it is worth: nothing."""
    ann_file = _val_gt(tmp_path)
    gt = json.loads(ann_file.read_text())["annotations"]
    truth = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"],
              "score": 1.0} for a in gt]
    assert evaluate_coco(truth, ann_file)["AP"] == pytest.approx(1.0)
    nan = [dict(r, keypoints=[math.nan] * (3 * K)) for r in truth]
    assert evaluate_coco(nan, ann_file)["AP"] == pytest.approx(0.0)


@pytest.mark.parametrize("edit", [set_keypoint(0, math.nan), set_ann("area", math.inf),
                                  lambda d: d["annotations"][1]["keypoints"].pop()],
                         ids=["NaN keypoint", "inf area", "wrong length"])
def test_evaluation_leaves_out_bad_ground_truth(tmp_path, caplog, edit):
    ann_file = _val_gt(tmp_path, edit)
    gt = json.loads(ann_file.read_text())["annotations"]
    truth = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"],
              "score": 1.0} for a in gt if a["id"] != 20]
    with caplog.at_level(logging.WARNING, logger="distilkit.data.topdown"):
        stats = evaluate_coco(truth, ann_file)
    assert stats["AP"] == pytest.approx(1.0)            # the bad person is not a missed one
    assert any(VAL_ANN in r.message and "skipped 1" in r.message for r in caplog.records)


def test_a_bad_results_file_is_named(tmp_path):
    ann_file = _val_gt(tmp_path)
    bad = tmp_path / "results.json"
    bad.write_text("[{")
    with pytest.raises(DataError, match=r"results\.json.*not valid JSON"):
        evaluate_coco(bad, ann_file)
    bad.write_text("{}")
    with pytest.raises(DataError, match=r"results\.json.*JSON list"):
        evaluate_coco(bad, ann_file)
