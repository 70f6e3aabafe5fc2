"""Unit tests of distilkit.viz on synthetic tensors (no data set, no training)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from distilkit import PoseOutput  # noqa: E402
from distilkit.keypoints import KEYPOINT_NAMES, OKS_SIGMAS  # noqa: E402

K = 17


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ----------------------------------------------------------------------------- attention

def _attention_with_peak(grid, keypoint, patch, *, layers=2, heads=3, n=1):
    """Softmax-like rows; row ``keypoint`` puts most mass on visual token ``patch``,
    every other keypoint row on a different patch (so a wrong row index is caught)."""
    gh, gw = grid
    t = K + gh * gw
    attns = []
    for _ in range(layers):
        a = torch.full((n, heads, t, t), 0.1 / t)
        a[..., :, K] += 0.5                                        # decoy: first patch
        a[:, :, keypoint, K] -= 0.5
        a[:, :, keypoint, K + patch[0] * gw + patch[1]] += 0.9
        attns.append(a)
    return attns


def test_attention_peak_lands_in_its_patch_on_the_crop():
    from distilkit.viz.attention import keypoint_attention, plot_layer_head_attention, upsample_map

    grid, size, patch = (8, 6), (64, 48), (5, 2)                  # patches of 8 x 8 input px
    kp = KEYPOINT_NAMES.index("right_ankle")
    maps = keypoint_attention(_attention_with_peak(grid, kp, patch), kp, grid)
    assert maps.shape == (2, 3, 8, 6)
    up = upsample_map(maps, size)
    assert up.shape == (2, 3, 64, 48)
    for m in up.reshape(-1, *size):
        y, x = divmod(int(m.argmax()), size[1])
        assert (y // 8, x // 8) == patch, (y, x)
    # and the figure draws it there: the overlay image of every panel peaks in the patch
    fig = plot_layer_head_attention(torch.zeros(3, *size), {"teacher": maps, "student": maps},
                                    point_xy=(20.0, 44.0), joint="right_ankle")
    overlays = [ax.images[1].get_array() for ax in fig.axes if len(ax.images) == 2]
    assert len(overlays) == 2 * 2 * (3 + 1)                        # models x layers x (heads+mean)
    for arr in overlays:
        y, x = np.unravel_index(np.argmax(np.asarray(arr)), arr.shape)
        assert (y // 8, x // 8) == patch


def test_attention_rejects_a_wrong_token_layout():
    from distilkit.viz.attention import keypoint_attention

    with pytest.raises(ValueError, match="keypoint"):
        keypoint_attention(_attention_with_peak((8, 6), 0, (0, 0)), 0, (6, 8 + 1))


def test_model_attention_of_a_smoke_student():
    from distilkit.models import build_model
    from distilkit.viz.attention import model_attention

    torch.manual_seed(0)
    model = build_model("distilpose-s-smoke").eval()
    x = torch.randn(2, 3, 64, 48)
    maps = model_attention(model, x, 16)
    enc = model.encoder
    assert maps.shape == (2, enc.depth, enc.heads, *enc.grid)
    # row 16 of every layer's attention, visual-token columns, in patch order on the grid
    with torch.no_grad():
        attns = model(x, return_attention=True).attentions
    expected = torch.stack([a[:, :, 16, K:] for a in attns], dim=1)    # (N, L, heads, P)
    torch.testing.assert_close(maps, expected.reshape(2, enc.depth, enc.heads, *enc.grid))
    # the rest of each softmax row went to the keypoint tokens
    keypoint_part = torch.stack([a[:, :, 16, :K].sum(-1) for a in attns], dim=1)
    torch.testing.assert_close(maps.sum(dim=(-2, -1)), 1 - keypoint_part)


# ----------------------------------------------------------------------------- features

def test_feature_energy_is_highest_where_the_activations_are():
    from distilkit.viz.features import body_contrast, feature_energy, upsample_energy

    torch.manual_seed(0)
    feat = 0.05 * torch.randn(2, 16, 16, 12)
    feat[0, :, 3:6, 2:4] += 3.0                                    # image 0: a blob top-left
    feat[1, :8, 10:13, 7:10] -= 2.0                                # image 1: negative blob
    for reduce in ("l2", "mean_abs"):
        e = feature_energy(feat, reduce=reduce)
        assert e.shape == (2, 16, 12)
        assert float(e.min()) >= 0.0 and float(e.max()) == pytest.approx(1.0)
        y, x = divmod(int(e[0].argmax()), 12)
        assert 3 <= y < 6 and 2 <= x < 4
        y, x = divmod(int(e[1].argmax()), 12)
        assert 10 <= y < 13 and 7 <= x < 10
    up = upsample_energy(feature_energy(feat), (64, 48))
    mask = np.zeros((64, 48), dtype=bool)
    mask[12:24, 8:16] = True                                       # the blob of image 0, x4
    assert body_contrast(up[0], mask) > 5.0
    assert body_contrast(up[1], mask) < 1.0


def test_body_mask_covers_joints_and_limbs_only():
    from distilkit.viz.features import body_mask

    kpts = np.zeros((K, 2))
    vis = np.zeros(K)
    a, b = KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("left_knee")
    kpts[a], kpts[b] = (10.0, 10.0), (10.0, 40.0)
    vis[a] = vis[b] = 1
    mask = body_mask(kpts, vis, (64, 48), radius=3.0)
    assert mask[10, 10] and mask[25, 10] and mask[40, 10]          # both joints and the limb
    assert not mask[25, 20] and not mask[60, 40]


# ----------------------------------------------------------------------------- confidence

def test_confidence_box_is_green_exactly_within_the_rule():
    from distilkit.viz.confidence import (CORRECT_COLOR, UNKNOWN_COLOR, WRONG_COLOR,
                                          correct_radius, draw_confidence_boxes, joint_correct,
                                          oks_terms)

    area = 2500.0
    gt = np.tile(np.array([[100.0, 100.0]]), (1, K, 1))
    radii = np.array([correct_radius(area, k) for k in range(K)])
    # the radius solves the rule: OKS term exactly 0.5 there
    at = gt.copy()
    at[0, :, 0] += radii
    assert np.allclose(oks_terms(at, gt, [area]), 0.5)
    inside, outside = gt.copy(), gt.copy()
    inside[0, :, 1] += 0.99 * radii
    outside[0, :, 1] += 1.01 * radii
    vis = np.full((1, K), 2.0)
    ok_in, judged, _ = joint_correct(inside, gt, vis, np.array([area]))
    ok_out, _, _ = joint_correct(outside, gt, vis, np.array([area]))
    assert ok_in.all() and not ok_out.any() and judged.all()
    vis[0, 3] = 0                                                  # an unlabelled joint
    ok, judged, _ = joint_correct(inside, gt, vis, np.array([area]))
    assert not judged[0, 3] and not ok[0, 3]

    fig, ax = plt.subplots()
    flags = [True, False, None] + [True] * (K - 3)
    scores = np.linspace(0.1, 0.9, K)
    boxes = draw_confidence_boxes(ax, gt[0], scores, flags)
    edge = [matplotlib.colors.to_hex(b.get_edgecolor()) for b in boxes[:3]]
    assert edge == [CORRECT_COLOR, WRONG_COLOR, UNKNOWN_COLOR]
    # box side grows with the score
    assert boxes[-1].get_width() > boxes[0].get_width()
    assert sum(len(t.get_text()) > 0 for t in ax.texts) == K


def test_oks_terms_match_pycocotools_formula():
    from distilkit.viz.confidence import oks_terms

    rng = np.random.default_rng(0)
    pred, gt = rng.uniform(0, 200, (3, K, 2)), rng.uniform(0, 200, (3, K, 2))
    areas = np.array([900.0, 4000.0, 12000.0])
    d2 = ((pred - gt) ** 2).sum(-1)
    ref = np.exp(-d2 / ((OKS_SIGMAS * 2) ** 2) / (areas[:, None] + np.spacing(1)) / 2)
    assert np.allclose(oks_terms(pred, gt, areas), ref)


def test_reliability_bins_on_a_hand_example():
    from distilkit.viz.confidence import plot_reliability, reliability_bins

    conf = np.array([0.05, 0.15, 0.15, 0.95, 0.95, 0.95, 1.0])
    ok = np.array([0, 1, 0, 1, 1, 0, 1], dtype=bool)
    b = reliability_bins(conf, ok, n_bins=10)
    assert b["counts"].tolist() == [1, 2, 0, 0, 0, 0, 0, 0, 0, 4]
    assert b["mean_confidence"][[0, 1, 9]] == pytest.approx([0.05, 0.15, 0.9625])
    assert b["fraction_correct"][[0, 1, 9]] == pytest.approx([0.0, 0.5, 0.75])
    assert np.isnan(b["fraction_correct"][2])
    assert b["ece"] == pytest.approx((0.05 + 2 * 0.35 + 4 * 0.2125) / 7)
    fig, ax = plt.subplots()
    plot_reliability(ax, b, label="toy")
    assert len(ax.lines) == 2                                      # the diagonal and the curve


def _toy_coco(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """One 200x200 image, one person: 17 labelled joints spread over a 40x80 box."""
    rng = np.random.default_rng(1)
    kpts = np.stack([rng.uniform(80, 120, K), rng.uniform(60, 140, K)], axis=1)
    ann = {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 3200.0,
           "bbox": [80.0, 60.0, 40.0, 80.0], "num_keypoints": K,
           "keypoints": [float(v) for x, y in kpts for v in (x, y, 2)]}
    coco = {"images": [{"id": 1, "width": 200, "height": 200, "file_name": "1.jpg"}],
            "annotations": [ann],
            "categories": [{"id": 1, "name": "person", "keypoints": list(KEYPOINT_NAMES),
                            "skeleton": []}]}
    path = tmp_path / "toy.json"
    path.write_text(json.dumps(coco))
    return path, kpts


def test_rescoring_gain_equals_the_hand_computation(tmp_path):
    """A perfect prediction with a low box score and confident joints, and a false
    positive far away with a high box score and unsure joints. Box score alone ranks the
    false positive first: precision 1/2 at full recall at every OKS threshold, AP = 0.5.
    Eq. 3 ranks the true one first: AP = 1. Gain = 0.5 (both Eq. 3 variants)."""
    from types import SimpleNamespace

    from distilkit.viz.confidence import rescoring_gain

    ann_file, kpts = _toy_coco(tmp_path)
    # input 64x48 with a 48x64 crop: 1 input px = 1 image px, x_in = x_img - cx + 24
    center = np.array([100.0, 100.0])
    scale = np.array([48.0, 64.0])
    to_input = lambda p: p - center + np.array([24.0, 32.0])  # noqa: E731
    far = kpts + np.array([-70.0, 0.0])                           # the same pose 70 px left
    pred = SimpleNamespace(
        coords=np.stack([to_input(kpts), to_input(far)]),
        scores=np.stack([np.full(K, 0.9), np.full(K, 0.1)]),
        centers=np.stack([center, center - np.array([70.0, 0.0])]),
        scales=np.stack([scale, scale]),
        bbox_scores=np.array([0.5, 0.9]),
        image_ids=np.array([1, 1]))
    pred.coords[1] = to_input(far + np.array([70.0, 0.0]))         # its own crop, shifted
    out = rescoring_gain(pred, ann_file, (64, 48))
    assert out["box"]["AP"] == pytest.approx(0.5)
    assert out["eq3_all"]["AP"] == pytest.approx(1.0)
    assert out["eq3_thr"]["AP"] == pytest.approx(1.0)
    assert out["gain"] == pytest.approx({"eq3_all": 0.5, "eq3_thr": 0.5})


# ----------------------------------------------------------------------------- attribution

class _ToyRegressor(nn.Module):
    """A smooth nonlinear 'regression model': coords = sigmoid(weighted pixel sums)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(123)
        self.w = nn.Parameter(torch.randn(K * 2, 3 * 8 * 6, generator=g) * 0.05)

    def forward(self, images, return_attention=False):
        x = torch.nn.functional.adaptive_avg_pool2d(images, (8, 6)).flatten(1)
        z = torch.tanh(x @ self.w.t()) * 3.0
        return PoseOutput(coords=torch.sigmoid(z).view(-1, K, 2))


class _ToyHeatmapper(nn.Module):
    def forward(self, images, return_attention=False):
        x = torch.nn.functional.adaptive_avg_pool2d(images, (16, 12))  # (N, 3, 16, 12)
        hm = torch.sigmoid(x.sum(1, keepdim=True) + torch.arange(K).view(1, K, 1, 1) * 0.01)
        return PoseOutput(heatmaps=hm)


def test_attribution_wrapper_is_a_scalar_per_sample_and_ig_is_complete():
    from distilkit.viz.attribution import (attribute, attribution_map, coordinate_forward,
                                           heatmap_peak_forward)

    torch.manual_seed(0)
    # coarse random patterns: the toy model's 8x6 pooling keeps them, so f moves
    images = 1.5 * torch.nn.functional.interpolate(torch.randn(3, 3, 8, 6), size=(64, 48))
    model = _ToyRegressor().eval()
    for axis in (0, 1):
        f = coordinate_forward(model, 16, axis)
        assert f(images).shape == (3,)
        assert torch.allclose(f(images), model(images).coords[:, 16, axis])
        attr, delta = attribute(f, images, method="ig", n_steps=64)
        assert attr.shape == images.shape
        gap = f(images) - f(torch.zeros_like(images))
        assert torch.all(gap.abs() > 1e-2)                         # the test has teeth
        assert torch.allclose(attr.sum(dim=(1, 2, 3)), gap.detach(), atol=2e-3, rtol=1e-2)
        assert delta.abs().max() < 2e-3
    sal, none = attribute(coordinate_forward(model, 0, 0), images, method="saliency")
    assert none is None and sal.shape == images.shape and torch.all(sal >= 0)
    m = attribution_map(sal)
    assert m.shape == (3, 64, 48) and torch.allclose(m.flatten(1).amax(1), torch.ones(3))

    peak = heatmap_peak_forward(_ToyHeatmapper(), 5)
    assert peak(images).shape == (3,)
    attr, delta = attribute(peak, images, method="ig", n_steps=64)
    gap = peak(images) - peak(torch.zeros_like(images))
    assert torch.allclose(attr.sum(dim=(1, 2, 3)), gap.detach(), atol=2e-3, rtol=1e-2)
    with pytest.raises(ValueError):
        coordinate_forward(model, 0, 2)


def test_coordinate_forward_on_a_smoke_student():
    from distilkit.models import build_model
    from distilkit.viz.attribution import attribute, coordinate_forward

    torch.manual_seed(0)
    model = build_model("distilpose-s-smoke").eval()
    ankle = KEYPOINT_NAMES.index("right_ankle")
    f = coordinate_forward(model, ankle, 1)
    x = torch.randn(2, 3, 64, 48)
    torch.testing.assert_close(f(x), model(x).coords[:, ankle, 1])
    attr, _ = attribute(f, x, method="saliency")
    # saliency is |d y_ankle / d pixel|, each crop's own gradient, reaching the pixels
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(xg).coords[:, ankle, 1].sum(), xg)
    torch.testing.assert_close(attr, grad.abs())
    assert (attr.flatten(1) > 0).float().mean(1).min() > 0.5


# ----------------------------------------------------------------------------- heatmaps

def test_simulated_heatmaps_and_their_difference_figure():
    from distilkit.viz.heatmaps import plot_heatmap_comparison, plot_sigma_summary, simulated_for

    coords = torch.full((1, K, 2), 0.5)
    coords[0, 16] = torch.tensor([0.25, 0.75])
    sigmas = torch.full((1, K, 2), 2.0)
    sigmas[0, 16] = torch.tensor([1.0, 3.0])
    sim = simulated_for(PoseOutput(coords=coords, sigmas=sigmas), (16, 12))
    assert sim.shape == (1, K, 16, 12)
    y, x = divmod(int(sim[0, 16].argmax()), 12)
    assert (x, y) == (3, 12)                                       # (0.25*12, 0.75*16)
    teacher = sim.clone()
    teacher[0, 16] *= 0.5
    fig = plot_heatmap_comparison(torch.zeros(3, 64, 48), teacher[0], sim[0], sigmas[0],
                                  coords=coords[0], keypoints=[0, 16])
    titles = [ax.get_title() for ax in fig.axes]
    assert any("σx=1.00 σy=3.00" in t for t in titles)
    assert any(t.startswith("right ankle") for t in titles)
    diff_panels = [ax for ax in fig.axes if ax.get_title().startswith("difference")]
    assert len(diff_panels) == 2
    arr = np.asarray(diff_panels[1].images[0].get_array())
    assert arr.max() > 0 and np.allclose(arr, (sim - teacher)[0, 16].numpy())
    assert np.allclose(np.asarray(diff_panels[0].images[0].get_array()), 0)
    mse = (sim - teacher).pow(2).mean(dim=(-2, -1))                # (1, K): keypoint 16 only
    ax, ax_mse = plot_sigma_summary(sigmas, mse).axes
    heights = np.array([p.get_height() for p in ax.patches]).reshape(2, K)   # sigma_x bars, sigma_y bars
    assert np.allclose(heights, sigmas[0].T.numpy())
    (dots,) = ax_mse.lines
    assert np.allclose(dots.get_ydata(), mse[0].numpy()) and np.argmax(dots.get_ydata()) == 16


# ----------------------------------------------------------------------------- complexity

def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_complexity_tables_and_figure(tmp_path):
    from distilkit.viz.complexity import (add_complexity, load_paper_points, ours_from_results,
                                          plot_complexity)

    paper = load_paper_points()
    s = paper[(paper["method"] == "DistilPose") & (paper["backbone"] == "stemnet")].iloc[0]
    assert (s["params_m"], s["gflops"], s["AP"]) == (5.4, 2.38, 71.6)
    t = paper[paper["family"] == "teacher"]
    assert len(t) == 1 and (t.iloc[0]["params_m"], t.iloc[0]["AP"]) == (69.41, 72.5)
    assert len(paper) == 24 and set(paper["family"]) == {"heatmap", "distillation", "regression",
                                                          "teacher", "distilpose"}
    base = dict(table=4, model="distilpose-s", profile="cpu", error="", run_dir="x")
    _write_csv(tmp_path / "table4.csv", [
        {**base, "row": "none", "seed": 0, "AP": "0.40"},
        {**base, "row": "none", "seed": 1, "AP": "0.50"},
        {**base, "row": "all", "seed": 0, "AP": "0.60"},
        {**base, "row": "CS", "seed": 0, "AP": "0.55"},            # not a Fig. 1 row
        {**base, "row": "KT+VT", "seed": 0, "AP": ""},             # failed: no AP
    ])
    _write_csv(tmp_path / "teachers.csv", [
        {**base, "table": 0, "row": "HRNet-W48 (teacher)", "model": "teacher-hrw48",
         "seed": 0, "AP": "0.70"}])
    ours = ours_from_results(tmp_path, "cpu")
    got = {r.label: (r.model, round(r.AP, 6), r.n_seeds) for r in ours.itertuples()}
    assert got == {"T4 none": ("distilpose-s-cpu", 45.0, 2),
                   "T4 all": ("distilpose-s-cpu", 60.0, 1),
                   "HRNet-W48 (teacher)": ("teacher-hrw48-cpu", 70.0, 1)}

    def fake(names):
        return [{"model": n, "params_m": 1.0 + i, "gmacs": 0.1, "gmacs_paper": 0.1,
                 "gflops_mmcv": 0.2 + i} for i, n in enumerate(names)]

    ours = add_complexity(ours, profiler=fake)
    expected = {r["model"]: r["gflops_mmcv"] for r in fake(list(dict.fromkeys(ours["model"])))}
    assert len(expected) == 2                                      # each preset profiled once
    assert ours["gflops_mmcv"].tolist() == [expected[m] for m in ours["model"]]
    fig = plot_complexity(paper, ours)
    assert len(fig.axes) == 4
    assert "synthetic" in fig.axes[2].get_title()


def test_complexity_profiles_real_presets():
    from distilkit.viz.complexity import add_complexity
    import pandas as pd

    from distilkit.models import build_model
    from distilkit.models.complexity import count_macs, count_params

    df = add_complexity(pd.DataFrame({"label": ["s"], "model": ["distilpose-s-smoke"],
                                      "AP": [1.0], "n_seeds": [1], "kind": ["student"]}))
    model = build_model("distilpose-s-smoke")
    assert df.loc[0, "params_m"] == pytest.approx(count_params(model) / 1e6)
    assert df.loc[0, "gflops_mmcv"] == pytest.approx(count_macs(model)["gflops_mmcv"])


# ----------------------------------------------------------------------------- plumbing

def test_save_png_pdf_writes_both(tmp_path):
    from distilkit.viz.figures import save_png_pdf

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1])
    png, pdf = save_png_pdf(fig, tmp_path / "figs", "complexity_test", dpi=50, tight=False)
    assert (png, pdf) == (tmp_path / "figs" / "complexity_test.png", tmp_path / "figs" / "complexity_test.pdf")
    # the PNG is the figure's canvas at that dpi, pixel for pixel
    fig.set_dpi(50)
    fig.canvas.draw()
    canvas = np.asarray(fig.canvas.buffer_rgba(), dtype=np.float32)[..., :3] / 255
    saved = plt.imread(png)[..., :3]
    assert saved.shape == (150, 200, 3) and canvas.std() > 0.05
    assert np.abs(saved - canvas).max() < 1 / 255 + 1e-6
    assert pdf.read_bytes()[:4] == b"%PDF"


@pytest.mark.parametrize("tight", [True, False])
def test_drawing_the_same_figure_twice_writes_the_same_bytes(tmp_path, tight):
    from distilkit.viz.figures import save_png_pdf

    fig, ax = plt.subplots()
    ax.plot([0, 1, 3])
    first = save_png_pdf(fig, tmp_path / "a", "fig", tight=tight)
    second = save_png_pdf(fig, tmp_path / "b", "fig", tight=tight)
    plt.close(fig)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    assert b"CreationDate" not in first[1].read_bytes()


def test_main_job_checkpoints_are_found_in_the_main_jobs_run_folders(tmp_path):
    import json

    from distilkit.experiments.plan import Recipe, plan_jobs
    from distilkit.experiments.figure_models import main_job_checkpoints
    from distilkit.viz.checkpoints import ensure_checkpoints

    repo = tmp_path
    teachers, jobs = plan_jobs([4], Recipe("cpu"), seeds=[0, 1], runs_dir=repo / "runs" / "cpu")

    def finish(job, name: str):
        job.run_dir.mkdir(parents=True, exist_ok=True)
        (job.run_dir / "final_metrics.json").write_text(json.dumps({"config_hash": job.config.hash(), "AP": 0.5}))
        (job.run_dir / name).write_bytes(b"x")
        return job.run_dir / name

    by_row = {(j.spec.row, j.seed): j for j in jobs}
    expected = {"teacher": finish(teachers[0], "last.pt"), "plain": finish(by_row[("none", 0)], "best.pt"),
                "tde": finish(by_row[("KT+VT", 0)], "best.pt"), "full": finish(by_row[("all", 0)], "best.pt")}
    finish(by_row[("all", 1)], "best.pt")              # a second seed: the lowest is the one shown
    found = main_job_checkpoints("cpu", repo)
    assert found == expected
    assert main_job_checkpoints("smoke", repo) == {}
    # everything found: nothing is trained
    assert ensure_checkpoints("cpu", tmp_path / "cache", repo=repo) == found
    given = ensure_checkpoints("cpu", tmp_path / "cache", repo=repo,
                               given={"teacher": found["full"]})
    assert given["teacher"] == found["full"]
    with pytest.raises(FileNotFoundError):
        ensure_checkpoints("cpu", tmp_path / "cache", repo=repo, given={"plain": repo / "nope.pt"})
