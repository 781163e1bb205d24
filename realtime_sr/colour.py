"""Colour conversions shared by training, evaluation and inference.

Luma networks work on Y of ITU-R BT.601 YCbCr in "studio" range, exactly as MATLAB's
``rgb2ycbcr`` and the super-resolution literature's evaluation protocol define it:
Y = 16 + 65.481 R + 128.553 G + 24.966 B with R, G, B in [0, 1], so Y lies in [16, 235].
Networks see Y / 255.
"""

from __future__ import annotations

import numpy as np

# rows: Y, Cb, Cr; from RGB in [0, 1] to values in [0, 255]
_RGB2YCC = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
    dtype=np.float64,
)
_OFFSET = np.array([16.0, 128.0, 128.0])
_YCC2RGB = np.linalg.inv(_RGB2YCC)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) in [0, 1] -> YCbCr (H, W, 3) in [0, 255] (BT.601 studio range), float32."""
    out = rgb.astype(np.float64) @ _RGB2YCC.T + _OFFSET
    return out.astype(np.float32)


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) in [0, 1] -> Y (H, W) in [16, 235], float32."""
    rgb = rgb.astype(np.float32)
    return (16.0 + rgb[..., 0] * 65.481 + rgb[..., 1] * 128.553 + rgb[..., 2] * 24.966).astype(np.float32)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """YCbCr (H, W, 3) in [0, 255] (BT.601 studio) -> RGB (H, W, 3) in [0, 1], float32, unclipped."""
    out = (ycc.astype(np.float64) - _OFFSET) @ _YCC2RGB.T
    return out.astype(np.float32)


def to_float(img: np.ndarray) -> np.ndarray:
    """An integer image (uint8 or uint16) or float image -> float32 in [0, 1]."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    return img.astype(np.float32)


def from_float(img: np.ndarray, dtype=np.uint8) -> np.ndarray:
    """float in [0, 1] -> uint8/uint16, rounded and clipped."""
    peak = 255.0 if dtype == np.uint8 else 65535.0
    return np.clip(np.rint(img * peak), 0, peak).astype(dtype)
