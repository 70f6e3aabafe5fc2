"""A gain measured per seed between two rows that share each seed's weights and batches: bars
of the mean, the seeds' range and each seed as a dot (``experiments.bring_your_own``)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

METRICS = (("err_px", "px less error"), ("AP", "AP points"))


def plot_paired_gains(paired: pd.DataFrame, labels: dict[tuple[str, str], str], *,
                      title: str = "") -> plt.Figure:
    """``paired``: columns ``pooling``, ``seed`` and one gain column per metric of ``METRICS``;
    ``labels``: (metric, pooling) -> the text under that bar (its verdict)."""
    groups = list(dict.fromkeys(paired["pooling"]))
    fig, axes = plt.subplots(1, len(METRICS), figsize=(8, 3.4))
    for ax, (metric, unit) in zip(axes, METRICS):
        for i, group in enumerate(groups):
            gain = paired.loc[paired["pooling"] == group, metric]
            ax.bar(i, gain.mean(), width=0.55, color=["#4c72b0", "#dd8452"][i % 2], alpha=0.6)
            ax.errorbar(i, gain.mean(), yerr=[[gain.mean() - gain.min()], [gain.max() - gain.mean()]],
                        color="k", capsize=5, lw=1)
            ax.scatter(np.full(len(gain), i) + np.linspace(-0.1, 0.1, len(gain)), gain, color="k", s=14,
                       zorder=3)
        ax.axhline(0, color="grey", lw=0.8, ls="--")
        ax.set_xticks(range(len(groups)), [f"{g}\n{labels.get((metric, g), '')}" for g in groups], fontsize=8)
        ax.set_ylabel(f"gain ({unit})")
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


__all__ = ["plot_paired_gains", "METRICS"]
