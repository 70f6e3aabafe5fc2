"""COCO-17 skeleton drawing: left/right colours, occluded joints hollow.

Visibility may be given as 0/1 flags (1 = drawn filled) or as COCO v-flags
(0 = not labelled, 1 = labelled but occluded -> hollow marker, 2 = visible -> filled).
Which one is auto-detected (any value 2 means v-flags) unless ``vflags`` says so, since
an all-occluded v-flag vector is indistinguishable from 0/1 flags.
"""
from __future__ import annotations


import numpy as np

from distilkit.arrays import as_numpy
from distilkit.data.transforms import denormalize_image
from distilkit.keypoints import KEYPOINT_NAMES, SKELETON

LEFT_COLOR = "#1f77b4"    # blue
RIGHT_COLOR = "#ff7f0e"   # orange
MIDDLE_COLOR = "#2ca02c"  # green: nose and limbs joining left to right


def _side_color(k: int) -> str:
    name = KEYPOINT_NAMES[k]
    if name.startswith("left_"):
        return LEFT_COLOR
    if name.startswith("right_"):
        return RIGHT_COLOR
    return MIDDLE_COLOR


def _limb_color(a: int, b: int) -> str:
    ca, cb = _side_color(a), _side_color(b)
    return ca if ca == cb else MIDDLE_COLOR


def draw_skeleton(ax, keypoints, visible, *, vflags: bool | None = None,
                  marker_size: float = 5.0, linewidth: float = 2.0, alpha: float = 0.9,
                  skeleton=SKELETON, label: str | None = None) -> None:
    """Draw (K, 2) keypoints and the limbs between labelled joints on ``ax``.

    Limbs are drawn when both ends are labelled (flag > 0); a limb touching an
    occluded joint is dashed.
    """
    kpts = as_numpy(keypoints, np.float64).reshape(-1, 2)
    vis = as_numpy(visible, np.float64).reshape(-1)
    if vflags is None:
        vflags = bool((vis == 2).any())
    shown = vis > 0
    occluded = (vis == 1) if vflags else np.zeros_like(shown)
    for a, b in skeleton:
        if shown[a] and shown[b]:
            style = "--" if (occluded[a] or occluded[b]) else "-"
            ax.plot(kpts[[a, b], 0], kpts[[a, b], 1], style, color=_limb_color(a, b),
                    linewidth=linewidth, alpha=alpha, solid_capstyle="round")
    for k in np.flatnonzero(shown):
        color = _side_color(int(k))
        ax.plot(kpts[k, 0], kpts[k, 1], "o", markersize=marker_size, alpha=alpha,
                markeredgecolor=color, markeredgewidth=1.5,
                markerfacecolor="none" if occluded[k] else color)
    if label is not None and shown.any():
        top = kpts[shown][np.argmin(kpts[shown, 1])]
        ax.text(top[0], top[1] - 4, label, color="white", fontsize=7,
                ha="center", va="bottom",
                bbox=dict(facecolor="black", alpha=0.5, pad=1, linewidth=0))


def draw_box(ax, bbox_xywh, *, color: str = "yellow", label: str | None = None,
             linewidth: float = 1.5, linestyle: str = "-") -> None:
    """Draw an [x, y, w, h] box, optionally labelled at its top-left corner."""
    from matplotlib.patches import Rectangle

    x, y, w, h = (float(v) for v in bbox_xywh)
    ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor=color,
                           linewidth=linewidth, linestyle=linestyle))
    if label:
        ax.text(x, y, label, color="black", fontsize=7, va="bottom",
                bbox=dict(facecolor=color, alpha=0.8, pad=1, linewidth=0))


def show_crop(ax, image, keypoints, visible, *, vflags: bool | None = None,
              title: str | None = None, **skeleton_kwargs) -> None:
    """Show a (3, H, W) ImageNet-normalised crop (tensor or array) with its keypoints."""
    ax.imshow(denormalize_image(image))
    draw_skeleton(ax, keypoints, visible, vflags=vflags, **skeleton_kwargs)
    h, w = np.asarray(image.shape)[1:]
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)


def show_scene(ax, image_rgb, annotations, *, boxes: bool = True,
               title: str | None = None, **skeleton_kwargs) -> None:
    """Show a full image with each COCO annotation's box and skeleton (v-flags)."""
    ax.imshow(image_rgb)
    for ann in annotations:
        kpts = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        if boxes and "bbox" in ann:
            draw_box(ax, ann["bbox"], color="white" if ann.get("iscrowd") else "yellow",
                     linestyle=":" if ann.get("iscrowd") else "-")
        draw_skeleton(ax, kpts[:, :2], kpts[:, 2], vflags=True, **skeleton_kwargs)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)
