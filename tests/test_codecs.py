"""Codecs: heatmap/regression encode-decode, simulated heatmaps, flip-test helpers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from distilkit.codecs import (HeatmapCodec, RegressionCodec, flip_coords,
                              flip_heatmaps, flip_regression_output, flip_shift,
                              simulated_heatmaps)
from distilkit.keypoints import FLIP_INDEX, FLIP_PAIRS, NUM_KEYPOINTS

SETTINGS = [((256, 192), (64, 48)), ((64, 48), (16, 12))]
K = NUM_KEYPOINTS


def _interior_keypoints(input_size, heatmap_size, n, seed, margin=3.0):
    """n sub-pixel keypoints (input px) whose heatmap position is >= margin from borders."""
    (H, W), (h, w) = input_size, heatmap_size
    sx, sy = W / w, H / h
    rng = np.random.default_rng(seed)
    x = rng.uniform(margin, w - 1 - margin, n) * sx
    y = rng.uniform(margin, h - 1 - margin, n) * sy
    return np.stack([x, y], axis=-1).astype(np.float32)


def _encode_many(codec, kpts):
    """Encode each keypoint as its own channel -> (1, n, h, w)."""
    return np.stack([codec.encode(k[None], np.ones(1))["heatmaps"][0] for k in kpts])[None]


# ----------------------------------------------------------------------------- heatmap codec
@pytest.mark.parametrize("input_size,heatmap_size", SETTINGS)
def test_roundtrip_interior_argmax_vs_dark(input_size, heatmap_size):
    codec = HeatmapCodec(input_size, heatmap_size, sigma=2.0)
    stride = input_size[1] / heatmap_size[1]
    kpts = _interior_keypoints(input_size, heatmap_size, 300, seed=1)
    hm = _encode_many(codec, kpts)
    err = {}
    for dark in (False, True):
        coords, scores = codec.decode(hm, dark=dark)
        err[dark] = np.linalg.norm(coords[0] - kpts, axis=-1)
        assert np.allclose(scores[0], hm[0].reshape(len(kpts), -1).max(-1))
    # quarter shift: <= 0.25 heatmap px per axis
    assert err[False].max() <= np.sqrt(2) * 0.25 * stride + 1e-3
    # uniform sub-pixel offsets: ~0.19 heatmap px mean Euclidean error
    assert 0.15 * stride < err[False].mean() < 0.25 * stride
    assert err[True].mean() < 0.1 and err[True].max() < 0.35       # input px
    assert err[True].mean() < 0.25 * err[False].mean()


@pytest.mark.parametrize("input_size,heatmap_size", SETTINGS)
@pytest.mark.parametrize("dark", [False, True])
def test_roundtrip_whole_input_is_bounded(input_size, heatmap_size, dark):
    # The last (stride-1) input columns lie beyond the last heatmap column (x/stride >
    # w-1), which bounds the edge error by about one stride.
    codec = HeatmapCodec(input_size, heatmap_size)
    H, W = input_size
    rng = np.random.default_rng(2)
    kpts = (rng.uniform(0, 1, (300, 2)) * [W - 1, H - 1]).astype(np.float32)
    assert (np.stack([codec.encode(k[None], [1])["heatmap_weights"] for k in kpts]) == 1).all()
    coords, _ = codec.decode(_encode_many(codec, kpts), dark=dark)
    assert np.linalg.norm(coords[0] - kpts, axis=-1).max() < W / heatmap_size[1]


def test_encode_peak_and_centre_unrounded():
    codec = HeatmapCodec((256, 192), (64, 48))
    out = codec.encode(np.array([[40.0, 80.0], [41.3, 80.0]]), np.ones(2))
    hm = out["heatmaps"]
    assert hm.shape == (2, 64, 48) and hm.dtype == np.float32
    assert hm[0, 20, 10] == pytest.approx(1.0)            # on a grid point: peak exactly 1
    assert hm[1].max() < 1.0                              # off-grid: peak below 1
    # unbiased: the value at grid x=10 follows the exact centre 41.3/4 = 10.325
    assert hm[1, 20, 10] == pytest.approx(np.exp(-0.325 ** 2 / 8), rel=1e-5)
    assert (hm >= 0).all() and hm.max() <= 1.0


@pytest.mark.parametrize("kpt,visible,expected", [
    ((100.0, 100.0), 0.0, 0.0),        # invisible
    ((-30.0, 100.0), 1.0, 0.0),        # mu_x = -7.5: window [-13.5, -0.5) misses the grid
    ((-20.0, 100.0), 1.0, 1.0),        # mu_x = -5: window still reaches column 0..1
    ((192 + 28.0, 100.0), 1.0, 0.0),   # mu_x = 55: window starts at 49 >= w = 48
    ((100.0, 256 + 30.0), 1.0, 0.0),   # below the grid
    ((100.0, np.nan), 1.0, 0.0),       # missing coordinate
])
def test_encode_weights(kpt, visible, expected):
    codec = HeatmapCodec((256, 192), (64, 48))
    out = codec.encode(np.array([kpt]), np.array([visible]))
    assert out["heatmap_weights"][0] == expected
    if expected == 0.0:
        assert not out["heatmaps"].any()
    assert np.isfinite(out["heatmaps"]).all()


def test_decode_accepts_torch_and_single_sample():
    codec = HeatmapCodec((64, 48), (16, 12))
    kpts = np.array([[20.5, 30.25], [24.0, 28.0]], np.float32)   # >= 3 heatmap px inside
    hm = codec.encode(kpts, np.ones(2))["heatmaps"]
    c_np, s_np = codec.decode(hm)                       # (K, h, w)
    c_t, s_t = codec.decode(torch.from_numpy(hm)[None], dark=True)
    assert c_np.shape == (2, 2) and c_t.shape == (1, 2, 2) and s_t.shape == (1, 2)
    assert np.abs(c_t[0] - kpts).max() < 0.2
    assert np.array_equal(codec.decode(torch.from_numpy(hm)[None])[0][0], c_np)
    # peak = Gaussian at the nearest grid point: offsets (0.125, 0.4375) and (0, 0) hm px
    assert np.allclose(s_np, [np.exp(-(0.125 ** 2 + 0.4375 ** 2) / 8), 1.0], atol=1e-6)
    assert np.allclose(s_t[0], s_np)


def test_argmax_takes_the_first_peak_and_shifts_a_quarter_inside_only():
    from distilkit.codecs import heatmap_argmax, quarter_offset

    hm = torch.zeros(1, 3, 5, 4)
    hm[0, 0, 1, 2] = hm[0, 0, 3, 0] = 1.0                 # tie: row-major first wins
    hm[0, 0, 1, 3] = 0.5                                  # higher right neighbour
    hm[0, 1, 0, 0] = 1.0                                  # corner peak: no shift
    hm[0, 1, 1, 0] = hm[0, 1, 0, 1] = 0.5
    hm[0, 2, 2, 1], hm[0, 2, 1, 1] = 1.0, 0.25            # higher upper neighbour
    locs, vals = heatmap_argmax(hm)
    assert locs.tolist() == [[[2, 1], [0, 0], [1, 2]]] and vals.tolist() == [[1.0, 1.0, 1.0]]
    assert quarter_offset(hm, locs).tolist() == [[[0.25, 0.0], [0.0, 0.0], [0.0, -0.25]]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_model_heads_decode_with_the_codec_decoder(dtype):
    """decode_heatmaps (inside heatmap models' forward) and HeatmapCodec.decode (the
    evaluation) are the one quarter_decode: normalised by (w, h) vs scaled by the stride."""
    from distilkit.codecs import quarter_decode
    from distilkit.models import decode_heatmaps

    gen = torch.Generator().manual_seed(0)
    hm = (torch.rand(3, K, 16, 12, generator=gen) * 4).round().to(dtype)   # many ties
    xy, scores, _ = quarter_decode(hm)
    coords, head_scores = decode_heatmaps(hm)
    assert coords.dtype == dtype and torch.equal(head_scores, scores)
    assert torch.equal(coords, torch.stack([xy[..., 0] / 12, xy[..., 1] / 16], dim=-1))
    codec = HeatmapCodec((64, 48), (16, 12))
    c_np, s_np = codec.decode(hm)
    xy32, s32, _ = quarter_decode(hm.float())
    assert np.array_equal(c_np, xy32.numpy() * codec.stride)
    assert np.array_equal(s_np, s32.numpy())


# -------------------------------------------------------------------------- regression codec
def test_regression_codec_encode_decode_and_weights():
    codec = RegressionCodec((256, 192))
    kpts = np.array([[96.0, 128.0], [0.0, 0.0], [191.0, 255.0], [191.5, 10.0],
                     [-0.1, 10.0], [50.0, 50.0]], np.float32)
    vis = np.array([1, 1, 1, 1, 1, 0], np.float32)
    out = codec.encode(kpts, vis)
    assert out["coord_weights"].tolist() == [1, 1, 1, 0, 0, 0]
    assert np.allclose(out["coords"][0], [0.5, 0.5])
    coords_px, scores = codec.decode(out["coords"][None])
    keep = out["coord_weights"] > 0
    assert np.allclose(coords_px[0][keep], kpts[keep], atol=1e-4)
    assert scores.shape == (1, len(kpts)) and (scores == 1).all()


# ------------------------------------------------------------------------ simulated heatmaps
@pytest.mark.parametrize("input_size,heatmap_size", SETTINGS)
def test_simulated_heatmaps_equal_codec_targets(input_size, heatmap_size):
    codec = HeatmapCodec(input_size, heatmap_size, sigma=2.0)
    H, W = input_size
    rng = np.random.default_rng(3)
    kpts = (rng.uniform(0, 1, (K, 2)) * [W - 1, H - 1]).astype(np.float32)
    target = codec.encode(kpts, np.ones(K))["heatmaps"]
    coords = torch.from_numpy(kpts / np.array([W, H], np.float32))[None]
    sim = simulated_heatmaps(coords, torch.full((1, K, 2), 2.0), heatmap_size)
    assert sim.shape == (1, K, *heatmap_size)
    assert np.abs(sim[0].numpy() - target).max() < 1e-5


def test_simulated_heatmaps_anisotropic_formula():
    coords = torch.tensor([[[0.30, 0.55]]])
    sigmas = torch.tensor([[[1.5, 3.0]]])
    sim = simulated_heatmaps(coords, sigmas, (16, 12))
    mx, my = 0.30 * 12, 0.55 * 16
    y, x = 5, 7
    expected = np.exp(-0.5 * ((x - mx) ** 2 / 1.5 ** 2 + (y - my) ** 2 / 3.0 ** 2))
    assert sim[0, 0, y, x].item() == pytest.approx(expected, rel=1e-5)
    on_grid = simulated_heatmaps(torch.tensor([[[0.25, 0.5]]]), sigmas, (16, 12))
    assert on_grid.max().item() == pytest.approx(1.0)


def test_simulated_heatmaps_gradcheck():
    g = torch.Generator().manual_seed(0)
    coords = torch.rand(2, 3, 2, generator=g, dtype=torch.float64).requires_grad_()
    sigmas = (0.8 + torch.rand(2, 3, 2, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda c, s: simulated_heatmaps(c, s, (5, 4)), (coords, sigmas))


# ------------------------------------------------------------------------------------- flip
def _data_flip_px(kpts_px, W):
    """The data pipeline's flip: x -> W-1-x and left/right swap."""
    out = kpts_px.clone()
    out[..., 0] = W - 1 - out[..., 0]
    return out[..., list(FLIP_INDEX), :]


@pytest.mark.parametrize("W", [192, 48])
def test_flip_coords_inverts_data_flip_and_is_involution(W):
    H = W * 4 // 3
    kpts = torch.rand(3, K, 2, dtype=torch.float64) * torch.tensor([W - 1, H - 1])
    wh = torch.tensor([W, H], dtype=torch.float64)
    flipped_norm = _data_flip_px(kpts, W) / wh
    back = flip_coords(flipped_norm, input_width=W)
    assert torch.allclose(back, kpts / wh, atol=1e-12)
    c = torch.rand(2, K, 2, dtype=torch.float64)
    assert torch.allclose(flip_coords(flip_coords(c, input_width=W), input_width=W), c)
    # the naive 1 - x would be off by exactly 1/W
    naive = (1 - flipped_norm[..., 0])[..., list(FLIP_INDEX)]
    assert torch.allclose(naive - kpts[..., 0] / W, torch.full_like(naive, 1 / W))


def test_flip_regression_output_swaps_scores_and_sigmas():
    coords = torch.rand(2, K, 2)
    scores = torch.arange(2 * K, dtype=torch.float32).reshape(2, K)
    sigmas = torch.rand(2, K, 2)
    c, s, sg = flip_regression_output(coords, scores, sigmas, input_width=192)
    for a, b in FLIP_PAIRS:
        assert torch.equal(s[:, a], scores[:, b]) and torch.equal(s[:, b], scores[:, a])
        assert torch.equal(sg[:, a], sigmas[:, b])
    assert torch.equal(s[:, 0], scores[:, 0])
    c2, s2, sg2 = flip_regression_output(c, s, sg, input_width=192)
    assert torch.allclose(c2, coords, atol=1e-6) and torch.equal(s2, scores)
    assert torch.equal(sg2, sigmas)
    c3, s3, sg3 = flip_regression_output(coords, None, None, input_width=192)
    assert s3 is None and sg3 is None and torch.allclose(c3, c)


def test_flip_heatmaps_without_shift_is_involution_and_swaps_channels():
    hm = torch.rand(2, K, 8, 6)
    once = flip_heatmaps(hm, shift=False)
    assert torch.equal(flip_heatmaps(once, shift=False), hm)
    a, b = FLIP_PAIRS[0]
    assert torch.equal(once[:, a], hm[:, b].flip(-1))
    with pytest.raises(ValueError):
        flip_heatmaps(hm, shift=1.5)


@pytest.mark.parametrize("input_size,heatmap_size", SETTINGS)
def test_flip_heatmaps_consistent_with_flip_coords(input_size, heatmap_size):
    """decode(flip_heatmaps(heatmaps of the flipped crop)) recovers the original keypoints."""
    codec = HeatmapCodec(input_size, heatmap_size)
    (H, W), (_, w) = input_size, heatmap_size
    kpts = _interior_keypoints(input_size, heatmap_size, K, seed=5)
    flipped = _data_flip_px(torch.from_numpy(kpts), W).numpy()
    hm_flipped = torch.from_numpy(codec.encode(flipped, np.ones(K))["heatmaps"])[None]

    exact = flip_heatmaps(hm_flipped, shift=flip_shift(W, w))
    coords, _ = codec.decode(exact, dark=True)
    assert np.abs(coords[0] - kpts).max() < 0.35

    # The usual whole-pixel shift overshoots by one input pixel in x. On a 12-wide grid
    # the duplicated column 0 (the shift keeps it) drags the estimate back a little.
    usual = flip_heatmaps(hm_flipped, shift=True)
    coords, _ = codec.decode(usual, dark=True)
    bias = coords[0] - kpts
    tol = 0.1 if w >= 48 else 0.4
    assert np.abs(bias[:, 0].mean() - 1.0) < tol and np.abs(bias[:, 1]).max() < 0.35
    # and the regression path agrees with the heatmap path
    back = flip_coords(torch.from_numpy(flipped / np.array([W, H], np.float32))[None],
                       input_width=W)
    assert np.allclose(back[0].numpy() * [W, H], kpts, atol=1e-3)
