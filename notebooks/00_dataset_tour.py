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
# # Dataset tour
#
# What the top-down pipeline feeds the models: full scenes with their ground-truth
# skeletons, the per-person crops cut from them (GT boxes for training, detector boxes for
# validation), and what the training augmentation (flip, half-body, scale, rotation, all
# through one affine warp) does to a crop.
#
# With `data_root = None` the embedded synthetic set of the chosen profile is generated
# (or loaded from its cache); point `data_root` at a COCO 2017 folder to tour real data.
# Figures go to `out_dir` as `dataset_tour_*.png` (a relative `out_dir` is taken from the
# repository root). Colours: blue = left, orange = right, green = centre; hollow circles
# and dashed limbs are labelled-but-occluded joints.

# %% tags=["parameters"]
profile = "smoke"
data_root = None
seed = 0
out_dir = None            # None: runs/<profile>/figures/dataset_tour; results/ only when named here
num_samples = 4

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from distilkit.data.topdown import TopDownCocoDataset
from distilkit.data.transforms import AugmentConfig
from distilkit.paths import resolve
from distilkit.profiles import get_profile
from distilkit.viz.figures import save_png_pdf
from distilkit.viz.session import default_out_dir
from distilkit.viz.skeleton import draw_box, show_crop, show_scene

figures = resolve(out_dir) if out_dir else default_out_dir(profile, "dataset_tour")
input_size = get_profile(profile).input_size

if data_root is None:
    from distilkit.data.synthetic import ensure_synthetic

    root = Path(ensure_synthetic(profile, seed))
else:
    root = resolve(data_root)
print("data:", root, "| input (H, W):", input_size, "| figures ->", figures)

# %% [markdown]
# ## The datasets
# Training instances come from GT boxes (crowds and people without labelled joints are
# left out); validation instances come from the detection file, as at test time.
# `skipped` counts every instance the loader left out and why.

# %%
plain = TopDownCocoDataset(root, "train", input_size, train=False)
augmented = TopDownCocoDataset(root, "train", input_size, aug=AugmentConfig(), seed=seed)
print(f"train: {len(plain)} instances on {len(plain.coco.imgs)} images, "
      f"skipped {dict(plain.skipped)}")
det_file = root / "person_detection_results" / "COCO_val2017_detections_AP_H_56_person.json"
val = TopDownCocoDataset(root, "val", input_size) if det_file.is_file() else None
if val is not None:
    print(f"val (detections): {len(val)} boxes, skipped {dict(val.skipped)}")

rng = np.random.default_rng(seed)
picks = rng.choice(len(plain), size=min(num_samples, len(plain)), replace=False)

# %% [markdown]
# ## Full scenes with ground-truth skeletons and boxes

# %%
scene_ids = list(dict.fromkeys(plain.instances[i].image_id for i in picks))
fig, axes = plt.subplots(1, len(scene_ids), figsize=(4 * len(scene_ids), 4), squeeze=False)
for ax, image_id in zip(axes[0], scene_ids):
    image, anns = plain.load_scene(image_id)
    show_scene(ax, image, anns, title=f"image {image_id}: {len(anns)} annotation(s)")
save_png_pdf(fig, figures, "dataset_tour_scenes")
plt.show()

# %% [markdown]
# ## Crops without augmentation
# The GT box, padded by 1.25 and grown to the input aspect ratio, warped to the input size.

# %%
fig, axes = plt.subplots(1, len(picks), figsize=(2.2 * len(picks), 3), squeeze=False)
for ax, i in zip(axes[0], picks):
    s = plain[int(i)]
    inst = plain.instances[int(i)]
    show_crop(ax, s["image"], s["keypoints"], s["keypoints_visible"],
              title=f"ann {inst.ann_id}")
save_png_pdf(fig, figures, "dataset_tour_crops")
plt.show()

# %% [markdown]
# ## The same people, augmented
# Each row is one person; each column an independent draw of flip / half-body / scale /
# rotation. The keypoints move with the very same matrix as the pixels.

# %%
draws = 5
fig, axes = plt.subplots(len(picks), draws + 1, figsize=(2.0 * (draws + 1), 2.7 * len(picks)),
                         squeeze=False)
for row, i in zip(axes, picks):
    s = plain[int(i)]
    show_crop(row[0], s["image"], s["keypoints"], s["keypoints_visible"], title="no aug")
    for ax in row[1:]:
        s = augmented[int(i)]
        m = s["meta"]
        show_crop(ax, s["image"], s["keypoints"], s["keypoints_visible"],
                  title=f"{'flip ' if m['flipped'] else ''}s={float(m['scale'][1]):.0f}px")
save_png_pdf(fig, figures, "dataset_tour_augmented")
plt.show()

# %% [markdown]
# ## Validation: detector boxes
# The boxes the top-down evaluation crops from (score in the label), over the GT skeletons.

# %%
if val is not None:
    val_ids = list(dict.fromkeys(inst.image_id for inst in val.instances))[:num_samples]
    fig, axes = plt.subplots(1, len(val_ids), figsize=(4 * len(val_ids), 4), squeeze=False)
    for ax, image_id in zip(axes[0], val_ids):
        image, anns = val.load_scene(image_id)
        show_scene(ax, image, anns, boxes=False, title=f"val image {image_id}")
        for inst in val.instances:
            if inst.image_id == image_id:
                draw_box(ax, inst.bbox, color="cyan", label=f"{inst.score:.2f}")
    save_png_pdf(fig, figures, "dataset_tour_detections")
    plt.show()

# %%
print(sorted(p.name for p in figures.glob("dataset_tour_*.png")))
