"""Inference backends behind one protocol.

A backend runs one network on float32 NCHW arrays: ``backend(x) -> y`` with ``x`` of shape
(N, C, h, w) and ``y`` of shape (N, C, s*h, s*w). :func:`make_backend` builds one by name.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..errors import BackendError, UsageError


class Backend(Protocol):
    name: str

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")


def make_backend(model, *, backend: str = "auto", device: str = "cpu", precision: str = "fp32") -> Backend:
    """Build the backend that runs ``model`` (a :class:`~realtime_sr.models.Model`)."""
    if backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if device not in ("cpu", "cuda"):
        raise UsageError(f"--device must be cpu or cuda, not {device!r}")
    if backend == "auto":
        backend = "torch"
    if backend == "torch":
        from .torch_backend import TorchBackend

        return TorchBackend(model.net, device=device, precision=precision)
    raise BackendError(f"backend {backend!r} is not available in this build")
