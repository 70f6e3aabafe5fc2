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
# # Fig. 1: accuracy against cost
#
# The paper's Fig. 1 places DistilPose among heatmap, distillation and regression methods
# by COCO val AP against GFLOPs and parameters. The top row redraws it from the paper's
# Table 1 (and the Table 3 teacher) as recorded in `distilkit/models/paper_complexity.csv`.
#
# The bottom row is **ours**: AP on the embedded *synthetic* validation set of compact
# models (the `-cpu` presets for the main job's results; the `-smoke` ones when only the
# small models cached by these notebooks exist), with parameters and GFLOPs profiled here
# by `distilkit.models.complexity` in the paper's (mmcv) convention. Different data and model
# sizes: compare shapes (does distillation raise AP at unchanged cost?), never numbers
# across the two rows.
#
# Figure: `complexity_ap_vs_cost.png/.pdf`; table: `complexity_ours.csv`.

# %% tags=["parameters"]
profile = "cpu"           # the profile of "ours": the main job's runs here, else its committed results
results_dir = None        # None: the main job's folder for the profile (results/ for cpu)
paper_csv = None          # None: distilkit/models/paper_complexity.csv
data_root = None
teacher = None            # used when no results CSV has rows: checkpoints' own AP
student_plain = None
student_tde = None
student_full = None
cache_dir = None
out_dir = None            # None: runs/<profile>/figures/complexity; results/ only when named here
threads = None

# %%
import matplotlib.pyplot as plt

from distilkit import paths
from distilkit.viz import ROLE_LABELS, save_png_pdf
from distilkit.viz.complexity import (add_complexity, load_paper_points, ours_from_checkpoints,
                                      ours_from_results, ours_from_runs, plot_complexity)
from distilkit.viz.session import default_out_dir, open_session

if threads:
    import torch
    torch.set_num_threads(int(threads))
paper = load_paper_points(paths.resolve(paper_csv) if paper_csv else None)
# the main job's run folders when it ran here; else the exported (e.g. committed) results
ours, source = ours_from_runs(paths.runs_dir(profile), profile), f"run folders in {paths.runs_dir(profile)}"
if ours.empty:
    results = paths.results_dir(profile) if results_dir is None else paths.resolve(results_dir)
    ours, source = ours_from_results(results, profile), f"results CSVs in {results}"
if ours.empty:
    # no table runs at this profile: the four models the other notebooks use
    session = open_session(profile, given={"teacher": teacher, "plain": student_plain,
                                           "tde": student_tde, "full": student_full},
                           cache_dir=cache_dir, data_root=data_root, out_dir=out_dir,
                           load_crops=False, notebook="complexity")
    ours = ours_from_checkpoints(session.paths, ROLE_LABELS)
    source = "checkpoints: " + ", ".join(str(p) for p in session.paths.values())
print("ours from", source)
ours = add_complexity(ours)
figures = paths.resolve(out_dir) if out_dir else default_out_dir(profile, "complexity")
figures.mkdir(parents=True, exist_ok=True)
ours.to_csv(figures / "complexity_ours.csv", index=False)
ours.round(4)

# %%
fig = plot_complexity(paper, ours,
                      ours_note=f"ours ({profile} profile): synthetic data, compact models")
save_png_pdf(fig, figures, "complexity_ap_vs_cost")
plt.show()

# %% [markdown]
# GFLOPs of ours are `gflops_mmcv` (the paper's counter: conv + linear MACs plus norms
# and activations, attention matmuls missed); `complexity_ours.csv` also has `gmacs`,
# which counts every matmul including attention (see `distilkit.models.complexity`).
