"""Evaluation: Eq. 3 rescoring, OKS / OKS-NMS, correctness rules, COCO results and COCOeval.

The crop geometry the evaluation maps predictions back with is tested in test_geometry.py."""
from __future__ import annotations

import json

import numpy as np
import pytest

from distilkit.evaluation import (evaluate_coco, oks_iou, oks_nms, postprocess_predictions,
                                  rescore, to_coco_results, write_coco_results)
from distilkit.geometry import apply_affine, get_warp_matrix
from distilkit.keypoints import NUM_KEYPOINTS, OKS_SIGMAS, PERSON_CATEGORY

K = NUM_KEYPOINTS
THRESHOLDS = np.linspace(0.5, 0.95, 10)


# ---------------------------------------------------------------------------------- rescoring
def test_rescore_matches_eq3_by_hand():
    box = np.array([0.9, 0.5, 0.8])
    ks = np.full((3, K), 0.1)
    ks[0, :4] = [0.3, 0.5, 0.7, 0.2]            # 0.2 is not above thr
    ks[1, :] = 0.6
    out = rescore(box, ks, thr=0.2)
    assert out[0] == pytest.approx(0.9 * (0.3 + 0.5 + 0.7) / 3)
    assert out[1] == pytest.approx(0.5 * 0.6)
    assert out[2] == 0.0                        # nothing above thr -> 0


# ------------------------------------------------------------------------------------ OKS/NMS
def _pose(rng, cx=200.0, cy=200.0, size=100.0):
    return np.array([cx, cy]) + rng.uniform(-0.5, 0.5, (K, 2)) * size


def test_oks_iou_matches_formula():
    rng = np.random.default_rng(1)
    a = _pose(rng)
    b = a + rng.normal(0, 3, (K, 2))
    area_a, area_b = 9000.0, 11000.0
    d2 = ((a - b) ** 2).sum(-1)
    expected = np.mean(np.exp(-d2 / (2 * (area_a + area_b) / 2 * (2 * OKS_SIGMAS) ** 2)))
    got = oks_iou(a, b[None], area_a, np.array([area_b]))
    assert got.shape == (1,) and got[0] == pytest.approx(expected, rel=1e-9)
    assert oks_iou(a, a[None], area_a, np.array([area_a]))[0] == pytest.approx(1.0)
    # vis_thr counts only keypoints scored above it in both poses
    sa, sb = np.ones(K), np.ones(K)
    sb[:8] = 0.0
    masked = oks_iou(a, b[None], area_a, np.array([area_b]), vis_thr=0.5,
                     kpt_scores=sa, other_scores=sb[None])
    full = np.exp(-d2 / (2 * (area_a + area_b) / 2 * (2 * OKS_SIGMAS) ** 2))
    assert masked[0] == pytest.approx(full[8:].mean())


def test_oks_terms_are_pycocotools_per_joint_terms_and_make_up_oks_iou():
    from distilkit.evaluation import oks_terms

    rng = np.random.default_rng(0)
    pred, gt = rng.uniform(0, 200, (3, K, 2)), rng.uniform(0, 200, (3, K, 2))
    areas = np.array([900.0, 4000.0, 12000.0])
    terms = oks_terms(pred, gt, areas)
    variances = (OKS_SIGMAS * 2) ** 2
    for n, k in [(0, 0), (1, 7), (2, 16)]:          # pycocotools' computeOks, one element
        dx, dy = pred[n, k] - gt[n, k]
        e = (dx ** 2 + dy ** 2) / variances[k] / (areas[n] + np.spacing(1)) / 2
        assert terms[n, k] == pytest.approx(np.exp(-e), rel=1e-12)
    assert np.array_equal(oks_terms(gt, gt, areas), np.ones((3, K)))
    # OKS between poses is the mean term at the mean of the two areas
    got = oks_iou(gt[0], pred, areas[0], areas)
    assert np.array_equal(got, oks_terms(pred, gt[0], (areas[0] + areas) / 2.0).mean(-1))


def test_oks_nms_keeps_best_of_duplicates_and_distant_ones():
    rng = np.random.default_rng(2)
    a = _pose(rng)
    far = _pose(rng, cx=600.0)
    instances = [
        {"keypoints": a + 0.5, "score": 0.6, "area": 10000.0},     # duplicate, lower score
        {"keypoints": far, "score": 0.4, "area": 10000.0},         # a different person
        {"keypoints": a, "score": 0.9, "area": 10000.0},           # the best
        {"keypoints": np.concatenate([a - 0.3, np.ones((K, 1))], 1).ravel(),
         "score": 0.7, "area": 10000.0},                           # flat (3K,) duplicate
    ]
    assert oks_nms(instances, thr=0.9) == [2, 1]
    assert oks_nms(instances, thr=1.0) == [2, 3, 0, 1]              # nothing exceeds 1
    assert oks_nms([], thr=0.9) == []


# --------------------------------------------------------------------------- COCO results/eval
def _coco_gt(tmp_path, n_images=7, area=160.0 * 200.0, seed=0):
    """n images, one fully labelled person each (large: area > 96^2)."""
    rng = np.random.default_rng(seed)
    images, anns, poses = [], [], []
    for i in range(n_images):
        pose = _pose(rng, 320.0, 240.0, 150.0)
        poses.append(pose)
        kp = np.concatenate([pose, np.full((K, 1), 2.0)], 1).ravel().tolist()
        x0, y0 = pose.min(0)
        x1, y1 = pose.max(0)
        images.append({"id": 100 + i, "file_name": f"{i}.jpg", "width": 640, "height": 480})
        anns.append({"id": 1 + i, "image_id": 100 + i, "category_id": 1, "iscrowd": 0,
                     "area": area, "bbox": [x0, y0, x1 - x0, y1 - y0],
                     "num_keypoints": K, "keypoints": kp})
    path = tmp_path / "person_keypoints_val.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [PERSON_CATEGORY]}))
    return path, [100 + i for i in range(n_images)], np.stack(poses)


def test_to_coco_results_and_atomic_write(tmp_path):
    kpts = np.arange(2 * K * 2, dtype=float).reshape(2, K, 2)
    res = to_coco_results([5, 6], kpts, np.full((2, K), 0.5), np.array([0.9, 0.8]))
    assert len(res) == 2 and res[0]["image_id"] == 5 and res[0]["category_id"] == 1
    assert len(res[0]["keypoints"]) == 3 * K and res[1]["score"] == pytest.approx(0.8)
    assert res[0]["keypoints"][:3] == [0.0, 1.0, 0.5]
    path = write_coco_results(res, tmp_path / "sub" / "results.json")
    assert json.loads(path.read_text()) == res
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]   # no temp left


def test_ground_truth_as_predictions_gives_ap_1(tmp_path, capsys):
    ann, ids, poses = _coco_gt(tmp_path)
    res = to_coco_results(ids, poses, np.ones((len(ids), K)), np.ones(len(ids)))
    snapshot = json.loads(json.dumps(res))
    stats = evaluate_coco(res, ann)
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)
    assert stats["AP50"] == stats["AP75"] == stats["APL"] == pytest.approx(1.0)
    assert np.isnan(stats["APM"])                        # no medium people: undefined
    assert res == snapshot                               # inputs not mutated by loadRes
    assert capsys.readouterr().out == ""                 # pycocotools silenced
    # a results file path works the same
    assert evaluate_coco(write_coco_results(res, tmp_path / "r.json"), ann)["AP"] == \
        pytest.approx(1.0)


def _coco_ap_one_per_image(oks: np.ndarray, thr: float) -> float:
    """101-point AP when each image has one GT and one detection and scores rank the
    detections by decreasing OKS: the hits are the first k, so precision is 1 up to recall
    k/n and the curve stops there."""
    k, n = int((oks >= thr).sum()), len(oks)
    if k == 0:
        return 0.0
    return (np.floor(100 * k / n + 1e-9) + 1) / 101


def test_shifted_predictions_give_independently_computed_ap(tmp_path):
    ann, ids, poses = _coco_gt(tmp_path, n_images=7)
    area = 160.0 * 200.0
    offsets = np.array([1.0, 4.0, 7.0, 10.0, 14.0, 19.0, 26.0])   # px, per image
    direction = np.array([0.6, 0.8])
    preds = poses + offsets[:, None, None] * direction              # (n, K, 2)
    # OKS by formula (COCO: e = d^2 / (2 s^2 kappa^2), s^2 = GT area, kappa = 2 sigma)
    oks = np.exp(-(offsets[:, None] ** 2) / (2 * area * (2 * OKS_SIGMAS) ** 2)).mean(1)
    assert np.all(np.abs(oks[:, None] - THRESHOLDS[None]) > 1e-3)  # no threshold ties
    per_thr = np.array([_coco_ap_one_per_image(oks, t) for t in THRESHOLDS])
    assert 0.0 < per_thr.mean() < 1.0 and len(set(per_thr)) > 3     # a non-trivial case
    scores = 1.0 - offsets / 100.0                                   # best OKS ranks first
    stats = evaluate_coco(to_coco_results(ids, preds, np.ones((7, K)), scores), ann)
    assert stats["AP"] == pytest.approx(per_thr.mean(), abs=1e-9)
    assert stats["AP50"] == pytest.approx(per_thr[0], abs=1e-9)
    assert stats["AP75"] == pytest.approx(per_thr[5], abs=1e-9)
    assert stats["AR"] == pytest.approx(np.mean([(oks >= t).mean() for t in THRESHOLDS]))


def test_evaluate_coco_rejects_bad_results(tmp_path):
    ann, ids, poses = _coco_gt(tmp_path, n_images=2)
    with pytest.raises(ValueError, match="person_keypoints_val.json"):
        evaluate_coco([], ann)
    res = to_coco_results([ids[0], 999], poses, np.ones((2, K)), np.ones(2))
    with pytest.raises(ValueError, match=r"not in .*person_keypoints_val.json.*999"):
        evaluate_coco(res, ann)
    bad = to_coco_results(ids, poses, np.ones((2, K)), np.ones(2))
    bad[1]["keypoints"] = bad[1]["keypoints"][:-3]
    with pytest.raises(ValueError, match="51 keypoint values"):
        evaluate_coco(bad, ann)


# ------------------------------------------------------------------------------ correctness
def test_pck10_rule_is_a_tenth_of_the_input_height_strictly():
    from distilkit.evaluation import is_correct_pck10

    d = np.array([0.0, 25.5, 25.6, 40.0])
    assert is_correct_pck10(d, 256).tolist() == [True, True, False, False]
    assert is_correct_pck10(d, 64).tolist() == [True, False, False, False]


def test_oks_rule_holds_within_the_radius_where_the_term_is_one_half():
    from distilkit.evaluation import is_correct_oks
    from distilkit.evaluation.correctness import oks_correct_radius

    areas = np.array([900.0, 2500.0])
    radius = np.array([[oks_correct_radius(a, k) for k in range(K)] for a in areas])
    gt = np.random.default_rng(3).uniform(0, 300, (2, K, 2))
    unit = np.array([0.6, -0.8])                  # any direction: only the distance counts
    _, terms = is_correct_oks(gt + radius[..., None] * unit, gt, areas)
    assert np.allclose(terms, 0.5)
    for factor, expected in ((0.98, True), (1.02, False)):
        correct, _ = is_correct_oks(gt + factor * radius[..., None] * unit, gt, areas)
        assert (correct == expected).all()
    # a looser threshold lets the farther joints count too
    loose, _ = is_correct_oks(gt + 1.02 * radius[..., None] * unit, gt, areas, thr=0.4)
    assert loose.all()


# ------------------------------------------------------------------------------ postprocess
def test_postprocess_chain_gt_crops_to_ap_1(tmp_path):
    """GT poses pushed through crops (input px) come back as AP 1 after the whole chain,
    and a near-duplicate crop of the same person is removed by OKS-NMS."""
    ann, ids, poses = _coco_gt(tmp_path, n_images=4)
    input_size = (256, 192)
    centers = poses.mean(1)                                           # (n, 2)
    scales = np.tile([[180.0, 240.0]], (len(ids), 1))
    coords_in = np.stack([apply_affine(p, get_warp_matrix(c, s, 0.0, input_size))
                          for p, c, s in zip(poses, centers, scales)])
    # duplicate of image 0's person: slightly shifted box, lower box score
    dup_c = centers[0] + 2.0
    dup_in = apply_affine(poses[0], get_warp_matrix(dup_c, scales[0], 0.0, input_size))
    coords_in = np.concatenate([coords_in, dup_in[None]])
    centers = np.concatenate([centers, dup_c[None]])
    scales = np.concatenate([scales, scales[:1]])
    kpt_scores = np.full((len(ids) + 1, K), 0.8)
    kpt_scores[:, 0] = 0.1                                             # below 0.2: ignored
    box = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    res = postprocess_predictions(coords_in, kpt_scores, centers, scales, box,
                                  ids + [ids[0]], input_size)
    assert len(res) == len(ids)
    by_img = {r["image_id"]: r for r in res}
    assert by_img[ids[0]]["score"] == pytest.approx(0.9 * 0.8)        # Eq. 3, best kept
    got = np.array(by_img[ids[2]]["keypoints"]).reshape(K, 3)[:, :2]
    assert np.allclose(got, poses[2], atol=1e-6)
    assert evaluate_coco(res, ann)["AP"] == pytest.approx(1.0)
    assert len(postprocess_predictions(coords_in, kpt_scores, centers, scales, box,
                                       ids + [ids[0]], input_size, nms_thr=None)) == 5


def test_flip_coords_inverts_data_pipeline_flip():
    import torch

    from distilkit.codecs import flip_coords
    from distilkit.geometry import flip_keypoints
    W, H = 192, 256
    kpts = np.random.default_rng(4).uniform(0, 1, (K, 2)) * [W - 1, H - 1]
    flipped, _ = flip_keypoints(kpts, np.ones(K), W)
    back = flip_coords(torch.from_numpy(flipped / [W, H])[None], input_width=W)
    assert np.allclose(back[0].numpy(), kpts / [W, H], atol=1e-9)


# ----------------------------------------------------------------- error tolerance of AP
def test_uniform_error_tolerance_curve_starts_at_one_and_falls(smoke_root):
    from distilkit.evaluation.tolerance import ap_at_uniform_error

    ann = smoke_root / "annotations" / "person_keypoints_val2017.json"
    rows = ap_at_uniform_error(ann, [0.0, 2.0, 4.0, 8.0], (64, 48), face_scales=(1.0, 0.0))
    curve = {(r["face_scale"], r["err_px"]): r["AP"] for r in rows}
    assert curve[(1.0, 0.0)] == pytest.approx(1.0)
    noisy = [curve[(1.0, e)] for e in (0.0, 2.0, 4.0, 8.0)]
    assert all(a > b for a, b in zip(noisy, noisy[1:])), noisy
    assert curve[(1.0, 8.0)] < 0.05          # uniform 8 px on a 64x48 crop: AP is gone
    # the face keypoints' small sigmas account for much of the loss
    assert all(curve[(0.0, e)] >= curve[(1.0, e)] for e in (2.0, 4.0, 8.0))
    assert curve[(0.0, 4.0)] > curve[(1.0, 4.0)] + 0.1


def test_perturbed_ground_truth_has_the_asked_mean_error_in_input_pixels(smoke_root):
    from distilkit.geometry import bbox_to_center_scale
    from distilkit.evaluation import load_coco
    from distilkit.evaluation.tolerance import perturbed_ground_truth

    coco = load_coco(smoke_root / "annotations" / "person_keypoints_train2017.json")
    res = perturbed_ground_truth(coco, 3.0, (64, 48), rng=np.random.default_rng(1))
    anns = [a for a in coco.dataset["annotations"] if any(v > 0 for v in a["keypoints"][2::3])]
    assert len(res) == len(anns)
    dists = []
    for a, r in zip(anns, res):
        gt = np.asarray(a["keypoints"]).reshape(-1, 3)
        pred = np.asarray(r["keypoints"]).reshape(-1, 3)[:, :2]
        _, scale = bbox_to_center_scale(a["bbox"], 48 / 64)
        d = np.linalg.norm((pred - gt[:, :2]) / (scale / np.array([48, 64])), axis=1)
        dists.append(d[gt[:, 2] > 0])
    assert np.concatenate(dists).mean() == pytest.approx(3.0, rel=0.1)


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"images": [], "annotations": []}), "no person has labelled keypoints"),
])
def test_tolerance_curve_names_a_bad_annotation_file(tmp_path, content, message):
    from distilkit.data.errors import DataError
    from distilkit.evaluation.tolerance import ap_at_uniform_error

    ann = tmp_path / "person_keypoints_val2017.json"
    ann.write_text(content)
    with pytest.raises(DataError, match=message) as err:
        ap_at_uniform_error(ann, [1.0], (64, 48))
    assert str(ann) in str(err.value)


# ----------------------------------------------------------- how well scores rank keypoints
def test_auroc_is_one_for_a_perfect_ranking_zero_reversed_and_half_for_constant_scores():
    from distilkit.evaluation.ranking import auroc

    right = np.array([True, True, False, False, False])
    assert auroc(np.array([0.9, 0.8, 0.3, 0.2, 0.1]), right) == 1.0
    assert auroc(np.array([0.1, 0.2, 0.7, 0.8, 0.9]), right) == 0.0
    assert auroc(np.full(5, 0.5), right) == 0.5           # an untrained, constant score


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_equals_the_share_of_right_wrong_pairs_ranked_right_ties_half(seed):
    from distilkit.evaluation.ranking import auroc

    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, 200) / 5.0                   # many ties
    right = rng.random(200) < 0.4 + 0.1 * scores
    pos, neg = scores[right][:, None], scores[~right][None, :]
    pairs = (pos > neg).sum() + 0.5 * (pos == neg).sum()
    assert auroc(scores, right) == pytest.approx(pairs / (pos.size * neg.size), abs=1e-12)


def test_auroc_is_undefined_with_one_class_and_refuses_bad_input():
    from distilkit.evaluation.ranking import auroc

    assert np.isnan(auroc(np.array([0.2, 0.4]), np.array([True, True])))
    with pytest.raises(ValueError, match="differ in size"):
        auroc(np.array([0.2, 0.4]), np.array([True]))
    with pytest.raises(ValueError, match="NaN"):
        auroc(np.array([0.2, np.nan]), np.array([True, False]))
