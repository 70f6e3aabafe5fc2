"""Learning curves from a run folder's metrics.csv."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from distilkit.engine.scalars import NOT_LOSSES


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
                ax_ap.plot(sub["epoch"], 100 * sub[col], marker="o", ms=3, label=col)   # stored as fractions
        ax_ap.legend(fontsize=8)
    else:
        ax_ap.text(0.5, 0.5, "no evaluation yet", ha="center", va="center", transform=ax_ap.transAxes)
    ax_ap.set_xlabel("epoch")
    ax_ap.set_ylabel("COCO keypoint metric (%)")
    ax_ap.set_title("validation (detector boxes, flip test)")
    fig.tight_layout()
    return fig


_TITLES = {"AP": "validation AP (detector boxes, flip test)", "loss": "total loss (weighted sum)"}


def read_curves(runs: dict[str, str | Path]) -> pd.DataFrame:
    """The runs' metrics.csv in one long frame: run, epoch, curve (a loss term, or ``AP``), value;
    epochs without evaluation have no AP row."""
    parts = []
    for label, folder in runs.items():
        df = pd.read_csv(Path(folder) / "metrics.csv")
        curves = {c.removeprefix("train_"): df[c] for c in loss_columns(df)}
        if "AP" in df.columns:
            curves["AP"] = 100.0 * pd.to_numeric(df["AP"], errors="coerce")     # stored as fractions
        for name, values in curves.items():
            part = pd.DataFrame({"run": label, "epoch": df["epoch"], "curve": name,
                                 "value": pd.to_numeric(values, errors="coerce")})
            parts.append(part.dropna(subset=["value"]))
    if not parts:
        return pd.DataFrame(columns=["run", "epoch", "curve", "value"])
    return pd.concat(parts, ignore_index=True)


def plot_runs_curves(runs: dict[str, str | Path], *, columns: int = 4):
    """One panel per loss term (log scale; ``loss`` is their weighted sum) and one for AP (%),
    each run one colour across the panels; a term a run does not train is absent from its panel."""
    if not runs:
        raise ValueError("no runs to draw: name run folders, or run the main job first")
    frame = read_curves(runs)
    order = ["loss"] + sorted(set(frame["curve"]) - {"loss", "AP"}) + ["AP"]
    names = [n for n in order if n in set(frame["curve"])]
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.7 * rows + 0.6), squeeze=False)
    colours = dict(zip(runs, plt.get_cmap("tab20" if len(runs) > 10 else "tab10").colors))
    for ax, name in zip(axes.flat, names):
        for label, part in frame[frame["curve"] == name].groupby("run", sort=False):
            ax.plot(part["epoch"], part["value"], marker="o", ms=2.5, lw=1.2, color=colours[label], label=label)
        if name == "AP":
            ax.set_ylabel("AP (%)")
        elif (frame.loc[frame["curve"] == name, "value"] > 0).all():
            ax.set_yscale("log")
        ax.set_title(_TITLES.get(name, f"L_{name.upper()}" if len(name) == 2 else name), fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    seen = {}
    for ax in axes.flat[:len(names)]:
        handles, labels = ax.get_legend_handles_labels()
        seen.update(zip(labels, handles))
    fig.legend([seen[r] for r in runs if r in seen], [r for r in runs if r in seen],
               loc="lower center", ncol=min(len(runs), 6), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04 + 0.03 * (len(runs) // 6), 1, 1))
    return fig
