"""The one output type every model returns."""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class PoseOutput:
    """What a pose model produced for a batch of N crops with K keypoints.

    Coordinates are normalised to [0, 1] by the input width (x) and height (y),
    so regression and heatmap models are comparable without knowing the input
    size. Fields a model does not make are None.
    """

    coords: torch.Tensor | None = None        # (N, K, 2) x/W, y/H of the input crop
    scores: torch.Tensor | None = None        # (N, K) keypoint confidence
    sigmas: torch.Tensor | None = None        # (N, K, 2) sigma_x, sigma_y in heatmap pixels
    heatmaps: torch.Tensor | None = None      # (N, K, Hh, Wh)
    kpt_tokens: torch.Tensor | None = None    # (N, K, D) last layer, before any head
    vis_tokens: torch.Tensor | None = None    # (N, P, D) last layer, before any head
    attentions: list[torch.Tensor] | None = None  # per layer (N, heads, K+P, K+P)

    def detach(self) -> "PoseOutput":
        def _d(v):
            if v is None:
                return None
            if isinstance(v, list):
                return [t.detach() for t in v]
            return v.detach()

        return PoseOutput(**{f.name: _d(getattr(self, f.name)) for f in fields(self)})
