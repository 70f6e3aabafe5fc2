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
# # Explorer: one crop, one joint, one student
#
# Pick a validation crop, a joint and a model; the figure shows, for that joint:
#
# 1. the crop with the student's predicted skeleton (the joint ringed, its ground truth a cross);
# 2. the teacher's heatmap of the joint;
# 3. the student's **Simulated Heatmap** of it (Eq. 2, from its x, y, σx, σy), on the same grid
#    and colour scale: L_SH pulls 3 towards 2;
# 4. where the joint's keypoint token looks in the student's last Token-distilling Encoder
#    layer (mean over heads, scaled to its peak; L_KT / L_VT align these tokens with the teacher's).
#
# The models: the four of the figures (the main job's when `runs/cpu` has them, else the published
# ones of `results/models`, sha256-checked, else smoke models trained here), then every Table 4
# run folder of the main job, or the run folders you name in `run_dirs`. Each model runs once on
# the crops when first picked; changing the joint or the crop only redraws.

# %% tags=["parameters"]
profile = None            # None: the main job's cpu models, else the published ones, else smoke models
teacher = None            # checkpoint paths; None: the main job's, the published, else trained and cached
student_plain = None
student_tde = None
student_full = None
cache_dir = None          # cache of models trained here (None: runs/<profile>/viz)
run_dirs = None           # run folders to offer (a list, or {label: folder}); None: the main job's Table 4 rows
sample_ids = None         # validation instance indices; None: `num_samples` drawn by `seed`
num_samples = 8
seed = 0
joint = "right_ankle"     # the joint shown first
threads = None

# %%
from distilkit.experiments import Recipe
from distilkit.experiments.learning_curves import named_folders, table_run_folders
from distilkit.experiments.reproduce import default_dirs
from distilkit.viz import ROLE_LABELS
from distilkit.viz.explorer import Explorer, explorer_choices
from distilkit.viz.session import open_session

session = open_session(profile, given={"teacher": teacher, "plain": student_plain, "tde": student_tde,
                                       "full": student_full}, cache_dir=cache_dir, sample_ids=sample_ids,
                       num_samples=num_samples, seed=seed, threads=threads, notebook="explore")
runs = named_folders(run_dirs) if run_dirs else table_run_folders(
    4, default_dirs(session.profile)[0], Recipe(session.profile))
explorer = Explorer(crops=session.crops, choices=explorer_choices(session.paths, runs, ROLE_LABELS),
                    teacher=session.models["teacher"], teacher_label=ROLE_LABELS["teacher"], joint=joint)
explorer.widget
