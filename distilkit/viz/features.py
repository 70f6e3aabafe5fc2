"""Fig. 3a: backbone feature-map energy, and how much of it falls on the person.

Energy is a per-pixel summary over channels of the backbone map (N, C, h, w) -- the
L2 norm or the mean |activation| -- min-max normalised per image, so models whose
activations have different scales share one colour range; what is compared is where the
energy is, which is what the paper reads off its Fig. 3a ("the background is darker").
``body_contrast`` turns that reading into a number: mean energy on the person over mean
energy off it, with the person given by discs on the labelled joints and limbs.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from distilkit.arrays import as_numpy
from distilkit.data.transforms import denormalize_image
from distilkit.keypoints import SKELETON


def feature_energy(feat: torch.Tensor, *, reduce: str = "l2", normalize: bool = True
                   ) -> torch.Tensor:
    """(N, C, h, w) -> (N, h, w): L2 norm (``"l2"``) or mean |x| (``"mean_abs"``) over C,
    each image min-max scaled to [0, 1] when ``normalize`` (a constant map becomes 0)."""
    feat = feat.detach().float()
    if reduce == "l2":
        energy = feat.pow(2).sum(dim=1).sqrt()
    elif reduce == "mean_abs":
        energy = feat.abs().mean(dim=1)
    else:
        raise ValueError(f"reduce must be 'l2' or 'mean_abs', got {reduce!r}")
    if normalize:
        flat = energy.flatten(1)
        lo = flat.min(dim=1).values[:, None, None]
        hi = flat.max(dim=1).values[:, None, None]
        energy = (energy - lo) / (hi - lo).clamp_min(1e-12)
    return energy


def model_energy(model: torch.nn.Module, images: torch.Tensor, *, reduce: str = "l2"
                 ) -> torch.Tensor:
    """(N, h, w) energy of a model's backbone map (``forward_features``) on a batch."""
    if not hasattr(model, "forward_features"):
        raise TypeError(f"{getattr(model, 'name', type(model).__name__)} has no "
                        "forward_features: no backbone map to show")
    with torch.no_grad():
        return feature_energy(model.forward_features(images), reduce=reduce)


def upsample_energy(energy: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, h, w) -> (N, H, W) bilinear, for drawing over the crop."""
    return F.interpolate(energy[:, None].float(), size=tuple(size), mode="bilinear",
                         align_corners=False)[:, 0]


def body_mask(keypoints: np.ndarray, visible: np.ndarray, size: tuple[int, int], *,
              radius: float = 4.0) -> np.ndarray:
    """(H, W) bool: within ``radius`` px of a labelled joint or of a limb joining two.

    keypoints (K, 2) in the same px as ``size`` (H, W); visible (K,) > 0 = labelled.
    """
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    pts = [np.asarray(keypoints[k], dtype=float) for k in np.flatnonzero(np.asarray(visible) > 0)]
    for a, b in SKELETON:
        if visible[a] > 0 and visible[b] > 0:
            # points every half radius along the limb make the discs a capsule
            n = int(np.ceil(np.linalg.norm(keypoints[b] - keypoints[a]) / (radius / 2))) + 1
            pts += list(np.linspace(keypoints[a], keypoints[b], n))
    mask = np.zeros((h, w), dtype=bool)
    for x, y in pts:
        mask |= (xx - x) ** 2 + (yy - y) ** 2 <= radius ** 2
    return mask


def body_contrast(energy: np.ndarray | torch.Tensor, mask: np.ndarray) -> float:
    """Mean energy on ``mask`` over mean energy off it (NaN if either side is empty)."""
    e = as_numpy(energy)
    inside, outside = e[mask], e[~mask]
    if inside.size == 0 or outside.size == 0:
        return float("nan")
    return float(inside.mean() / max(float(outside.mean()), 1e-12))


def plot_feature_energy(images: torch.Tensor, energies: Mapping[str, torch.Tensor], *,
                        contrasts: Mapping[str, Sequence[float]] | None = None,
                        cmap: str = "inferno", overlay_alpha: float = 0.0,
                        panel_size: float = 1.7, reduce: str = "l2") -> plt.Figure:
    """Rows = crops, columns = the crop then each model's energy map (upsampled).

    energies: label -> (N, h, w) in [0, 1]; contrasts: label -> per-crop body contrast,
    printed under the map. ``overlay_alpha`` > 0 blends the crop under the map.
    """
    n = images.shape[0]
    labels = list(energies)
    size = tuple(images.shape[-2:])
    fig, axes = plt.subplots(n, len(labels) + 1, squeeze=False, layout="constrained",
                             figsize=(panel_size * (len(labels) + 1.3), panel_size * 1.45 * n))
    im = None
    for i in range(n):
        img = denormalize_image(images[i])
        axes[i, 0].imshow(img)
        axes[i, 0].set_title("crop", fontsize=8)
        for j, label in enumerate(labels):
            ax = axes[i, j + 1]
            up = upsample_energy(energies[label][i:i + 1], size)[0].numpy()
            if overlay_alpha > 0:
                ax.imshow(img)
            im = ax.imshow(up, cmap=cmap, vmin=0.0, vmax=1.0,
                           alpha=overlay_alpha if overlay_alpha > 0 else None)
            title = label if i == 0 else ""
            if contrasts is not None and label in contrasts:
                title += ("\n" if title else "") + f"on/off body {contrasts[label][i]:.2f}"
            ax.set_title(title, fontsize=8)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    cb = fig.colorbar(im, ax=axes, shrink=0.6, pad=0.02)
    what = "L2 norm" if reduce == "l2" else "mean |activation|"
    cb.set_label(f"backbone energy ({what} over channels, min-max per image)", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    fig.suptitle("backbone feature-map energy (brighter = stronger activation)", fontsize=10)
    return fig


__all__ = ["feature_energy", "model_energy", "upsample_energy", "body_mask",
           "body_contrast", "plot_feature_energy"]
