"""Fold batch norm into the preceding convolution for inference (an exact affine rewrite)."""

from __future__ import annotations

import torch
from torch import nn


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    fused = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
        padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=True,
    )
    with torch.no_grad():
        std = torch.sqrt(bn.running_var + bn.eps)
        gamma = bn.weight if bn.affine else torch.ones_like(std)
        beta = bn.bias if bn.affine else torch.zeros_like(std)
        factor = gamma / std
        fused.weight.copy_(conv.weight * factor.reshape(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(std)
        fused.bias.copy_((bias - bn.running_mean) * factor + beta)
    return fused


def fuse_batchnorm(module: nn.Module) -> nn.Module:
    """Return ``module`` (in place) with every Conv2d -> BatchNorm2d pair inside a Sequential folded.

    Only valid in eval mode (running statistics); the outputs are unchanged up to rounding.
    """
    for child in module.children():
        fuse_batchnorm(child)
    if isinstance(module, nn.Sequential):
        items = list(module._modules.items())
        i = 0
        while i < len(items) - 1:
            (name_a, a), (name_b, b) = items[i], items[i + 1]
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                module._modules[name_a] = _fold(a, b)
                module._modules[name_b] = nn.Identity()
                i += 2
            else:
                i += 1
    return module
