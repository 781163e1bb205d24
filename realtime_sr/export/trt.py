"""TensorRT engines from the exported ONNX files (TensorRT 10.x / 11.x Python API).

* A **strongly typed** network: the precision is the ONNX graph's (fp32, fp16 tensors, or int8
  Q/DQ). TensorRT 11 only builds strongly typed networks; on 10.x the flag is set explicitly.
* ``OnnxParser``: every parser error is logged (with its node), then the build stops.
* One **optimization profile**: a static shape (the fine network's tile batch) or a min/opt/max
  range (whole frames for the coarse network).
* A **timing cache** per TensorRT version and GPU, loaded before and saved after each build, so a
  rebuild for another shape or precision reuses the kernel timings.
* A **workspace limit** and the builder optimization level are builder options (part of the key).
* The engine is written under a file name that is its **cache key** (:mod:`.cache`), with the
  full key beside it in ``<engine>.json``. A missing file, a key mismatch or a failed deserialize
  means a rebuild, never a silent load of something else.
* The build reports **progress** (TensorRT's IProgressMonitor, phases and steps) through ``log``.

``tensorrt`` is imported lazily; tests pass a stand-in module as ``trt``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..errors import BackendError
from . import cache

Log = Callable[[str], None]


@dataclass(frozen=True)
class BuildOptions:
    workspace_mib: int = 2048
    optimization_level: int = 3  # TensorRT's default; 5 searches longer for faster kernels

    def as_key(self) -> dict:
        return asdict(self)


def import_tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise BackendError("the tensorrt backend needs TensorRT: pip install 'realtime-sr[tensorrt]' "
                           "(an NVIDIA GPU and NVIDIA's package index are required)") from None
    return tensorrt


def gpu_identity(device: int = 0) -> tuple[str, tuple[int, int]]:
    """(name, (major, minor)) of a CUDA device, from torch."""
    import torch

    if not torch.cuda.is_available():
        raise BackendError("TensorRT needs a CUDA GPU, and torch sees none")
    return torch.cuda.get_device_name(device), tuple(torch.cuda.get_device_capability(device))


def _logger(trt, log: Log):
    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)

        def log(self, severity, msg):
            if int(severity) <= int(trt.ILogger.Severity.WARNING):
                log(f"tensorrt: {msg}")

    try:
        return Logger()
    except Exception:  # a stand-in module without ILogger: use its plain Logger
        return trt.Logger(trt.Logger.WARNING)


def _progress(trt, log: Log):
    """An IProgressMonitor that logs phase starts/ends and, at most every 5 s, step counts."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class Progress(base):
        def __init__(self):
            base.__init__(self)
            self.lock = threading.Lock()
            self.steps: dict[str, int] = {}
            self.last = 0.0

        def phase_start(self, phase_name, parent_phase, num_steps):
            with self.lock:
                self.steps[phase_name] = num_steps
                if parent_phase is None:
                    log(f"  {phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name, step):
            with self.lock:
                now = time.monotonic()
                if now - self.last > 5.0:
                    self.last = now
                    log(f"  {phase_name}: step {step + 1}/{self.steps.get(phase_name, '?')}")
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            with self.lock:
                self.steps.pop(phase_name, None)

    return Progress()


def _timing_cache_path(cache_root: Path, trt_version: str, gpu: str, cc: tuple[int, int]) -> Path:
    return cache_root / f"timing.trt{cache.slug(trt_version)}.{cache.slug(gpu)}.sm{cc[0]}{cc[1]}.cache"


def build_engine(onnx_path: str | Path, *, shapes: dict[str, tuple], options: BuildOptions,
                 timing_cache: Path | None = None, log: Log = print, trt=None) -> bytes:
    """Parse the ONNX into a strongly typed network and build a serialized engine."""
    trt = trt or import_tensorrt()
    logger = _logger(trt, log)
    builder = trt.Builder(logger)
    flags = 0
    strongly = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if strongly is not None:  # required on 10.x, accepted (and always on) on 11.x
        flags |= 1 << int(strongly)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    data = Path(onnx_path).read_bytes()
    if not parser.parse(data, str(onnx_path)):
        for i in range(parser.num_errors):
            log(f"tensorrt onnx parser: {_parser_error(parser.get_error(i))}")
        raise BackendError(f"{onnx_path}: TensorRT's ONNX parser failed ({parser.num_errors} error(s), logged above)")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    if hasattr(config, "builder_optimization_level"):
        config.builder_optimization_level = options.optimization_level
    profile = builder.create_optimization_profile()
    for name, (mins, opts, maxs) in shapes.items():
        profile.set_shape(name, tuple(mins), tuple(opts), tuple(maxs))
    config.add_optimization_profile(profile)
    tc_bytes = timing_cache.read_bytes() if timing_cache is not None and timing_cache.is_file() else b""
    tc = config.create_timing_cache(tc_bytes)
    config.set_timing_cache(tc, False)
    monitor = _progress(trt, log)
    if monitor is not None:
        config.progress_monitor = monitor
    start = time.monotonic()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"{onnx_path}: TensorRT engine build failed (see the log above)")
    log(f"built in {time.monotonic() - start:.0f} s")
    if timing_cache is not None:
        _atomic_write(timing_cache, bytes(memoryview(config.get_timing_cache().serialize())))
    return bytes(memoryview(serialized))


def _parser_error(err) -> str:
    """One line per IParserError: node index, name and operator where the API gives them, then the message."""
    try:
        where = f"node {err.node()}"
        for attr in ("node_name", "node_operator"):
            if hasattr(err, attr):
                where += f" {getattr(err, attr)()}"
        return f"{where}: {err.desc()} (code {err.code()})"
    except Exception:  # an older binding, or a plain string from a stand-in
        return str(err)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_bytes(data)
    tmp.replace(path)


@dataclass
class EngineFile:
    path: Path
    key: dict
    built: bool  # True if built now, False if loaded from the cache
    runtime: object = None  # the trt.Runtime that deserialized the engine: keep it alive as long as the engine


def load_or_build(onnx_path: str | Path, *, stem: str, precision: str, shapes: dict[str, tuple],
                  options: BuildOptions = BuildOptions(), cache_root: str | Path | None = None,
                  gpu: tuple[str, tuple[int, int]] | None = None, log: Log = print, trt=None):
    """(deserialized ICudaEngine, EngineFile) from the cache, or built now when the key does not match."""
    trt = trt or import_tensorrt()
    cache_root = Path(cache_root) if cache_root is not None else cache.cache_dir()
    gpu_name, cc = gpu or gpu_identity()
    key = cache.engine_key(onnx_sha=cache.sha256_file(onnx_path), precision=precision, shapes=shapes,
                           trt_version=trt.__version__, gpu_name=gpu_name, compute_capability=cc,
                           options=options.as_key())
    path = cache_root / cache.engine_name(stem, key)
    side = path.with_name(path.name + ".json")
    runtime = trt.Runtime(_logger(trt, log))
    if path.is_file():
        try:
            stored = json.loads(side.read_text())
        except (OSError, json.JSONDecodeError):
            stored = None
        if stored != key:
            log(f"{path.name}: cache key does not match, rebuilding")
        else:
            engine = _deserialize(runtime, path.read_bytes())
            if engine is not None:
                return engine, EngineFile(path, key, built=False, runtime=runtime)
            log(f"{path.name}: cannot be deserialized (corrupt or another TensorRT), rebuilding")
    log(f"building TensorRT engine {path.name} (a few minutes the first time) ...")
    blob = build_engine(onnx_path, shapes=shapes, options=options, log=log, trt=trt,
                        timing_cache=_timing_cache_path(cache_root, trt.__version__, gpu_name, cc))
    _atomic_write(path, blob)
    _atomic_write(side, json.dumps(key, indent=1, sort_keys=True).encode())
    engine = _deserialize(runtime, blob)
    if engine is None:
        raise BackendError(f"{path}: TensorRT built an engine it cannot deserialize")
    return engine, EngineFile(path, key, built=True, runtime=runtime)


def _deserialize(runtime, blob: bytes):
    try:
        return runtime.deserialize_cuda_engine(blob)
    except Exception:  # TensorRT raises on some corruptions and returns None on others
        return None
