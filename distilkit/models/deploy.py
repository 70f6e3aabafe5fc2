"""Inference-only rewrites that keep a model's function: BN folding and channels-last layout.

Both are standard deployment steps and change no prediction beyond float rounding;
``bench/model_throughput.py`` applies the same ones to every model it compares.
Never train a folded model: its BatchNorms are gone.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


@torch.no_grad()
def _fold_into_conv(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> None:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)   # (C_out,)
    shift = bn.bias - bn.running_mean * scale
    if isinstance(conv, nn.ConvTranspose2d):                  # weight (C_in, C_out/g, kh, kw)
        if conv.groups != 1:
            raise NotImplementedError("grouped transposed conv")
        conv.weight.mul_(scale.view(1, -1, 1, 1))
    else:                                                     # weight (C_out, C_in/g, kh, kw)
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
    bias = shift if conv.bias is None else conv.bias * scale + shift
    conv.bias = nn.Parameter(bias.clone())


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every BatchNorm2d into the conv registered just before it, in place.

    Relies on a convention all of ``distilkit.models`` follows: a BatchNorm2d registered
    immediately after a conv (same parent module) is applied immediately to that conv's
    output (``conv_bn`` Sequentials, ``convN``/``bnN`` pairs in blocks). Returns the number
    of folds. The model must be in eval mode (running statistics are used).
    """
    if model.training:
        raise RuntimeError("fold_batchnorm needs eval mode (it uses running statistics)")
    folded = 0
    for parent in model.modules():
        names = list(parent._modules)
        for prev, name in zip(names, names[1:]):
            conv, bn = parent._modules[prev], parent._modules[name]
            if (isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d))
                    and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats):
                _fold_into_conv(conv, bn)
                parent._modules[name] = nn.Identity()
                folded += 1
    return folded


def prepare_for_inference(model: nn.Module, *, fold_bn: bool = True,
                          channels_last: bool = True) -> nn.Module:
    """An eval-mode copy with BN folded and (for CPU oneDNN / GPU tensor cores) NHWC convs.

    Feed it ``images.contiguous(memory_format=torch.channels_last)`` for full effect;
    NCHW input works too (converted by the first conv).
    """
    model = copy.deepcopy(model).eval()
    if fold_bn:
        fold_batchnorm(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


__all__ = ["fold_batchnorm", "prepare_for_inference"]
