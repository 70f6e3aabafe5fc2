"""Crop geometry and augmentation primitives (distilkit.data.transforms)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from distilkit.data.transforms import (AugmentConfig, apply_affine, bbox_to_center_scale,
                                       clip_bbox_xywh, compose_affine, crop_matrix,
                                       denormalize_image, flip_keypoints, flip_matrix,
                                       get_warp_matrix, half_body_center_scale,
                                       normalize_image, sample_augmentation,
                                       sample_scale_rotation, warp_image)
from distilkit.keypoints import FLIP_INDEX, KEYPOINT_NAMES, LOWER_BODY_IDS, UPPER_BODY_IDS

LEFT_WRIST = KEYPOINT_NAMES.index("left_wrist")
RIGHT_WRIST = KEYPOINT_NAMES.index("right_wrist")


@pytest.mark.parametrize("size_hw", [(256, 192), (64, 48), (100, 100)])
def test_affine_round_trip(size_hw):
    rng = np.random.default_rng(0)
    for _ in range(200):
        center = rng.uniform(-50, 700, size=2)
        scale = rng.uniform(5, 900, size=2)
        rot = rng.uniform(-180, 180)
        fwd = get_warp_matrix(center, scale, rot, size_hw)
        inv = get_warp_matrix(center, scale, rot, size_hw, inv=True)
        pts = rng.uniform(-100, 900, size=(17, 2))
        back = apply_affine(apply_affine(pts, fwd), inv)
        assert np.abs(back - pts).max() < 1e-3
        assert np.allclose(compose_affine(fwd, inv), [[1, 0, 0], [0, 1, 0]], atol=1e-9)


def test_box_maps_onto_input():
    center, scale, (h, w) = np.array([300.0, 200.0]), np.array([120.0, 160.0]), (256, 192)
    m = get_warp_matrix(center, scale, 0.0, (h, w))
    corners = np.array([[240.0, 120.0], [360.0, 280.0], [300.0, 200.0]])
    assert np.allclose(apply_affine(corners, m), [[0, 0], [w, h], [w / 2, h / 2]])
    # the evaluation module's closed form: x_img = cx + (x_in / W - 0.5) * sw
    x_in = np.array([[17.0, 99.0]])
    x_img = apply_affine(x_in, get_warp_matrix(center, scale, 0.0, (h, w), inv=True))
    expect = center + (x_in / np.array([w, h]) - 0.5) * scale
    assert np.allclose(x_img, expect)


def test_rotation_matches_mmpose_three_point_construction():
    # MMPose 1.x get_warp_matrix: src = c, c + R(rot)@[-sw/2, 0], third point at 90 deg.
    center, scale, rot, (h, w) = np.array([210.0, 150.0]), np.array([96.0, 128.0]), 30.0, (256, 192)
    t = np.deg2rad(rot)
    r = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])

    def third(a, b):
        d = a - b
        return b + np.array([-d[1], d[0]])

    src0, src1 = center, center + r @ np.array([-scale[0] / 2, 0.0])
    dst0, dst1 = np.array([w / 2, h / 2]), np.array([w / 2 - w / 2, h / 2])
    src = np.stack([src0, src1, third(src0, src1)]).astype(np.float32)
    dst = np.stack([dst0, dst1, third(dst0, dst1)]).astype(np.float32)
    ref = cv2.getAffineTransform(src, dst)
    assert np.allclose(get_warp_matrix(center, scale, rot, (h, w)), ref, atol=1e-4)


def test_warp_image_moves_pixels_like_apply_affine():
    img = np.zeros((300, 400, 3), np.uint8)
    img[150:153, 220:223] = 255          # 3x3 block centred on (221, 151)
    m = get_warp_matrix((200, 160), (150, 200), 25.0, (256, 192))
    crop = warp_image(img, m, (256, 192))
    ys, xs = np.nonzero(crop[..., 0] > 0)
    wts = crop[ys, xs, 0].astype(float)
    found = np.array([np.average(xs, weights=wts), np.average(ys, weights=wts)])
    assert np.abs(found - apply_affine([[221.0, 151.0]], m)[0]).max() < 0.5


def test_flip_twice_is_identity_and_pairs_swap():
    w = 48
    rng = np.random.default_rng(1)
    kpts = rng.uniform(0, w, size=(17, 2))
    vis = rng.integers(0, 2, size=17).astype(np.float32)
    k1, v1 = flip_keypoints(kpts, vis, w)
    k2, v2 = flip_keypoints(k1, v1, w)
    assert np.allclose(k2, kpts) and np.array_equal(v2, vis)
    # left wrist becomes the right wrist, at the mirrored position
    assert np.allclose(k1[RIGHT_WRIST], [w - 1 - kpts[LEFT_WRIST, 0], kpts[LEFT_WRIST, 1]])
    assert np.allclose(k1[LEFT_WRIST], [w - 1 - kpts[RIGHT_WRIST, 0], kpts[RIGHT_WRIST, 1]])
    assert v1[RIGHT_WRIST] == vis[LEFT_WRIST]
    assert k1[0, 0] == pytest.approx(w - 1 - kpts[0, 0])  # nose keeps its identity
    assert all(FLIP_INDEX[FLIP_INDEX[k]] == k for k in range(17))


def test_flip_matrix_equals_array_mirror():
    rng = np.random.default_rng(2)
    crop = rng.integers(0, 255, size=(64, 48, 3), dtype=np.uint8)
    mirrored = warp_image(crop, flip_matrix(48), (64, 48))
    assert np.array_equal(mirrored, cv2.flip(crop, 1))


def test_bbox_to_center_scale_and_clip():
    c, s = bbox_to_center_scale([10, 20, 40, 40], aspect_ratio=192 / 256)
    assert np.allclose(c, [30, 40])
    assert np.allclose(s, [50, 50 / 0.75])   # padded 1.25 then grown to W/H = 0.75
    assert np.allclose(clip_bbox_xywh([-20, -10, 100, 100], 400, 300), [0, 0, 80, 90])
    assert clip_bbox_xywh([500, 10, 50, 50], 400, 300) is None
    assert clip_bbox_xywh([10, 10, 0, 50], 400, 300) is None


def test_scale_rotation_ranges():
    cfg = AugmentConfig()
    rng = np.random.default_rng(3)
    draws = np.array([sample_scale_rotation(rng, cfg) for _ in range(4000)])
    assert draws[:, 0].min() >= 0.65 and draws[:, 0].max() <= 1.35
    assert np.abs(draws[:, 1]).max() <= 45.0
    assert abs((draws[:, 1] != 0).mean() - cfg.rot_prob) < 0.04


def _body(rng):
    kpts = np.zeros((17, 2))
    kpts[list(UPPER_BODY_IDS)] = rng.uniform([100, 50], [200, 150], size=(11, 2))
    kpts[list(LOWER_BODY_IDS)] = rng.uniform([100, 160], [200, 300], size=(6, 2))
    return kpts


def test_half_body_picks_a_sub_box():
    rng = np.random.default_rng(4)
    kpts, vis = _body(rng), np.full(17, 2.0)
    full_c, full_s = bbox_to_center_scale([95, 45, 110, 260], 0.75)
    upper = AugmentConfig(half_body_upper_prob=1.0)
    c, s = half_body_center_scale(kpts, vis, rng, upper, 0.75)
    assert np.allclose(c, kpts[list(UPPER_BODY_IDS)].mean(0))
    assert s[0] / s[1] == pytest.approx(0.75) and s[1] < full_s[1]
    lower = AugmentConfig(half_body_upper_prob=0.0)
    c, s = half_body_center_scale(kpts, vis, rng, lower, 0.75)
    assert np.allclose(c, kpts[list(LOWER_BODY_IDS)].mean(0))
    assert s[1] < full_s[1]
    # the half-body box covers its joints (with 1.5 padding)
    pts = kpts[list(LOWER_BODY_IDS)]
    assert np.all(pts >= c - s / 2) and np.all(pts <= c + s / 2)
    # fewer than 8 visible joints: no half body
    few = np.zeros(17)
    few[:7] = 2
    assert half_body_center_scale(kpts, few, rng, upper, 0.75) is None
    # lower half with < 2 visible joints: the upper one is taken whatever the coin says
    only_upper = np.zeros(17)
    only_upper[list(UPPER_BODY_IDS)] = 2
    only_upper[11] = 2
    c, _ = half_body_center_scale(kpts, only_upper, rng, lower, 0.75)
    assert np.allclose(c, kpts[list(UPPER_BODY_IDS)].mean(0))


def test_sample_augmentation_and_crop_matrix():
    rng = np.random.default_rng(5)
    kpts, vis = _body(rng), np.full(17, 2.0)
    center, scale = bbox_to_center_scale([95, 45, 110, 260], 0.75)
    cfg = AugmentConfig(half_body_prob=1.0, flip_prob=1.0)
    p = sample_augmentation(rng, cfg, center, scale, kpts, vis, 0.75)
    assert p.half_body and p.flip
    m = crop_matrix(p, (256, 192))
    no_flip = get_warp_matrix(p.center, p.scale, p.rot_deg, (256, 192))
    q = apply_affine(kpts, no_flip)
    assert np.allclose(apply_affine(kpts, m)[:, 0], 191 - q[:, 0])


def test_normalize_round_trip():
    rng = np.random.default_rng(6)
    img = rng.integers(0, 256, size=(8, 6, 3), dtype=np.uint8)
    t = normalize_image(img)
    assert t.shape == (3, 8, 6) and t.dtype.is_floating_point
    assert np.abs(denormalize_image(t) * 255 - img).max() < 1e-3


def test_agrees_with_evaluation_affine():
    # The evaluation module maps predictions back with its own cv2-free affine.
    from distilkit.evaluation.affine import crop_affine

    rng = np.random.default_rng(7)
    for _ in range(20):
        center, scale = rng.uniform(0, 500, 2), rng.uniform(20, 400, 2)
        rot = rng.uniform(-45, 45)
        for inv in (False, True):
            assert np.allclose(get_warp_matrix(center, scale, rot, (256, 192), inv=inv),
                               crop_affine(center, scale, (256, 192), rot, inv=inv),
                               atol=1e-3)
