"""A small re-creation of the authors' module naming (github yshMars/DistilPose, MMPose 0.x),
written for the conversion test from the key names and shapes in
``shared/reference/weights_mapping.md``: a StemNet or HRNet-W48 backbone and a TokenPose-style
head whose ``state_dict`` keys are the authors', computing the paper's math in their layout
(patches flattened as (p1 p2 c) into a Linear, q/k/v in one Linear, raw score, plain softplus
sigma). Their HRNet is MMPose's, whose names and math timm's ``hrnet_w48`` shares.

Sizes are read off a kit model of the same preset, so the test can run at smoke size.
Also their L_SH (``authors_simulated_heatmap_loss``), step by step as their loss classes run.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distilkit.models.blocks import Bottleneck, make_layer
from distilkit.models.position import sine_position_embedding


class AuthorsStemNet(nn.Module):
    def __init__(self, width: int, planes: int, num_blocks: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.layer1, self.out_channels = make_layer(Bottleneck, width, planes, num_blocks)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.layer1(x)


class AuthorsHRNet(nn.Module):
    """MMPose 0.x's pose HRNet-W48 under its key names: timm's ``hrnet_w48`` without the
    classifier parts, its last module fusing into branch 0 only (``multiscale_output=False``),
    and with ``num_stages=3`` stopping after stage 3 as their ``HRNet_3stage`` does."""

    def __init__(self, num_stages: int):
        import timm

        super().__init__()
        net = timm.create_model("hrnet_w48", pretrained=False)
        self.num_stages, self.out_channels = num_stages, 48
        kept = ["conv1", "bn1", "act1", "conv2", "bn2", "act2", "layer1", "transition1", "stage2",
                "transition2", "stage3"] + (["transition3", "stage4"] if num_stages == 4 else [])
        for name in kept:
            setattr(self, name, getattr(net, name))
        last = getattr(self, f"stage{num_stages}")[-1]
        last.fuse_layers = nn.ModuleList(last.fuse_layers[:1])

    def forward(self, x):
        x = self.layer1(self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))))
        ys = self.stage2([t(x) for t in self.transition1])
        for stage in range(3, self.num_stages + 1):
            transition = getattr(self, f"transition{stage - 1}")
            ys = getattr(self, f"stage{stage}")(
                [ys[i] if isinstance(t, nn.Identity) else t(ys[-1]) for i, t in enumerate(transition)])
        return ys[0]


class _Residual(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


class _PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x):
        return self.fn(self.norm(x))


class _Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(0.0))

    def forward(self, x):
        n, t, d = x.shape
        q, k, v = (part.reshape(n, t, self.heads, d // self.heads).transpose(1, 2)
                   for part in self.to_qkv(x).chunk(3, dim=-1))
        attn = (q @ k.transpose(-1, -2) * (d // self.heads) ** -0.5).softmax(dim=-1)
        return self.to_out((attn @ v).transpose(1, 2).reshape(n, t, d))


class _FeedForward(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.0),
                                 nn.Linear(hidden, dim), nn.Dropout(0.0))

    def forward(self, x):
        return self.net(x)


class _Transformer(nn.Module):
    def __init__(self, dim, depth, heads, hidden):
        super().__init__()
        self.layers = nn.ModuleList(nn.ModuleList([
            _Residual(_PreNorm(dim, _Attention(dim, heads))),
            _Residual(_PreNorm(dim, _FeedForward(dim, hidden)))]) for _ in range(depth))


class AuthorsTokenHead(nn.Module):
    """``tokenhead`` (student, 5 outputs per keypoint) or ``tokenpose`` (teacher, heatmaps)."""

    def __init__(self, *, in_channels, grid, patch, num_keypoints, dim, depth, heads, hidden,
                 mlp_head: nn.Sequential):
        super().__init__()
        self.patch, self.grid, self.k = patch, grid, num_keypoints
        self.keypoint_token = nn.Parameter(torch.randn(1, num_keypoints, dim) * 0.02)
        self.pos_embedding = nn.Parameter(sine_position_embedding(grid, dim)[None], requires_grad=False)
        self.patch_to_embedding = nn.Linear(patch[0] * patch[1] * in_channels, dim)
        self.transformer = _Transformer(dim, depth, heads, hidden)
        self.mlp_head = mlp_head

    def tokens(self, feat):
        n, c, h, w = feat.shape
        p1, p2 = self.patch
        x = feat.reshape(n, c, h // p1, p1, w // p2, p2).permute(0, 2, 4, 3, 5, 1)
        x = self.patch_to_embedding(x.reshape(n, (h // p1) * (w // p2), p1 * p2 * c))
        x = torch.cat([self.keypoint_token.expand(n, -1, -1), x], dim=1)
        for attn, ff in self.transformer.layers:
            x = torch.cat([x[:, :self.k], x[:, self.k:] + self.pos_embedding], dim=1)
            x = ff(attn(x))
        return x[:, :self.k]

    def forward(self, feat):
        return self.mlp_head(self.tokens(feat))


class AuthorsModel(nn.Module):
    """``backbone.*`` + ``keypoint_head.<name>.*``, as the authors' top-down detector nests them."""

    def __init__(self, backbone, head_name: str, head: AuthorsTokenHead):
        super().__init__()
        self.backbone = backbone
        self.keypoint_head = nn.Module()
        setattr(self.keypoint_head, head_name, head)
        self.head_name = head_name

    def forward(self, images):
        raw = getattr(self.keypoint_head, self.head_name)(self.backbone(images))
        if self.head_name == "tokenpose":
            return raw                                                    # (N, K, h*w)
        return raw[..., 0:2].sigmoid(), raw[..., 2], F.softplus(raw[..., 3:5])


def authors_like(kit_model, *, seed: int = 0) -> AuthorsModel:
    """The authors' layout at the kit model's sizes, with random weights and BN statistics."""
    torch.manual_seed(seed)
    bb, enc = kit_model.backbone, kit_model.encoder
    if hasattr(bb, "stages"):           # the kit's HRNet: stages 2.. of 3 or 4
        backbone = AuthorsHRNet(num_stages=len(bb.stages) + 1)
    else:
        width = bb.stem[0][0].out_channels
        planes = bb.layer1[0].conv1.out_channels
        backbone = AuthorsStemNet(width, planes, len(bb.layer1))
    dim, depth = enc.dim, enc.depth
    hidden = enc.layers[0].mlp.fc1.out_features
    if kit_model.kind == "regression":
        name, mlp = "tokenhead", nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 5))
    else:
        name = "tokenpose"
        mlp = nn.Sequential(*[type(m)(*_shape(m)) for m in kit_model.head.mlp])
    head = AuthorsTokenHead(in_channels=backbone.out_channels, grid=enc.grid, patch=enc.patch_size,
                            num_keypoints=enc.num_keypoints, dim=dim, depth=depth, heads=enc.heads,
                            hidden=hidden, mlp_head=mlp)
    model = AuthorsModel(backbone, name, head)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.normal_(0, 0.05 if p.dim() < 4 else (2.0 / p[0].numel()) ** 0.5)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):     # a scale near 1 keeps a deep HRNet's signal alive
                m.weight.uniform_(0.8, 1.2)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _shape(m: nn.Module) -> tuple:
    return (m.normalized_shape[0],) if isinstance(m, nn.LayerNorm) else (m.in_features, m.out_features)


def authors_simulated_heatmap_loss(coords: torch.Tensor, sigmas: torch.Tensor, teacher: torch.Tensor,
                                   target_weight: torch.Tensor) -> torch.Tensor:
    """Their ``Reg2HMLoss(encoding='MSRA', unbiased_encoding=True, use_target_weight=True)``
    feeding MMPose 0.x's ``JointsMSELoss``, step by step as their code runs it.

    coords (N, K, 2) normalised, sigmas (N, K, 2), teacher (N, K, H, W); target_weight (N, K):
    the first column of their regression target weight (visible and inside the crop).
    """
    n, k, h, w = teacher.shape
    mu_x, mu_y = coords[..., 0] * w, coords[..., 1] * h
    sx, sy = sigmas[..., 0], sigmas[..., 1]
    # any part of the 3-sigma window on the grid (their ul/br test), as an integer mask
    on_grid = ((mu_x - 3 * sx < w) & (mu_y - 3 * sy < h)
               & (mu_x + 3 * sx + 1 >= 0) & (mu_y + 3 * sy + 1 >= 0)).long()
    weight = target_weight * on_grid
    xs = torch.arange(w, dtype=torch.float32).reshape(1, 1, 1, w)
    ys = torch.arange(h, dtype=torch.float32).reshape(1, 1, h, 1)
    exponent = ((xs - mu_x[..., None, None]) ** 2 / (sx[..., None, None] ** 2 + 1e-9)
                + (ys - mu_y[..., None, None]) ** 2 / (sy[..., None, None] ** 2 + 1e-9))
    simulated = torch.exp(-0.5 * exponent) * on_grid.reshape(n, k, 1, 1)
    weight_4d = weight.unsqueeze(-1).unsqueeze(-1)            # (N, K, 1, 1), as they pass it
    # JointsMSELoss: one nn.MSELoss (mean) per joint on (N, H*W) slices, times weight[:, j]
    pred_per_joint = simulated.reshape(n, k, -1).split(1, 1)
    gt_per_joint = teacher.reshape(n, k, -1).split(1, 1)
    total = 0.0
    for j in range(k):
        pred_j, gt_j = pred_per_joint[j].squeeze(1), gt_per_joint[j].squeeze(1)   # (N, H*W)
        w_j = weight_4d[:, j]                                                     # (N, 1, 1)
        total = total + F.mse_loss(pred_j * w_j, gt_j * w_j)   # broadcasts to (N, N, H*W)
    return total / k
