"""The literature's evaluation protocol over a folder of HR images.

mod-crop HR by the scale, LR = PIL bicubic downscale (antialiased), SR = method(LR),
PSNR and SSIM on Y (BT.601 studio) with ``scale`` pixels cropped from every border.

``lr_codec`` makes the LR the way real video is made: the bicubic LR is then compressed, as one
yuv420p intra frame by a video codec at ``lr_crf`` (libx264 preset medium ...) or as JPEG at
``lr_quality``, and decoded again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import InputError
from .imageops import list_images, modcrop, read_image, resize_bicubic
from .metrics import psnr_y, ssim_y


@dataclass
class Result:
    method: str
    psnr: float
    ssim: float
    per_image: dict[str, tuple[float, float]] = field(default_factory=dict)


def compress_lr(lr: np.ndarray, codec: str, *, crf: int = 23, quality: int = 75) -> np.ndarray:
    """An RGB uint8 image through ``codec`` (a video codec as one yuv420p frame, or ``jpeg``)."""
    from .train.degrade import encode_clip, jpeg, yuv_to_rgb

    if codec == "jpeg":
        return jpeg(lr, quality)
    h, w = lr.shape[:2]
    even = np.pad(lr, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    yuv = encode_clip([even], codec, crf)[0][:h, :w]
    # chroma came back pixel-repeated; smooth it as a player's upsampling would (luma is exact)
    from PIL import Image

    for c in (1, 2):
        half = np.asarray(Image.fromarray(np.ascontiguousarray(yuv[::2, ::2, c])).resize((w, h), Image.BILINEAR))
        yuv[..., c] = half
    return yuv_to_rgb(yuv)


def load_pairs(folder: str | Path, scale: int, *, lr_codec: str | None = None, lr_crf: int = 23,
               lr_quality: int = 75) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, hr, lr) for every image in ``folder``, by the protocol (RGB uint8), the LR
    compressed by ``lr_codec`` when given."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder of images")
    files = list_images(folder)
    if not files:
        raise InputError(f"{folder}: no images (.png, .jpg, .bmp, .webp, .tif) in it")
    pairs = []
    for p in files:
        hr = read_image(p)
        if hr.dtype != np.uint8:
            hr = (hr >> 8).astype(np.uint8)
        hr = hr[..., :3] if hr.shape[2] >= 3 else np.repeat(hr[..., :1], 3, axis=2)
        size = f"{hr.shape[1]}x{hr.shape[0]}"
        hr = modcrop(hr, scale)
        need = 2 * scale + 11  # the metrics crop `scale` pixels from each border, then SSIM's 11x11 window
        if min(hr.shape[:2]) < need:
            raise InputError(f"{p}: {size} is too small to evaluate at x{scale} "
                             f"(needs at least {need} px on a side)")
        lr = resize_bicubic(hr, (hr.shape[1] // scale, hr.shape[0] // scale))
        if lr_codec:
            lr = compress_lr(lr, lr_codec, crf=lr_crf, quality=lr_quality)
        pairs.append((p.stem, hr, lr))
    return pairs


def bicubic_method(scale: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda lr: resize_bicubic(lr, (lr.shape[1] * scale, lr.shape[0] * scale))


def evaluate(pairs, method: Callable[[np.ndarray], np.ndarray], scale: int, name: str,
             *, with_ssim: bool = True) -> Result:
    per = {}
    for img_name, hr, lr in pairs:
        sr = method(lr)
        if sr.shape != hr.shape:
            raise ValueError(f"{name}: output {sr.shape} for {img_name}, expected {hr.shape}")
        per[img_name] = (psnr_y(sr, hr, scale), ssim_y(sr, hr, scale) if with_ssim else float("nan"))
    vals = np.array(list(per.values()))
    return Result(name, float(vals[:, 0].mean()), float(vals[:, 1].mean()), per)
