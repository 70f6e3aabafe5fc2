"""Flip-test helpers: map predictions on a mirrored crop back onto the original crop.

Pixel convention. The data pipeline mirrors a crop of width W with cv2.flip, so input
pixel column i becomes W-1-i and a keypoint x becomes W-1-x (input px); left/right
joints swap. Everything here inverts exactly that:

* normalised coords (x/W): x' = (W-1)/W - x. Not 1 - x: that would be the mirror of a
  continuous [0, W] image and leaves a 1/W bias (1 px at the input scale). The map is
  its own inverse, so `flip_coords(flip_coords(c)) == c`.
* heatmaps: a keypoint x sits at heatmap px x/s (s = W/w stride). The flipped image puts
  it at (W-1-x)/s; reversing the heatmap columns (j -> w-1-j) puts it at
  x/s - (1 - 1/s), i.e. (1 - 1/s) heatmap px left of where it belongs: 0.75 px at s=4,
  0 at s=1. HRNet/MMPose shift the reversed map right by one whole pixel
  (`shift=True`), which overshoots to x/s + 1/s: +1/s heatmap px, i.e. +1 input px
  whatever the stride (the test pins this). Pass
  `shift=flip_shift(input_width, heatmap_width)` (= 1 - 1/s) for the exact alignment,
  done by linear interpolation between the map and its one-pixel shift (that moves a
  Gaussian's centre of mass by exactly the shift and keeps it unimodal).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from distilkit.keypoints import FLIP_INDEX


def flip_shift(input_width: int, heatmap_width: int) -> float:
    """Sub-pixel shift (heatmap px) that aligns a flipped-back heatmap exactly: 1 - w/W."""
    return 1.0 - heatmap_width / input_width


def _index(flip_index: Sequence[int], device: torch.device) -> torch.Tensor:
    return torch.as_tensor(list(flip_index), dtype=torch.long, device=device)


def flip_heatmaps(heatmaps: torch.Tensor, flip_index: Sequence[int] = FLIP_INDEX,
                  shift: bool | float = True) -> torch.Tensor:
    """Heatmaps predicted on the mirrored crop -> heatmaps for the original crop.

    heatmaps (N, K, h, w). Reverses columns, swaps left/right channels, then shifts
    right by `shift` heatmap px: True = 1 px (the usual HRNet/MMPose choice, column 0
    keeps its value), False = none, a float in [0, 1] = linear-interpolated sub-pixel
    shift (see module doc; `flip_shift` gives the exact value).
    """
    amount = float(shift)
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"shift must be a bool or a float in [0, 1], got {shift!r}")
    out = heatmaps.flip(-1).index_select(1, _index(flip_index, heatmaps.device))
    if amount > 0.0:
        shifted = torch.cat([out[..., :1], out[..., :-1]], dim=-1)   # one px right
        out = shifted if amount == 1.0 else (1.0 - amount) * out + amount * shifted
    return out


def flip_coords(coords: torch.Tensor, flip_index: Sequence[int] = FLIP_INDEX, *,
                input_width: int) -> torch.Tensor:
    """Normalised coords (N, K, 2) on the mirrored crop -> original crop.

    x' = (W-1)/W - x and left/right swap: the exact inverse of the data flip
    x_px -> W-1-x_px, and an involution. `input_width` is required on purpose: the
    tempting x' = 1 - x is off by 1/W.
    """
    idx = _index(flip_index, coords.device)
    out = coords.index_select(-2, idx).clone()
    out[..., 0] = (input_width - 1) / input_width - out[..., 0]
    return out


def flip_regression_output(coords: torch.Tensor, scores: torch.Tensor | None,
                           sigmas: torch.Tensor | None,
                           flip_index: Sequence[int] = FLIP_INDEX, *,
                           input_width: int
                           ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Flip a regression student's (coords (N,K,2), scores (N,K), sigmas (N,K,2)) back.

    Coords as `flip_coords`; scores and sigmas follow their keypoints through the
    left/right swap (the authors' flip test swapped coords but not scores). A mirror
    does not change a Gaussian's per-axis spread, so (sigma_x, sigma_y) keep their order.
    """
    idx = _index(flip_index, coords.device)
    out_coords = flip_coords(coords, flip_index, input_width=input_width)
    out_scores = None if scores is None else scores.index_select(-1, idx)
    out_sigmas = None if sigmas is None else sigmas.index_select(-2, idx)
    return out_coords, out_scores, out_sigmas


def flip_regression_output_as_authors(coords: torch.Tensor, scores: torch.Tensor,
                                      flip_index: Sequence[int] = FLIP_INDEX
                                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' flip-back of a regression student (MMPose 0.x ``fliplr_regression``,
    static centre 0.5), for ``distilkit eval --authors-eval``.

    Coords: left/right swapped and x' = 1 - x (the 1/W bias ``flip_coords`` avoids). Scores:
    returned as predicted, not swapped, so averaging them with the unflipped pass mixes each
    keypoint's score with its mirror partner's, as their test pipeline does.
    """
    out = coords.index_select(-2, _index(flip_index, coords.device)).clone()
    out[..., 0] = 1.0 - out[..., 0]
    return out, scores
