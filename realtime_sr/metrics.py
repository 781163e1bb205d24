"""PSNR and SSIM on Y: the super-resolution literature's evaluation protocol.

HR is mod-cropped, LR is a PIL-bicubic downscale of it, SR and HR are converted to Y
(BT.601 studio range) from uint8 RGB, ``scale`` pixels are cropped from every border, then
PSNR = 10 log10(255^2 / MSE) and SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5,
K1 = 0.01, K2 = 0.03) are computed on Y in float.
"""

from __future__ import annotations

import numpy as np

from .colour import rgb_to_y, to_float


def _as_y(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return img.astype(np.float64)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return rgb_to_y(to_float(img[..., :3])).astype(np.float64)


def _crop(y: np.ndarray, border: int) -> np.ndarray:
    return y[border:-border, border:-border] if border > 0 else y


def psnr_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    """PSNR in dB on Y between two uint8 RGB (or Y float) images of the same size."""
    if sr.shape[:2] != hr.shape[:2]:
        raise ValueError(f"size mismatch: {sr.shape[:2]} vs {hr.shape[:2]}")
    a, b = _crop(_as_y(sr), border), _crop(_as_y(hr), border)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    ax = np.arange(size) - (size - 1) / 2
    g = np.exp(-(ax**2) / (2 * sigma**2))
    g /= g.sum()
    return g


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation with the 1-D kernel g in both directions."""
    from numpy.lib.stride_tricks import sliding_window_view

    k = g.size
    rows = sliding_window_view(img, k, axis=0) @ g  # (H-k+1, W)
    return sliding_window_view(rows, k, axis=1) @ g  # (H-k+1, W-k+1)


def ssim_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    """SSIM on Y (Wang et al. 2004, as MATLAB's ssim_index: 'valid' Gaussian filtering)."""
    a, b = _crop(_as_y(sr), border), _crop(_as_y(hr), border)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = _gaussian_window()
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    s_aa = _filter_valid(a * a, g) - mu_a**2
    s_bb = _filter_valid(b * b, g) - mu_b**2
    s_ab = _filter_valid(a * b, g) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * s_ab + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (s_aa + s_bb + c2)
    return float(np.mean(num / den))
