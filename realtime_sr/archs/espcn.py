"""ESPCN (Shi et al. 2016), the published architecture, as a speed reference.

Not shipped as a model: it exists so that the coarse network can be timed side by side with a
same-size network of ESPCN's architecture (OpenCV's dnn_superres ESPCN models are this net).
"""

from __future__ import annotations

import torch
from torch import nn


class ESPCN(nn.Module):
    """ESPCN: 5x5 conv (64) - tanh - 3x3 conv (32) - tanh - 3x3 conv (scale^2) - PixelShuffle.

    Keyword-only hyperparameters:
        scale: upscaling factor.
        in_channels: 1 (Y, as published) or 3.
    """

    def __init__(self, *, scale: int = 2, in_channels: int = 1) -> None:
        super().__init__()
        self.scale = scale
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 64, 5, padding=2),
            nn.Tanh(),
            nn.Conv2d(64, 32, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(32, in_channels * scale * scale, 3, padding=1),
            nn.PixelShuffle(scale),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
