"""Matplotlib helpers for notebooks: skeletons, crops, scenes, saving figures."""
from distilkit.plots.skeleton import (LEFT_COLOR, MIDDLE_COLOR, RIGHT_COLOR, draw_box,
                                      draw_skeleton, save_figure, show_crop, show_scene)

__all__ = ["LEFT_COLOR", "MIDDLE_COLOR", "RIGHT_COLOR", "draw_box", "draw_skeleton",
           "save_figure", "show_crop", "show_scene"]
