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
# # Learning curves across runs
#
# Each loss term and the validation AP against epoch, one colour per run, for any set of run
# folders; by default the main job's Table 4 rows (every seed, runs still training included).
# A term a row does not train is absent from its panel: the plain student has only `reg`,
# the fully distilled one all five. Loss panels are on a log scale; `loss` is the weighted
# sum the optimizer sees. The same numbers, per run, are in TensorBoard when the runs were
# trained with `--tensorboard` (`tensorboard --logdir runs/cpu`).

# %% tags=["parameters"]
run_dirs = None           # run folders (a list, or {label: folder}); None: the table's rows below
table = 4                 # the main job's table whose rows are drawn when run_dirs is None
profile = "cpu"
runs_dir = None           # default: runs/<profile>
data_root = None          # the main job's --data-root, if it had one (it names the folders)
epochs = None             # the main job's --epochs, if it had one
out_dir = None            # None: runs/<profile>/figures/learning_curves; results/ only when named

# %%
import matplotlib.pyplot as plt

from distilkit.experiments import Recipe
from distilkit.experiments.learning_curves import named_folders, table_run_folders
from distilkit.experiments.reproduce import default_dirs
from distilkit.viz import save_png_pdf
from distilkit.viz.curves import plot_runs_curves, read_curves
from distilkit.viz.session import default_out_dir

runs = named_folders(run_dirs) if run_dirs else table_run_folders(
    int(table), runs_dir or default_dirs(profile)[0], Recipe(profile, data_root, epochs))
if not runs:
    raise FileNotFoundError(f"no run of Table {table} under {runs_dir or default_dirs(profile)[0]} has a "
                            "metrics.csv yet: run `make reproduce` (or name run_dirs)")
for label, folder in runs.items():
    print(f"{label:14s} {folder}")

# %%
fig = plot_runs_curves(runs)
save_png_pdf(fig, out_dir or default_out_dir(profile, "learning_curves"), "learning_curves")
plt.show()

# %% [markdown]
# The last epoch of each run, per curve (AP in percent):

# %%
curves = read_curves(runs)
curves[curves["epoch"] == curves.groupby("run")["epoch"].transform("max")].pivot(
    index="run", columns="curve", values="value").loc[list(runs)].round(4)
