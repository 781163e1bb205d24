"""Training patches: random crops, flips, rotations, scale augmentation; LR by PIL bicubic.

Every sample is a pure function of (seed, rank, index): the sampler hands out indices
``step * batch + k``, so a resumed run sees exactly the samples an uninterrupted run would,
whatever the number of DataLoader workers. Images are decoded inside the workers (each keeps
its own cache), so the main process only trains.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..imageops import IMAGE_SUFFIXES, read_image


def find_training_images(roots: list[str | Path]) -> list[Path]:
    """Image files under each root; DIV2K's layout (DIV2K_train_HR/) is recognised."""
    files: list[Path] = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise InputError(f"{root}: training data folder not found")
        div2k = root / "DIV2K_train_HR"
        base = div2k if div2k.is_dir() else root
        found = sorted(p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                       and "DIV2K_valid_HR" not in p.parts)
        if not found:
            raise InputError(f"{root}: no training images in it")
        files += found
    return files


def find_validation_dir(roots: list[str | Path]) -> Path | None:
    """DIV2K_valid_HR/ under one of the roots, if there is one."""
    for root in roots:
        cand = Path(root) / "DIV2K_valid_HR"
        if cand.is_dir():
            return cand
    return None


class PatchDataset:
    """Map-style dataset of (lr, hr) float32 patch pairs, (C, p, p) and (C, s*p, s*p), in [0, 1].

    ``colour='y'`` gives Y / 255 (BT.601 studio, as the evaluation protocol); ``'rgb'`` gives RGB.
    """

    def __init__(self, files: list[Path], *, scale: int, lr_patch: int, colour: str = "y",
                 scale_aug: tuple[float, float] = (0.6, 1.0), seed: int = 0, rank: int = 0,
                 length: int = 10**9) -> None:
        self.files = list(files)
        self.scale, self.lr_patch, self.colour = scale, lr_patch, colour
        self.scale_aug, self.seed, self.rank, self.length = scale_aug, seed, rank, length
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.length

    def _image(self, i: int) -> np.ndarray:
        img = self._cache.get(i)
        if img is None:
            img = read_image(self.files[i])
            if img.dtype != np.uint8:
                img = (img >> 8).astype(np.uint8)
            img = img[..., :3] if img.shape[2] >= 3 else np.repeat(img[..., :1], 3, axis=2)
            self._cache[i] = img
        return img

    def __getitem__(self, index: int):
        import torch
        from PIL import Image

        from ..colour import rgb_to_y

        rng = np.random.default_rng([self.seed, self.rank, index])
        s, p = self.scale, self.lr_patch
        hp = p * s
        img = self._image(int(rng.integers(len(self.files))))
        h, w = img.shape[:2]
        f = rng.uniform(*self.scale_aug) if self.scale_aug[0] < 1.0 else 1.0
        crop = min(int(round(hp / f)), h, w)
        crop = max(crop, min(hp, h, w))
        y0, x0 = int(rng.integers(h - crop + 1)), int(rng.integers(w - crop + 1))
        patch = img[y0 : y0 + crop, x0 : x0 + crop]
        if crop != hp:
            patch = np.asarray(Image.fromarray(patch).resize((hp, hp), Image.BICUBIC))
        k = int(rng.integers(4))
        if k:
            patch = np.rot90(patch, k)
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        patch = np.ascontiguousarray(patch)
        lr = np.asarray(Image.fromarray(patch).resize((p, p), Image.BICUBIC))
        if self.colour == "y":
            hr_t = rgb_to_y(patch / 255.0)[None] / 255.0
            lr_t = rgb_to_y(lr / 255.0)[None] / 255.0
        else:
            hr_t = patch.transpose(2, 0, 1) / 255.0
            lr_t = lr.transpose(2, 0, 1) / 255.0
        return torch.from_numpy(np.ascontiguousarray(lr_t, dtype=np.float32)), torch.from_numpy(
            np.ascontiguousarray(hr_t, dtype=np.float32))


class StepSampler:
    """Yields indices start*batch, start*batch+1, ...: the data order is a function of the step."""

    def __init__(self, start_step: int, total_steps: int, batch: int) -> None:
        self.start, self.total, self.batch = start_step, total_steps, batch

    def __iter__(self):
        return iter(range(self.start * self.batch, self.total * self.batch))

    def __len__(self) -> int:
        return (self.total - self.start) * self.batch
