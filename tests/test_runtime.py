"""Backends behind one protocol: make_backend's choices, onnxruntime vs torch, int8 on the fly, bench."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx", reason="exporting on the fly needs the onnx package (the export/dev extras)")

from realtime_sr.errors import BackendError, UsageError  # noqa: E402
from realtime_sr.runtime import make_backend, pick_backend  # noqa: E402
from realtime_sr.runtime.torch_backend import TorchBackend  # noqa: E402

from test_export_helpers import calib_folder, seeded, session_dir, tiny  # noqa: E402
from helpers import natural_image  # noqa: E402

try:
    import torch

    HAS_CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover
    HAS_CUDA = False


@pytest.fixture()
def cache(tmp_path_factory, monkeypatch):
    d = session_dir(tmp_path_factory, "onnx-cache")
    monkeypatch.setenv("REALTIME_SR_CACHE", str(d))
    return d


def test_auto_on_cpu_picks_onnxruntime_and_says_so(tmp_path_factory, cache):
    if HAS_CUDA:
        pytest.skip("a CUDA device is present: auto picks a GPU backend")
    model = tiny(tmp_path_factory, "coarse")
    said = []
    be = make_backend(model, backend="auto", device="auto", log=said.append)
    assert be.name == "onnxruntime-cpu-fp32"
    assert any("auto -> onnxruntime" in m for m in said)
    assert pick_backend(device="cpu")[0] == "onnxruntime"


def test_onnxruntime_matches_torch(tmp_path_factory, cache):
    model = tiny(tmp_path_factory, "srgan_generator")
    x = np.random.default_rng(0).random((2, 1, 21, 34), dtype=np.float32)
    ort = make_backend(model, backend="onnxruntime", precision="fp32", log=None)
    ref = TorchBackend(model.net)(x)
    assert ort(x).shape == ref.shape == (2, 1, 42, 68)
    np.testing.assert_allclose(ort(x), ref, atol=1e-5)


def test_int8_calibrates_on_frames_in_hand(tmp_path_factory, tmp_path, monkeypatch):
    """Without training images a caller (e.g. video) may pass its own LR frames for calibration."""
    monkeypatch.setenv("REALTIME_SR_CACHE", str(tmp_path))
    monkeypatch.delenv("REALTIME_SR_CALIB", raising=False)
    model = tiny(tmp_path_factory, "coarse")
    seeded(tmp_path_factory, model, tmp_path)
    frames = [natural_image("astronaut", (64, 48)), natural_image("coffee", (64, 48))]
    said = []
    be = make_backend(model, backend="onnxruntime", precision="int8", calib=frames, log=said.append)
    assert be.name == "onnxruntime-cpu-int8"
    assert any("2 frames supplied by the caller" in m for m in said)
    x = np.random.default_rng(0).random((1, 1, 24, 24), dtype=np.float32)
    ref = TorchBackend(model.net)(x)
    assert np.abs(be(x) - ref).max() < 0.1


def test_env_calibration_folder(tmp_path_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("REALTIME_SR_CACHE", str(tmp_path))
    monkeypatch.setenv("REALTIME_SR_CALIB", str(calib_folder(tmp_path_factory)))
    model = tiny(tmp_path_factory, "coarse")
    seeded(tmp_path_factory, model, tmp_path)
    be = make_backend(model, backend="onnxruntime", precision="fp16", log=None)
    assert be.name == "onnxruntime-cpu-fp16"


def test_upscale_image_through_onnxruntime_int8(tmp_path_factory, cache):
    from realtime_sr.upscale import upscale_array

    model = tiny(tmp_path_factory, "coarse")
    be = make_backend(model, backend="onnxruntime", precision="int8", calib=[str(calib_folder(tmp_path_factory))],
                      log=None)
    img = natural_image("astronaut", (40, 30))
    out = upscale_array(model, be, img)
    ref = upscale_array(model, TorchBackend(model.net), img)
    assert out.shape == (60, 80, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - ref).mean() < 2.0


@pytest.mark.parametrize("kw, err", [
    ({"backend": "torch", "precision": "int8"}, UsageError),
    ({"backend": "onnxruntime", "device": "cuda"}, UsageError),
    ({"backend": "tensorrt", "device": "cpu"}, UsageError),
    ({"backend": "nope"}, UsageError),
    ({"precision": "int4"}, UsageError),
])
def test_bad_combinations(tmp_path_factory, kw, err):
    model = tiny(tmp_path_factory, "coarse")
    with pytest.raises(err):
        make_backend(model, log=None, **kw)


def test_tensorrt_missing_is_a_clear_error(tmp_path_factory, cache):
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None and HAS_CUDA:
        pytest.skip("TensorRT is installed here")
    model = tiny(tmp_path_factory, "coarse")
    with pytest.raises(BackendError, match="TensorRT|CUDA"):
        make_backend(model, backend="tensorrt", device="cuda", log=None)


def test_bench_rows(tmp_path_factory, cache, tmp_path):
    from realtime_sr.bench_cmd import bench_model, format_table, write_csv

    model = tiny(tmp_path_factory, "coarse")
    row = bench_model(model, network="coarse", backend="onnxruntime", device="cpu", precision="fp32",
                      frame=(64, 36), runs=3, warmup=1)
    assert row["backend"] == "onnxruntime-cpu-fp32" and row["frame"] == "64x36" and row["runs"] == 3
    assert 0 < row["min_ms"] <= row["p50_ms"] <= row["p90_ms"]
    assert "onnxruntime-cpu-fp32" in format_table([row])
    write_csv(tmp_path / "b.csv", [row])
    write_csv(tmp_path / "b.csv", [row])
    lines = (tmp_path / "b.csv").read_text().splitlines()
    assert lines[0].startswith("network,model,backend") and len(lines) == 3


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (torch sees none)")
@pytest.mark.parametrize("precision, atol", [("fp32", 1e-3), ("fp16", 2e-2)])
def test_torch_cuda_matches_cpu(tmp_path_factory, precision, atol):
    model = tiny(tmp_path_factory, "srgan_generator")
    x = np.random.default_rng(0).random((2, 1, 40, 56), dtype=np.float32)
    ref = TorchBackend(__import__("copy").deepcopy(model.net))(x)
    be = make_backend(model, backend="torch", device="cuda", precision=precision, log=None)
    assert be.name == f"torch-cuda-{precision}"
    np.testing.assert_allclose(be(x), ref, atol=atol)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (torch sees none)")
def test_auto_with_cuda_picks_a_gpu_backend(tmp_path_factory, cache):
    said = []
    model = tiny(tmp_path_factory, "coarse")
    be = make_backend(model, backend="auto", device="auto", log=said.append)
    assert be.name.startswith(("tensorrt-cuda", "torch-cuda")) and said


def test_auto_falls_back_to_torch_without_export_tools(tmp_path_factory, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    monkeypatch.setenv("REALTIME_SR_CACHE", str(tmp_path))
    model = tiny(tmp_path_factory, "coarse")
    said = []
    be = make_backend(model, backend="auto", device="cpu", log=said.append)
    assert be.name == "torch-cpu-fp32" and any("realtime-sr[export]" in m for m in said)
    with pytest.raises(BackendError, match=r"realtime-sr\[export\]"):
        make_backend(model, backend="onnxruntime", log=None)
