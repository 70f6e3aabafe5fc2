"""Normalised-coordinate targets for regression students, and a codec combinator."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from distilkit.arrays import as_numpy


@dataclass
class RegressionCodec:
    """Coordinates divided by the input width (x) and height (y).

    A keypoint gets weight 0 when invisible or outside the input, i.e. outside
    [0, W-1] x [0, H-1] in input pixels (pixel centres at integers, as MMPose's
    RegressionLabel), so L_reg never pulls toward a point the crop does not contain.
    """

    input_size: tuple[int, int]          # (H, W)

    def __post_init__(self) -> None:
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))

    @property
    def _wh(self) -> np.ndarray:
        H, W = self.input_size
        return np.array([W, H], dtype=np.float32)

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> dict[str, np.ndarray]:
        """keypoints (K, 2) input px, visible (K,) -> coords (K, 2) in [0,1], coord_weights (K,)."""
        kpts = np.asarray(keypoints, dtype=np.float32).reshape(-1, 2)
        vis = np.asarray(visible, dtype=np.float32).reshape(-1)
        inside = ((kpts >= 0) & (kpts <= self._wh - 1)).all(axis=1)  # NaN -> False
        weights = ((vis > 0.5) & inside).astype(np.float32)
        coords = np.where(weights[:, None] > 0, kpts / self._wh, 0.0).astype(np.float32)
        return {"coords": coords, "coord_weights": weights}

    def decode(self, coords: np.ndarray | torch.Tensor,
               scores: np.ndarray | torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
        """coords (N, K, 2) normalised -> (coords (N, K, 2) input px, scores (N, K)).

        Scores pass through (ones when the model has none), to match HeatmapCodec.decode.
        """
        c = as_numpy(coords, np.float32)
        s = np.ones(c.shape[:-1], np.float32) if scores is None else as_numpy(scores, np.float32)
        return c * self._wh, s
