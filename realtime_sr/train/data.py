"""Training patches: random crops, flips, rotations, scale augmentation; LR by PIL bicubic, or by
the real-world degradations of :mod:`.degrade` when the recipe has a ``[degrade]`` table.

Every sample is a pure function of (seed, rank, index): the sampler hands out indices
``step * batch + k``, so a resumed run sees exactly the samples an uninterrupted run would,
whatever the number of DataLoader workers. Images are decoded inside the workers (each keeps
its own cache), so the main process only trains.

Training data is folders of images, or ``.npy`` files of pre-cut HR crops (uint8, (N, H, W, 3),
memory-mapped: what ``benchmarks/make_patches.py`` makes to carry to a GPU machine); each crop
is then one source image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..imageops import IMAGE_SUFFIXES, read_image


def find_training_images(roots: list[str | Path]) -> list[Path | tuple[Path, int]]:
    """Image files under each root; DIV2K's layout (DIV2K_train_HR/) is recognised. A root that
    is a ``.npy`` file of HR crops gives one entry ``(path, i)`` per crop."""
    files: list[Path | tuple[Path, int]] = []
    for root in roots:
        root = Path(root)
        if root.suffix == ".npy" and root.is_file():
            files += [(root, i) for i in range(len(_crops(root)))]
            continue
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


_CROPS: dict[Path, np.ndarray] = {}


def _crops(path: Path) -> np.ndarray:
    """A memory-mapped (N, H, W, 3) uint8 crop file, checked once per process."""
    arr = _CROPS.get(path)
    if arr is None:
        try:
            arr = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable .npy crop file ({exc})") from None
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[3] != 3 or len(arr) == 0:
            raise InputError(f"{path}: expected uint8 HR crops of shape (N, H, W, 3), got {arr.dtype} {arr.shape}")
        _CROPS[path] = arr
    return arr


GROUP = 4  # degraded samples come in groups of this many, cut from one degraded region


class PatchDataset:
    """Map-style dataset of (lr, hr) float32 patch pairs, (C, p, p) and (C, s*p, s*p), in [0, 1].
    With temporal degradations the LR is (2 * temporal + 1, p, p): luma frames in time order, the
    HR's own frame in the middle.

    ``colour='y'`` gives Y / 255 (BT.601 studio, as the evaluation protocol); ``'rgb'`` gives RGB.
    """

    def __init__(self, files: list[Path], *, scale: int, lr_patch: int, colour: str = "y",
                 scale_aug: tuple[float, float] = (0.6, 1.0), seed: int = 0, rank: int = 0,
                 length: int = 10**9, degrade=None) -> None:
        self.files = list(files)
        self.scale, self.lr_patch, self.colour = scale, lr_patch, colour
        self.scale_aug, self.seed, self.rank, self.length = scale_aug, seed, rank, length
        self.degrade = degrade  # a degrade.DegradeConfig, or None for clean PIL bicubic
        self._cache: dict[int, np.ndarray] = {}
        self._group: tuple[int, list] = (-1, [])  # the last degraded group (GROUP samples, one codec call)

    def __len__(self) -> int:
        return self.length

    def _image(self, i: int) -> np.ndarray:
        img = self._cache.get(i)
        if img is None and isinstance(self.files[i], tuple):
            path, k = self.files[i]
            return np.asarray(_crops(path)[k])
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
        from .degrade import degrade

        group, member = divmod(index, GROUP) if self.degrade is not None else (index, 0)
        rng = np.random.default_rng([self.seed, self.rank, group])
        s, p = self.scale, self.lr_patch
        img = self._image(int(rng.integers(len(self.files))))
        h, w = img.shape[:2]
        f = rng.uniform(*self.scale_aug) if self.scale_aug[0] < 1.0 else 1.0
        cy, cx = rng.random(2)  # where in the image (as a fraction of the free room)
        k = int(rng.integers(4))
        flip = rng.random() < 0.5

        def region(size: int, dx: int = 0, dy: int = 0) -> np.ndarray:
            """An augmented HR square of side ``size``, displaced (dx, dy) output pixels."""
            crop = max(min(int(round(size / f)), h, w), min(size, h, w))
            y0 = int(np.clip(round(cy * (h - crop)) + round(dy * crop / size), 0, h - crop))
            x0 = int(np.clip(round(cx * (w - crop)) + round(dx * crop / size), 0, w - crop))
            patch = img[y0:y0 + crop, x0:x0 + crop]
            if crop != size:
                patch = np.asarray(Image.fromarray(patch).resize((size, size), Image.BICUBIC))
            if k:
                patch = np.rot90(patch, k)
            if flip:
                patch = patch[:, ::-1]
            return np.ascontiguousarray(patch)

        if self.degrade is None:
            patch = region(p * s)
            lr, lr_y = np.asarray(Image.fromarray(patch).resize((p, p), Image.BICUBIC)), None
        else:
            if self._group[0] != group:
                self._group = (group, degrade(region, scale=s, lr_patch=p, cfg=self.degrade, rng=rng, count=GROUP))
            d = self._group[1][member]
            patch, lr, lr_y = d.hr, d.lr_rgb, d.lr_y
        if self.colour == "y":
            hr_t = rgb_to_y(patch / 255.0)[None] / 255.0
            if lr_y is None:  # (p, p, 3), or (frames, p, p, 3) with temporal neighbours
                lr_y = rgb_to_y(lr / 255.0)
            lr_t = (lr_y if lr_y.ndim == 3 else lr_y[None]) / 255.0
        else:
            if self.degrade is not None and self.degrade.temporal:
                raise ValueError("temporal degradations give luma frames; use colour = 'y'")
            if lr_y is not None:
                raise ValueError("video-codec degradations give luma only; use colour = 'y'")
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
