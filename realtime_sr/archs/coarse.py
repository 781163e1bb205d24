"""The coarse network: small and fast, for whole frames.

FSRCNN's hourglass (Dong et al. 2016) - feature extraction, shrinking, a few mapping layers,
expanding - all at low resolution, finished by ESPCN's sub-pixel convolution (a 3x3 conv to
``scale**2`` channels and PixelShuffle) instead of FSRCNN's transposed convolution, and a
bicubic skip so the network only learns the residual. About a third of ESPCN's arithmetic
per pixel at x2.
"""

from __future__ import annotations

import torch
from torch import nn

from .upsample import BicubicUpsample


class CoarseNet(nn.Module):
    """FSRCNN-style coarse network with a sub-pixel output and a bicubic skip.

    Keyword-only hyperparameters:
        scale: 2, 3 or 4.
        in_channels: 1 for luma (Y), 3 for RGB.
        d: feature-extraction width (FSRCNN's d).
        s: shrunk width of the mapping layers (FSRCNN's s).
        m: number of 3x3 mapping layers (FSRCNN's m).
        bicubic_skip: add a bicubic upsampling of the input to the output.
        act: "relu" (fast everywhere) or "prelu" (FSRCNN's; onnxruntime runs it unfused, which
            costs about 40% of the network's CPU time).
    """

    def __init__(
        self,
        *,
        scale: int = 2,
        in_channels: int = 1,
        d: int = 32,
        s: int = 12,
        m: int = 4,
        bicubic_skip: bool = True,
        act: str = "prelu",
    ) -> None:
        super().__init__()
        self.scale = scale
        self.bicubic_skip = bicubic_skip
        if act not in ("relu", "prelu"):
            raise ValueError(f"act must be relu or prelu, not {act!r}")
        a = (lambda c: nn.PReLU(c)) if act == "prelu" else (lambda c: nn.ReLU(inplace=True))
        layers: list[nn.Module] = [nn.Conv2d(in_channels, d, 5, padding=2), a(d)]
        layers += [nn.Conv2d(d, s, 1), a(s)]
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3, padding=1), a(s)]
        layers += [nn.Conv2d(s, d, 1), a(d)]
        self.features = nn.Sequential(*layers)
        self.to_subpixel = nn.Conv2d(d, in_channels * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)
        self.skip = BicubicUpsample(scale=scale, channels=in_channels) if bicubic_skip else None
        with torch.no_grad():  # start near the bicubic skip: a small residual at first
            self.to_subpixel.weight.mul_(0.1)
            self.to_subpixel.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.to_subpixel(self.features(x))
        if self.bicubic_skip:
            # the skip's phases added before the shuffle: the same sums (PixelShuffle only moves
            # values), with one DepthToSpace in the graph instead of two and the add at LR size
            # (x4 480x270: each DepthToSpace to 1080p took 3.3 ms of OpenVINO's 21.5)
            out = out + self.skip.phases(x)
        return self.shuffle(out)
