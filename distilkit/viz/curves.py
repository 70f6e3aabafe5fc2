"""Learning curves from a run folder's metrics.csv."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator


# metrics.csv's train_* columns that are rates, not loss terms
NOT_LOSSES = ("train_samples_per_s",)


def loss_columns(df: pd.DataFrame) -> list[str]:
    """The weighted loss terms (and their sum) of a metrics.csv."""
    return [c for c in df.columns if c.startswith("train_") and c not in NOT_LOSSES]


def plot_learning_curves(metrics_csv: str | Path):
    """Training loss terms (log scale) and validation AP per epoch (whole-epoch ticks)."""
    df = pd.read_csv(metrics_csv)
    fig, (ax_loss, ax_ap) = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = sorted(df["epoch"].unique())
    for ax in (ax_loss, ax_ap):   # whole epochs: each one when few, else integer ticks
        if len(epochs) <= 12:
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for col in loss_columns(df):
        if (df[col] > 0).any():
            ax_loss.plot(df["epoch"], df[col], marker="o", ms=3, label=col.removeprefix("train_"))
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("weighted loss term")
    ax_loss.set_title("training loss")
    ax_loss.legend(fontsize=8)
    if "AP" in df.columns and df["AP"].notna().any():
        sub = df[df["AP"].notna()]
        for col in ("AP", "AP50", "AP75", "AR"):
            if col in sub.columns:
                ax_ap.plot(sub["epoch"], sub[col], marker="o", ms=3, label=col)
        ax_ap.legend(fontsize=8)
    else:
        ax_ap.text(0.5, 0.5, "no evaluation yet", ha="center", va="center", transform=ax_ap.transAxes)
    ax_ap.set_xlabel("epoch")
    ax_ap.set_ylabel("COCO keypoint metric")
    ax_ap.set_title("validation (detector boxes, flip test)")
    fig.tight_layout()
    return fig
