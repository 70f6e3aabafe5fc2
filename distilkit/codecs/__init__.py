"""Target codecs: encode keypoints into training targets, decode predictions to input px.

Kept separate from the models (MMPose 1.x style) so the data pipeline, the losses and
the evaluation agree on one pixel convention: heatmap px = input px / stride.
"""
from distilkit.codecs.dark import dark_blur_kernel_size, gaussian_blur, refine_dark
from distilkit.codecs.flip import (flip_coords, flip_heatmaps, flip_regression_output,
                                   flip_regression_output_as_authors, flip_shift)
from distilkit.codecs.heatmap import (HeatmapCodec, heatmap_argmax, quarter_decode,
                                      quarter_offset)
from distilkit.codecs.regression import RegressionCodec
from distilkit.codecs.simulated import simulated_heatmaps

__all__ = [
    "HeatmapCodec", "RegressionCodec", "simulated_heatmaps",
    "flip_heatmaps", "flip_coords", "flip_regression_output", "flip_shift",
    "flip_regression_output_as_authors",
    "heatmap_argmax", "quarter_offset", "quarter_decode", "refine_dark", "gaussian_blur",
    "dark_blur_kernel_size",
]
