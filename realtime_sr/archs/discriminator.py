"""The SRGAN discriminator.

Blocks of conv + batch norm + LeakyReLU whose width doubles every second block while every
second block halves the resolution (the first block has no batch norm, as in the paper), then
dense layers: Linear - LeakyReLU - Linear. ``forward`` returns the *logit*; train on it with
``BCEWithLogitsLoss`` (numerically stable) and use :meth:`score` for the sigmoid probability.

An adaptive average pool before the dense layers makes the network accept any patch size
(the paper's flatten fixes it at 96x96).
"""

from __future__ import annotations

import torch
from torch import nn


class SRGANDiscriminator(nn.Module):
    """SRGAN discriminator.

    Keyword-only hyperparameters:
        in_channels: 1 for luma (Y) images, 3 for RGB.
        base_features: width of the first block (64 in the paper).
        num_blocks: number of conv blocks (8 in the paper); width doubles every 2 blocks.
        max_features: cap on the width.
        dense_features: width of the hidden dense layer (1024 in the paper).
        pool_size: spatial size after the adaptive pool.
        negative_slope: LeakyReLU slope.
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        base_features: int = 64,
        num_blocks: int = 8,
        max_features: int = 512,
        dense_features: int = 1024,
        pool_size: int = 4,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        cin = in_channels
        for i in range(num_blocks):
            cout = min(base_features * 2 ** (i // 2), max_features)
            stride = 2 if i % 2 == 1 else 1
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1)]
            if i > 0:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(negative_slope, inplace=True))
            blocks.append(nn.Sequential(*layers))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(cin * pool_size * pool_size, dense_features),
            nn.LeakyReLU(negative_slope, inplace=True),
            nn.Linear(dense_features, 1),
        )

    def forward(self, x: torch.Tensor, *, return_features: bool = False):
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        logit = self.classifier(self.pool(x)).squeeze(1)
        return (logit, feats) if return_features else logit

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """The probability that ``x`` is a real high-resolution image."""
        return torch.sigmoid(self.forward(x))
