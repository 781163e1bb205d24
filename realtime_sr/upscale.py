"""Upscale images with a model: colour handling, tiling with context, chroma and alpha.

Luma models run on Y (BT.601 studio range, as in training); Cb and Cr are resized
bicubically, which is where the eye is least sensitive. Large images go through in tiles:
each tile carries ``context`` LR pixels of neighbourhood that are computed and then dropped,
so tiled output equals whole-image output (no seams) while memory stays bounded.
"""

from __future__ import annotations

import numpy as np

from .colour import from_float, rgb_to_ycbcr, to_float, ycbcr_to_rgb
from .imageops import resize_bicubic


WHOLE_FRAME_TILE = 4096  # LR pixels: a 4096 x 4096 frame's 48-channel coarse activations are 3 GiB


def _tile_for(backend, tile: int) -> int:
    """The tile size :func:`run_tiled` uses with ``backend`` (whole-frame backends: at least
    :data:`WHOLE_FRAME_TILE`)."""
    return max(tile, WHOLE_FRAME_TILE) if getattr(backend, "whole_frame", False) else tile


def goes_whole(backend, h: int, w: int, *, tile: int, context: int) -> bool:
    """Whether :func:`run_tiled` hands an h x w frame to ``backend`` whole (no tiles)."""
    tile = _tile_for(backend, tile)
    return h <= tile + 2 * context and w <= tile + 2 * context


def run_tiled(backend, x: np.ndarray, scale: int, *, tile: int = 256, context: int = 24) -> np.ndarray:
    """Run ``backend`` on (C, H, W) float32 in tiles of ``tile`` LR pixels; returns (C, sH, sW).

    A backend with ``whole_frame = True`` (routing, which tiles the frame itself) gets frames up
    to :data:`WHOLE_FRAME_TILE` pixels a side whole (video up to 4K input); larger images still go
    in tiles, that large, so memory stays bounded.
    """
    c, h, w = x.shape
    if goes_whole(backend, h, w, tile=tile, context=context):
        return backend(x[None])[0]
    tile = _tile_for(backend, tile)
    out = np.empty((c, h * scale, w * scale), dtype=np.float32)
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            py0, px0 = max(y0 - context, 0), max(x0 - context, 0)
            py1, px1 = min(y1 + context, h), min(x1 + context, w)
            sr = backend(np.ascontiguousarray(x[None, :, py0:py1, px0:px1]))[0]
            oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
            out[:, y0 * scale : y1 * scale, x0 * scale : x1 * scale] = sr[
                :, oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale
            ]
    return out


def upscale_y(backend, y: np.ndarray, scale: int, *, tile: int = 256, context: int = 24) -> np.ndarray:
    """Y plane (H, W) in [0, 255] studio range -> (sH, sW) float32, same range, unclipped."""
    x = np.multiply(y, np.float32(1.0 / 255.0), dtype=np.float32)[None]
    out = run_tiled(backend, x, scale, tile=tile, context=context)[0]
    out *= 255.0  # in place: every backend returns a fresh array (at 1080p a new one costs ~2 ms)
    return out


def upscale_y_u8(backend, y: np.ndarray, scale: int, *, tile: int = 256, context: int = 24) -> np.ndarray:
    """An 8-bit studio-range Y plane (H, W) uint8 -> (sH, sW) uint8, rounded and clipped.

    Through the backend's own uint8 path where it has one and the plane goes whole (OpenVINO: the
    rounding fused into the compiled model); otherwise :func:`upscale_y`, then rounded here."""
    from .pipeline.convert import luma_out

    fast = getattr(backend, "upscale_u8", None)
    if fast is not None and goes_whole(backend, *y.shape, tile=tile, context=context):
        out = fast(y)
        if out is not None:
            return out
    return luma_out(upscale_y(backend, y.astype(np.float32), scale, tile=tile, context=context), 8, False,
                    overwrite=True)


def dihedral_mean(fn, x: np.ndarray) -> np.ndarray:
    """Self-ensemble: ``fn`` on the 8 flips and rotations of ``x`` (over its last two axes), each
    output turned back, averaged (float32). For an upscaler ``fn`` this is the "+" of EDSR+ and
    IMDN+: a few hundredths of a dB for 8x the compute (README, Quality)."""
    acc = None
    for k in range(4):
        for flip in (False, True):
            t = np.rot90(x, k, axes=(-2, -1))
            if flip:
                t = t[..., ::-1]
            o = fn(np.ascontiguousarray(t))
            if flip:
                o = o[..., ::-1]
            o = np.rot90(o, -k, axes=(-2, -1))
            if acc is None:
                acc = o.astype(np.float32)  # a copy: the backend's array is not accumulated into
            else:
                acc += o
    acc *= np.float32(1 / 8)
    return acc


def upscale_array(model, backend, img: np.ndarray, *, tile: int = 256, self_ensemble: bool = False) -> np.ndarray:
    """Upscale an image array (H, W, C), C in {1, 3, 4}, uint8 or uint16; same dtype and C out.

    ``self_ensemble``: the network's output averaged over the 8 flips and rotations of the input
    (:func:`dihedral_mean`; 8x the time)."""
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an (H, W, C) image with 1-4 channels, got shape {img.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"empty image (shape {img.shape})")
    dtype = img.dtype if img.dtype in (np.uint8, np.uint16) else np.uint8
    s = model.scale
    h, w, c = img.shape
    f = to_float(img)
    alpha = None
    if c in (2, 4):
        alpha, f = f[..., -1], f[..., :-1]
    gray = f.shape[2] == 1
    rgb = np.repeat(f, 3, axis=2) if gray else f
    if model.colour == "y":
        ycc = rgb_to_ycbcr(rgb)
        def net(y):
            return upscale_y(backend, y, s, tile=tile, context=model.context)

        y_sr = dihedral_mean(net, ycc[..., 0]) if self_ensemble else net(ycc[..., 0])
        if gray:
            out = np.clip((y_sr - 16.0) / 219.0, 0, 1)[..., None]
        else:
            cbcr = resize_bicubic(ycc[..., 1:], (w * s, h * s))
            out = ycbcr_to_rgb(np.concatenate([y_sr[..., None], cbcr], axis=2))
    else:
        def net(chw):
            return run_tiled(backend, chw, s, tile=tile, context=model.context)

        chw = np.ascontiguousarray(rgb.transpose(2, 0, 1))
        sr = dihedral_mean(net, chw) if self_ensemble else net(chw)
        out = sr.transpose(1, 2, 0)
        if gray:
            out = out.mean(axis=2, keepdims=True)
    if alpha is not None:
        a = resize_bicubic(alpha.astype(np.float32), (w * s, h * s))
        out = np.concatenate([out, a[..., None]], axis=2)
    return from_float(np.clip(out, 0, 1), dtype)


class Upscaler:
    """A model and a backend, ready to upscale arrays and PIL images.

    >>> up = Upscaler.load("fine-x2")            # or a weights path, or scale=4, mode="coarse"
    >>> sr = up(np.asarray(Image.open("in.png")))  # uint8 (H, W, C) -> uint8 (2H, 2W, C)
    """

    def __init__(self, model, backend) -> None:
        self.model = model
        self.backend = backend

    @classmethod
    def load(cls, model=None, *, scale: int | None = None, mode: str = "fine",
             backend: str = "auto", device: str = "auto", precision: str = "fp32",
             fine_fraction: float = 0.25) -> "Upscaler":
        """``mode``: coarse, fine, routed (coarse + fine on ``fine_fraction`` of the tiles) or gan."""
        from . import routing

        return cls(*routing.load(model, scale=scale, mode=mode, backend=backend, device=device,
                                 precision=precision, options=routing.RouteOptions(fraction=fine_fraction)))

    @property
    def scale(self) -> int:
        return self.model.scale

    def __call__(self, image, *, tile: int = 256, self_ensemble: bool = False):
        """Upscale a numpy array (H, W[, C]) or a PIL image; returns the same kind.
        ``self_ensemble``: average over the 8 flips and rotations (8x the time, a little sharper)."""
        from PIL import Image

        if isinstance(image, Image.Image):
            mode = image.mode
            arr = np.asarray(image if mode in ("L", "RGB", "RGBA", "LA") else image.convert("RGBA" if "A" in mode else "RGB"))
            out = upscale_array(self.model, self.backend, arr, tile=tile, self_ensemble=self_ensemble)
            return Image.fromarray(out[..., 0] if out.shape[2] == 1 else out)
        arr = np.asarray(image)
        squeeze = arr.ndim == 2
        out = upscale_array(self.model, self.backend, arr, tile=tile, self_ensemble=self_ensemble)
        return out[..., 0] if squeeze else out
