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
# # Which pixels move a joint? Attributions with captum
#
# The regression student outputs each joint as two numbers; captum attributes each of
# them separately: the attributed function is `coords[:, k, 0]` (x) or `coords[:, k, 1]`
# (y) of the chosen joint, one scalar per crop. The heatmap teacher decodes coordinates
# by argmax, which has no gradient, so its comparable scalar is the **peak value of
# heatmap k** -- the evidence it has for the joint.
#
# * **Integrated Gradients** from the zero image (ImageNet-mean grey after normalisation);
#   completeness -- attributions summing to f(x) − f(baseline) -- is printed as a check.
# * **Saliency**: |∂f/∂x|, the local sensitivity.
#
# Maps show |attribution| summed over RGB, each scaled to its maximum; the red dot is the
# joint (ground truth when labelled, else the teacher's estimate).
# Figures: `attribution_<joint>_sample<i>.png/.pdf`.

# %% tags=["parameters"]
profile = None            # None: the main job's cpu models if runs/cpu has them, else smoke models
data_root = None
teacher = None            # checkpoint paths; None: the main job's, else trained and cached
student_full = None
cache_dir = None
keypoint = "right_ankle"
sample_ids = None
num_samples = 2
seed = 0
n_steps = 32              # Integrated Gradients integration points
out_dir = None            # None: runs/<profile>/figures/<notebook>; results/ only when named here
threads = None

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch

from distilkit.keypoints import KEYPOINT_NAMES
from distilkit.viz import ROLE_LABELS, keypoint_index
from distilkit.viz.attribution import (attribute, attribution_map, coordinate_forward,
                                       heatmap_peak_forward, plot_attribution_rows)
from distilkit.viz.session import joint_point, open_session

session = open_session(profile, given={"teacher": teacher, "full": student_full},
                       roles=("teacher", "full"), cache_dir=cache_dir, data_root=data_root,
                       sample_ids=sample_ids, num_samples=num_samples, seed=seed,
                       out_dir=out_dir, threads=threads, notebook="interpret")
crops = session.crops
k = keypoint_index(keypoint)
joint = KEYPOINT_NAMES[k]
student, teach = session.models["full"], session.models["teacher"]
for role, path in session.paths.items():
    print(f"{role:8s} {path}")

# %%
forwards = {
    (ROLE_LABELS["full"], "x"): coordinate_forward(student, k, 0),
    (ROLE_LABELS["full"], "y"): coordinate_forward(student, k, 1),
    (ROLE_LABELS["teacher"], "heatmap peak"): heatmap_peak_forward(teach, k),
}
maps, checks = {}, []
for (label, what), f in forwards.items():
    ig, delta = attribute(f, crops.images, method="ig", n_steps=n_steps)
    sal, _ = attribute(f, crops.images, method="saliency")
    maps[(label, what)] = {"IG": attribution_map(ig), "Saliency": attribution_map(sal)}
    with torch.no_grad():
        gap = f(crops.images) - f(torch.zeros_like(crops.images))
    checks.append({"model": label, "output": what, "mean f(x) - f(baseline)": float(gap.mean()),
                   "mean sum of IG": float(ig.sum(dim=(1, 2, 3)).mean()),
                   "max |completeness gap|": float(delta.abs().max())})
pd.DataFrame(checks).round(5)

# %%
with torch.no_grad():
    guess = teach(crops.images).coords * torch.tensor([crops.images.shape[-1],
                                                        crops.images.shape[-2]])
for i in range(len(crops)):
    rows = {}
    for (label, what), m in maps.items():
        rows.setdefault(label, {})
        for method, amap in m.items():
            rows[label][f"{method}: {what}"] = amap[i]
    fig = plot_attribution_rows(crops.images[i], rows, point_xy=joint_point(crops, i, k, guess),
                                joint=joint)
    session.save(fig, f"attribution_{joint}_sample{i}")
    plt.show()
