"""Augmentation draws and normalisation (distilkit.data.transforms); the crop geometry they
compose is tested in test_geometry.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from distilkit.data.transforms import (AugmentConfig, AugmentParams, crop_matrix,
                                       denormalize_image, half_body_center_scale,
                                       normalize_image, sample_augmentation,
                                       sample_scale_rotation)
from distilkit.geometry import (apply_affine, bbox_to_center_scale, compose_affine,
                                flip_matrix, get_warp_matrix)
from distilkit.keypoints import LOWER_BODY_IDS, UPPER_BODY_IDS


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


def test_crop_matrix_is_exactly_the_box_warp_then_the_flip():
    # Training crops are resampled with this matrix: it must be the geometry's, bit for bit.
    rng = np.random.default_rng(8)
    for i in range(50):
        p = AugmentParams(center=rng.uniform(0, 600, 2), scale=rng.uniform(20, 500, 2),
                          rot_deg=float(rng.uniform(-45, 45)), flip=bool(i % 2))
        box = get_warp_matrix(p.center, p.scale, p.rot_deg, (256, 192))
        expect = compose_affine(box, flip_matrix(192)) if p.flip else box
        assert np.array_equal(crop_matrix(p, (256, 192)), expect)


def test_denormalize_takes_a_half_precision_tensor():
    rng = np.random.default_rng(9)
    img = rng.integers(0, 256, size=(8, 6, 3), dtype=np.uint8)
    t = normalize_image(img)
    half = denormalize_image(t.to(torch.bfloat16).requires_grad_())
    assert half.dtype == np.float32 and np.abs(half * 255 - img).max() < 255 * 0.05
