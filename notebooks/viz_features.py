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
# # Fig. 3a: what the backbones respond to
#
# The paper's Fig. 3a shows backbone feature maps of a student trained directly, students
# distilled with TDE only and with TDE + Simulated Heatmaps, and heatmap (TokenPose)
# models, and reads one thing off them: the distilled students focus on the person, the
# full DistilPose most of all ("the background is darker").
#
# Here the backbone map of each model (`forward_features`, stride 4) is summarised per
# pixel by its **energy** -- the L2 norm over channels (`reduce = "mean_abs"`: mean
# |activation|) -- min-max normalised per image, and upsampled over the crop. The number
# under each map is the **on/off-body contrast**: mean energy within a few pixels of the
# labelled joints and limbs over mean energy elsewhere (> 1: the backbone lights up on the
# person). Same crops for every model.
#
# Figure: `feature_energy.png/.pdf`; table: `feature_energy_contrast.csv`.

# %% tags=["parameters"]
profile = None            # None: the main job's cpu models if runs/cpu has them, else smoke models
data_root = None
teacher = None            # checkpoint paths; None: the main job's, else trained and cached
student_plain = None      # DistilPose-S, no distillation
student_tde = None        # TDE only (KT + VT)
student_full = None       # TDE + Simulated Heatmaps (KT + VT + SH + CS)
cache_dir = None          # cache of models trained here (None: runs/<profile>/viz)
sample_ids = None
num_samples = 4
seed = 0
reduce = "l2"             # "l2" | "mean_abs"
body_radius = 4.0         # px around joints and limbs counted as "on the body"
out_dir = None            # None: runs/<profile>/figures/<notebook>; results/ only when named here
threads = None

# %%
import matplotlib.pyplot as plt
import pandas as pd

from distilkit.viz import ROLE_LABELS
from distilkit.viz.features import (body_contrast, body_mask, model_energy, plot_feature_energy,
                                    upsample_energy)
from distilkit.viz.session import open_session

roles = ("plain", "tde", "full", "teacher")   # the order of the paper's first row, then the teacher
session = open_session(profile, given={"teacher": teacher, "plain": student_plain,
                                       "tde": student_tde, "full": student_full},
                       roles=roles, cache_dir=cache_dir, data_root=data_root,
                       sample_ids=sample_ids, num_samples=num_samples, seed=seed,
                       out_dir=out_dir, threads=threads, notebook="viz_features")
crops = session.crops
for role, path in session.paths.items():
    print(f"{role:8s} {path}")

# %% [markdown]
# ## Energy maps and on/off-body contrast

# %%
size = tuple(crops.images.shape[-2:])
energies = {ROLE_LABELS[r]: model_energy(session.models[r], crops.images, reduce=reduce)
            for r in roles}
masks = [body_mask(crops.keypoints[i].numpy(), crops.visible[i].numpy(), size,
                   radius=body_radius) for i in range(len(crops))]
contrasts = {label: [body_contrast(upsample_energy(e[i:i + 1], size)[0], masks[i])
                     for i in range(len(crops))] for label, e in energies.items()}
table = pd.DataFrame(contrasts, index=[f"crop {i}" for i in range(len(crops))])
table.loc["mean"] = table.mean()
table.to_csv(session.out_dir / "feature_energy_contrast.csv")
table.round(3)

# %%
fig = plot_feature_energy(crops.images, energies, contrasts=contrasts, reduce=reduce)
session.save(fig, "feature_energy")
plt.show()

# %% [markdown]
# The paper's claim holds on these crops when the contrast rises from the plain student
# to TDE only to TDE + Simulated Heatmaps. On synthetic data and compact models this is a
# check, not a given: read the table, not just the pictures.
