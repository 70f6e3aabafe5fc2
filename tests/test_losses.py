"""The five DistilPose losses and the teacher MSE, each against a hand computation."""
import math
from dataclasses import replace

import pytest
import torch

from distilkit.codecs import simulated_heatmaps
from distilkit.losses import (DISTILL_TERMS, LossConfig, compute_losses, confidence_loss, gaussian_window_on_grid,
                              heatmap_mse_loss,
                              parse_loss_switches, regression_loss, simulated_heatmap_loss,
                              teacher_value_at, token_loss)
from distilkit.outputs import PoseOutput


def test_smooth_l1_regression_by_hand():
    pred = torch.tensor([[[0.5, 0.5], [0.1, 0.9]]])
    target = torch.tensor([[[0.7, 0.5], [0.1, 0.0]]])
    weight = torch.tensor([[1.0, 1.0]])
    # |d| = 0.2 -> 0.5*0.04 = 0.02; 0 -> 0; 0 -> 0; 0.9 -> 0.5*0.81 = 0.405 (beta = 1)
    expected = (0.02 + 0.405) / 4
    assert regression_loss(pred, target, weight).item() == pytest.approx(expected, rel=1e-6)
    assert regression_loss(pred, target, weight, kind="l1").item() == pytest.approx((0.2 + 0.9) / 4, rel=1e-6)


@pytest.mark.parametrize("kind", ["smooth_l1", "l1"])
def test_invisible_keypoint_contributes_nothing(kind):
    pred = torch.rand(2, 17, 2, requires_grad=True)
    target = torch.rand(2, 17, 2)
    weight = torch.ones(2, 17)
    weight[1, 3] = 0
    base = regression_loss(pred, target, weight, kind=kind)
    moved = target.clone()
    moved[1, 3] += 5.0  # a wild label on the invisible joint changes nothing
    assert regression_loss(pred, moved, weight, kind=kind).item() == pytest.approx(base.item())
    base.backward()
    assert torch.all(pred.grad[1, 3] == 0)


def test_token_loss_is_mse_and_needs_equal_layout():
    s, t = torch.randn(2, 17, 8), torch.randn(2, 17, 8)
    assert token_loss(s, t).item() == pytest.approx(((s - t) ** 2).mean().item(), rel=1e-6)
    with pytest.raises(ValueError, match="token shapes differ"):
        token_loss(s, torch.randn(2, 17, 4))


def _tiny_sh_batch():
    """Two samples, one keypoint on a 6x5 grid; sample 1's keypoint is unlabelled."""
    h, w = 6, 5
    coords = torch.tensor([[[0.4, 0.5]], [[0.2, 0.3]]])           # (N=2, K=1, 2)
    sigmas = torch.full((2, 1, 2), 1.5)
    teacher = torch.rand(2, 1, h, w, generator=torch.Generator().manual_seed(0))
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    per_sample = []                 # mean over H, W of (S_n - T_n)^2, S by Eq. 2 written out
    for n in range(2):
        mx, my = coords[n, 0, 0] * w, coords[n, 0, 1] * h
        sim = torch.exp(-0.5 * ((xs - mx) ** 2 / 1.5 ** 2 + (ys - my) ** 2 / 1.5 ** 2))
        per_sample.append(((sim - teacher[n, 0]) ** 2).mean().item())
    return coords, sigmas, teacher, torch.tensor([[1.0], [0.0]]), per_sample


@pytest.mark.parametrize("mode", ["authors", "masked"])
def test_simulated_heatmap_loss_by_hand(mode):
    coords, sigmas, teacher, weight, (e0, e1) = _tiny_sh_batch()
    # authors: mean_i(w_i^2) * mean_j(e_j) = (1 + 0)/2 * (e0 + e1)/2, the unlabelled sample included;
    # masked:  mean_i(w_i * e_i) = (e0 + 0)/2
    expected = {"authors": 0.5 * (e0 + e1) / 2, "masked": e0 / 2}[mode]
    got = simulated_heatmap_loss(coords, sigmas, teacher, weight, mode=mode)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # all labelled: both modes are the plain mean over N, K, H, W
    assert simulated_heatmap_loss(coords, sigmas, teacher, torch.ones(2, 1), mode=mode).item() == \
        pytest.approx((e0 + e1) / 2, rel=1e-5)


def test_simulated_heatmap_loss_rejects_an_unknown_mode():
    coords, sigmas, teacher, weight, _ = _tiny_sh_batch()
    with pytest.raises(ValueError, match="mode must be one of"):
        simulated_heatmap_loss(coords, sigmas, teacher, weight, mode="broadcast")
    with pytest.raises(ValueError, match="sh_mode must be one of"):
        LossConfig(sh=True, sh_mode="broadcast")


def _batch_with_unlabelled_keypoints(n=4, k=5, h=8, w=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    coords = torch.rand(n, k, 2, generator=g) * 0.9 + 0.05
    coords[2, 1] = torch.tensor([3.0, 0.5])       # its 3-sigma window lies right of the grid
    coords[3, 4] = torch.tensor([-0.2, 0.4])      # outside the crop but its window reaches in
    sigmas = torch.rand(n, k, 2, generator=g) + 0.8
    teacher = torch.rand(n, k, h, w, generator=g)
    weight = (torch.rand(n, k, generator=g) > 0.33).float()   # about a third unlabelled, as on COCO
    weight[3, 4] = 0.0
    return coords, sigmas, teacher, weight


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_authors_mode_is_their_reg2hm_loss_on_a_batch_with_unlabelled_keypoints(seed):
    from authors_reference import authors_simulated_heatmap_loss

    coords, sigmas, teacher, weight = _batch_with_unlabelled_keypoints(seed=seed)
    assert (weight == 0).any() and (weight == 1).any()
    ours_c, ours_s = coords.clone().requires_grad_(), sigmas.clone().requires_grad_()
    theirs_c, theirs_s = coords.clone().requires_grad_(), sigmas.clone().requires_grad_()
    ours = simulated_heatmap_loss(ours_c, ours_s, teacher, weight, mode="authors")
    theirs = authors_simulated_heatmap_loss(theirs_c, theirs_s, teacher, weight)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)
    ours.backward()
    theirs.backward()
    assert torch.allclose(ours_c.grad, theirs_c.grad, rtol=1e-4, atol=1e-9)
    assert torch.allclose(ours_s.grad, theirs_s.grad, rtol=1e-4, atol=1e-9)
    masked = simulated_heatmap_loss(coords, sigmas, teacher, weight, mode="masked")
    assert masked.item() != pytest.approx(theirs.item(), rel=1e-3)


@pytest.mark.parametrize("mode, pulled", [("authors", True), ("masked", False)])
def test_only_the_authors_mode_pulls_unlabelled_keypoints_towards_the_teacher(mode, pulled):
    coords, sigmas, teacher, weight = _batch_with_unlabelled_keypoints()
    coords.requires_grad_()
    simulated_heatmap_loss(coords, sigmas, teacher, weight, mode=mode).backward()
    unlabelled_on_grid = (weight == 0) & (gaussian_window_on_grid(coords, sigmas, (8, 6)) == 1)
    grad = coords.grad.abs().sum(-1)[unlabelled_on_grid]
    assert bool((grad > 0).all()) is pulled and bool((grad == 0).all()) is not pulled


def test_confidence_loss_reads_teacher_at_rounded_location():
    teacher = torch.zeros(1, 2, 4, 4)
    teacher[0, 0, 1, 2] = 0.8   # y=1, x=2
    coords = torch.tensor([[[2.2 / 4, 0.9 / 4], [0.999, 0.5]]])   # kpt 1 rounds to x=4: outside
    scores = torch.tensor([[0.5, 0.3]])
    assert teacher_value_at(coords, teacher)[0].tolist() == pytest.approx([0.8, 0.0])
    # the authors' reduction: mean over N*K, masked by the keypoint weight
    assert confidence_loss(coords, scores, teacher, torch.ones(1, 2)).item() == pytest.approx(
        (abs(0.8 - 0.5) + 0.3) / 2)
    assert confidence_loss(coords, scores, teacher, torch.tensor([[0.0, 1.0]])).item() == pytest.approx(0.3 / 2)


@pytest.mark.parametrize("mode", ["authors", "masked"])
def test_l_sh_and_l_cs_average_over_keypoints_as_the_authors_code_does(mode):
    """Eq. 5 and 6 print a sum over the K keypoints; the authors' losses average over them."""
    n, k, h, w = 3, 17, 8, 6
    coords, sigmas = torch.rand(n, k, 2) * 0.8 + 0.1, torch.rand(n, k, 2) + 1
    teacher, scores = torch.rand(n, k, h, w), torch.rand(n, k)
    sim = simulated_heatmaps(coords, sigmas, (h, w))
    summed_sh = ((sim - teacher) ** 2).mean(dim=(2, 3)).sum(dim=1).mean()
    assert simulated_heatmap_loss(coords, sigmas, teacher, torch.ones(n, k), mode=mode).item() == \
        pytest.approx(summed_sh.item() / k, rel=1e-5)
    summed_cs = (teacher_value_at(coords, teacher) - scores).abs().sum(dim=1).mean()
    assert confidence_loss(coords, scores, teacher, torch.ones(n, k)).item() == pytest.approx(
        summed_cs.item() / k, rel=1e-5)


@pytest.mark.parametrize("mode", ["authors", "masked"])
def test_l_sh_drops_a_prediction_whose_gaussian_window_misses_the_grid(mode):
    h, w = 6, 5
    sigmas = torch.full((1, 2, 2), 1.0)
    coords = torch.tensor([[[0.5, 0.5], [2.0, 0.5]]])      # keypoint 1: 3 sigma window right of the grid
    assert gaussian_window_on_grid(coords, sigmas, (h, w)).tolist() == [[1.0, 0.0]]
    teacher = torch.rand(1, 2, h, w)
    only_first = simulated_heatmap_loss(coords[:, :1], sigmas[:, :1], teacher[:, :1], torch.ones(1, 1),
                                        mode=mode)
    assert simulated_heatmap_loss(coords, sigmas, teacher, torch.ones(1, 2), mode=mode).item() == \
        pytest.approx(only_first.item() / 2, rel=1e-6)


def test_heatmap_mse_weighted():
    pred, target = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    weight = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    expected = ((pred - target) ** 2 * weight[:, :, None, None]).mean()
    assert heatmap_mse_loss(pred, target, weight).item() == pytest.approx(expected.item(), rel=1e-6)


def _fake_outputs(n=2, k=17, d=8, p=6, h=8, w=6):
    student = PoseOutput(coords=torch.rand(n, k, 2), scores=torch.rand(n, k),
                         sigmas=torch.rand(n, k, 2) + 1, kpt_tokens=torch.randn(n, k, d),
                         vis_tokens=torch.randn(n, p, d))
    teacher = PoseOutput(heatmaps=torch.rand(n, k, h, w), kpt_tokens=torch.randn(n, k, d),
                         vis_tokens=torch.randn(n, p, d))
    batch = {"coords": torch.rand(n, k, 2), "coord_weights": torch.ones(n, k)}
    return student, teacher, batch


@pytest.mark.parametrize("switches", ["reg", "reg,cs", "reg,sh", "reg,kt,vt", "reg,kt,vt,sh,cs"])
def test_compute_losses_weights_each_term(switches):
    student, teacher, batch = _fake_outputs()
    cfg = parse_loss_switches(switches)
    terms = compute_losses(student, batch, cfg, teacher)
    assert list(terms) == switches.split(",")          # Eq. 7's order: the order they are summed in
    if "kt" in terms:
        assert terms["kt"].item() == pytest.approx(5e-4 * token_loss(student.kpt_tokens, teacher.kpt_tokens).item())
    if "cs" in terms:
        assert terms["cs"].item() == pytest.approx(
            1e-2 * confidence_loss(student.coords, student.scores, teacher.heatmaps,
                                   batch["coord_weights"]).item())
    assert all(math.isfinite(v.item()) for v in terms.values())


@pytest.mark.parametrize("sh_mode", ["authors", "masked"])
def test_compute_losses_computes_l_sh_in_the_configured_mode(sh_mode):
    student, teacher, batch = _fake_outputs()
    batch["coord_weights"][0, :5] = 0.0
    terms = compute_losses(student, batch, parse_loss_switches("reg,sh", sh_mode=sh_mode), teacher)
    expected = simulated_heatmap_loss(student.coords, student.sigmas, teacher.heatmaps,
                                      batch["coord_weights"], mode=sh_mode)
    assert terms["sh"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert LossConfig().sh_mode == "authors"


@pytest.mark.parametrize("term", DISTILL_TERMS, ids=lambda term: term.name)
def test_each_term_is_its_weight_times_its_loss_on_the_teacher_outputs_it_reads(term):
    student, teacher, batch = _fake_outputs()
    reads_only = PoseOutput(**{name: getattr(teacher, name) for name in term.reads})
    cfg = replace(parse_loss_switches(term.name), **{term.weight: 0.25})
    assert cfg == LossConfig(reg=False, **{term.name: True, term.weight: 0.25})
    assert cfg.teacher_outputs() == term.reads
    terms = compute_losses(student, batch, cfg, reads_only)
    assert list(terms) == [term.name]
    assert torch.equal(terms[term.name], 0.25 * term.loss(student, batch, teacher, cfg))


def test_unknown_switch_and_missing_teacher_are_errors():
    with pytest.raises(ValueError, match="unknown loss switch"):
        parse_loss_switches("reg,kd")
    student, _, batch = _fake_outputs()
    with pytest.raises(ValueError, match="no teacher output"):
        compute_losses(student, batch, LossConfig(sh=True), None)
