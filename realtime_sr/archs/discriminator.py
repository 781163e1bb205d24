"""The SRGAN discriminator.

Blocks of conv + batch norm + LeakyReLU whose width doubles every second block while every
second block halves the resolution (the first block has no batch norm, as in the paper), then
dense layers: Linear - LeakyReLU - Linear. ``forward`` returns the *logit*; train on it with
``BCEWithLogitsLoss`` (numerically stable) and use :meth:`score` for the sigmoid probability.

An adaptive average pool before the dense layers makes the network accept any patch size
(the paper's flatten fixes it at 96x96).

Options from what the field learned since: ``spectral_norm`` wraps every conv and linear layer
in spectral normalisation (Miyato et al. 2018: a Lipschitz-bounded D whose gradients stay useful
to the generator; usually with ``batch_norm=False``), and ``head="patch"`` replaces the dense
layers by a 3x3 conv to one logit per location of the last feature map (a PatchGAN-style score
map: each logit judges a local patch, so texture is judged where it is).
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
        batch_norm: batch norm after every conv but the first.
        spectral_norm: spectral normalisation of every conv and linear layer.
        head: "dense" (one logit per image) or "patch" (a logit map, one per location).
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
        batch_norm: bool = True,
        spectral_norm: bool = False,
        head: str = "dense",
    ) -> None:
        super().__init__()
        if head not in ("dense", "patch"):
            raise ValueError(f"head must be 'dense' or 'patch', not {head!r}")
        sn = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        self.head = head
        blocks: list[nn.Module] = []
        cin = in_channels
        for i in range(num_blocks):
            cout = min(base_features * 2 ** (i // 2), max_features)
            stride = 2 if i % 2 == 1 else 1
            layers: list[nn.Module] = [sn(nn.Conv2d(cin, cout, 3, stride=stride, padding=1))]
            if i > 0 and batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(negative_slope, inplace=True))
            blocks.append(nn.Sequential(*layers))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.Identity() if head == "patch" else nn.AdaptiveAvgPool2d(pool_size)
        if head == "patch":
            self.classifier = sn(nn.Conv2d(cin, 1, 3, padding=1))
        else:
            self.classifier = nn.Sequential(
                nn.Flatten(),
                sn(nn.Linear(cin * pool_size * pool_size, dense_features)),
                nn.LeakyReLU(negative_slope, inplace=True),
                sn(nn.Linear(dense_features, 1)),
            )

    def forward(self, x: torch.Tensor, *, return_features: bool = False):
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        logit = self.classifier(self.pool(x)).squeeze(1)  # (N,) dense, (N, h, w) patch
        return (logit, feats) if return_features else logit

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """The probability that ``x`` is a real high-resolution image (per location for a patch head)."""
        return torch.sigmoid(self.forward(x))
