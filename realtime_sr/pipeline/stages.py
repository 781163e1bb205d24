"""The per-frame work, as three pure steps the runner puts on three threads.

``prepare`` (decode side): frame -> planes and the network's input. ``infer``: the model.
``finish`` (encode side): chroma resize, back to code values, a new frame with the input's pts.
No step knows about threads or queues.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from . import chroma as chroma_mod
from . import convert


@dataclass
class Work:
    pts: int
    duration: int
    planes: list  # input planes (uint8/uint16) in the working format
    net_in: np.ndarray | None = None  # Y float (H, W) for luma models, RGB (3, H, W) for RGB models
    net_out: np.ndarray | None = None
    extra: dict = field(default_factory=dict)
    seq: int = 0  # the frame's place in the run (the encode stage puts frames back in this order)


@dataclass(frozen=True)
class FrameSpec:
    """Everything the steps need that is fixed for a whole run."""

    fmt: str  # working planar format (decode and processing)
    out_fmt: str  # the encoder's pixel format
    width: int
    height: int
    scale: int
    tags: convert.ColourTags
    colour: str  # the model's colour: 'y' or 'rgb'
    tile: int
    context: int
    luma_u8: bool = False  # the backend takes 8-bit Y planes itself (upscale_u8: OpenVINO)

    @property
    def depth(self) -> int:
        return convert.bit_depth(self.fmt)

    @property
    def out_size(self) -> tuple[int, int]:
        return self.width * self.scale, self.height * self.scale


class TimedBackend:
    """Wraps a backend and adds up the seconds spent inside it (the pipeline's 'model time')."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.seconds = 0.0
        self.calls = 0
        self.whole_frame = getattr(backend, "whole_frame", False)
        self.streams = getattr(backend, "streams", 1)
        self._lock = threading.Lock()

    def _timed(self, fn, x):
        t = time.perf_counter()
        try:
            return fn(x)
        finally:
            dt = time.perf_counter() - t
            with self._lock:  # several inference threads may call at once
                self.seconds += dt
                self.calls += 1

    def __call__(self, x):
        return self._timed(self.backend, x)

    def __getattr__(self, name):
        if name != "upscale_u8" or "backend" not in self.__dict__:
            raise AttributeError(name)
        inner = self.backend.upscale_u8  # the backend's uint8 plane path, timed like a call
        return lambda y: self._timed(inner, y)


def prepare(frame, spec: FrameSpec) -> Work:
    if (frame.width, frame.height) != (spec.width, spec.height):
        from ..errors import InputError

        raise InputError(f"the video changes size mid-stream ({spec.width}x{spec.height} -> "
                         f"{frame.width}x{frame.height} at {float(frame.pts * frame.time_base):.2f} s); not supported")
    planes = convert.read_planes(frame, spec.fmt)
    dur = int(frame.duration or 0)
    w = Work(pts=int(frame.pts), duration=dur, planes=planes)
    if spec.colour == "y" or len(planes) == 1:
        if spec.luma_u8 and spec.depth == 8 and not spec.tags.full:  # the network's own space: uint8 in (infer)
            w.net_in = planes[0]
        else:
            w.net_in = convert.luma_in(planes[0], spec.depth, spec.tags.full)
    else:
        h, wd = planes[0].shape
        cb, cr = (_to_full(p, spec.fmt, h, wd).astype(np.float32) for p in planes[1:3])
        w.net_in = convert.yuv_to_rgb(planes[0].astype(np.float32), cb, cr, spec.depth, spec.tags)
    return w


def _to_full(p: np.ndarray, fmt: str, h: int, w: int) -> np.ndarray:
    """A chroma plane upsampled (bicubic) to the luma size."""
    sy, sx = -(-h // p.shape[0]), -(-w // p.shape[1])
    if sy == sx == 1:
        return p
    from PIL import Image

    img = Image.fromarray(p.astype(np.float32), mode="F").resize((p.shape[1] * sx, p.shape[0] * sy), Image.BICUBIC)
    return np.asarray(img)[:h, :w]


def infer(work: Work, spec: FrameSpec, backend) -> Work:
    from ..upscale import run_tiled, upscale_y, upscale_y_u8

    if work.net_in.dtype == np.uint8:  # 8-bit studio-range Y: uint8 out, rounded (by the backend where it can)
        work.net_out = upscale_y_u8(backend, work.net_in, spec.scale, tile=spec.tile, context=spec.context)
    elif work.net_in.ndim == 2:
        work.net_out = upscale_y(backend, work.net_in, spec.scale, tile=spec.tile, context=spec.context)
    else:
        work.net_out = run_tiled(backend, np.clip(work.net_in, 0, 1), spec.scale, tile=spec.tile, context=spec.context)
    work.net_in = None
    return work


def finish(work: Work, spec: FrameSpec):
    """The upscaled av.VideoFrame in the encoder's pixel format, carrying the input's pts."""
    ow, oh = spec.out_size
    fmt, depth, s = spec.fmt, spec.depth, spec.scale
    if work.net_out.ndim == 2:
        if work.net_out.dtype == np.uint8:  # already the output plane (upscale_y_u8)
            planes = [work.net_out]
        else:
            planes = [convert.luma_out(work.net_out, depth, spec.tags.full, overwrite=True)]  # ours: upscale_y's
        chroma = work.planes[1:]
        left = convert.left_sited(fmt)
        pair = chroma_mod.upsample_pair(*chroma, s, left_sited=left) if len(chroma) == 2 else None
        for i, p in enumerate(chroma, start=1):
            size = convert.plane_size(fmt, ow, oh, i)
            planes.append(pair[i - 1][: size[0], : size[1]] if pair is not None
                          else convert.resize_plane(p, s, size, left_sited=left))
    else:
        y, cb, cr = convert.rgb_to_yuv(np.clip(work.net_out, 0, 1), depth, spec.tags)
        peak = (1 << depth) - 1
        dtype = np.uint8 if depth == 8 else np.uint16
        planes = [np.clip(np.rint(y), 0, peak).astype(dtype)]
        for i, c in enumerate((cb, cr), start=1):
            planes.append(np.clip(np.rint(_subsample(c, convert.plane_size(fmt, ow, oh, i))), 0, peak).astype(dtype))
    frame = convert.write_frame(planes, fmt, ow, oh)
    if spec.out_fmt != fmt:
        frame = frame.reformat(format=spec.out_fmt)
    frame.pts = work.pts
    t = spec.tags
    frame.color_range, frame.colorspace = t.range, t.colorspace
    frame.color_primaries, frame.color_trc = t.primaries, t.trc
    return frame


def _subsample(c: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Box-average a full-resolution chroma plane down to ``size`` (h, w)."""
    h, w = c.shape
    fy, fx = -(-h // size[0]), -(-w // size[1])
    if fy == fx == 1:
        return c
    ph, pw = size[0] * fy - h, size[1] * fx - w
    c = np.pad(c, ((0, ph), (0, pw)), mode="edge")
    return c.reshape(size[0], fy, size[1], fx).mean(axis=(1, 3))
