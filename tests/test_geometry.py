"""Crop geometry (distilkit.geometry): the one affine the data pipeline and evaluation share."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from distilkit.geometry import (apply_affine, bbox_to_center_scale, clip_bbox_xywh,
                                compose_affine, flip_keypoints, flip_matrix, get_warp_matrix,
                                keypoints_to_image, warp_image)
from distilkit.keypoints import FLIP_INDEX, KEYPOINT_NAMES, NUM_KEYPOINTS

K = NUM_KEYPOINTS
LEFT_WRIST = KEYPOINT_NAMES.index("left_wrist")
RIGHT_WRIST = KEYPOINT_NAMES.index("right_wrist")


def _rotate(v, rot_deg):
    t = np.deg2rad(rot_deg)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) @ v


# ------------------------------------------------------------------------------- the affine
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


@pytest.mark.parametrize("rot", [0.0, 30.0, -75.0])
@pytest.mark.parametrize("scale", [(150.0, 200.0), (90.0, 240.0)])
def test_warp_matrix_matches_cv2_on_the_box_points(rot, scale):
    """cv2.getAffineTransform on three point pairs of the box (centre, top-edge midpoint,
    left-edge midpoint, rotated by rot) gives the same matrix, also for boxes whose
    aspect differs from the input's; and the inverse from the swapped pairs."""
    center, (sw, sh), (h, w) = np.array([320.0, 240.0]), scale, (256, 192)
    src = np.stack([center, center + _rotate([0.0, -0.5 * sh], rot),
                    center + _rotate([-0.5 * sw, 0.0], rot)]).astype(np.float32)
    dst = np.array([[0.5 * w, 0.5 * h], [0.5 * w, 0.0], [0.0, 0.5 * h]], np.float32)
    assert np.allclose(get_warp_matrix(center, scale, rot, (h, w)),
                       cv2.getAffineTransform(src, dst), atol=1e-4)
    assert np.allclose(get_warp_matrix(center, scale, rot, (h, w), inv=True),
                       cv2.getAffineTransform(dst, src), atol=1e-3)


def test_rotation_matches_mmpose_three_point_construction():
    # MMPose 1.x get_warp_matrix: src = c, c + R(rot)@[-sw/2, 0], third point at 90 deg.
    center, scale, rot, (h, w) = np.array([210.0, 150.0]), np.array([96.0, 128.0]), 30.0, (256, 192)

    def third(a, b):
        d = a - b
        return b + np.array([-d[1], d[0]])

    src0, src1 = center, center + _rotate(np.array([-scale[0] / 2, 0.0]), rot)
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


# ------------------------------------------------------------------- input px -> image px
@pytest.mark.parametrize("input_size", [(256, 192), (64, 48)])
@pytest.mark.parametrize("scale", [(150.0, 200.0), (90.0, 240.0)])
def test_keypoints_to_image_inverts_the_crop_warp(input_size, scale):
    rng = np.random.default_rng(0)
    center = np.array([[310.5, 222.25]])
    warp = get_warp_matrix(center[0], scale, 0.0, input_size)          # image -> input px
    pts_img = center + rng.uniform(-0.6, 0.6, (1, K, 2)) * scale
    back = keypoints_to_image(apply_affine(pts_img, warp), center, np.array([scale]),
                              input_size)
    assert np.allclose(back, pts_img, atol=1e-9)


def test_keypoints_to_image_is_the_inverse_warp_per_instance():
    """The evaluation's closed form and the data pipeline's matrix are one map."""
    rng = np.random.default_rng(7)
    centers, scales = rng.uniform(0, 500, (6, 2)), rng.uniform(20, 400, (6, 2))
    coords = rng.uniform(-20, 270, (6, K, 2))
    closed = keypoints_to_image(coords, centers, scales, (256, 192))
    for n in range(6):
        inv = get_warp_matrix(centers[n], scales[n], 0.0, (256, 192), inv=True)
        assert np.allclose(closed[n], apply_affine(coords[n], inv), atol=1e-9)
    # x_img = cx + (x_in / W - 0.5) * sw, written out once
    assert np.allclose(closed, centers[:, None] + (coords / [192, 256] - 0.5) * scales[:, None])


# -------------------------------------------------------------------------------- flip
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


# -------------------------------------------------------------------------------- boxes
def test_bbox_to_center_scale_and_clip():
    c, s = bbox_to_center_scale([10, 20, 40, 40], aspect_ratio=192 / 256)
    assert np.allclose(c, [30, 40])
    assert np.allclose(s, [50, 50 / 0.75])   # padded 1.25 then grown to W/H = 0.75
    assert np.allclose(clip_bbox_xywh([-20, -10, 100, 100], 400, 300), [0, 0, 80, 90])
    assert clip_bbox_xywh([500, 10, 50, 50], 400, 300) is None
    assert clip_bbox_xywh([10, 10, 0, 50], 400, 300) is None
