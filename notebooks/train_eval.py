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
# # One run: train, evaluate, record
#
# The run folder is the record: `config.json`, `metrics.csv`, `run.json` (commit, device,
# times) and `final_metrics.json`; the results tables are derived from such folders
# (`distilkit.experiments.collect_table`).
#
# The parameterized single run behind every row of Tables 4, 5 and 6. Under papermill the
# table runners pass one parameter, `config_path`: the row's whole recipe, written by the grid
# into the run folder's `config.json`; it overrides the readable parameters below (all but
# `threads`). Opened in JupyterLab it trains with those parameters (the `smoke` profile,
# seconds) and shows the learning curves and a few predictions.
#
# Teachers are ordinary runs with `losses = "heatmap"`; students use `reg` plus any of
# `kt, vt, sh, cs` with a `teacher` checkpoint.

# %% tags=["parameters"]
profile = "smoke"
data_root = None
model = "distilpose-s"
teacher = None            # path to a teacher's best.pt, needed by kt / vt / sh / cs
losses = "reg"            # comma list: reg,kt,vt,sh,cs  (teachers: heatmap)
reg_loss = "smooth_l1"    # the paper's; "l1" is the control
seed = 0
epochs = None             # None: the profile's schedule
out_dir = "runs/notebook/train_eval"   # relative paths: from the repository root
progress = True
threads = None            # torch threads for this process (None: leave as is)
resume = True             # continue from out_dir/last.pt when it exists
device = "auto"           # auto | cpu | cuda | cuda:N (the grid runner places rows one per GPU)
teacher_store = None      # folder of teacher outputs shared with rows that see the same batches
tensorboard = False       # also write TensorBoard scalars into out_dir (tensorboard --logdir ...)
config_path = None        # a run's config.json: train exactly that config (the grid's runner sets it)

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from distilkit.engine import TrainConfig, fit, read_config
from distilkit.losses import parse_loss_switches
from distilkit.paths import resolve
from distilkit.units import metrics_in_percent
from distilkit.viz.curves import plot_learning_curves
from distilkit.viz.predictions import plot_predictions

if threads:
    torch.set_num_threads(int(threads))
if config_path:
    config = read_config(resolve(config_path))
else:
    config = TrainConfig(out_dir=str(resolve(out_dir)), model=model, profile=profile,
                         losses=parse_loss_switches(losses, reg_loss=reg_loss),
                         teacher=teacher and str(resolve(teacher)), seed=int(seed), epochs=epochs,
                         data_root=data_root and str(resolve(data_root)), progress=progress,
                         resume=resume, device=device or "auto",
                         teacher_store=teacher_store and str(resolve(teacher_store)),
                         tensorboard=bool(tensorboard))
out_dir, seed = config.out_dir, config.seed
print(config.model_name(), config.losses.switches(), "config", config.hash())

# %%
metrics = fit(config)   # fractions, as the run folder keeps them; shown in percent (AP, AR, PCK)
print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics_in_percent(metrics).items()},
                 indent=1))

# %% [markdown]
# ## Learning curves

# %%
fig = plot_learning_curves(Path(out_dir) / "metrics.csv")
fig.savefig(Path(out_dir) / "learning_curves.png", dpi=120, bbox_inches="tight")
plt.show()

# %% [markdown]
# ## A few validation predictions (detector boxes, flip test off for clarity)

# %%
fig = plot_predictions(Path(out_dir) / "last.pt", num=6, seed=int(seed))
fig.savefig(Path(out_dir) / "predictions.png", dpi=120, bbox_inches="tight")
plt.show()
