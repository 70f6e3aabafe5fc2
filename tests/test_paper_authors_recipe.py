"""The paper profile trains as the authors' configs do (yshMars/DistilPose on MMPose 0.x), and
the cpu and smoke profiles train exactly as before: per-teacher augmentation, the teachers'
batch, the dataset's centre shift, StemNet's N(0, 0.001) start, partial Gaussians."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from distilkit.data.transforms import AugmentConfig, shifted_centers
from distilkit.engine.config import TrainConfig
from distilkit.losses import LossConfig
from distilkit.models import build_model
from distilkit.profiles import PAPER, get_profile

TEACHER = LossConfig(reg=False, heatmap=True)
KT_VT_CS = LossConfig(kt=True, vt=True, cs=True)


@pytest.mark.parametrize("model, rotation, scale", [
    ("teacher-hrw48", 40.0, 0.5),          # teacher_hr48_coco_256x192.py
    ("simplebaseline-r50", 40.0, 0.5),     # MMPose 0.x res50_coco_256x192.py
    ("teacher-stemnet", 45.0, 0.35),       # teacher_stemnet_coco_256x192.py
])
def test_each_paper_teacher_trains_with_its_own_configs_factors(model, rotation, scale):
    aug = PAPER.augment_for(teacher=True, model=model)
    assert (aug.rotation, aug.scale_factor, aug.hrnet_draws) == (rotation, scale, True)


@pytest.mark.parametrize("profile", ["cpu", "smoke"])
def test_other_profiles_train_every_run_with_one_augmentation(profile):
    p = get_profile(profile)
    for model in ("teacher-hrw48", "teacher-stemnet", "distilpose-s"):
        assert p.augment_for(teacher=True, model=model) is p.augment
    assert p.augment.center_shift_prob == 0 and not p.partial_heatmaps


def test_paper_teachers_train_at_64_per_gpu_on_8_and_students_at_32():
    assert (PAPER.teacher_schedule.batch_size, PAPER.student_schedule.batch_size) == (512, 256)


def test_the_centre_shift_moves_30_percent_of_boxes_up_to_a_fifth_of_their_size():
    cfg = PAPER.augment
    n = 40_000
    centers = np.tile([[100.0, 200.0]], (n, 1))
    wh = np.tile([[50.0, 120.0]], (n, 1))
    shifted = shifted_centers(centers, wh, cfg, np.random.default_rng(0))
    offset = (shifted - centers) / wh
    moved = np.any(offset != 0, axis=1)
    assert moved.mean() == pytest.approx(0.3, abs=0.01)
    assert np.abs(offset).max() <= 0.2
    # uniform on [-0.2, 0.2] per axis: mean 0, std 0.4 / sqrt(12)
    assert offset[moved].mean(axis=0) == pytest.approx([0, 0], abs=0.005)
    assert offset[moved].std(axis=0) == pytest.approx([0.4 / 12 ** 0.5] * 2, rel=0.02)


def test_the_centre_shift_is_one_draw_per_instance_from_the_seed():
    cfg = PAPER.augment
    centers, wh = np.zeros((10, 2)), np.ones((10, 2))
    first = shifted_centers(centers, wh, cfg, np.random.default_rng(7))
    assert np.array_equal(first, shifted_centers(centers, wh, cfg, np.random.default_rng(7)))
    assert np.array_equal(shifted_centers(centers, wh, AugmentConfig(), np.random.default_rng(7)), centers)


def test_paper_stemnet_starts_from_n_0_0001_and_the_cpu_stemnet_from_he_init():
    torch.manual_seed(0)
    paper = build_model("teacher-stemnet").backbone
    cpu = build_model("teacher-stemnet-cpu").backbone
    for stemnet, low, high in ((paper, 0.0009, 0.0011), (cpu, 0.01, 1.0)):
        convs = [m.weight for m in stemnet.modules() if isinstance(m, torch.nn.Conv2d)]
        std = torch.cat([w.flatten() for w in convs]).std().item()
        assert low < std < high


@pytest.mark.parametrize("profile, model, losses, digest", [
    # computed on main before the paper recipe changed: the cpu and smoke hashes stay
    ("smoke", "teacher-stemnet", TEACHER, "36d8bbf11fd7"),
    ("smoke", "teacher-hrw48", TEACHER, "e97182061021"),
    ("smoke", "distilpose-s", KT_VT_CS, "1178b805de07"),
    ("cpu", "teacher-stemnet", TEACHER, "0658bcc01f83"),
    ("cpu", "teacher-hrw48", TEACHER, "7c37047dee1c"),
    ("cpu", "distilpose-s", KT_VT_CS, "e578dd6dcbe3"),
])
def test_cpu_and_smoke_hashes_do_not_change(profile, model, losses, digest, cpu_as_the_reference_ran):
    """Eager, as 3a755c5's reference ran (results/previous_reference/): the cpu profile now
    compiles these models by default, and a compiled run has its own hash (issue 38;
    tests/test_compile.py). Its students at 8 epochs, as it ran them (issue 39 trains them 6)."""
    teacher = None if losses.heatmap else "a/b/best.pt"
    config = TrainConfig(out_dir="x", model=model, profile=profile, losses=losses, teacher=teacher,
                         compile=False)
    assert config.hash() == digest


def test_the_paper_recipe_enters_the_paper_hash():
    teacher = TrainConfig(out_dir="x", model="teacher-stemnet", profile="paper", losses=TEACHER)
    identity = teacher._identity()
    assert identity["augment"]["center_shift_prob"] == 0.3 and identity["partial_heatmaps"]
    assert identity["model_config"]["backbone"]["init_std"] == 0.001
    hrnet = TrainConfig(out_dir="x", model="teacher-hrw48", profile="paper", losses=TEACHER)
    assert hrnet._identity()["augment"]["rotation"] == 40.0
    assert hrnet.schedule().batch_size == 512


def _train_set(root, aug):
    from distilkit.data.topdown import TopDownCocoDataset
    return TopDownCocoDataset(root, split="train", input_size=(64, 48), aug=aug, seed=3)


def test_the_paper_dataset_shifts_30_percent_of_its_boxes_once_per_build(smoke_root):
    shifted, plain = _train_set(smoke_root, PAPER.augment), _train_set(smoke_root, get_profile("smoke").augment)
    box_centers = np.array([inst.bbox[:2] + inst.bbox[2:4] / 2 for inst in plain.instances])
    assert np.allclose([inst.center for inst in plain.instances], box_centers)
    offsets = np.array([(inst.center - c) / inst.bbox[2:4] for inst, c in zip(shifted.instances, box_centers)])
    moved = np.any(np.abs(offsets) > 1e-9, axis=1)
    assert 0.1 < moved.mean() < 0.5 and np.abs(offsets).max() <= 0.2 + 1e-9     # ~300 instances
    again = _train_set(smoke_root, PAPER.augment)
    assert np.array_equal([i.center for i in again.instances], [i.center for i in shifted.instances])


@pytest.mark.parametrize("partial, weight", [(True, 1.0), (False, 0.0)])
def test_a_labelled_keypoint_just_outside_the_crop_keeps_its_partial_gaussian_on_the_paper_profile(
        partial, weight):
    from types import SimpleNamespace

    from distilkit.codecs import HeatmapCodec
    from distilkit.data.sample import crop_sample
    from distilkit.data.transforms import AugmentParams

    keypoints = np.zeros((17, 3))
    keypoints[0] = [100.0, 100.0, 2]        # the crop's centre
    keypoints[9] = [126.0, 100.0, 2]        # 2 input px right of a 48 px wide crop of 1 px per px
    instance = SimpleNamespace(keypoints=keypoints, image_id=1, ann_id=1, score=1.0)
    params = AugmentParams(center=np.array([100.0, 100.0]), scale=np.array([48.0, 64.0]))
    codec = HeatmapCodec(input_size=(64, 48), heatmap_size=(16, 12), sigma=2.0, partial_outside=partial)
    sample = crop_sample(np.zeros((200, 200, 3), np.uint8), instance, params, (64, 48), codec)
    assert sample["keypoints_visible"][9] == 0            # outside the crop either way
    assert float(sample["heatmap_weights"][9]) == weight
    peak = float(sample["heatmaps"][9].max())
    assert (0.0 < peak < 1.0) if partial else peak == 0.0  # a partial Gaussian: its peak is cut off
    assert float(sample["heatmap_weights"][0]) == 1.0
