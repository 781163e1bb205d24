"""Make (or find in the cache) the ONNX file of a model at a precision, with a JSON sidecar.

One function, :func:`ensure_onnx`, serves ``realtime-sr export`` and the backends that export
on the fly. The sidecar ``<file>.json`` records the weights' sha256, opset, parity against torch,
what the precision conversion did, the calibration source, and the gate result when one ran.

Calibration frames for fp16 (overflow scan) and int8 (ranges) come from, in order:
an explicit ``calib`` (folders, or RGB frames already in hand such as a video's first frames),
``$REALTIME_SR_CALIB`` (folders separated by ``os.pathsep``), else the packaged sample image
(``realtime_sr/assets/sample.png``, public domain): the default is the same on every machine, so
an int8 graph made on the fly is the graph the release gate measured (``gates.json``, see
:func:`realtime_sr.runtime.gated_int8`). Calibrated on it, int8 lost 0.01-0.04 dB on Set14 for
the shipped models, against 0.01-0.06 calibrated on the training folders (T91 + BSD200; x2 and x4,
coarse and fine, OpenVINO's int8 kernels, 2026-12-04). Without any source, the error names the fix.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import OutputError, UsageError
from . import cache
from .onnx import OPSET

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = PACKAGE_ROOT / "realtime_sr" / "assets" / "sample.png"
SAMPLE_SOURCE = "packaged sample"  # the default calibration source, as the sidecar and gates.json name it


@dataclass
class Artifact:
    path: Path
    precision: str
    info: dict = field(default_factory=dict)

    @property
    def sidecar(self) -> Path:
        return self.path.with_name(self.path.name + ".json")


def _read_sidecar(path: Path) -> dict | None:
    side = path.with_name(path.name + ".json")
    if not (path.is_file() and side.is_file()):
        return None
    try:
        return json.loads(side.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def write_sidecar(art: Artifact) -> None:
    tmp = art.sidecar.with_name(art.sidecar.name + ".part")
    tmp.write_text(json.dumps(art.info, indent=1, sort_keys=True, default=str))
    tmp.replace(art.sidecar)


def _is_frames(calib) -> bool:
    return isinstance(calib, (list, tuple)) and len(calib) > 0 and isinstance(calib[0], np.ndarray)


def calibration_dirs(model, calib=None) -> list[Path]:
    """The folders to calibrate from (see the module docstring); [] when none is found."""
    if _is_frames(calib):
        return []  # frames in hand
    if calib:
        dirs = [Path(calib)] if isinstance(calib, (str, os.PathLike)) else [Path(c) for c in calib]
        missing = [str(d) for d in dirs if not d.is_dir()]
        if missing:
            raise UsageError(f"calibration folder not found: {', '.join(missing)}")
        return dirs
    env = os.environ.get("REALTIME_SR_CALIB")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p and Path(p).is_dir()]
    return []


def calibration_for(model, calib=None, *, count: int = 32, size: int = 96,
                    seed: int = 0) -> tuple[list[np.ndarray], str]:
    """(frames, description of their source); another ``seed`` gives other crops (probe frames)."""
    from .quantize import calibration_frames, frames_from_images

    if _is_frames(calib):
        return (frames_from_images(calib, size=size, count=count, seed=seed),
                f"{len(calib)} frames supplied by the caller")
    dirs = calibration_dirs(model, calib)
    if not dirs and SAMPLE.is_file():
        from ..imageops import read_image, resize_bicubic

        img = read_image(SAMPLE)[..., :3]
        s = model.scale  # the sample is an HR image: calibrate on its LR version, like training
        lr = resize_bicubic(img, (img.shape[1] // s, img.shape[0] // s))
        return (frames_from_images([lr], size=min(size, *lr.shape[:2]), count=count, seed=seed),
                SAMPLE_SOURCE)
    if not dirs:
        raise UsageError(
            "fp16/int8 export needs calibration images (natural photos, not a test set) and none were found: "
            "pass --calib DIR, or set REALTIME_SR_CALIB=DIR, or use --precision fp32")
    frames = calibration_frames(dirs, scale=model.scale, count=count, size=size, seed=seed)
    return frames, "training images: " + ", ".join(str(d) for d in dirs)


def ensure_onnx(model, precision: str = "fp32", *, out_dir: str | Path | None = None, opset: int = OPSET,
                calib=None, calib_count: int = 32, rebuild: bool = False, strict: bool | None = None,
                log: Callable[[str], None] = lambda m: None) -> Artifact:
    """The ONNX file for ``model`` at ``precision``: from the cache if its sidecar matches, else made now.

    ``strict`` (see :func:`~realtime_sr.export.quantize.convert`): None takes a cached file made
    either way (what ``export`` left after its gate) and makes a non-strict one when none is cached.
    """
    from .quantize import PRECISIONS, convert

    if precision == "bf16":  # a compile-time hint on the fp32 graph (OpenVINO), not a graph of its own
        fp32 = ensure_onnx(model, "fp32", out_dir=out_dir, opset=opset, rebuild=rebuild, log=log)
        return Artifact(fp32.path, "bf16", fp32.info)
    if precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    out_dir = Path(out_dir) if out_dir is not None else cache.cache_dir()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot make the ONNX cache folder {out_dir} ({exc.strerror or exc}); "
                          "set REALTIME_SR_CACHE to a writable folder") from None
    wsha = cache.sha256_file(model.path)
    path = out_dir / cache.onnx_name(model.name, wsha, precision, opset)
    side = None if rebuild else _read_sidecar(path)
    if (side and side.get("weights_sha256") == wsha and side.get("export_version") == cache.EXPORT_VERSION
            and (strict is None or precision == "fp32" or bool(side.get("strict")) == strict)):
        return Artifact(path, precision, side)
    if not os.access(out_dir, os.W_OK):  # a read-only cache still serves what it holds (above)
        raise OutputError(f"the ONNX cache folder {out_dir} is not writable; "
                          "set REALTIME_SR_CACHE to a writable folder")

    _need_export_tools()
    base = {"model": model.name, "weights": str(model.path), "weights_sha256": wsha, "opset": opset,
            "export_version": cache.EXPORT_VERSION, "scale": model.scale, "precision": precision,
            "input": "lr", "output": "sr"}
    if precision == "fp32":
        from .onnx import export_onnx, parity

        log(f"exporting {model.name} to ONNX (opset {opset}) ...")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # concurrent exports do not collide
        export_onnx(model.net, tmp, in_channels=model.in_channels, opset=opset)
        err = parity(model.net, tmp, in_channels=model.in_channels)
        tmp.replace(path)
        art = Artifact(path, precision, {**base, "parity_max_abs": err})
    else:
        fp32 = ensure_onnx(model, "fp32", out_dir=out_dir, opset=opset, log=log)
        frames, source = calibration_for(model, calib, count=calib_count)
        probe = calibration_for(model, calib, count=calib_count, seed=1)[0] if precision == "int8" else None
        log(f"converting {model.name} to {precision}{' (strict)' if strict else ''}"
            f" ({len(frames)} calibration frames from {source}) ...")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # concurrent exports do not collide
        info = convert(fp32.path, tmp, precision, frames, probe=probe, strict=bool(strict))
        if info.get("sensitive_float_convs"):
            log(f"{model.name} int8: kept {', '.join(info['sensitive_float_convs'])} in float (output "
                f"{info['fidelity_all_int8_db']:.1f} -> {info['fidelity_db']:.1f} dB vs fp32 on probe frames)")
        if precision == "fp16":  # onnxruntime-CPU runs fp16 files in fp32: measure the emulation (see gate.py)
            from .quantize import fp16_emulation

            err = _vs_torch(model, fp16_emulation(fp32.path, info.get("kept_fp32", ())), frames[:4], optimize=False)
        else:
            err = _vs_torch(model, tmp, frames[:4])
        tmp.replace(path)
        art = Artifact(path, precision, {**base, **info, "calibration_source": source,
                                         "max_abs_vs_torch_fp32": err, "max_abs_measured_on": "calibration frames"})
    write_sidecar(art)
    return art


def _need_export_tools() -> None:
    import importlib.util

    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        from ..errors import BackendError

        raise BackendError(f"exporting to ONNX needs {' and '.join(missing)}: pip install 'realtime-sr[export]'")


def _vs_torch(model, onnx_path, frames, *, optimize: bool = True) -> float:
    """Max abs difference from torch fp32 on real frames (random noise lies outside int8's calibrated ranges)."""
    import copy

    import torch

    from ..runtime.ort_backend import OrtBackend

    ort = OrtBackend(onnx_path, optimize=optimize)
    net = copy.deepcopy(model.net).to("cpu", torch.float32).eval()
    worst = 0.0
    for x in frames:
        with torch.inference_mode():
            ref = net(torch.from_numpy(x)).numpy()
        worst = max(worst, float(np.abs(ort(x) - ref).max()))
    return worst
