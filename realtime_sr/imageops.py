"""Image file I/O and the evaluation protocol's resizing (PIL bicubic, antialiased)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError, require_file

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as uint8 (H, W, C) with C in {1, 3, 4}: grayscale, RGB, or RGBA.

    16-bit images are read as uint16. Any failure is an :class:`InputError` naming the file.
    """
    from PIL import Image, UnidentifiedImageError

    path = require_file(path, "an image")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.uint16 if im.mode.startswith("I;16") else np.int32)
                if arr.dtype == np.int32:
                    arr = np.clip(arr, 0, 65535).astype(np.uint16)
                return arr[..., None]
            if im.mode in ("L", "1"):
                return np.asarray(im.convert("L"))[..., None]
            if im.mode in ("LA",):
                la = np.asarray(im)
                rgb = np.repeat(la[..., :1], 3, axis=2)
                return np.concatenate([rgb, la[..., 1:]], axis=2)
            if im.mode in ("RGBA", "PA") or (im.mode == "P" and "transparency" in im.info):
                return np.asarray(im.convert("RGBA"))
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: not a readable image ({exc})") from None


def write_image(path: str | Path, img: np.ndarray) -> None:
    """Write uint8/uint16 (H, W, C) to ``path`` atomically (temporary file, then rename)."""
    from PIL import Image

    from .fsutil import atomic_output

    path = Path(path)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP",
           ".tif": "TIFF", ".tiff": "TIFF"}.get(path.suffix.lower())
    if fmt is None:
        from .errors import UsageError

        raise UsageError(f"{path}: unsupported output format {path.suffix!r} (use .png, .jpg, .bmp, .webp or .tif)")
    if img.dtype == np.uint16 and fmt not in ("PNG", "TIFF"):
        img = (img >> 8).astype(np.uint8)
    if img.dtype == np.uint16:
        im = Image.fromarray(img) if img.ndim == 2 else Image.fromarray((img >> 8).astype(np.uint8))
    else:
        im = Image.fromarray(img)
    if fmt == "JPEG" and im.mode == "RGBA":
        im = im.convert("RGB")
    kwargs = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    try:
        with atomic_output(path) as tmp:
            im.save(tmp, format=fmt, **kwargs)
    except OSError as exc:  # the temporary file is gone already (atomic_output): say why in one line
        from .errors import OutputError
        from .fsutil import is_disk_full

        if is_disk_full(exc):
            raise OutputError(f"{path.parent}: disk full (no space left while writing {path.name})") from None
        if not path.parent.is_dir():
            raise OutputError(f"{path.parent}: no such folder") from None
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop so both sides are divisible by ``scale`` (the protocol's step 1)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def resize_bicubic(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """PIL bicubic resize of a uint8 (H, W, C) or float32 (H, W) image to (width, height).

    This is the protocol's kernel (antialiased when downscaling); training makes its LR
    inputs with this same function.
    """
    from PIL import Image

    if img.dtype == np.uint8:
        if img.ndim == 3 and img.shape[2] == 1:
            return np.asarray(Image.fromarray(img[..., 0]).resize(size, Image.BICUBIC))[..., None]
        return np.asarray(Image.fromarray(img).resize(size, Image.BICUBIC))
    if img.ndim == 2:
        return np.asarray(Image.fromarray(img.astype(np.float32), mode="F").resize(size, Image.BICUBIC))
    return np.stack([resize_bicubic(img[..., c], size) for c in range(img.shape[2])], axis=2)


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
