"""The OpenVINO backend: CPU, the same exported ONNX graphs as onnxruntime, compiled by OpenVINO.

Precision (it enters graphs only in export; here it picks the graph and a compile-time hint):

* ``fp32``: the fp32 graph, ``INFERENCE_PRECISION_HINT`` f32. Set explicitly: on a CPU with
  bf16 units OpenVINO's own default is bf16.
* ``bf16``: the fp32 graph with the bf16 hint, on CPUs with bf16 units (AVX-512 BF16, AMX);
  gated like fp16 by ``realtime-sr export --precision bf16`` (Set14 drop <= 0.05 dB).
* ``int8``: the Q/DQ int8 graph (the one TensorRT builds from); OpenVINO's low-precision
  transformations run its convolutions with int8 kernels (VNNI, AMX-INT8). Its float parts (the
  bicubic skip and, in the fine network, the first convolution, kept float in export on purpose)
  run in f32, as in the gated graph.

Shapes: the graph is compiled once with dynamic shapes; an input shape seen ``static_after``
times gets a static compile of its own (measured ~20% faster per 640x360 frame), at most
``max_static`` per backend, so a video's frame shape goes static while one-off shapes (images,
tiles of odd sizes) share the dynamic one. ``tile_batch=(K, T)`` compiles K tiles of T x T
statically up front and sets ``static_shape``, so routing sends same-shaped tiles instead of
merged rectangles (fewer tiles padded up to K, more run K at a time, as on TensorRT). Measured
no faster than merged rectangles on the dynamic compile (x2, 640x360, a quarter of the tiles: 125
vs 120 ms bf16, 117 vs 115 ms int8; ``benchmarks/openvino_routed_tiles.py``), so ``make_backend``
does not ask for it; it is there to measure again on other CPUs.

8-bit planes (``upscale_u8``): for an 8-bit studio-range Y plane, the video path's common case,
the graph gets OpenVINO pre/post-processing: uint8 in, ``/ 255`` on the way in, ``* 255``,
round half to even, clamp to 0-255 and uint8 out on the way out, the same arithmetic as the
numpy path around a float graph (bit-identical output where measured) but fused into the compiled
model and run on its threads: one uint8 plane comes back instead of a float32 frame four times its
size that numpy then scales, rounds, clips and converts (at x4 480x270 -> 1920x1080 about 5-8 ms
of a ~55 ms frame). One static compile per plane shape, as many as ``max_static``.

Threads: ``INFERENCE_NUM_THREADS`` = the cores this process may use. ``streams=1`` (the default):
``NUM_STREAMS`` 1 and ``PERFORMANCE_HINT`` LATENCY, one frame at a time with all cores on it.
``streams=N``: ``NUM_STREAMS`` N, THROUGHPUT, the cores shared among N streams, for N threads
calling at once (the video pipeline's inference workers); each calling thread gets infer requests
of its own, and the static compiles are shared. On 2 cores two 1-thread streams beat one 2-thread
frame (no thread waits at a layer's barrier for the other, which the decoder or encoder took):
model alone 1.06x (fine x2) and 1.13x (coarse x2) the frames per second, end to end 1.1-1.4x
(docs/video.md). Compiled models are cached in-process (file, precision, shape, threads, streams:
two backends of one graph share them) and on disk (OpenVINO's ``CACHE_DIR``, ``openvino/`` under
the export cache: a warm start compiles 3-5x faster).
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import BackendError, UsageError

HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}
_CORE = None
_COMPILED: dict[tuple, object] = {}
_LOCK = threading.Lock()


def import_openvino():
    try:
        import openvino
    except ImportError:
        raise BackendError("the openvino backend needs the openvino package (pip install openvino)") from None
    return openvino


def core():
    """One OpenVINO Core per process (it owns the CPU plugin and its thread pool)."""
    global _CORE
    if _CORE is None:
        _CORE = import_openvino().Core()
    return _CORE


def check_precision(precision: str) -> None:
    """A clear error for what OpenVINO cannot run here (bf16 without bf16 units, fp16)."""
    from . import cpu

    if precision not in HINTS:
        raise UsageError(f"the openvino backend runs fp32, bf16 or int8, not {precision} "
                         "(fp16 is for GPUs; on a CPU use bf16 where it has the units)")
    if precision == "bf16" and not cpu.cpu_features().bf16:
        raise UsageError("--precision bf16 needs a CPU with bf16 units (AVX-512 BF16 or AMX) and this one has "
                         "none; use --precision fp32 (or int8)")


def _u8_io(model):
    """``model`` with uint8 in (scaled by 1/255) and uint8 out (x 255, rounded half to even, clamped)."""
    from openvino import Type
    from openvino.preprocess import PrePostProcessor

    ops = opset()
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(Type.u8)
    ppp.input().preprocess().convert_element_type(Type.f32).scale(255.0)

    def post(out):
        return round_to_u8_range(ops, ops.multiply(out, ops.constant(np.float32(255.0)))).output(0)

    ppp.output().postprocess().custom(post)
    ppp.output().tensor().set_element_type(Type.u8)
    return ppp.build()


def round_to_u8_range(ops, x):
    """``x`` rounded half to even (numpy's ``rint``) and clamped to 0-255, as graph nodes; the
    caller converts to uint8."""
    return ops.clamp(ops.round(x, "half_to_even"), 0.0, 255.0)


def opset():
    """OpenVINO's opset13 module (graph building: the uint8 pre/post-processing, the chroma graph)."""
    import importlib

    for name in ("openvino.opset13", "openvino.runtime.opset13"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise BackendError("this openvino has no opset13 (needs OpenVINO 2023.2 or later)")


def _compiled(path: Path, precision: str, shape: tuple | None, threads: int, cache: Path | None,
              u8: bool = False, streams: int = 1):
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, precision, shape, threads, u8, streams)
    with _LOCK:
        hit = _COMPILED.get(key)
        if hit is not None:
            return hit
        try:
            model = core().read_model(str(path))
            if shape is not None:
                model.reshape({model.inputs[0]: list(shape)})
            if u8:
                model = _u8_io(model)
            config = {"INFERENCE_PRECISION_HINT": HINTS[precision], "INFERENCE_NUM_THREADS": int(threads),
                      "NUM_STREAMS": int(streams), "PERFORMANCE_HINT": "LATENCY" if streams == 1 else "THROUGHPUT"}
            if cache is not None:
                cache.mkdir(parents=True, exist_ok=True)
                config["CACHE_DIR"] = str(cache)
            compiled = core().compile_model(model, "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError (and its own types) with long texts
            text = " ".join(str(exc).split())[:300]
            raise BackendError(f"{path}: OpenVINO cannot compile it ({text})") from None
        _COMPILED[key] = compiled
        return compiled


class OvBackend:
    """float32 NCHW numpy in -> float32 NCHW numpy out, through OpenVINO on the CPU."""

    def __init__(self, onnx_path, *, precision: str = "fp32", threads: int | None = None,
                 cache_dir: str | Path | None = "default", static_after: int = 2, max_static: int = 4,
                 tile_batch: tuple[int, int] | None = None, channels: int = 1, streams: int = 1) -> None:
        from . import cpu

        import_openvino()
        check_precision(precision)
        self.path = Path(onnx_path)
        if not self.path.is_file():
            raise BackendError(f"{self.path}: no such ONNX file")
        if cache_dir == "default":
            from ..export.cache import cache_dir as export_cache

            cache_dir = export_cache() / "openvino"
        self.cache = Path(cache_dir) if cache_dir else None
        self.precision = precision
        self.threads = int(threads or cpu.cpu_threads())
        self.streams = max(1, min(int(streams), self.threads))
        self.static_after, self.max_static = static_after, max_static
        self.name = f"openvino-cpu-{precision}" + (f"-{self.streams}streams" if self.streams > 1 else "")
        self._local = threading.local()  # each calling thread has its own infer requests (one per stream)
        self._shapes_lock = threading.Lock()
        self._static_set: set[tuple] = set()  # shapes with a static compile (shared by the threads)
        self._u8_set: set[tuple] = set()
        self._seen: Counter = Counter()
        self._request(None)  # compile now: a bad graph fails here, not on the first frame
        self.static_shape = None
        if tile_batch is not None:
            k, t = tile_batch
            if k < 1 or t < 8:
                raise UsageError(f"tile batch {tile_batch}: needs K >= 1 tiles of T >= 8 pixels")
            self.static_shape = (int(k), int(channels), int(t), int(t))
            self._static_set.add(self.static_shape)
            self._request(self.static_shape)

    def _request(self, shape, u8: bool = False):
        """This thread's infer request for ``shape`` (None: the dynamic compile), made on first use."""
        reqs = self._local.__dict__.setdefault("reqs", {})
        req = reqs.get((shape, u8))
        if req is None:
            req = reqs[(shape, u8)] = _compiled(self.path, self.precision, shape, self.threads, self.cache, u8,
                                                self.streams).create_infer_request()
        return req

    def upscale_u8(self, y: np.ndarray) -> np.ndarray | None:
        """An 8-bit studio-range Y plane (H, W) -> the upscaled plane (sH, sW), uint8, rounded and
        clamped in the compiled model; None where it has no room for another static shape."""
        shape = (1, 1, *y.shape)
        if shape not in self._u8_set:
            with self._shapes_lock:
                if shape not in self._u8_set:
                    if len(self._u8_set) >= self.max_static:
                        return None
                    self._u8_set.add(shape)
        req = self._request(shape, u8=True)
        return _infer(req, np.ascontiguousarray(y, dtype=np.uint8)[None, None])[0, 0].copy()

    @property
    def static_shapes(self) -> list[tuple]:
        return sorted(self._static_set)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.static_shape is not None and x.shape[1:] == self.static_shape[1:] and x.shape[0] != self.static_shape[0]:
            return self._tiles(x)
        return self._run(x)

    def _tiles(self, x: np.ndarray) -> np.ndarray:
        """N tiles through the static K-tile compile: K at a time, the last batch padded up to K."""
        k = self.static_shape[0]
        outs = []
        for i in range(0, x.shape[0], k):
            chunk = x[i:i + k]
            m = chunk.shape[0]
            if m < k:
                chunk = np.concatenate([chunk, np.zeros((k - m, *chunk.shape[1:]), np.float32)])
            outs.append(self._run(chunk)[:m])
        return outs[0] if len(outs) == 1 else np.concatenate(outs)

    def _run(self, x: np.ndarray) -> np.ndarray:
        shape = tuple(x.shape)
        if shape not in self._static_set:
            with self._shapes_lock:
                self._seen[shape] += 1
                if self._seen[shape] >= self.static_after and len(self._static_set) < self.max_static:
                    self._static_set.add(shape)
        req = self._request(shape if shape in self._static_set else None)
        return _infer(req, x).copy()  # the request reuses its buffer on the next call


def _infer(req, x: np.ndarray) -> np.ndarray:
    """One synchronous call; its output tensor's data (the request's own buffer, not a copy)."""
    try:
        req.infer({0: x}, share_inputs=True)
    except Exception as exc:  # noqa: BLE001 - e.g. a shape outside the graph's range
        raise BackendError(f"OpenVINO inference failed on input {tuple(x.shape)}: "
                           f"{' '.join(str(exc).split())[:200]}") from None
    return req.get_output_tensor(0).data
