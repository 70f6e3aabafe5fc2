"""Pixel attributions with captum: which pixels move one joint's prediction.

The regression student's output for joint k is two numbers, so each is attributed on its
own: ``coordinate_forward(model, k, axis)`` is the forward captum sees, returning
coords[:, k, axis] -- one scalar per sample. The heatmap teacher decodes coordinates by
argmax (no gradient), so its comparable scalar is the peak value of heatmap k, the
evidence for the joint (``heatmap_peak_forward``). Integrated Gradients satisfies
completeness: its attributions sum to f(x) - f(baseline); the baseline here is the zero
image in normalised space, i.e. the ImageNet-mean grey crop.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from distilkit.arrays import as_numpy
from distilkit.data.transforms import denormalize_image

ScalarForward = Callable[[torch.Tensor], torch.Tensor]


def coordinate_forward(model: torch.nn.Module, keypoint: int, axis: int) -> ScalarForward:
    """images (N, 3, H, W) -> (N,) the model's normalised x (axis 0) or y (axis 1) of
    ``keypoint``. Differentiable only for regression models (heatmap decoding is not)."""
    if axis not in (0, 1):
        raise ValueError(f"axis must be 0 (x) or 1 (y), got {axis}")

    def forward(images: torch.Tensor) -> torch.Tensor:
        return model(images).coords[:, keypoint, axis]

    return forward


def heatmap_peak_forward(model: torch.nn.Module, keypoint: int) -> ScalarForward:
    """images -> (N,) the maximum of heatmap ``keypoint`` (gradient flows to the peak)."""
    def forward(images: torch.Tensor) -> torch.Tensor:
        hm = model(images).heatmaps
        if hm is None:
            raise TypeError(f"{getattr(model, 'name', 'model')} produces no heatmaps")
        return hm[:, keypoint].flatten(1).amax(dim=1)

    return forward


def attribute(forward: ScalarForward, images: torch.Tensor, *, method: str = "ig",
              baseline: torch.Tensor | None = None, n_steps: int = 32,
              internal_batch_size: int | None = None
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(attributions (N, 3, H, W), convergence delta (N,) for IG else None).

    method ``"ig"``: IntegratedGradients from ``baseline`` (default zeros), ``n_steps``
    Gauss-Legendre points (captum's default rule); ``"saliency"``: |d f / d x|."""
    from captum.attr import IntegratedGradients, Saliency

    x = images.detach().clone().float().requires_grad_(True)
    if method == "ig":
        base = torch.zeros_like(x) if baseline is None else baseline.to(x)
        attr, delta = IntegratedGradients(forward).attribute(
            x, baselines=base, n_steps=n_steps, internal_batch_size=internal_batch_size,
            return_convergence_delta=True)
        return attr.detach(), delta.detach()
    if method == "saliency":
        return Saliency(forward).attribute(x, abs=True).detach(), None
    raise ValueError(f"method must be 'ig' or 'saliency', got {method!r}")


def attribution_map(attr: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, H, W): |sum over RGB|, scaled to max 1 per image (a map of
    where, not how much: IG of a coordinate and of a heatmap peak have different units)."""
    m = attr.detach().float().sum(dim=1).abs()
    return m / m.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]


def plot_attribution_rows(image: torch.Tensor, rows: Mapping[str, Mapping[str, torch.Tensor]],
                          *, point_xy: Sequence[float] | None = None, joint: str = "",
                          cmap: str = "hot", alpha: float = 0.6, panel_size: float = 1.9
                          ) -> plt.Figure:
    """One crop; each row a model, each panel a (H, W) map in [0, 1] over the crop.

    rows: model label -> {panel title -> map}. The crop comes first in every row with the
    joint's reference point (red dot)."""
    img = denormalize_image(image)
    n_cols = 1 + max(len(p) for p in rows.values())
    fig, axes = plt.subplots(len(rows), n_cols, squeeze=False, layout="constrained",
                             figsize=(panel_size * (n_cols + 0.4), panel_size * 1.45 * len(rows)))
    point = None if point_xy is None else np.asarray(point_xy, dtype=float)
    im = None
    for r, (label, panels) in enumerate(rows.items()):
        axes[r, 0].imshow(img)
        axes[r, 0].set_title(label, fontsize=8)
        for c, (title, amap) in enumerate(panels.items(), start=1):
            ax = axes[r, c]
            ax.imshow(img)
            im = ax.imshow(as_numpy(amap), cmap=cmap, alpha=alpha, vmin=0, vmax=1)
            ax.set_title(title, fontsize=8)
        for ax in axes[r]:
            if point is not None and ax.has_data():
                ax.plot(point[0], point[1], "o", color="red", markersize=3.5,
                        markeredgecolor="white", markeredgewidth=0.7)
            ax.set_xticks([])
            ax.set_yticks([])
            if not ax.has_data():
                ax.set_axis_off()
    cb = fig.colorbar(im, ax=axes, shrink=0.6, pad=0.02)
    cb.set_label("|attribution| summed over RGB / its maximum", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    fig.suptitle(f"pixel attributions for the '{joint.replace('_', ' ')}' joint", fontsize=10)
    return fig


__all__ = ["coordinate_forward", "heatmap_peak_forward", "attribute", "attribution_map",
           "plot_attribution_rows"]
