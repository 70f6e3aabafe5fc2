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
# # Report: Tables 4, 5 and 6 beside the paper
#
# Reads the result CSVs the table runners wrote, shows ours beside the paper's with the
# improvement columns, plots the AP gain per distillation component with its seed spread,
# checks the paper's qualitative conclusions one by one, and writes `REPORT.md` and its figures.

# %% tags=["parameters"]
results_dir = "results"   # the CSVs to read (the main job's export); relative: from the repository root
out_dir = None            # where REPORT.md goes; None: runs/cpu/figures/report (results/ only when named)
fig_dir = None            # default: <out_dir>/figures

# %%
import re
from pathlib import Path

from IPython.display import Image, Markdown, display

from distilkit.experiments.report import write_report
from distilkit.experiments.report_tables import load_table, summarize
from distilkit.paths import resolve
from distilkit.viz.session import default_out_dir

tables = {t: summarize(load_table(resolve(results_dir), t), t) for t in (4, 5, 6)}
for t, df in tables.items():
    print(f"Table {t}")
    display(df)

# %% [markdown]
# The report, its figures inline (embedded in the executed notebook, so a copy read elsewhere
# shows them too):

# %%
report = write_report(results_dir, fig_dir, out_dir=out_dir or default_out_dir("cpu", "report"))
figures = resolve(fig_dir) if fig_dir else Path(report).parent / "figures"
# REPORT.md's image links split it: even parts are text, odd parts the linked figures
for i, part in enumerate(re.split(r"!\[[^\]]*\]\(([^)]+\.png)\)", Path(report).read_text())):
    display(Image(filename=str(figures / Path(part).name)) if i % 2 else Markdown(part))
