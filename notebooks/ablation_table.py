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
# # One of the paper's ablation tables
#
# - **Table 4**, which distillation losses: DistilPose-S (StemNet) student, HRNet-W48-analog
#   teacher; the 8 combinations of L_CS, L_SH, L_KT, L_VT, plus the L1-loss control rows the
#   paper lacks, `all (masked L_SH)` (all four losses with L_SH masked per sample instead of the
#   authors' broadcast weights), and extra seeds for the extremes.
# - **Table 5**, student capacity × teacher capacity, all four losses.
# - **Table 6**, DeepPose (ResNet) without and with Simulated Heatmaps from SimpleBaseline.
#
# Each row runs `train_eval.py` under papermill (the executed notebooks stay in the run
# folders as records). Teachers are trained once and shared with the other tables; finished
# run folders are skipped, so re-running continues where a previous run stopped. The table
# is derived from the run folders (`collect_table`).

# %% tags=["parameters"]
table = 4                 # 4, 5 or 6
profile = "smoke"
data_root = None
seeds = 1                 # seeds per row
noise_seeds = 1           # seeds for the Table 4 extremes (the main job uses 3)
jobs = 2                  # rows in parallel, one process (and thread) each
epochs = None             # override the students' epochs
rows = None               # a subset of row labels, or None for the whole table
runs_dir = None           # default: runs/<profile>
results_dir = None        # default: results/ (cpu) or results/<profile>/
progress = True
train = True              # False: show the table from the run folders as they are, train nothing

# %%
import pandas as pd

from distilkit.experiments import TABLES, Recipe, collect_table
from distilkit.experiments.reproduce import default_dirs, run_tables

pd.DataFrame([s.columns() | {"paper_AP": s.paper_AP} for s in TABLES[int(table)]()])

# %%
summary = run_tables([int(table)], profile=profile, seeds=seeds, noise_seeds=noise_seeds, jobs=jobs,
                     data_root=data_root, epochs=epochs, rows=rows, runs_dir=runs_dir,
                     results_dir=results_dir, progress=progress) if train else "train=False: nothing trained"
summary

# %%
results = collect_table(int(table), runs_dir or default_dirs(profile)[0], Recipe(profile, data_root, epochs))
results[["row", "student", "teacher", "reg_loss", "seed", "AP", "err_px", "paper_AP", "wall_s", "error",
         "AP_unit"]]   # AP and paper_AP in percent
