"""Where exported artifacts live, and the keys that name them (a file's name is its cache key).

* ONNX files made on the fly by the onnxruntime/TensorRT backends are keyed by the weights'
  sha256, the precision, the opset and :data:`EXPORT_VERSION` (bumped whenever export or
  quantization code changes what it writes).
* A TensorRT engine is keyed by everything that built it: the ONNX file's sha256, precision,
  input shapes (the optimization profile), TensorRT version, GPU name and compute capability,
  and the builder options. Any difference is a different file name, hence a rebuild; nothing
  else (paths, timestamps, the timing cache, option order, which of two identical GPUs) changes it.

The cache directory is ``$REALTIME_SR_CACHE`` if set, else ``engines/`` when the current
directory is a realtime-sr checkout (it has ``engines/README.md``), else the user cache directory
(``$XDG_CACHE_HOME/realtime-sr`` or ``~/.cache/realtime-sr``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

EXPORT_VERSION = 7  # 2: the bicubic skip exports as Pad + Conv + DepthToSpace, not Resize; 3: int8 sensitivity fallback;
# 4: the coarse network adds its bicubic skip before its one DepthToSpace
# 5: the fine network's output conv runs before its last DepthToSpace (SRGANGenerator.fold_tail)
# 6: int8 made without --calib is calibrated on the packaged sample on every machine (the graph gates.json measured)
# 7: the coarse network's first Conv is int8 with an exactly quantized input (quantize.quantize_head_exactly)


def cache_dir() -> Path:
    env = os.environ.get("REALTIME_SR_CACHE")
    if env:
        return Path(env).expanduser()
    if (Path.cwd() / "engines" / "README.md").is_file():
        return Path("engines")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "realtime-sr"


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def slug(text: str) -> str:
    """A file-name-safe lowercase form: 'NVIDIA H100 80GB HBM3' -> 'nvidia-h100-80gb-hbm3'."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.") or "x"


def onnx_name(model_name: str, weights_sha: str, precision: str, opset: int) -> str:
    """``<model>.<precision>.opset<N>.w<sha16>.v<EXPORT_VERSION>.onnx``."""
    return f"{slug(model_name)}.{precision}.opset{opset}.w{weights_sha[:16]}.v{EXPORT_VERSION}.onnx"


def shapes_text(shapes: dict[str, tuple]) -> str:
    """Profile shapes as text: a static shape '8x1x112x112', a range 'min-opt-max' of such."""
    parts = []
    for name in sorted(shapes):
        mins, opts, maxs = (tuple(int(v) for v in s) for s in shapes[name])
        dims = ["x".join(map(str, s)) for s in (mins, opts, maxs)]
        parts.append(dims[0] if mins == opts == maxs else "-".join(dims))
    return "_".join(parts)


def engine_key(*, onnx_sha: str, precision: str, shapes: dict[str, tuple], trt_version: str,
               gpu_name: str, compute_capability: tuple[int, int], options: dict) -> dict:
    """The full key of an engine: every field that can change what the builder produces."""
    return {
        "onnx_sha256": onnx_sha,
        "precision": precision,
        "shapes": {k: [list(map(int, s)) for s in v] for k, v in sorted(shapes.items())},
        "tensorrt": str(trt_version),
        "gpu": gpu_name,
        "compute_capability": f"{compute_capability[0]}.{compute_capability[1]}",
        "options": {k: options[k] for k in sorted(options)},
    }


def engine_name(stem: str, key: dict) -> str:
    """The engine's file name: readable fields, then a digest of the whole key (options included)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    cc = key["compute_capability"].replace(".", "")
    shapes = {k: tuple(tuple(s) for s in v) for k, v in key["shapes"].items()}
    return (f"{slug(stem)}.{key['precision']}.{shapes_text(shapes)}.trt{slug(key['tensorrt'])}"
            f".{slug(key['gpu'])}.sm{cc}.o{digest}.x{key['onnx_sha256'][:12]}.engine")
