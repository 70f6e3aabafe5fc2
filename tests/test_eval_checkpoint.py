"""`distilkit eval`: val-only data, the authors' test-time pipeline, fp32 whatever training used."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from distilkit.codecs import HeatmapCodec, flip_heatmaps
from distilkit.engine import TrainConfig, evaluate, evaluate_checkpoint, fit, trainer
from distilkit.keypoints import FLIP_INDEX
from distilkit.models import build_model
from distilkit.models.checkpoint import load_checkpoint
from distilkit.outputs import PoseOutput


def _val_only_copy(root, dest):
    """A COCO folder with what evaluation needs and nothing of the train split."""
    for part in ("val2017", "person_detection_results"):
        shutil.copytree(root / part, dest / part)
    (dest / "annotations").mkdir(parents=True)
    shutil.copy(root / "annotations" / "person_keypoints_val2017.json", dest / "annotations")
    return dest


def test_eval_reads_only_the_val_split(smoke_root, smoke_teacher, tmp_path):
    val_only = _val_only_copy(smoke_root, tmp_path / "coco")
    assert not (val_only / "annotations" / "person_keypoints_train2017.json").exists()
    run = subprocess.run([sys.executable, "-m", "distilkit.cli", "eval", "--checkpoint", str(smoke_teacher),
                          "--data-root", str(val_only), "--no-progress"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    on_full_root = evaluate_checkpoint(smoke_teacher, data_root=smoke_root)
    assert json.loads(run.stdout)["AP"] == pytest.approx(on_full_root["AP"], abs=1e-12)


class _MirrorAwareStudent(nn.Module):
    """A regression 'model' with known outputs: table A on an image, table B on its mirror
    (told apart by the horizontal ramp the test images carry)."""

    kind = "regression"
    input_size = (8, 4)

    def __init__(self, k=17):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.a = (torch.rand(1, k, 2, generator=g), torch.rand(1, k, generator=g))
        self.b = (torch.rand(1, k, 2, generator=g), torch.rand(1, k, generator=g))

    def forward(self, images):
        mirrored = bool(images[0, 0, 0, 0] > images[0, 0, 0, -1])
        coords, scores = self.b if mirrored else self.a
        return PoseOutput(coords=coords, scores=scores)


def test_authors_eval_flips_regression_back_as_their_code_does():
    model = _MirrorAwareStudent()
    images = torch.linspace(0, 1, 4).expand(1, 3, 8, 4).clone()
    (ca, sa), (cb, sb) = model.a, model.b
    swapped = cb[0, FLIP_INDEX]
    # theirs: x' = 1 - x with left/right swapped; the mirror's scores averaged unswapped
    their_x = 0.5 * (ca[0, :, 0] + 1.0 - swapped[:, 0])
    coords, scores = evaluate.predict_batch(model, images, authors=True)
    assert np.allclose(coords[0, :, 0], their_x.numpy() * 4, atol=1e-6)
    assert np.allclose(scores[0], 0.5 * (sa[0] + sb[0]).numpy(), atol=1e-6)
    # the kit's: x' = (W - 1)/W - x, scores follow their keypoints through the swap
    coords, scores = evaluate.predict_batch(model, images)
    assert np.allclose(coords[0, :, 0], (0.5 * (ca[0, :, 0] + 0.75 - swapped[:, 0])).numpy() * 4, atol=1e-6)
    assert np.allclose(scores[0], 0.5 * (sa[0] + sb[0, FLIP_INDEX]).numpy(), atol=1e-6)


def test_authors_eval_decodes_heatmaps_with_dark_kernel_11_after_a_whole_pixel_shift():
    torch.manual_seed(0)
    model = build_model("teacher-hrw48-smoke").eval()
    images = torch.randn(2, 3, *model.input_size)
    with torch.no_grad():
        plain, mirrored = model(images).heatmaps, model(images.flip(-1)).heatmaps
    averaged = 0.5 * (plain + flip_heatmaps(mirrored, FLIP_INDEX, shift=True))
    codec = HeatmapCodec(input_size=tuple(model.input_size), heatmap_size=tuple(plain.shape[-2:]),
                         blur_kernel_size=11)
    expected, expected_scores = codec.decode(averaged.numpy(), dark=True)
    coords, scores = evaluate.predict_batch(model, images, authors=True)
    assert np.allclose(coords, expected, atol=1e-4) and np.allclose(scores, expected_scores, atol=1e-6)
    assert not np.allclose(coords, evaluate.predict_batch(model, images)[0], atol=1e-3)


def test_evaluation_and_best_checkpoint_run_in_fp32_under_mixed_precision_training(
        smoke_root, tmp_path, monkeypatch):
    """Training under autocast (bf16 on the CPU here, as CUDA's --amp would) evaluates in fp32:
    the AP that chose best.pt is what a plain fp32 evaluation of best.pt gives."""
    seen = {"train": [], "eval": []}
    monkeypatch.setattr(trainer, "autocast_for",
                        lambda device, amp: (lambda: torch.autocast("cpu", dtype=torch.bfloat16), False))
    real_losses, real_predict = trainer.compute_losses, evaluate.predict_batch

    def losses_spy(*args, **kwargs):
        seen["train"].append(torch.is_autocast_enabled("cpu"))
        return real_losses(*args, **kwargs)

    def predict_spy(*args, **kwargs):
        seen["eval"].append(torch.is_autocast_enabled("cpu"))
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(trainer, "compute_losses", losses_spy)
    monkeypatch.setattr(evaluate, "predict_batch", predict_spy)
    fit(TrainConfig(out_dir=str(tmp_path), model="distilpose-s", profile="smoke", data_root=str(smoke_root),
                    epochs=1, max_train_instances=32, progress=False))
    assert seen["train"] and all(seen["train"])
    assert seen["eval"] and not any(seen["eval"])
    monkeypatch.undo()
    reported = load_checkpoint(tmp_path / "best.pt")["best_ap"]
    assert evaluate_checkpoint(tmp_path / "best.pt", data_root=smoke_root)["AP"] == reported
