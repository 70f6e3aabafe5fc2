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
# # Fig. 3b: where a keypoint token looks
#
# In the Token-distilling Encoder the 17 keypoint tokens attend to the visual tokens (one
# per 2x2 patch of the backbone map at the cpu/smoke sizes, 4x3 in the paper). The paper's
# Fig. 3b shows the attention of the **right-ankle** token: it concentrates around the
# ankle (red dot). Here: that row of every layer's attention matrix, per head and averaged
# over heads, reshaped to the patch grid and upsampled over the crop, for the heatmap
# teacher and the distilled student side by side (L_KT / L_VT align their tokens, so a
# distilled student should look where its teacher looks).
#
# With checkpoint paths left at `None` the main job's checkpoints of this profile are used
# when they exist, otherwise small models are trained once and cached (seconds at `smoke`).
# Figures: `attention_<joint>_sample<i>.png/.pdf` (layers x heads) and
# `attention_<joint>_overview.png/.pdf` (last layer, head mean, all crops).

# %% tags=["parameters"]
profile = None            # None: the main job's cpu models if runs/cpu has them, else smoke models
data_root = None
teacher = None            # checkpoint paths; None: the main job's, else trained and cached
student_full = None       # DistilPose-S with KT + VT + SH + CS
student_tde = None        # DistilPose-S with KT + VT only (shown when "tde" is in `compare`)
compare = ["teacher", "full"]
cache_dir = None          # cache of models trained here (None: runs/<profile>/viz)
keypoint = "right_ankle"
sample_ids = None         # validation instance indices; None: `num_samples` drawn by `seed`
num_samples = 2
seed = 0
layers = None             # which layers to show (0-based); None: all
out_dir = None            # None: runs/<profile>/figures/<notebook>; results/ only when named here
threads = None

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from distilkit.keypoints import KEYPOINT_NAMES
from distilkit.viz import ROLE_LABELS, keypoint_index
from distilkit.viz.attention import (model_attention, plot_attention_overview,
                                     plot_layer_head_attention)
from distilkit.viz.session import joint_point, open_session

session = open_session(profile, given={"teacher": teacher, "full": student_full,
                                       "tde": student_tde},
                       roles=tuple(compare), cache_dir=cache_dir, data_root=data_root,
                       sample_ids=sample_ids, num_samples=num_samples, seed=seed,
                       out_dir=out_dir, threads=threads, notebook="viz_attention")
k = keypoint_index(keypoint)
joint = KEYPOINT_NAMES[k]
crops = session.crops
for role, path in session.paths.items():
    print(f"{role:8s} {path}")

# %% [markdown]
# ## Attention maps
# One map per (model, crop): layers x heads, for the chosen joint's token.

# %%
maps = {ROLE_LABELS[r]: model_attention(m, crops.images, k) for r, m in session.models.items()}
with torch.no_grad():
    guess = session.models[compare[0]](crops.images).coords * torch.tensor(
        [crops.images.shape[-1], crops.images.shape[-2]])
points = [joint_point(crops, i, k, guess) for i in range(len(crops))]
for label, m in maps.items():
    print(f"{label}: {tuple(m.shape[1:])} (layers, heads, grid rows, grid cols)")

# %%
for i in range(len(crops)):
    fig = plot_layer_head_attention(crops.images[i], {lab: m[i] for lab, m in maps.items()},
                                    point_xy=points[i], joint=joint, layers=layers)
    session.save(fig, f"attention_{joint}_sample{i}")
    plt.show()

# %% [markdown]
# ## All crops, last layer, mean over heads
# Each panel is scaled to its own maximum: the question is *where* the token looks.

# %%
pts = np.array([p if p is not None else (np.nan, np.nan) for p in points])
fig = plot_attention_overview(crops.images, maps, points_xy=pts, joint=joint)
session.save(fig, f"attention_{joint}_overview")
plt.show()
