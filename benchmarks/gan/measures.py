"""What goes wrong with GANs, measured: overshoot at strong edges (halos) and flicker.

Both work on Y (BT.601 studio range, 0-255 scale) from uint8 RGB, with ``border`` pixels cropped,
like the project's PSNR/SSIM (realtime_sr.metrics).

* **halo**: at strong edges, where the ground truth's 5x5 range (max - min) exceeds 40 code
  values, how far the output leaves that local range: the mean over those pixels of
  ``max(0, excess - 2)``, where ``excess`` is how far the output lies above the local max or
  below the local min. Interpolation stays in range (bicubic reads about 0); an overshoot traced
  along an outline, the GAN halo, does not. 2 code values of slack absorb rounding.
* **temporal PSNR** (flicker): PSNR-Y between the frame differences of the output and those of the
  ground truth, ``(SR_t - SR_t-1)`` against ``(HR_t - HR_t-1)``, pooled over the clip's frame pairs
  (one MSE over all pairs, then 10 log10(255^2 / MSE)). Texture that changes when the scene does
  not reads as a lower number; a method that is wrong the same way in every frame is not penalised.
* **detail** (sharpness): the energy of the output's high band, what a Gaussian blur of sigma 1
  (HR pixels) removes, over that of the ground truth's: RMS(y - blur(y)) of SR / of HR. Blur
  reads under 1 (bicubic about 0.4-0.6 at x2), as much fine structure as the original reads 1;
  noise, ringing and invented texture raise it too, so it is read beside PSNR and the halo.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from realtime_sr.metrics import _as_y, _crop

EDGE_RANGE = 40.0   # code values: the GT's 5x5 range above which a pixel is a strong edge
SLACK = 2.0         # code values an output may leave the local range before it counts


def local_range(y: np.ndarray, size: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel min and max over a size x size window (edge-replicated), same shape as y."""
    r = size // 2
    win = sliding_window_view(np.pad(y, r, mode="edge"), (size, size))
    return win.min(axis=(-1, -2)), win.max(axis=(-1, -2))


def halo(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    """Mean overshoot (code values beyond SLACK) at the GT's strong edges; 0 when there are none."""
    a, b = _as_y(sr), _as_y(hr)
    lo, hi = local_range(b)
    a, lo, hi = _crop(a, border), _crop(lo, border), _crop(hi, border)
    edges = (hi - lo) > EDGE_RANGE
    if not edges.any():
        return 0.0
    excess = np.maximum(a - hi, lo - a).clip(min=0)[edges]
    return float(np.mean(np.maximum(excess - SLACK, 0.0)))


def _gauss_blur(y: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    r = max(1, int(3 * sigma + 0.5))
    t = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    p = np.pad(y.astype(np.float64), r, mode="reflect")
    p = sum(k[i] * p[:, i:i + p.shape[1] - 2 * r] for i in range(2 * r + 1))
    return sum(k[i] * p[i:i + p.shape[0] - 2 * r] for i in range(2 * r + 1))


def detail(sr: np.ndarray, hr: np.ndarray, border: int, sigma: float = 1.0) -> float:
    """RMS of the output's high band (y - blur(y)) over the ground truth's; borders cropped."""
    a, b = _as_y(sr), _as_y(hr)
    ha, hb = _crop(a - _gauss_blur(a, sigma), border), _crop(b - _gauss_blur(b, sigma), border)
    den = float(np.sqrt(np.mean(hb ** 2)))
    return float(np.sqrt(np.mean(ha ** 2))) / den if den > 0 else float("nan")


def temporal_psnr(sr_frames: list[np.ndarray], hr_frames: list[np.ndarray], border: int) -> float:
    """PSNR-Y of frame differences of the output against those of the ground truth, pooled."""
    if len(sr_frames) != len(hr_frames) or len(hr_frames) < 2:
        raise ValueError("temporal PSNR needs two or more frames of output and ground truth")
    ys = [_crop(_as_y(f), border) for f in sr_frames]
    yh = [_crop(_as_y(f), border) for f in hr_frames]
    sq = [np.mean(((ys[t] - ys[t - 1]) - (yh[t] - yh[t - 1])) ** 2) for t in range(1, len(ys))]
    mse = float(np.mean(sq))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)
