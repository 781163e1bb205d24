"""Shared test helpers: tiny models, small natural images, the shared data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO / ".." / "shared" / "data").resolve()
IMAGES = DATA / "images"

needs_data = pytest.mark.skipif(not (IMAGES / "Set5").is_dir(),
                                reason=f"shared evaluation data not found at {IMAGES}")

TINY = {
    "coarse": {"d": 8, "s": 4, "m": 1},
    "srgan_generator": {"num_features": 8, "num_blocks": 2},
}


def tiny_model(path: Path, *, arch: str = "coarse", scale: int = 2, colour: str = "y", seed: int = 0) -> Path:
    """Write a small random-weight realtime-sr weights file and return its path."""
    import torch

    from realtime_sr.archs import build
    from realtime_sr.checkpoints import save_weights

    torch.manual_seed(seed)
    hp = {"scale": scale, "in_channels": 1 if colour == "y" else 3, **TINY[arch]}
    net = build(arch, **hp)
    with torch.no_grad():  # a visible, non-trivial residual
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    save_weights(path, net.state_dict(), {"arch": arch, "hparams": hp, "scale": scale, "colour": colour,
                                          "context": 16, "name": f"tiny-{arch}-x{scale}"})
    return path


def natural_image(name: str = "astronaut", size: tuple[int, int] | None = None) -> np.ndarray:
    """A natural RGB uint8 image shipped with scikit-image, optionally resized (w, h)."""
    import skimage.data
    from PIL import Image

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=2)
    if size is not None:
        img = np.asarray(Image.fromarray(img).resize(size, Image.BICUBIC))
    return img


def write_image_folder(folder: Path, n: int = 3, size=(96, 80)) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    names = ["astronaut", "coffee", "chelsea", "rocket", "motorcycle_left"]
    for i in range(n):
        Image.fromarray(natural_image(names[i % len(names)], size)).save(folder / f"img{i}.png")
    return folder
