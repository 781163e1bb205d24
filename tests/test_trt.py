"""TensorRT: the cache key (what changes it, what does not), the build/load/rebuild logic against a
stand-in ``tensorrt`` module (CPU), and, where TensorRT and a GPU exist, real engines."""

from __future__ import annotations

import importlib.util
import json
import types
from pathlib import Path

import numpy as np
import pytest

from realtime_sr.errors import BackendError
from realtime_sr.export import cache
from realtime_sr.export.trt import BuildOptions, build_engine, load_or_build

HAS_TRT = importlib.util.find_spec("tensorrt") is not None
try:
    import torch

    HAS_CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover
    HAS_CUDA = False

BASE = dict(onnx_sha="ab" * 32, precision="int8", shapes={"lr": ((16, 1, 112, 112),) * 3}, trt_version="10.13.0",
            gpu_name="NVIDIA H100 80GB HBM3", compute_capability=(9, 0),
            options={"workspace_mib": 2048, "optimization_level": 3})


def name_of(**changes):
    kw = {**BASE, **changes}
    return cache.engine_name("fine-x2", cache.engine_key(**kw))


# ----------------------------------------------------------------------------- cache key

@pytest.mark.parametrize("field, value", [
    ("onnx_sha", "cd" * 32),
    ("precision", "fp16"),
    ("shapes", {"lr": ((8, 1, 112, 112),) * 3}),
    ("shapes", {"lr": ((16, 1, 96, 96),) * 3}),
    ("trt_version", "11.1.0"),
    ("gpu_name", "NVIDIA GeForce RTX 4090"),
    ("compute_capability", (8, 9)),
    ("options", {"workspace_mib": 4096, "optimization_level": 3}),
    ("options", {"workspace_mib": 2048, "optimization_level": 5}),
])
def test_every_build_input_changes_the_name(field, value):
    assert name_of(**{field: value}) != name_of()


def test_what_does_not_change_the_name():
    reordered = {"optimization_level": 3, "workspace_mib": 2048}
    assert name_of(options=reordered) == name_of()
    assert name_of(shapes={"lr": [[16, 1, 112, 112]] * 3}) == name_of()  # lists vs tuples
    assert name_of(compute_capability=[9, 0]) == name_of()


def test_name_is_readable_and_file_safe():
    n = name_of()
    assert n.startswith("fine-x2.int8.16x1x112x112.trt10.13.0.nvidia-h100-80gb-hbm3.sm90.")
    assert n.endswith(".engine") and "/" not in n and " " not in n
    dyn = cache.engine_name("coarse-x2", cache.engine_key(**{**BASE, "shapes": {
        "lr": ((1, 1, 16, 16), (1, 1, 360, 640), (4, 1, 1088, 1920))}}))
    assert ".1x1x16x16-1x1x360x640-4x1x1088x1920." in dyn


def test_onnx_cache_name_keys():
    a = cache.onnx_name("fine-x2", "0" * 64, "int8", 17)
    assert a != cache.onnx_name("fine-x2", "1" * 64, "int8", 17)
    assert a != cache.onnx_name("fine-x2", "0" * 64, "fp16", 17)
    assert a != cache.onnx_name("fine-x2", "0" * 64, "int8", 18)


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("REALTIME_SR_CACHE", str(tmp_path))
    assert cache.cache_dir() == tmp_path
    monkeypatch.delenv("REALTIME_SR_CACHE")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "realtime-sr"
    (tmp_path / "engines").mkdir()
    (tmp_path / "engines" / "README.md").write_text("x")
    assert cache.cache_dir() == Path("engines")


# ----------------------------------------------------------------------------- a stand-in tensorrt

def fake_trt(version="10.13.0"):
    """Just enough of the tensorrt 10/11 Python API to drive build_engine and load_or_build."""
    calls = {"builds": 0, "flags": [], "profiles": [], "workspace": None, "timing_in": [], "parse_bad": False}

    class ILogger:
        class Severity:
            INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

        def __init__(self):
            pass

    class Logger(ILogger):
        WARNING = 2

        def __init__(self, *a):
            pass

    class IProgressMonitor:
        def __init__(self):
            pass

    class Parser:
        def __init__(self, network, logger):
            self.errors = []

        def parse(self, data, path=None):
            if calls["parse_bad"]:
                self.errors = ["In node 3 (Conv): UNSUPPORTED_NODE: kernel weights", "In node 7: bad attribute"]
                return False
            return True

        @property
        def num_errors(self):
            return len(self.errors)

        def get_error(self, i):
            return self.errors[i]

    class TimingCache:
        def __init__(self, data):
            self.data = data

        def serialize(self):
            return b"timing:" + str(calls["builds"]).encode()

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, mn, opt, mx):
            self.shapes[name] = (mn, opt, mx)

    class Config:
        builder_optimization_level = 3
        progress_monitor = None

        def set_memory_pool_limit(self, pool, size):
            calls["workspace"] = size

        def add_optimization_profile(self, p):
            calls["profiles"].append(p.shapes)

        def create_timing_cache(self, data):
            calls["timing_in"].append(bytes(data))
            return TimingCache(data)

        def set_timing_cache(self, tc, ignore_mismatch):
            self.tc = tc

        def get_timing_cache(self):
            return self.tc

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            calls["flags"].append(flags)
            return object()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            calls["builds"] += 1
            assert isinstance(config.progress_monitor, IProgressMonitor)
            return b"ENGINE" + json.dumps(calls["profiles"][-1]).encode()

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, blob):
            return {"engine": blob} if blob.startswith(b"ENGINE") else None

    mod = types.SimpleNamespace(
        __version__=version, ILogger=ILogger, Logger=Logger, IProgressMonitor=IProgressMonitor, OnnxParser=Parser,
        Builder=Builder, Runtime=Runtime, MemoryPoolType=types.SimpleNamespace(WORKSPACE=0),
        NetworkDefinitionCreationFlag=types.SimpleNamespace(STRONGLY_TYPED=1))
    return mod, calls


GPU = ("NVIDIA H100 80GB HBM3", (9, 0))
SHAPES = {"lr": ((16, 1, 112, 112),) * 3}


@pytest.fixture()
def onnx_file(tmp_path):
    p = tmp_path / "fine.int8.onnx"
    p.write_bytes(b"not really onnx, the stand-in parser does not read it")
    return p


def test_build_then_cached_load(onnx_file, tmp_path):
    trt, calls = fake_trt()
    logs = []
    eng, ef = load_or_build(onnx_file, stem="fine-x2", precision="int8", shapes=SHAPES, cache_root=tmp_path / "c",
                            gpu=GPU, log=logs.append, trt=trt)
    assert ef.built and calls["builds"] == 1 and eng["engine"].startswith(b"ENGINE")
    assert calls["flags"] == [1 << 1]  # strongly typed
    assert calls["profiles"] == [{"lr": ((16, 1, 112, 112),) * 3}]
    assert calls["workspace"] == 2048 << 20
    assert any("building TensorRT engine" in m for m in logs)
    assert json.loads(ef.path.with_name(ef.path.name + ".json").read_text()) == ef.key
    assert ef.path.name == cache.engine_name("fine-x2", ef.key)
    timing = list((tmp_path / "c").glob("timing.*.cache"))
    assert len(timing) == 1 and timing[0].read_bytes() == b"timing:1"
    eng2, ef2 = load_or_build(onnx_file, stem="fine-x2", precision="int8", shapes=SHAPES, cache_root=tmp_path / "c",
                              gpu=GPU, log=logs.append, trt=trt)
    assert not ef2.built and calls["builds"] == 1 and ef2.path == ef.path


def test_changed_onnx_or_gpu_or_trt_rebuilds_and_reuses_timing_cache(onnx_file, tmp_path):
    trt, calls = fake_trt()
    kw = dict(stem="fine-x2", precision="int8", shapes=SHAPES, cache_root=tmp_path, log=lambda m: None)
    _, a = load_or_build(onnx_file, gpu=GPU, trt=trt, **kw)
    onnx_file.write_bytes(onnx_file.read_bytes() + b" changed")
    _, b = load_or_build(onnx_file, gpu=GPU, trt=trt, **kw)
    assert b.built and b.path != a.path and calls["builds"] == 2
    assert calls["timing_in"] == [b"", b"timing:1"]  # the second build started from the first's timings
    _, c = load_or_build(onnx_file, gpu=("NVIDIA L4", (8, 9)), trt=trt, **kw)
    assert c.built and calls["builds"] == 3
    trt11, calls11 = fake_trt("11.1.0")
    _, d = load_or_build(onnx_file, gpu=GPU, trt=trt11, **kw)
    assert d.built and d.path != b.path


def test_key_mismatch_and_corrupt_engine_rebuild(onnx_file, tmp_path):
    trt, calls = fake_trt()
    logs = []
    kw = dict(stem="fine-x2", precision="int8", shapes=SHAPES, cache_root=tmp_path, gpu=GPU, log=logs.append, trt=trt)
    _, ef = load_or_build(onnx_file, **kw)
    side = ef.path.with_name(ef.path.name + ".json")
    side.write_text(json.dumps({**ef.key, "tensorrt": "9.0"}))  # a stale or foreign key
    _, ef2 = load_or_build(onnx_file, **kw)
    assert ef2.built and calls["builds"] == 2 and any("does not match" in m for m in logs)
    ef.path.write_bytes(b"garbage")  # a truncated or corrupt engine
    _, ef3 = load_or_build(onnx_file, **kw)
    assert ef3.built and calls["builds"] == 3 and any("cannot be deserialized" in m for m in logs)
    assert ef.path.read_bytes().startswith(b"ENGINE")


def test_parser_errors_are_all_logged(onnx_file):
    trt, calls = fake_trt()
    calls["parse_bad"] = True
    logs = []
    with pytest.raises(BackendError, match="2 error"):
        build_engine(onnx_file, shapes=SHAPES, options=BuildOptions(), log=logs.append, trt=trt)
    assert sum("onnx parser" in m for m in logs) == 2 and calls["builds"] == 0


def test_model_role_and_profiles():
    from realtime_sr.runtime.trt_backend import frame_profile, model_role, tile_profile

    M = types.SimpleNamespace
    assert model_role(M(meta={"stage": "gan", "arch": "srgan_generator"})) == "fine"
    assert model_role(M(meta={"stage": "coarse", "arch": "coarse"})) == "coarse"
    assert model_role(M(meta={"arch": "srgan_generator"})) == "fine"
    mn, opt, mx = frame_profile(1)
    assert mn[1] == opt[1] == mx[1] == 1 and opt == (1, 1, 360, 640) and mn < opt < mx
    assert tile_profile(1, 16, 112) == ((16, 1, 112, 112),) * 3


# ----------------------------------------------------------------------------- real TensorRT

needs_trt = [pytest.mark.tensorrt, pytest.mark.gpu,
             pytest.mark.skipif(not HAS_TRT, reason="TensorRT is not installed (pip install 'realtime-sr[tensorrt]')"),
             pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (torch sees none)")]


def _mark(f):
    for m in needs_trt:
        f = m(f)
    return f


@_mark
@pytest.mark.parametrize("precision, atol", [("fp32", 2e-3), ("fp16", 2e-2), ("int8", 0.15)])
def test_trt_coarse_matches_onnxruntime(tmp_path_factory, monkeypatch, precision, atol):
    from test_export_helpers import calib_folder, session_dir, tiny

    from realtime_sr.runtime import make_backend

    monkeypatch.setenv("REALTIME_SR_CACHE", str(session_dir(tmp_path_factory, "trt-cache")))
    model = tiny(tmp_path_factory, "coarse")
    calib = [str(calib_folder(tmp_path_factory))]
    trt_be = make_backend(model, backend="tensorrt", device="cuda", precision=precision, calib=calib, log=print)
    ort_be = make_backend(model, backend="onnxruntime", device="cpu", precision=precision, calib=calib, log=None)
    x = np.random.default_rng(0).random((1, 1, 90, 160), dtype=np.float32) * 0.8 + 0.1
    np.testing.assert_allclose(trt_be(x), ort_be(x), atol=atol)


@_mark
def test_trt_fine_static_tiles_two_streams(tmp_path_factory, monkeypatch):
    from test_export_helpers import session_dir, tiny

    from realtime_sr.runtime import make_backend
    from realtime_sr.runtime.torch_backend import TorchBackend

    monkeypatch.setenv("REALTIME_SR_CACHE", str(session_dir(tmp_path_factory, "trt-cache")))
    model = tiny(tmp_path_factory, "srgan_generator")
    be = make_backend(model, backend="tensorrt", device="cuda", precision="fp32", tile_batch=(4, 40), log=print)
    x = np.random.default_rng(1).random((6, 1, 40, 40), dtype=np.float32)  # 6 tiles: one full batch + 2 padded
    ref = TorchBackend(__import__("copy").deepcopy(model.net))(x)
    np.testing.assert_allclose(be(x), ref, atol=2e-3)
    s1, s2 = torch.cuda.Stream(), torch.cuda.Stream()
    xt = torch.from_numpy(x).cuda()
    y1 = be.run_tensor(xt[:4], stream=s1)
    y2 = be.run_tensor(xt[4:], stream=s2)
    torch.cuda.current_stream().wait_stream(s1)
    torch.cuda.current_stream().wait_stream(s2)
    assert len(be._contexts) == 2  # one execution context per stream
    np.testing.assert_allclose(torch.cat([y1, y2]).cpu().numpy(), ref, atol=2e-3)


def test_command_modules_import_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys, realtime_sr.export_cmd, realtime_sr.bench_cmd, realtime_sr.export, realtime_sr.export.cache;"
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'tensorrt', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
    helps = subprocess.run([sys.executable, "-m", "realtime_sr", "export", "--help"], capture_output=True, text=True)
    assert helps.returncode == 0 and "--precision" in helps.stdout and "--force" in helps.stdout


def test_gpu_check_script_parses():
    import shutil
    import subprocess

    if shutil.which("bash") is None:
        pytest.skip("no bash")
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
