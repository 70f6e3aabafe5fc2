"""Looking inside the models: the paper's Figs. 1, 3, 5 and 6, and captum attributions.

Plain functions the ``notebooks/viz_*.py``, ``interpret.py`` and ``complexity.py``
notebooks call, one concept per module:

    checkpoints   the teacher / plain / TDE-only / full students: found or trained (cached)
    session       what each notebook starts with: checkpoints, models, crops, out folder
    samples       the validation crops every figure is drawn on
    attention     Fig. 3b  keypoint-token attention to the visual tokens
    features      Fig. 3a  backbone feature-map energy, on/off-body contrast
    heatmaps      Fig. 5   teacher vs Simulated Heatmaps
    confidence    Fig. 6   confidence boxes, reliability, the AP that Eq. 3 rescoring adds
    attribution   captum IntegratedGradients / Saliency of a joint's coordinate
    complexity    Fig. 1   AP vs GFLOPs / parameters
    figures       saving PNG + PDF (the one figure-saving helper), output folders
    skeleton      drawing skeletons, boxes, crops and scenes
    curves        a run's learning curves (metrics.csv), and many runs' overlaid
    explorer      the ipywidgets explorer: a crop, a joint, a student (notebooks/explore.py)
    predictions   a checkpoint's predictions on validation crops
"""
from distilkit.experiments.figure_models import ROLE_LABELS, ROLES
from distilkit.viz.checkpoints import ensure_checkpoints, load_models
from distilkit.viz.figures import save_png_pdf
from distilkit.viz.samples import Crops, keypoint_index, load_val_crops

__all__ = ["ROLES", "ROLE_LABELS", "ensure_checkpoints", "load_models",
           "save_png_pdf", "Crops", "keypoint_index", "load_val_crops"]
