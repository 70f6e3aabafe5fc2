# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Fig. 6: does the student know when it is wrong?
#
# DistilPose's head predicts a confidence per joint, trained (L_CS, Eq. 6) to match the
# teacher's heatmap value at the predicted location, and Eq. 3 folds the confidences into
# the instance score. Three views:
#
# 1. **Confidence boxes** (the paper's Fig. 6): a box per predicted joint, its size and
#    fill growing with the confidence, the joint and its score written in it, the border
#    **green when the joint is correct and red when it is not**, grey when the joint is
#    not labelled. *Rule:* a joint is correct iff its OKS term
#    exp(−d² / (2 s² κ²)) ≥ 0.5, with d the distance to the ground truth in image pixels,
#    s² the instance's annotated area and κ = 2σ_k the COCO per-joint constant -- i.e. the
#    joint counts at least half a keypoint in COCO's OKS.
# 2. **Reliability**: joints binned by confidence, fraction correct per bin against the
#    diagonal (perfect calibration), for the plain, TDE-only and full students. A plain
#    student's confidence is never trained, so it should be flat.
# 3. **The AP Eq. 3 buys**: the same predictions on the detector boxes evaluated twice
#    with `distilkit.evaluation` -- instance score = box score, and = box score × mean
#    joint score (as printed, and as evaluated, with scores ≤ 0.2 left out).
#
# Figures: `confidence_boxes`, `confidence_reliability`, `confidence_rescoring`
# (.png/.pdf); table: `confidence_rescoring.csv`.

# %% tags=["parameters"]
profile = None            # None: the main job's cpu models if runs/cpu has them, else smoke models
data_root = None
teacher = None            # checkpoint paths; None: the main job's, else trained and cached
student_plain = None
student_tde = None
student_full = None
cache_dir = None
sample_ids = None
num_samples = 4           # crops with confidence boxes
reliability_crops = 300   # GT crops whose joints enter the reliability plot
n_bins = 10
oks_threshold = 0.5       # the correctness rule's threshold on the per-joint OKS term
seed = 0
out_dir = None            # None: runs/<profile>/figures/<notebook>; results/ only when named here
threads = None

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from distilkit.engine.data import ann_file
from distilkit.profiles import get_profile
from distilkit.viz import ROLE_LABELS, load_val_crops
from distilkit.viz.confidence import (detection_predictions, joint_confidence,
                                      plot_confidence_crops, plot_reliability, plot_rescoring,
                                      reliability_bins, rescoring_gain)
from distilkit.viz.session import open_session

students = ("plain", "tde", "full")
session = open_session(profile, given={"teacher": teacher, "plain": student_plain,
                                       "tde": student_tde, "full": student_full},
                       roles=students, cache_dir=cache_dir, data_root=data_root,
                       sample_ids=sample_ids, num_samples=num_samples, seed=seed,
                       out_dir=out_dir, threads=threads, notebook="viz_confidence")
for role, path in session.paths.items():
    print(f"{role:8s} {path}")

# %% [markdown]
# ## Confidence boxes (full student)

# %%
crops = session.crops
judged_full = joint_confidence(session.models["full"], crops, thr=oks_threshold)
fig = plot_confidence_crops(
    crops.images, judged_full["coords_input"], judged_full["scores"], judged_full["correct"],
    judged_full["judged"], thr=oks_threshold,
    title=f"{ROLE_LABELS['full']}: joint confidence; green = OKS term ≥ {oks_threshold:g}, "
          "red = below")
session.save(fig, "confidence_boxes")
plt.show()

# %% [markdown]
# ## Reliability

# %%
many = load_val_crops(session.data_root, tuple(crops.images.shape[-2:]), num=reliability_crops,
                      seed=seed, min_visible=0)
print(f"{len(many)} crops, {int((many.gt_image[..., 2] > 0).sum())} labelled joints")
fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), layout="constrained")
for role, color in zip(students, ("C7", "C0", "C3")):
    j = joint_confidence(session.models[role], many, thr=oks_threshold)
    mask = j["judged"]
    bins = reliability_bins(j["scores"][mask], j["correct"][mask], n_bins=n_bins)
    plot_reliability(axes[0], bins, label=ROLE_LABELS[role], color=color)
    axes[1].hist(j["scores"][mask & j["correct"]], bins=np.linspace(0, 1, 21), histtype="step",
                 color=color, linewidth=1.5, label=f"{ROLE_LABELS[role]}: correct")
    axes[1].hist(j["scores"][mask & ~j["correct"]], bins=np.linspace(0, 1, 21), histtype="step",
                 color=color, linestyle="--", linewidth=1.5, label=f"{ROLE_LABELS[role]}: wrong")
axes[0].legend(fontsize=7, loc="upper left")
axes[0].set_title(f"reliability (correct: OKS term ≥ {oks_threshold:g}; marker area = joints)",
                  fontsize=9)
axes[1].set_xlabel("predicted joint confidence")
axes[1].set_ylabel("labelled joints")
axes[1].legend(fontsize=6)
axes[1].set_title("confidence of correct (solid) and wrong (dashed) joints", fontsize=9)
session.save(fig, "confidence_reliability")
plt.show()

# %% [markdown]
# ## What Eq. 3 rescoring gains (detector boxes, flip test, OKS-NMS)

# %%
det_thr = get_profile(profile).det_score_thr
gains = {}
for role in students:
    pred = detection_predictions(session.models[role], session.data_root, det_score_thr=det_thr)
    out = rescoring_gain(pred, ann_file(session.data_root, "val"),
                         tuple(session.models[role].input_size))
    gains[ROLE_LABELS[role]] = {"box": 100 * out["box"]["AP"], "eq3_all": 100 * out["eq3_all"]["AP"],
                                "eq3_thr": 100 * out["eq3_thr"]["AP"],
                                "gain_eq3_all": 100 * out["gain"]["eq3_all"],
                                "gain_eq3_thr": 100 * out["gain"]["eq3_thr"],
                                "instances": len(pred.index), "AP_unit": "percent"}
table = pd.DataFrame(gains).T
table.to_csv(session.out_dir / "confidence_rescoring.csv")
table   # AP in percent

# %%
fig = plot_rescoring(table)
session.save(fig, "confidence_rescoring")
plt.show()
