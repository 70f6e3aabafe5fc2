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
# # Fig. 5: Simulated Heatmaps beside the teacher's
#
# The student predicts, per joint, (x, y) and (σx, σy); Eq. 2 turns them into an
# unnormalised Gaussian on the teacher's heatmap grid -- the **Simulated Heatmap** that
# L_SH pulls towards the teacher's heatmap. Per joint: the teacher's heatmap, the
# student's simulated heatmap with its σx, σy (heatmap px) in the title, and the
# difference *simulated − teacher* on a diverging scale centred at 0 (red: the student
# puts mass where the teacher has less; blue: the reverse). Teacher and simulated maps
# share one colour bar; the differences share another.
#
# Figures: `heatmap_comparison_sample<i>.png/.pdf` and `heatmap_sigmas.png/.pdf`
# (σ per joint and the heatmap MSE over the crops).

# %% tags=["parameters"]
profile = None            # None: the main job's cpu models if runs/cpu has them, else smoke models
data_root = None
teacher = None            # checkpoint paths; None: the main job's, else trained and cached
student_full = None       # a student trained with L_SH (its σ are trained)
student_role = "full"     # which student to show ("tde": σ never trained, for contrast)
student_tde = None
cache_dir = None
sample_ids = None
num_samples = 2
seed = 0
joints = None             # joint names or indices to show; None: all 17
out_dir = None            # None: runs/<profile>/figures/<notebook>; results/ only when named here
threads = None

# %%
import matplotlib.pyplot as plt

from distilkit.viz import ROLE_LABELS, keypoint_index
from distilkit.viz.heatmaps import heatmap_pair, plot_heatmap_comparison, plot_sigma_summary
from distilkit.viz.session import open_session

session = open_session(profile, given={"teacher": teacher, "full": student_full,
                                       "tde": student_tde},
                       roles=("teacher", student_role), cache_dir=cache_dir,
                       data_root=data_root, sample_ids=sample_ids, num_samples=num_samples,
                       seed=seed, out_dir=out_dir, threads=threads, notebook="viz_heatmaps")
crops = session.crops
for role, path in session.paths.items():
    print(f"{role:8s} {path}")
shown = None if joints is None else [keypoint_index(j) for j in joints]

# %%
pair = heatmap_pair(session.models["teacher"], session.models[student_role], crops.images)
print("teacher heatmaps", tuple(pair["teacher"].shape), " mean MSE simulated vs teacher",
      f"{float(pair['mse'].mean()):.5f}")

# %%
for i in range(len(crops)):
    fig = plot_heatmap_comparison(
        crops.images[i], pair["teacher"][i], pair["simulated"][i], pair["sigmas"][i],
        coords=pair["coords"][i], keypoints=shown,
        title=f"crop {i}: teacher heatmaps vs Simulated Heatmaps of the "
              f"{ROLE_LABELS[student_role]} (σ in heatmap px)")
    session.save(fig, f"heatmap_comparison_sample{i}")
    plt.show()

# %% [markdown]
# ## σ per joint
# The teacher was trained on Gaussians of σ = 2 for every joint, so where its heatmaps are
# wider than that it is less sure. A student whose σ differ between joints in the same
# way has picked up the teacher's uncertainty, which a plain regression head cannot
# express; σ that stay at the initial 2 px mean L_SH taught it nothing.

# %%
fig = plot_sigma_summary(pair["sigmas"], pair["mse"])
session.save(fig, "heatmap_sigmas")
plt.show()
