"""Network architectures and their one registry.

``ARCHS`` maps an architecture name (as stored in a weights file's metadata) to its class.
Every class takes keyword-only hyperparameters, so ``ARCHS[name](**hparams)`` rebuilds a
network from its metadata.
"""

from __future__ import annotations

from .coarse import CoarseNet
from .discriminator import SRGANDiscriminator
from .espcn import ESPCN
from .generator import SRGANGenerator

ARCHS = {
    "coarse": CoarseNet,
    "srgan_generator": SRGANGenerator,
    "srgan_discriminator": SRGANDiscriminator,
    "espcn": ESPCN,
}


def build(arch: str, **hparams):
    """Build a network by registry name; an unknown name lists the valid ones."""
    try:
        cls = ARCHS[arch]
    except KeyError:
        raise KeyError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHS))}") from None
    return cls(**hparams)


__all__ = ["ARCHS", "build", "CoarseNet", "SRGANGenerator", "SRGANDiscriminator", "ESPCN"]
