"""Inference backends behind one protocol.

A backend runs one network on float32 NCHW arrays: ``backend(x) -> y`` with ``x`` of shape
(N, C, h, w) and ``y`` of shape (N, C, s*h, s*w), and has a ``name``. :func:`make_backend`
builds one by name:

* ``torch``: the reference; CPU or CUDA, fp32 or fp16 (CUDA), channels-last, optional torch.compile.
* ``onnxruntime``: CPU; fp32, fp16 or int8 ONNX graphs, exported on the fly into the cache.
* ``tensorrt``: CUDA; an engine built from the same ONNX graphs (optional extra).
* ``auto``: TensorRT if installed and a GPU is present, else torch on CUDA, else onnxruntime on
  CPU; it says which it picked (one line through ``log``, stderr by default).
"""

from __future__ import annotations

import sys
from typing import Callable, Protocol

import numpy as np

from ..errors import BackendError, UsageError


class Backend(Protocol):
    name: str

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "fp16", "int8")


def _stderr(msg: str) -> None:
    print(f"realtime-sr: {msg}", file=sys.stderr)


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return bool(torch.cuda.is_available())


def tensorrt_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorrt") is not None


def pick_backend(*, device: str | None = "auto", precision: str = "fp32") -> tuple[str, str, str]:
    """(backend, device, reason) that ``auto`` resolves to on this machine."""
    if device == "cpu":
        return "onnxruntime", "cpu", "--device cpu"
    if cuda_available():
        if tensorrt_available():
            return "tensorrt", "cuda", "TensorRT and a CUDA GPU found"
        if precision != "int8":
            return "torch", "cuda", "CUDA GPU found, TensorRT not installed"
        return "onnxruntime", "cpu", "int8 needs TensorRT on a GPU, which is not installed"
    if device == "cuda":
        raise BackendError("--device cuda asked, but torch sees no CUDA device")
    return "onnxruntime", "cpu", "no CUDA device"


def make_backend(model, *, backend: str = "auto", device: str | None = "auto", precision: str = "fp32",
                 calib=None, tile_batch: tuple[int, int] | None = None, compile: bool = False,
                 log: Callable[[str], None] | None = _stderr) -> Backend:
    """Build the backend that runs ``model`` (a :class:`~realtime_sr.models.Model`).

    ``calib``: calibration source for an int8/fp16 ONNX made on the fly (folders, or RGB uint8
    frames such as a video's first frames); see :mod:`realtime_sr.export.artifacts`.
    ``tile_batch``: (K, T) makes the TensorRT fine engine static, K tiles of T x T LR pixels
    (context included); other backends ignore it. ``log``: where progress and the ``auto``
    choice go (None: silent).
    """
    say = log or (lambda m: None)
    device = device or "auto"
    if backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if device not in DEVICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICES)}, not {device!r}")
    if precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    auto = backend == "auto"
    if auto:
        backend, device, why = pick_backend(device=device, precision=precision)
        say(f"backend auto -> {backend} on {device} ({why})")
    if backend == "torch":
        from .torch_backend import TorchBackend

        if precision == "int8":
            raise UsageError("the torch backend runs fp32 or fp16; int8 runs on onnxruntime or tensorrt")
        dev = ("cuda" if cuda_available() else "cpu") if device == "auto" else device
        return TorchBackend(model.net, device=dev, precision=precision, compile=compile)
    if backend == "onnxruntime":
        if device == "cuda":
            raise UsageError("the onnxruntime backend runs on CPU here; use --backend tensorrt or torch for CUDA")
        from ..export.artifacts import ensure_onnx
        from .ort_backend import OrtBackend

        try:
            art = ensure_onnx(model, precision, calib=calib, log=say)
        except BackendError as exc:
            if not (auto and precision == "fp32"):
                raise
            say(f"{exc}; using torch on cpu instead")
            from .torch_backend import TorchBackend

            return TorchBackend(model.net, device="cpu", precision="fp32")
        if precision != "fp32" and "gate" not in art.info:
            say(f"note: this {precision} ONNX was made on the fly and has not been quality-gated; "
                f"`realtime-sr export --precision {precision}` measures it on Set14")
        return OrtBackend(art.path, precision=precision)
    # tensorrt
    if device == "cpu":
        raise UsageError("the tensorrt backend needs --device cuda (or auto)")
    from .trt_backend import TrtBackend

    return TrtBackend.for_model(model, precision=precision, calib=calib, tile_batch=tile_batch, log=say)
