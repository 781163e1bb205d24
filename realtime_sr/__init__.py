"""realtime-sr: real-time video and image super-resolution.

    >>> import realtime_sr
    >>> up = realtime_sr.Upscaler.load("fine-x2")   # or scale=4, mode="coarse", or a weights path
    >>> sr = up(image)                               # numpy (H, W[, C]) uint8/uint16, or a PIL image

Importing this package is cheap: torch and friends load on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Upscaler", "load_model", "shipped_models", "__version__"]


def __getattr__(name: str):
    if name == "Upscaler":
        from .upscale import Upscaler

        return Upscaler
    if name == "load_model":
        from .models import load_model

        return load_model
    if name == "shipped_models":
        from .models import shipped_models

        return shipped_models
    raise AttributeError(f"module 'realtime_sr' has no attribute {name!r}")
