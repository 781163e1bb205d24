"""Chroma upsampling for 8-bit video: both chroma planes of a frame in one OpenVINO call.

The luma plane goes through the network; the two chroma planes are scaled by bicubic
interpolation (the networks are trained on luma: docs/video.md). On the CPU that resize is a
large share of a frame's own work once the network is fast: PIL's bicubic took 8.9 ms for the two
240x135 -> 960x540 planes of a 1080p x4 frame (4.7 ms at x2, 720p), single-threaded, where the
coarse network itself takes ~40 ms. Here it is a fixed graph compiled by OpenVINO, on one
thread beside the network's: uint8 in, edge padding, one 5x5 convolution with s*s fixed kernels (one per
output phase: the cubic kernel with a = -0.5, PIL's, at that phase's offsets, the horizontal
offset shifted for left-sited chroma exactly as :func:`convert.resize_plane` does), DepthToSpace,
round half to even, clamp, uint8 out. 3.2 ms for the same two planes (2.4 at x2), measured side
by side. It differs from PIL by 0.2 code values on average (PIL rounds to 8 bits between its
horizontal and vertical passes, this rounds once) and by more than 1 on 0.01-0.1% of the pixels of
natural images: at the strongest edges, where PIL also clips the first pass's overshoot to 0-255
(up to 9 codes there), and on the border rows and columns (edge replication where PIL renormalises
its kernel).

Without OpenVINO (or for 16-bit planes) :func:`convert.resize_plane` is used, as before.
"""

from __future__ import annotations

import threading

import numpy as np

_LOCAL = threading.local()  # compiled requests per thread (an infer request is not shared between threads)
_UNAVAILABLE = object()


def _cubic(t: float, a: float = -0.5) -> float:
    t = abs(t)
    if t < 1:
        return (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1
    if t < 2:
        return a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a
    return 0.0


def phase_kernels(scale: int, x0: float) -> np.ndarray:
    """(s*s, 1, 5, 5) float32: output phase (py, px) <- input offsets -2..2, cubic a=-0.5, the
    horizontal source position shifted by ``x0`` input samples (left-sited chroma)."""
    k = np.zeros((scale * scale, 1, 5, 5), np.float32)
    for py in range(scale):
        wy = np.array([_cubic((py + 0.5) / scale - 0.5 - d) for d in range(-2, 3)])
        wy /= wy.sum()
        for px in range(scale):
            wx = np.array([_cubic(x0 + (px + 0.5) / scale - 0.5 - d) for d in range(-2, 3)])
            wx /= wx.sum()
            k[py * scale + px, 0] = np.outer(wy, wx)
    return k


def _build(scale: int, h: int, w: int, left_sited: bool):
    try:
        from openvino import Model, Type

        from ..runtime.ov_backend import opset, core, round_to_u8_range

        ops = opset()
        x0 = (1.0 - 1.0 / scale) / 4.0 if left_sited else 0.0
        p = ops.parameter([2, 1, h, w], Type.u8)
        x = ops.convert(p, Type.f32)
        x = ops.pad(x, np.array([0, 0, 2, 2], np.int64), np.array([0, 0, 2, 2], np.int64), "edge")
        x = ops.convolution(x, ops.constant(phase_kernels(scale, x0)), [1, 1], [0, 0], [0, 0], [1, 1])
        x = ops.depth_to_space(x, "blocks_first", scale)
        x = ops.convert(round_to_u8_range(ops, x), Type.u8)
        # one thread: it runs beside the network's own call (the encode stage against the infer
        # stage), and a second pool of cpu_threads() threads would fight the network's for the cores
        config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1,
                  "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}
        return core().compile_model(Model([x], [p]), "CPU", config).create_infer_request()
    except Exception:  # noqa: BLE001 - no OpenVINO, or one that cannot build it: the PIL path
        return _UNAVAILABLE


def upsample_pair(cb: np.ndarray, cr: np.ndarray, scale: int, *, left_sited: bool) -> tuple | None:
    """Both 8-bit chroma planes (h, w) scaled by ``scale`` -> (cb, cr) of (s*h, s*w) uint8, or None
    where OpenVINO is not there (the caller falls back to :func:`convert.resize_plane`)."""
    if cb.dtype != np.uint8 or cr.dtype != np.uint8 or cb.shape != cr.shape:
        return None
    cache = getattr(_LOCAL, "requests", None)
    if cache is None:
        cache = _LOCAL.requests = {}
    key = (scale, *cb.shape, bool(left_sited))
    req = cache.get(key)
    if req is None:
        if len(cache) >= 4:  # a few frame shapes per thread at most (one per video)
            cache.clear()
        req = cache[key] = _build(scale, *cb.shape, left_sited)
    if req is _UNAVAILABLE:
        return None
    x = np.empty((2, 1, *cb.shape), np.uint8)
    x[0, 0], x[1, 0] = cb, cr
    req.infer({0: x}, share_inputs=True)
    out = req.get_output_tensor(0).data
    return out[0, 0].copy(), out[1, 0].copy()
