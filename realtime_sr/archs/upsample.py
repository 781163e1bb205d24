"""Bicubic upsampling as a fixed sub-pixel convolution.

``F.interpolate(x, scale_factor=s, mode="bicubic", align_corners=False)`` (cubic a = -0.75, edge
pixels clamped) equals: replicate-pad by 2, a 5x5 convolution with s*s fixed kernels (one per
output phase), PixelShuffle(s). As a graph that is Pad + Conv + DepthToSpace, which every
backend runs fast (onnxruntime's cubic Resize on CPU costs ten times torch's, and more than the
rest of the coarse network), and it is exact, so weights trained with ``F.interpolate`` are
unchanged.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn


@functools.lru_cache(maxsize=None)
def bicubic_phase_kernel(scale: int) -> torch.Tensor:
    """(s*s, 1, 5, 5): the weight of input offset (dy, dx) in [-2, 2] for output phase (py, px)."""
    n = 11
    delta = torch.zeros(1, 1, n, n, dtype=torch.float64)
    delta[0, 0, n // 2, n // 2] = 1.0
    resp = F.interpolate(delta, scale_factor=scale, mode="bicubic", align_corners=False)[0, 0]
    k = torch.zeros(scale * scale, 1, 5, 5, dtype=torch.float64)
    c = n // 2
    for py in range(scale):
        for px in range(scale):
            for dy in range(-2, 3):
                for dx in range(-2, 3):
                    k[py * scale + px, 0, dy + 2, dx + 2] = resp[scale * (c - dy) + py, scale * (c - dx) + px]
    return k.float()


class BicubicUpsample(nn.Module):
    """Exact torch bicubic upsampling (align_corners=False) by ``scale`` of ``channels`` planes."""

    def __init__(self, *, scale: int, channels: int = 1) -> None:
        super().__init__()
        self.scale, self.channels = scale, channels
        self.register_buffer("weight", bicubic_phase_kernel(scale).repeat(channels, 1, 1, 1), persistent=False)

    def phases(self, x: torch.Tensor) -> torch.Tensor:
        """The s*s output phases per channel, before PixelShuffle: (N, C*s*s, H, W)."""
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), self.weight, groups=self.channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.phases(x), self.scale)
