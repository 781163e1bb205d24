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


def test_auto_on_cpu_without_bf16_picks_onnxruntime_and_says_so(tmp_path_factory, cache, monkeypatch):
    """On a CPU without bf16 units auto keeps today's path (onnxruntime fp32), whatever is installed."""
    if HAS_CUDA:
        pytest.skip("a CUDA device is present: auto picks a GPU backend")
    from realtime_sr.runtime import cpu

    monkeypatch.setattr(cpu, "cpu_features", lambda: cpu.CpuFeatures(bf16=False, int8=False))
    model = tiny(tmp_path_factory, "coarse")
    said = []
    be = make_backend(model, backend="auto", device="auto", precision="auto", log=said.append)
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
    ({"backend": "torch", "device": "cpu", "precision": "bf16"}, UsageError),
    ({"backend": "onnxruntime", "precision": "bf16"}, UsageError),
    ({"backend": "tensorrt", "precision": "bf16"}, UsageError),
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
@pytest.mark.parametrize("precision, atol", [("fp32", 1e-3), ("fp16", 2e-2), ("bf16", 6e-2)])
def test_torch_cuda_matches_cpu(tmp_path_factory, precision, atol):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
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


# ----------------------------------------------------------------------------- OpenVINO

def _fake_cpu(monkeypatch, *, bf16: bool, int8: bool, openvino: bool = True, flags: frozenset = frozenset()):
    from realtime_sr.runtime import cpu

    monkeypatch.setattr(cpu, "cpu_features", lambda: cpu.CpuFeatures(bf16=bf16, int8=int8, flags=flags))
    monkeypatch.setattr(cpu, "openvino_available", lambda: openvino)


@pytest.mark.parametrize("bf16, int8, openvino, precision, expect", [
    (True, True, True, "auto", "openvino"),      # the measured class: AMX / AVX-512 BF16
    (True, True, True, "fp32", "openvino"),
    (True, True, True, "int8", "openvino"),
    (True, True, True, "fp16", "onnxruntime"),   # fp16 graphs: onnxruntime on a CPU
    (False, True, True, "auto", "onnxruntime"),  # VNNI only: not measured faster in fp32, keep today's path
    (False, True, True, "int8", "openvino"),     # int8 units: OpenVINO's int8 kernels
    (False, False, True, "int8", "onnxruntime"),  # neither int8 units nor AVX2 (an unmeasured CPU)
    (False, False, True, "auto", "onnxruntime"),
    (True, True, False, "auto", "onnxruntime"),  # OpenVINO not installed
])
@pytest.mark.parametrize("avx2", [False, True])
def test_auto_cpu_choice_by_features(monkeypatch, bf16, int8, openvino, precision, expect, avx2):
    if HAS_CUDA:
        pytest.skip("a CUDA device is present: auto picks a GPU backend")
    routed_expect = expect
    if avx2 and openvino and precision == "int8":
        expect = routed_expect = "openvino"  # AVX2-only x86: OpenVINO int8 measured 1.4-2.4x over onnxruntime fp32
    if avx2 and openvino and precision in ("auto", "fp32"):
        expect = "openvino"  # whole frames: OpenVINO fp32 measured 1.3x end to end; routed kept onnxruntime
    _fake_cpu(monkeypatch, bf16=bf16, int8=int8, openvino=openvino, flags=frozenset({"avx2"} if avx2 else ()))
    backend, device, why = pick_backend(device="auto", precision=precision)
    assert (backend, device) == (expect, "cpu") and why
    assert pick_backend(device="cpu", precision=precision)[0] == expect
    assert pick_backend(device="cpu", precision=precision, routed=True)[0] == routed_expect


def test_routing_asks_auto_for_its_own_choice(monkeypatch):
    """On an AVX2 CPU without bf16 units, auto runs whole frames on OpenVINO but routing on
    onnxruntime (each measured faster there): a routed model's two backends are chosen as routed."""
    if HAS_CUDA:
        pytest.skip("a CUDA device is present: auto picks a GPU backend")
    from realtime_sr import routing
    from realtime_sr.runtime import cpu

    _fake_cpu(monkeypatch, bf16=False, int8=False, openvino=True, flags=frozenset({"avx2"}))
    asked = []
    monkeypatch.setattr(routing, "RoutedBackend", lambda cb, fb, scale, opt: (cb, fb))
    import realtime_sr.runtime as rt

    def make_backend(m, **kw):
        asked.append(kw)
        return cpu.pick_cpu("fp32", routed=kw.get("routed", False))[0]

    monkeypatch.setattr(rt, "make_backend", make_backend)
    model = routing.load_for_mode(None, scale=2, mode="routed")
    assert routing.backend_for(model, precision="fp32") == ("onnxruntime", "onnxruntime")
    assert all(kw["routed"] for kw in asked) and len(asked) == 2
    assert routing.backend_for(model.fine, precision="fp32") == "openvino"


def test_default_precision_per_backend(monkeypatch):
    from realtime_sr.runtime import cpu

    yes, no = cpu.CpuFeatures(bf16=True, int8=True), cpu.CpuFeatures(bf16=False, int8=True)
    assert cpu.default_precision("openvino", yes)[0] == "bf16"
    assert cpu.default_precision("openvino", yes, {"passed": True})[0] == "bf16"
    assert cpu.default_precision("openvino", yes, {"passed": False})[0] == "fp32"
    assert cpu.default_precision("openvino", no)[0] == "fp32"
    assert cpu.default_precision("onnxruntime", yes)[0] == "fp32"
    assert cpu.default_precision("torch", yes)[0] == "fp32"


def test_read_flags(tmp_path):
    from realtime_sr.runtime import cpu

    f = tmp_path / "cpuinfo"
    f.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_vnni amx_bf16\n\nprocessor\t: 1\nflags\t: fpu\n")
    assert cpu.read_flags(str(f)) == {"fpu", "avx512f", "avx512_vnni", "amx_bf16"}
    assert cpu.read_flags(str(tmp_path / "missing")) == frozenset()


needs_openvino = pytest.mark.skipif(__import__("importlib").util.find_spec("openvino") is None,
                                    reason="OpenVINO is not installed (pip install openvino)")


@needs_openvino
@pytest.mark.parametrize("arch", ["coarse", "srgan_generator"])
def test_openvino_fp32_matches_torch(tmp_path_factory, cache, arch):
    model = tiny(tmp_path_factory, arch)
    x = np.random.default_rng(0).random((2, 1, 21, 34), dtype=np.float32)
    be = make_backend(model, backend="openvino", precision="fp32", log=None)
    ref = TorchBackend(model.net)(x)
    assert be.name == "openvino-cpu-fp32"
    for _ in range(3):  # first call: the dynamic compile; from the second: a static one for this shape
        out = be(x)
        assert out.shape == ref.shape == (2, 1, 42, 68) and out.dtype == np.float32
        np.testing.assert_allclose(out, ref, atol=1e-4)
    assert be.static_shapes == [(2, 1, 21, 34)]
    y = np.random.default_rng(1).random((1, 1, 17, 9), dtype=np.float32)  # another shape: the dynamic compile
    np.testing.assert_allclose(be(y), TorchBackend(model.net)(y), atol=1e-4)


@needs_openvino
@pytest.mark.parametrize("arch", ["coarse", "srgan_generator"])
def test_openvino_uint8_planes_match_the_float_path(tmp_path_factory, cache, arch):
    """The video path's 8-bit Y plane through OpenVINO's fused uint8 in/out gives the plane the
    float path gives (scale, round half to even, clip), and does not touch its input."""
    from realtime_sr.pipeline import convert
    from realtime_sr.upscale import upscale_y, upscale_y_u8

    model = tiny(tmp_path_factory, arch)
    be = make_backend(model, backend="openvino", precision="fp32", log=None)
    y = natural_image("coffee", (40, 30))[:, :, 1].copy()
    y[0, :8] = (0, 1, 16, 128, 235, 254, 255, 255)  # the code range's ends
    before = y.copy()
    out = upscale_y_u8(be, y, 2, tile=1024, context=model.context)
    ref = convert.luma_out(upscale_y(be, y.astype(np.float32), 2, tile=1024, context=model.context), 8, False)
    np.testing.assert_array_equal(y, before)
    assert out.dtype == np.uint8 and out.shape == (60, 80) and len(be._u8_set) == 1  # the fused path ran
    diff = np.abs(out.astype(int) - ref.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01  # a rounding tie at most, on a few pixels
    # a plane too large to go whole: tiles through the float graph, rounded the same way
    big = upscale_y_u8(be, y, 2, tile=16, context=4)
    assert big.dtype == np.uint8 and np.abs(big.astype(int) - ref.astype(int)).max() <= 1 and len(be._u8_set) == 1


@needs_openvino
def test_openvino_static_shapes_are_capped(tmp_path_factory, cache):
    from realtime_sr.runtime.ov_backend import OvBackend

    model = tiny(tmp_path_factory, "coarse")
    art = __import__("realtime_sr.export.artifacts", fromlist=["x"]).ensure_onnx(model, "fp32")
    be = OvBackend(art.path, static_after=1, max_static=2, cache_dir=None)
    for w in (16, 20, 24, 28):
        x = np.random.default_rng(w).random((1, 1, 12, w), dtype=np.float32)
        np.testing.assert_allclose(be(x), TorchBackend(model.net)(x), atol=1e-4)
    assert len(be.static_shapes) == 2


@needs_openvino
def test_openvino_streams_run_frames_at_once_with_the_same_results(tmp_path_factory, cache):
    """Two streams, two threads calling at once (the video pipeline's inference workers): each
    thread gets its own requests, and every frame comes back as one stream alone gives it."""
    import threading

    model = tiny(tmp_path_factory, "srgan_generator")
    one = make_backend(model, backend="openvino", precision="fp32", log=None)
    two = make_backend(model, backend="openvino", precision="fp32", streams=2, log=None)
    assert one.streams == 1 and two.streams == 2 and two.name == "openvino-cpu-fp32-2streams"
    rng = np.random.default_rng(0)
    frames = [rng.integers(16, 236, (24, 32), dtype=np.uint8) for _ in range(8)]
    want = [one.upscale_u8(y) for y in frames]
    got: dict[int, np.ndarray] = {}

    def work(idx):
        for i in idx:
            got[i] = two.upscale_u8(frames[i])
            got[100 + i] = two(frames[i][None, None].astype(np.float32) / 255)

    threads = [threading.Thread(target=work, args=(range(k, 8, 2),)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, y in enumerate(frames):
        np.testing.assert_array_equal(got[i], want[i])
        np.testing.assert_allclose(got[100 + i], one(y[None, None].astype(np.float32) / 255), atol=1e-5)
    assert len(two._u8_set) == 1  # one static compile of the plane shape, shared by both threads


@needs_openvino
def test_openvino_int8_runs_the_qdq_graph(tmp_path_factory, cache):
    model = tiny(tmp_path_factory, "coarse")
    calib = [str(calib_folder(tmp_path_factory))]
    ov = make_backend(model, backend="openvino", precision="int8", calib=calib, log=None)
    ort = make_backend(model, backend="onnxruntime", precision="int8", calib=calib, log=None)
    assert ov.name == "openvino-cpu-int8" and ov.path == ort.path  # one artifact for every backend
    x = natural_image("coffee", (48, 40))[None, None, :, :, 1].astype(np.float32) / 255.0
    ref = TorchBackend(model.net)(x)
    assert np.abs(ov(x) - ref).max() < 0.1
    assert np.abs(ov(x) - ort(x)).mean() < 2e-3


@needs_openvino
def test_openvino_bf16(tmp_path_factory, cache):
    from realtime_sr.runtime import cpu

    model = tiny(tmp_path_factory, "srgan_generator")
    if not cpu.cpu_features().bf16:
        with pytest.raises(UsageError, match="bf16 units"):
            make_backend(model, backend="openvino", precision="bf16", log=None)
        return
    be = make_backend(model, backend="openvino", precision="bf16", log=None)
    x = natural_image("coffee", (48, 40))[None, None, :, :, 1].astype(np.float32) / 255.0
    assert be.name == "openvino-cpu-bf16"
    assert np.abs(be(x) - TorchBackend(model.net)(x)).max() < 0.03


@needs_openvino
def test_bf16_without_units_is_refused(tmp_path_factory, cache, monkeypatch):
    _fake_cpu(monkeypatch, bf16=False, int8=True)
    model = tiny(tmp_path_factory, "coarse")
    _bf16_refused_and_auto_is_fp32(model, "needs a CPU with bf16 units", "precision auto -> fp32")


def _bf16_refused_and_auto_is_fp32(model, refusal: str, said_auto: str) -> None:
    """``--precision bf16`` is an error matching ``refusal``; ``auto`` takes fp32 and says ``said_auto``."""
    with pytest.raises(UsageError, match=refusal):
        make_backend(model, backend="openvino", precision="bf16", log=None)
    said = []
    be = make_backend(model, backend="openvino", precision="auto", log=said.append)
    assert be.name == "openvino-cpu-fp32" and any(said_auto in m for m in said)


@needs_openvino
def test_bf16_without_units_is_a_one_line_cli_error(tmp_path_factory, tmp_path, cache, monkeypatch, capsys):
    from PIL import Image

    from realtime_sr.cli import main

    _fake_cpu(monkeypatch, bf16=False, int8=True)
    model = tiny(tmp_path_factory, "coarse")
    src = tmp_path / "in.png"
    Image.fromarray(natural_image("coffee", (40, 32))).save(src)
    before = src.read_bytes()
    rc = main(["image", str(src), str(tmp_path / "out.png"), "--model", str(model.path),
               "--backend", "openvino", "--precision", "bf16"])
    err = capsys.readouterr().err
    assert rc != 0 and not (tmp_path / "out.png").exists() and src.read_bytes() == before
    line = [ln for ln in err.splitlines() if "error" in ln]
    assert line == [line[0]] and line[0].startswith("realtime-sr: error: --precision bf16 needs a CPU with bf16")
    assert "Traceback" not in err


@needs_openvino
def test_failed_bf16_gate_refuses_bf16_and_auto_falls_back(tmp_path_factory, tmp_path, monkeypatch):
    from realtime_sr.export.artifacts import ensure_onnx, write_sidecar

    monkeypatch.setenv("REALTIME_SR_CACHE", str(tmp_path))
    _fake_cpu(monkeypatch, bf16=True, int8=True)
    model = tiny(tmp_path_factory, "coarse")
    seeded(tmp_path_factory, model, tmp_path)
    fp32 = ensure_onnx(model, "fp32")
    fp32.info["gate_bf16"] = {"passed": False, "forced": False, "drop_db": 0.09, "tolerance_db": 0.05}
    write_sidecar(fp32)
    _bf16_refused_and_auto_is_fp32(model, "bf16 failed its quality gate", "failed this model's quality gate")


@needs_openvino
def test_openvino_bad_graph_is_a_backend_error(tmp_path):
    from realtime_sr.runtime.ov_backend import OvBackend

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(BackendError, match="OpenVINO cannot compile it"):
        OvBackend(bad, cache_dir=None)
    with pytest.raises(BackendError, match="no such ONNX file"):
        OvBackend(tmp_path / "missing.onnx")


@needs_openvino
def test_routed_on_openvino(tmp_path_factory, cache):
    from realtime_sr.routing import RoutedBackend, RouteOptions

    coarse, fine = tiny(tmp_path_factory, "coarse"), tiny(tmp_path_factory, "srgan_generator")
    opt = RouteOptions(fraction=0.5, tile=16)
    x = natural_image("astronaut", (96, 64))[None, None, :, :, 1].astype(np.float32) / 255.0
    ov = RoutedBackend(make_backend(coarse, backend="openvino", precision="fp32", log=None),
                       make_backend(fine, backend="openvino", precision="fp32", log=None), 2, opt)
    ref = RoutedBackend(TorchBackend(coarse.net), TorchBackend(fine.net), 2, opt)
    np.testing.assert_allclose(ov(x), ref(x), atol=1e-4)
    assert ov.last["fine"] > 0


@needs_openvino
def test_openvino_static_tile_batch_pads_and_splits(tmp_path_factory, cache):
    from realtime_sr.export.artifacts import ensure_onnx
    from realtime_sr.runtime.ov_backend import OvBackend

    model = tiny(tmp_path_factory, "srgan_generator")
    be = OvBackend(ensure_onnx(model, "fp32").path, tile_batch=(4, 16), cache_dir=None)
    assert be.static_shape == (4, 1, 16, 16)
    for n in (1, 4, 6):  # fewer than K: padded; more: K at a time
        x = np.random.default_rng(n).random((n, 1, 16, 16), dtype=np.float32)
        np.testing.assert_allclose(be(x), TorchBackend(model.net)(x), atol=1e-4)


@needs_openvino
def test_video_frame_steps_on_openvino_take_uint8_planes(tmp_path_factory, cache):
    """An 8-bit frame through the pipeline's steps: on OpenVINO the Y plane goes in and comes out
    as uint8 (the fused path), and the output frame is the float path's within a rounding step."""
    import av

    from realtime_sr.pipeline import convert, stages

    model = tiny(tmp_path_factory, "coarse")
    be = make_backend(model, backend="openvino", precision="fp32", log=None)
    rgb = natural_image("coffee", (48, 32))
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    frame.pts = 7
    tags = convert.resolve_colour(frame, 48, 32, "yuv420p")
    spec = stages.FrameSpec(fmt="yuv420p", out_fmt="yuv420p", width=48, height=32, scale=2, tags=tags,
                            colour="y", tile=1024, context=model.context, luma_u8=hasattr(be, "upscale_u8"))
    assert spec.luma_u8
    work = stages.infer(stages.prepare(frame, spec), spec, stages.TimedBackend(be))
    assert work.net_out.dtype == np.uint8 and work.net_out.shape == (64, 96)
    fast = stages.finish(work, spec)
    slow_spec = stages.FrameSpec(**{**spec.__dict__, "luma_u8": False})
    work2 = stages.infer(stages.prepare(frame, slow_spec), slow_spec, be)
    assert work2.net_out.dtype == np.float32
    slow = stages.finish(work2, slow_spec)
    assert fast.pts == slow.pts == 7 and (fast.width, fast.height) == (96, 64)
    for a, b in zip(fast.to_ndarray(format="yuv420p"), slow.to_ndarray(format="yuv420p")):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.mark.parametrize("model, flags, tag", [
    ("AMD EPYC", {"avx2", "avx512_vnni", "avx512_bf16"}, "amd-epyc-vnni-bf16-2c"),
    ("AMD EPYC", {"avx2"}, "amd-epyc-avx2-2c"),
    ("Intel(R) Xeon(R) Processor", {"avx2", "avx512_vnni", "amx_bf16", "amx_int8"}, "intel-xeon-processor-amx-2c"),
    ("", set(), "cpu-2c"),
])
def test_machine_tag_tells_cpus_with_one_model_name_apart(monkeypatch, model, flags, tag):
    from realtime_sr.runtime import cpu

    monkeypatch.setattr(cpu, "cpu_model", lambda: model)
    monkeypatch.setattr(cpu, "cpu_threads", lambda: 2)
    monkeypatch.setattr(cpu, "cpu_features", lambda: cpu.CpuFeatures(bf16=False, int8=False, flags=frozenset(flags)))
    assert cpu.machine_tag() == tag
