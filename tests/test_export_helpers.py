"""Helpers (no tests) for the export/runtime/TensorRT tests: tiny models exported once per session."""

from __future__ import annotations

from pathlib import Path

from helpers import tiny_model, write_image_folder


def session_dir(tmp_path_factory, name: str) -> Path:
    """A folder shared by every test file in the session (ONNX files are reused through their cache key)."""
    d = tmp_path_factory.getbasetemp() / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def tiny(tmp_path_factory, arch: str, scale: int = 2):
    from realtime_sr.models import load_model

    d = session_dir(tmp_path_factory, "tiny-models")
    path = d / f"{arch}_x{scale}.safetensors"
    if not path.exists():
        tiny_model(path, arch=arch, scale=scale)
    return load_model(path)


def calib_folder(tmp_path_factory) -> Path:
    d = session_dir(tmp_path_factory, "calib") / "train_images"
    if not d.exists():
        write_image_folder(d, n=3, size=(96, 80))
    return d


def seeded(tmp_path_factory, model, dst: Path) -> Path:
    """``dst`` holding a copy of ``model``'s fp32 ONNX (exported once per session): saves a re-export."""
    import shutil

    from realtime_sr.export.artifacts import ensure_onnx

    art = ensure_onnx(model, "fp32", out_dir=session_dir(tmp_path_factory, "onnx-cache"))
    dst.mkdir(parents=True, exist_ok=True)
    for f in (art.path, art.sidecar):
        shutil.copy2(f, dst / f.name)
    return dst
