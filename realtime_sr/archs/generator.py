"""The SRGAN generator: realtime-sr's **fine** network.

Ledig et al. 2017 (SRResNet/SRGAN): a head convolution, ``num_blocks`` residual blocks of
conv - batch norm - LeakyReLU - conv - batch norm with an identity skip, a conv + batch norm
closing the body with a long skip over it, then PixelShuffle upsampling stages (one for x2,
two for x4) and an output convolution.

Two choices differ from the paper, both for speed on the hardware at hand:

* 3x3 head and tail convolutions instead of 9x9 (the receptive field comes from the body);
* ``bicubic_skip``: the network predicts the residual over a bicubic upsampling of its input
  (VDSR's global residual learning), which trains several times faster and is free at run time.

Batch norm is kept in training, as the architecture asks; at inference it is an affine map
that :func:`fuse_batchnorm` folds into the preceding convolution.
"""

from __future__ import annotations

import torch
from torch import nn

from .upsample import BicubicUpsample


class ResidualBlock(nn.Module):
    """conv - BN - LeakyReLU - conv - BN, plus the identity."""

    def __init__(self, *, channels: int, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.LeakyReLU(negative_slope, inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRGANGenerator(nn.Module):
    """SRGAN generator (the fine network).

    Keyword-only hyperparameters:
        scale: 2 or 4 (x4 = two x2 PixelShuffle stages).
        in_channels: 1 for a luma (Y) network, 3 for RGB.
        num_features: width of the body.
        num_blocks: number of residual blocks (depth).
        negative_slope: LeakyReLU slope.
        bicubic_skip: add a bicubic upsampling of the input to the output.
    """

    def __init__(
        self,
        *,
        scale: int = 4,
        in_channels: int = 1,
        num_features: int = 64,
        num_blocks: int = 16,
        negative_slope: float = 0.2,
        bicubic_skip: bool = True,
    ) -> None:
        super().__init__()
        if scale not in (2, 4):
            raise ValueError(f"SRGANGenerator supports scale 2 or 4, not {scale}")
        self.scale = scale
        self.bicubic_skip = bicubic_skip
        nf = num_features
        self.head = nn.Sequential(
            nn.Conv2d(in_channels, nf, 3, padding=1), nn.LeakyReLU(negative_slope, inplace=True)
        )
        self.body = nn.Sequential(
            *[ResidualBlock(channels=nf, negative_slope=negative_slope) for _ in range(num_blocks)]
        )
        self.body_tail = nn.Sequential(nn.Conv2d(nf, nf, 3, padding=1), nn.BatchNorm2d(nf))
        stages = []
        for _ in range({2: 1, 4: 2}[scale]):
            stages += [
                nn.Conv2d(nf, nf * 4, 3, padding=1),
                nn.PixelShuffle(2),
                nn.LeakyReLU(negative_slope, inplace=True),
            ]
        self.upsample = nn.Sequential(*stages)
        self.tail = nn.Conv2d(nf, in_channels, 3, padding=1)
        self.skip = BicubicUpsample(scale=scale, channels=in_channels) if bicubic_skip else None
        if bicubic_skip:  # start near the bicubic skip: a small residual at first
            with torch.no_grad():
                self.tail.weight.mul_(0.1)
                self.tail.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(x)
        feat = feat + self.body_tail(self.body(feat))  # the long skip
        out = self.tail(self.upsample(feat))
        if self.bicubic_skip:
            out = out + self.skip(x)
        return out
