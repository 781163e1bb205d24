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

At inference, :meth:`SRGANGenerator.fold_tail` also moves the output convolution before the last
PixelShuffle (exactly: a 3x3 convolution of the shuffled features is a 3x3 convolution of the
unshuffled ones with ``4 * out`` channels, and LeakyReLU commutes with the shuffle). The
``4 * nf``-channel full-resolution shuffle and the full-resolution convolution, about a third of
the network's time under OpenVINO bf16, become one shuffle of ``4 * out`` channels, which at x2
also takes the bicubic skip's phases (docs/export.md).
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
        frames: input frames (odd): 1, or the frame to upscale with its neighbours either side,
            stacked on the channel axis in time order (``frames * in_channels`` input channels);
            the output and the bicubic skip are the middle frame's. Given ``in_channels`` only
            (one frame), the network treats it as a still: the frame repeated.
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
        frames: int = 1,
    ) -> None:
        super().__init__()
        if scale not in (2, 4):
            raise ValueError(f"SRGANGenerator supports scale 2 or 4, not {scale}")
        if frames < 1 or frames % 2 == 0:
            raise ValueError(f"SRGANGenerator takes an odd number of frames, not {frames}")
        self.scale, self.frames, self.in_channels = scale, frames, in_channels
        self.bicubic_skip = bicubic_skip
        nf = num_features
        self.head = nn.Sequential(
            nn.Conv2d(in_channels * frames, nf, 3, padding=1), nn.LeakyReLU(negative_slope, inplace=True)
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

    folded = False

    @torch.no_grad()
    def fold_tail(self) -> SRGANGenerator:
        """Inference only (in place): the output convolution at the last stage's input resolution.

        ``out[o, 2i+a, 2j+b] = sum W[o, c, dy, dx] * F[c, 2i+a+dy, 2j+b+dx]`` with
        ``F = PixelShuffle(U)``; each ``F`` pixel is ``U[4c + 2a' + b', i+p, j+q]`` with
        ``2p + a' = a + dy``, so ``p, q`` lie in -1..1 and zero padding maps to zero padding.
        The outputs equal the unfolded network's up to float rounding."""
        if self.folded:
            return self
        tail = self.tail
        out_c, nf = tail.weight.shape[:2]
        w = tail.weight.new_zeros(out_c * 4, nf * 4, 3, 3)
        for o in range(out_c):
            for a in range(2):
                for b in range(2):
                    for dy in (-1, 0, 1):
                        p, a2 = divmod(a + dy, 2)
                        for dx in (-1, 0, 1):
                            q, b2 = divmod(b + dx, 2)
                            w[o * 4 + a * 2 + b, a2 * 2 + b2::4, p + 1, q + 1] = tail.weight[o, :, dy + 1, dx + 1]
        conv = nn.Conv2d(nf * 4, out_c * 4, 3, padding=1).to(tail.weight.device, tail.weight.dtype)
        conv.weight.copy_(w)
        conv.bias.copy_(tail.bias.repeat_interleave(4))
        stages = list(self.upsample)
        slope = stages[-1].negative_slope  # the last stage: conv, PixelShuffle(2), LeakyReLU
        self.upsample = nn.Sequential(*stages[:-2], nn.LeakyReLU(slope))
        self.tail = conv
        self.folded = True
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, mid = self.in_channels, self.frames // 2
        if self.frames > 1 and x.shape[1] == c:  # one frame: a still
            x = x.repeat(1, self.frames, 1, 1)
        feat = self.head(x)
        if self.frames > 1:
            x = x[:, c * mid:c * (mid + 1)]  # the frame to upscale
        feat = feat + self.body_tail(self.body(feat))  # the long skip
        out = self.tail(self.upsample(feat))
        if self.folded:  # out is (N, 4 * C, sH / 2, sW / 2): the last shuffle is still to come
            if self.bicubic_skip and self.scale == 2:
                return nn.functional.pixel_shuffle(out + self.skip.phases(x), 2)
            out = nn.functional.pixel_shuffle(out, 2)
        if self.bicubic_skip:
            out = out + self.skip(x)
        return out
