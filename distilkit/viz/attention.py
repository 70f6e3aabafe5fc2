"""Fig. 3b: where a keypoint token looks -- its attention to the visual tokens on the crop.

The Token-distilling Encoder puts the K keypoint tokens first and the P visual tokens
after them in row-major patch order (``TokenEncoder.patchify``), so row ``k`` of a layer's
(T, T) attention, columns K.., reshaped to the encoder's patch grid (gh, gw), is a map over
the crop: patch (i, j) covers input rows [i*ph*s, (i+1)*ph*s) and columns
[j*pw*s, (j+1)*pw*s) for backbone stride s. Bilinear upsampling with
``align_corners=False`` puts each patch's value at that patch's centre, so a peak in patch
(i, j) stays inside patch (i, j) on the crop.
"""
from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from distilkit.data.transforms import denormalize_image


def keypoint_attention(attentions: Sequence[torch.Tensor], keypoint: int,
                       grid: tuple[int, int], *, num_keypoints: int = 17,
                       sample: int = 0) -> torch.Tensor:
    """Attention of keypoint token ``keypoint`` to every visual token, per layer and head.

    attentions: per layer (N, heads, T, T) with T = num_keypoints + gh * gw.
    Returns (L, heads, gh, gw) for batch element ``sample``.
    """
    gh, gw = grid
    maps = []
    for layer, attn in enumerate(attentions):
        t = attn.shape[-1]
        if t != num_keypoints + gh * gw or attn.shape[-2] != t:
            raise ValueError(f"layer {layer}: attention {tuple(attn.shape)} does not hold "
                             f"{num_keypoints} keypoint + {gh}x{gw} visual tokens")
        row = attn[sample, :, keypoint, num_keypoints:]          # (heads, P)
        maps.append(row.reshape(-1, gh, gw))
    return torch.stack(maps).detach().float().cpu()              # (L, heads, gh, gw)


def upsample_map(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(..., gh, gw) -> (..., H, W), bilinear, each patch value at its patch centre."""
    lead = maps.shape[:-2]
    flat = maps.reshape(-1, 1, *maps.shape[-2:]).float()
    up = F.interpolate(flat, size=tuple(size), mode="bilinear", align_corners=False)
    return up.reshape(*lead, *size)


def model_attention(model: torch.nn.Module, images: torch.Tensor, keypoint: int
                    ) -> torch.Tensor:
    """(N, L, heads, gh, gw): the keypoint's attention maps of a token model on a batch."""
    if not hasattr(model, "encoder"):
        raise TypeError(f"{getattr(model, 'name', type(model).__name__)} has no token "
                        "encoder: attention maps exist only for token models")
    with torch.no_grad():
        out = model(images, return_attention=True)
    enc = model.encoder
    return torch.stack([keypoint_attention(out.attentions, keypoint, enc.grid,
                                           num_keypoints=enc.num_keypoints, sample=i)
                        for i in range(images.shape[0])])


def _overlay(ax, image: np.ndarray, amap: np.ndarray, *, vmax: float, cmap: str,
             alpha: float, point: np.ndarray | None):
    ax.imshow(image)
    im = ax.imshow(amap, cmap=cmap, alpha=alpha, vmin=0.0, vmax=vmax)
    if point is not None:
        ax.plot(point[0], point[1], "o", color="red", markersize=4,
                markeredgecolor="white", markeredgewidth=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def plot_layer_head_attention(image: torch.Tensor, maps: Mapping[str, torch.Tensor], *,
                              point_xy: Sequence[float] | None = None, joint: str = "",
                              layers: Sequence[int] | None = None, cmap: str = "jet",
                              alpha: float = 0.5, panel_size: float = 1.25) -> plt.Figure:
    """One crop: per model a block of rows = layers, columns = heads + their mean.

    image: (3, H, W) normalised crop; maps: model label -> (L, heads, gh, gw) (from
    ``model_attention(...)[i]``); point_xy: the joint in input px, drawn as a red dot.
    Each model has one colour scale (its largest attention weight) and a colour bar, so
    heads and layers of a model are comparable; models are not forced onto one scale
    because their token counts and sharpness differ.
    """
    img = denormalize_image(image)
    size = img.shape[:2]
    point = None if point_xy is None else np.asarray(point_xy, dtype=float)
    first = next(iter(maps.values()))
    layer_ids = list(range(first.shape[0])) if layers is None else list(layers)
    n_rows = len(layer_ids)
    widths = [m.shape[1] + 1 for m in maps.values()]
    fig = plt.figure(figsize=(panel_size * (sum(widths) + 0.6 * len(maps)),
                              panel_size * 1.45 * n_rows + 0.9), layout="constrained")
    subs = np.atleast_1d(fig.subfigures(1, len(maps), width_ratios=widths, wspace=0.02))
    for sub, (label, m) in zip(subs, maps.items()):
        heads = m.shape[1]
        up = upsample_map(m, size).numpy()                           # (L, heads, H, W)
        vmax = float(max(up[layer_ids].max(), up[layer_ids].mean(axis=1).max(), 1e-8))
        axes = np.atleast_2d(sub.subplots(n_rows, heads + 1, squeeze=False))
        im = None
        for r, layer in enumerate(layer_ids):
            for h in range(heads + 1):
                amap = up[layer, h] if h < heads else up[layer].mean(axis=0)
                ax = axes[r, h]
                im = _overlay(ax, img, amap, vmax=vmax, cmap=cmap, alpha=alpha, point=point)
                ax.set_title(f"L{layer + 1} " + (f"head {h + 1}" if h < heads else "mean"),
                             fontsize=8)
        sub.suptitle(label, fontsize=10)
        cb = sub.colorbar(im, ax=axes, shrink=0.8, pad=0.02)
        cb.set_label("attention weight", fontsize=8)
        cb.ax.tick_params(labelsize=7)
    title = f"attention of the '{joint.replace('_', ' ')}' keypoint token to the visual tokens"
    fig.suptitle(title + "  (red dot: the joint)", fontsize=11)
    return fig


def plot_attention_overview(images: torch.Tensor, maps: Mapping[str, torch.Tensor], *,
                            points_xy: np.ndarray | None = None, joint: str = "",
                            layer: int = -1, cmap: str = "jet", alpha: float = 0.5,
                            panel_size: float = 1.6) -> plt.Figure:
    """Several crops x models, one layer's head-mean map each (the compact Fig. 3b).

    images (N, 3, H, W); maps: label -> (N, L, heads, gh, gw); points_xy (N, 2) input px.
    """
    n = images.shape[0]
    labels = list(maps)
    fig, axes = plt.subplots(n, len(labels) + 1, squeeze=False, layout="constrained",
                             figsize=(panel_size * (len(labels) + 1.3), panel_size * 1.4 * n))
    size = tuple(images.shape[-2:])
    im = None
    for i in range(n):
        img = denormalize_image(images[i])
        point = None if points_xy is None else np.asarray(points_xy[i], dtype=float)
        axes[i, 0].imshow(img)
        if point is not None:
            axes[i, 0].plot(point[0], point[1], "o", color="red", markersize=4,
                            markeredgecolor="white", markeredgewidth=0.8)
        axes[i, 0].set_axis_off()
        axes[i, 0].set_title("crop", fontsize=8)
        for j, label in enumerate(labels):
            amap = upsample_map(maps[label][i, layer].mean(dim=0), size).numpy()
            # each panel relative to its own peak: the question is where, not how sharp
            amap = amap / max(float(amap.max()), 1e-12)
            im = _overlay(axes[i, j + 1], img, amap, vmax=1.0, cmap=cmap, alpha=alpha,
                          point=point)
            axes[i, j + 1].set_title(textwrap.fill(label, 20), fontsize=8)
    cb = fig.colorbar(im, ax=axes, shrink=0.6, pad=0.02)
    cb.set_label("attention / its maximum", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    name = "the last layer" if layer == -1 else f"layer {layer + 1}"
    fig.suptitle(f"'{joint.replace('_', ' ')}' token attention, {name}, mean over heads",
                 fontsize=10)
    return fig


__all__ = ["keypoint_attention", "upsample_map", "model_attention",
           "plot_layer_head_attention", "plot_attention_overview"]
