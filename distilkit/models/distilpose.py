"""Token pose models: backbone -> Token-distilling Encoder -> head.

One class covers the four token models of the paper, differing only in parts:

    DistilPose-S    StemNet             + TDE + RegressionHead      (student, "regression")
    DistilPose-L    HRNet-W48 stages1-3 + TDE + RegressionHead      (student, "regression")
    teacher-hrw48   HRNet-W48 (4 stages)+ TDE + TokenHeatmapHead    (TokenPose teacher, "heatmap")
    teacher-stemnet StemNet             + TDE + TokenHeatmapHead    (TokenPose-S teacher, "heatmap")

Every model returns a ``PoseOutput``; heatmap models also fill coords / scores from an
argmax decode so all models are evaluated the same way.
"""
from __future__ import annotations

import torch
from torch import nn

from distilkit.models.heads import RegressionHead, TokenHeatmapHead, decode_heatmaps
from distilkit.models.token_encoder import TokenEncoder
from distilkit.outputs import PoseOutput


class TokenPoseModel(nn.Module):
    """``backbone`` must map (N, 3, H, W) to a stride-4 map (N, C, H/4, W/4) and expose
    ``out_channels``; ``encoder`` is built for that map; ``head`` decides ``kind``."""

    def __init__(self, *, backbone: nn.Module, encoder: TokenEncoder,
                 head: RegressionHead | TokenHeatmapHead, input_size: tuple[int, int],
                 heatmap_size: tuple[int, int], name: str = "token-pose") -> None:
        super().__init__()
        self.backbone = backbone
        self.encoder = encoder
        self.head = head
        self.input_size = tuple(input_size)
        self.heatmap_size = tuple(heatmap_size)
        self.kind = "regression" if isinstance(head, RegressionHead) else "heatmap"
        self.name = name

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> backbone feature map (N, C, H/4, W/4)."""
        return self.backbone(images)

    def forward(self, images: torch.Tensor, return_attention: bool = False) -> PoseOutput:
        feat = self.forward_features(images)                            # (N, C, H/4, W/4)
        kpt, vis, attns = self.encoder(feat, return_attention=return_attention)
        out = PoseOutput(kpt_tokens=kpt, vis_tokens=vis, attentions=attns)
        if self.kind == "regression":
            out.coords, out.scores, out.sigmas = self.head(kpt)         # (N,K,2) (N,K) (N,K,2)
        else:
            out.heatmaps = self.head(kpt)                               # (N, K, h, w)
            out.coords, out.scores = decode_heatmaps(out.heatmaps)
        return out


__all__ = ["TokenPoseModel"]
