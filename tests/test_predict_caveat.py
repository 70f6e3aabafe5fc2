"""predict's caveat: a model trained on the kit's synthetic figures says so, printed once and
written on every drawn image; what a checkpoint was trained on is recorded by training and, for
older checkpoints (the published models among them), read from their profile and data root."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from distilkit.cli import main as cli_main
from distilkit.data.topdown import read_image_rgb
from distilkit.predict import RESULTS_FILE, synthetic_caveat, training_data
from distilkit.viz.poses import save_pose_image

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("checkpoint, kind", [
    ({"train_data": "synthetic"}, "synthetic"),
    ({"train_data": "coco-layout", "config": {"profile": "cpu", "data_root": None}}, "coco-layout"),
    ({"config": {"profile": "cpu", "data_root": None}}, "synthetic"),
    ({"config": {"profile": "smoke", "data_root": None}}, "synthetic"),
    ({"config": {"profile": "paper", "data_root": "/data/coco"}}, "coco-layout"),
    ({"config": {"profile": "cpu", "data_root": "/data/my_people"}}, "coco-layout"),
    ({"config": {"profile": "cpu"}, "data_root": "/root/.cache/distilkit/synthetic-cpu-seed0"}, "synthetic"),
    ({"model_name": "distilpose-s"}, "unknown"),
])
def test_training_data_is_recorded_or_read_from_profile_and_data_root(checkpoint, kind):
    assert training_data(checkpoint) == kind
    assert (synthetic_caveat(checkpoint) is not None) == (kind == "synthetic")


@pytest.mark.parametrize("role", ["teacher", "plain", "tde", "full"])
def test_the_published_models_are_known_to_be_synthetic(role):
    ckpt = torch.load(REPO / "results" / "models" / f"{role}.pt", map_location="cpu", weights_only=True)
    assert training_data(ckpt) == "synthetic"


def test_training_records_the_data_kind(smoke_teacher):
    ckpt = torch.load(smoke_teacher, map_location="cpu", weights_only=True)
    assert ckpt["train_data"] == "synthetic"


def test_predict_prints_the_caveat_once_and_draws_it(smoke_teacher, smoke_root, tmp_path, capsys):
    image = sorted((smoke_root / "val2017").glob("*.jpg"))[0]
    assert cli_main(["predict", "--checkpoint", str(smoke_teacher), "--whole-image",
                     "--out", str(tmp_path), str(image)]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "synthetic" in notes[0] and str(smoke_teacher) in notes[0]
    drawn = np.asarray(Image.open(tmp_path / f"{image.stem}_pose.png"))
    results = json.loads((tmp_path / RESULTS_FILE).read_text())
    plain = np.asarray(Image.open(save_pose_image(tmp_path / "plain.png", read_image_rgb(image), results)))[..., :3]
    drawn = drawn[..., :3]
    foot = slice(int(drawn.shape[0] * 0.8), None)
    assert drawn.shape == plain.shape
    # the same drawing but for the caveat's dark band and white letters across its foot
    assert np.abs(drawn[foot].astype(int) - plain[foot].astype(int)).mean() > 5
    assert np.array_equal(drawn[:drawn.shape[0] // 2], plain[:plain.shape[0] // 2])
