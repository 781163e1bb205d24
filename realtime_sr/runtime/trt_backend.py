"""The TensorRT backend: torch CUDA tensors as I/O, ``execute_async_v3`` on torch streams, no pycuda.

torch owns the CUDA context, the device memory (``tensor.data_ptr()`` goes to
``set_tensor_address``) and the streams (``torch.cuda.Stream().cuda_stream`` goes to
``execute_async_v3``). TensorRT's rule for concurrency is one execution context per stream:
the backend keeps a context for each stream it is asked to run on, and has its own stream by
default, so the fine engine runs beside the coarse one without sharing a stream.

Engine shapes: the coarse network (and the fine one, outside the video pipeline) gets a
dynamic whole-frame profile; with ``tile_batch=(K, T)`` the fine engine is static, K tiles of
T x T LR pixels, built from a static copy of the ONNX; fewer tiles are padded up to K, more are
run K at a time.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import BackendError, UsageError

# whole-frame profile (LR pixels): min, opt (360p, a 720p output at x2), max (1080p)
FRAME_MIN = (1, 16, 16)
FRAME_OPT = (1, 360, 640)
FRAME_MAX = (4, 1088, 1920)


def frame_profile(channels: int = 1, *, opt=FRAME_OPT, max_=FRAME_MAX) -> tuple:
    mn, op, mx = FRAME_MIN, opt, max_
    return ((mn[0], channels, mn[1], mn[2]), (op[0], channels, op[1], op[2]), (mx[0], channels, mx[1], mx[2]))


def tile_profile(channels: int, k: int, t: int) -> tuple:
    s = (k, channels, t, t)
    return (s, s, s)


def model_role(model) -> str:
    """'coarse' or 'fine' (the fine network gets the static tile-batch engine in the pipeline)."""
    stage = model.meta.get("stage")
    if stage in ("fine", "gan"):
        return "fine"
    if stage == "coarse":
        return "coarse"
    return "fine" if model.meta.get("arch") == "srgan_generator" else "coarse"


class TrtBackend:
    """One engine; execution contexts per CUDA stream; numpy or torch tensors in and out."""

    def __init__(self, engine, *, scale: int, precision: str, static_shape: tuple | None = None,
                 name: str = "tensorrt", trt=None) -> None:
        import torch

        from ..export.trt import import_tensorrt

        self.trt = trt or import_tensorrt()
        self.engine = engine
        self.scale = scale
        self.static_shape = static_shape
        self.precision = precision
        self.name = f"{name}-cuda-{precision}"
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        mode = self.trt.TensorIOMode.INPUT
        self.input = next(n for n in names if engine.get_tensor_mode(n) == mode)
        self.output = next(n for n in names if engine.get_tensor_mode(n) != mode)
        self.device = torch.device("cuda")
        self.stream = torch.cuda.Stream()  # the backend's own stream
        self._contexts: dict[int, object] = {}

    @classmethod
    def for_model(cls, model, *, precision: str = "fp32", calib=None, tile_batch: tuple[int, int] | None = None,
                  options=None, out_dir=None, log: Callable[[str], None] = print) -> "TrtBackend":
        """Export (or find) the ONNX at ``precision``, then load or build its engine."""
        from ..export import trt as trt_build
        from ..export.artifacts import ensure_onnx
        from ..export.onnx import INPUT, fix_shape

        trt = trt_build.import_tensorrt()
        role = model_role(model)
        art = ensure_onnx(model, precision, calib=calib, out_dir=out_dir, log=log)
        onnx_path, c = art.path, model.in_channels
        if tile_batch is not None and role == "fine":
            k, t = tile_batch
            if k < 1 or t < 8:
                raise UsageError(f"tile batch {tile_batch}: needs K >= 1 tiles of T >= 8 pixels")
            static = art.path.with_name(art.path.name.replace(".onnx", f".tiles{k}x{t}.onnx"))
            if not static.is_file() or static.stat().st_mtime < art.path.stat().st_mtime:  # stale copy
                fix_shape(art.path, static, (k, c, t, t), model.scale)
            onnx_path, shapes = static, {INPUT: tile_profile(c, k, t)}
        else:
            shapes = {INPUT: frame_profile(c)}
        engine, ef = trt_build.load_or_build(onnx_path, stem=f"{model.name}", precision=precision, shapes=shapes,
                                             options=options or trt_build.BuildOptions(), cache_root=out_dir,
                                             log=log, trt=trt)
        log(f"tensorrt engine: {ef.path.name} ({'built' if ef.built else 'cached'})")
        static_shape = shapes[INPUT][0] if shapes[INPUT][0] == shapes[INPUT][2] else None
        be = cls(engine, scale=model.scale, precision=precision, static_shape=static_shape, trt=trt)
        be.engine_file = ef  # keeps the runtime alive with the engine; its path and key, for reports
        return be

    def context(self, stream):
        """The execution context bound to ``stream`` (one per stream, TensorRT's rule for concurrency)."""
        key = stream.cuda_stream
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = self._contexts[key] = self.engine.create_execution_context()
        return ctx

    def run_tensor(self, x, stream=None):
        """(N, C, h, w) float32 CUDA tensor -> (N, C, sh, sw), enqueued on ``stream`` (default: own stream).

        The input is made ready for ``stream`` (it waits on the current stream); the caller must
        make its consumer wait on ``stream`` (``torch.cuda.current_stream().wait_stream(stream)``).
        """
        import torch

        stream = stream or self.stream
        x = x.to(self.device, torch.float32).contiguous()
        stream.wait_stream(torch.cuda.current_stream())
        if self.static_shape is not None:
            return self._run_static(x, stream)
        return self._enqueue(x, stream)

    def _run_static(self, x, stream):
        import torch

        k, c, t, _ = self.static_shape
        n, _, h, w = x.shape
        if (h, w) != (t, t) or x.shape[1] != c:
            raise UsageError(f"this engine takes tiles of {c}x{t}x{t}, got {tuple(x.shape[1:])}")
        outs = []
        with torch.cuda.stream(stream):
            for i in range(0, n, k):
                chunk = x[i:i + k]
                m = chunk.shape[0]
                if m < k:  # pad the last batch up to the engine's static K
                    chunk = torch.cat([chunk, chunk.new_zeros((k - m, c, t, t))])
                outs.append(self._enqueue(chunk, stream)[:m])
            return outs[0] if len(outs) == 1 else torch.cat(outs)

    def _enqueue(self, x, stream):
        import torch

        ctx = self.context(stream)
        if not ctx.set_input_shape(self.input, tuple(x.shape)):
            raise UsageError(f"input {tuple(x.shape)} is outside this engine's optimization profile "
                             f"(max {FRAME_MAX[0]}x C x {FRAME_MAX[1]}x{FRAME_MAX[2]} for frames); use smaller tiles")
        out_shape = tuple(ctx.get_tensor_shape(self.output))
        with torch.cuda.stream(stream):
            y = torch.empty(out_shape, dtype=torch.float32, device=self.device)
        x.record_stream(stream)
        ctx.set_tensor_address(self.input, x.data_ptr())
        ctx.set_tensor_address(self.output, y.data_ptr())
        if not ctx.execute_async_v3(stream.cuda_stream):
            raise BackendError("TensorRT execute_async_v3 failed (see the TensorRT log)")
        return y

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device, non_blocking=False)
        y = self.run_tensor(t)
        out = torch.empty(y.shape, dtype=torch.float32, pin_memory=True)
        with torch.cuda.stream(self.stream):
            out.copy_(y, non_blocking=True)
        self.stream.synchronize()  # sync point: the host needs the result
        return out.numpy()

