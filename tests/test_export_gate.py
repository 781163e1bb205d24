"""The quality gate: tolerances, refusal without --force, and (with the shared data) the shipped models on Set14."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

pytest.importorskip("onnx", reason="export tests need the onnx package (the export/dev extras)")

from realtime_sr.export import gate  # noqa: E402
from realtime_sr.export.quantize import INT8_STRICT_DB  # noqa: E402

from helpers import IMAGES, write_image_folder  # noqa: E402
from test_export_helpers import calib_folder, seeded, session_dir, tiny  # noqa: E402


@pytest.mark.parametrize("precision, drop, ok", [
    ("fp16", 0.0, True), ("fp16", 0.05, True), ("fp16", 0.0501, False), ("fp16", -0.02, True),
    ("int8", 0.15, True), ("int8", 0.151, False), ("int8", 0.10, True),
])
def test_tolerances(precision, drop, ok):
    res = gate.judge(precision, 30.0 - drop, 30.0)
    assert res.passed is ok
    assert ("pass" if ok else "FAIL") in res.line()


def test_onnx_psnr_equals_torch_psnr(tmp_path_factory):
    from realtime_sr.evaluate import evaluate, load_pairs
    from realtime_sr.export.artifacts import ensure_onnx
    from realtime_sr.runtime.torch_backend import TorchBackend
    from realtime_sr.upscale import upscale_array

    model = tiny(tmp_path_factory, "coarse")
    pairs = load_pairs(write_image_folder(tmp_path_factory.mktemp("gate"), n=2, size=(64, 48)), 2)
    art = ensure_onnx(model, "fp32", out_dir=session_dir(tmp_path_factory, "onnx-cache"))
    be = TorchBackend(model.net)
    ref = evaluate(pairs, lambda lr: upscale_array(model, be, lr), 2, "torch", with_ssim=False).psnr
    assert gate.onnx_psnr(model, art.path, pairs) == pytest.approx(ref, abs=0.01)


def _args(model_path, out, gate_set, calib, **kw):
    ns = dict(scale=2, model=[str(model_path)], precision="fp32,int8", out=str(out), opset=17, calib=[str(calib)],
              calib_count=4, gate_set=str(gate_set), force=False, tile_batch=4, tile_size=40, engine=False,
              rebuild=False, record=None)
    ns.update(kw)
    return argparse.Namespace(**ns)


@pytest.fixture()
def setup(tmp_path_factory):
    model = tiny(tmp_path_factory, "srgan_generator")
    gate_set = write_image_folder(tmp_path_factory.mktemp("gateset"), n=2, size=(48, 40))
    return model, gate_set, calib_folder(tmp_path_factory)


def test_export_refuses_a_failing_artifact_unless_forced(setup, tmp_path, monkeypatch, capsys, tmp_path_factory):
    from realtime_sr.export_cmd import run_export

    model, gate_set, calib = setup
    seeded(tmp_path_factory, model, tmp_path)
    monkeypatch.setitem(gate.TOLERANCE_DB, "int8", -1.0)  # nothing can pass
    assert run_export(_args(model.path, tmp_path, gate_set, calib)) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "retrying strict (more of the most sensitive layers in float)" in out and "refused" in out
    assert not list(tmp_path.glob("*.int8.*.onnx")) and list(tmp_path.glob("*.fp32.*.onnx"))
    assert run_export(_args(model.path, tmp_path, gate_set, calib, force=True)) == 0
    kept = [p for p in tmp_path.glob("*.int8.*.onnx") if ".tiles" not in p.name]
    assert len(kept) == 1
    import json

    side = json.loads(Path(str(kept[0]) + ".json").read_text())
    assert side["gate"]["passed"] is False and side["gate"]["forced"] is True and side["strict"] is True
    assert side["target_db"] == INT8_STRICT_DB and "fidelity_db" in side


def test_export_passes_and_writes_static_tiles(setup, tmp_path, capsys, tmp_path_factory):
    from realtime_sr.export_cmd import run_export
    from realtime_sr.export.onnx import io_spec

    model, gate_set, calib = setup
    seeded(tmp_path_factory, model, tmp_path)
    assert run_export(_args(model.path, tmp_path, gate_set, calib, precision="fp32,fp16")) == 0
    out = capsys.readouterr().out
    assert "parity vs torch: max abs err" in out and "fp16: PSNR" in out and "pass" in out
    static = sorted(tmp_path.glob("*.tiles4x40.onnx"))
    assert len(static) == 2 and io_spec(static[0])["input"][1] == [4, 1, 40, 40]


SHIPPED = Path(__file__).resolve().parents[1] / "realtime_sr" / "weights"


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.skipif(not (IMAGES / "Set14").is_dir(), reason=f"Set14 not found under {IMAGES}")
@pytest.mark.parametrize("name", [
    "coarse-x2", "fine-x2", "coarse-x4", "fine-x4"])
def test_shipped_models_pass_the_gate(name, tmp_path_factory):
    from realtime_sr.evaluate import load_pairs
    from realtime_sr.export.artifacts import ensure_onnx
    from realtime_sr.models import load_model, shipped_models

    if name not in shipped_models():
        pytest.skip(f"{name} is not shipped yet")
    model = load_model(name)
    out = session_dir(tmp_path_factory, "shipped-onnx")
    pairs = load_pairs(IMAGES / "Set14", model.scale)
    calib = [str(IMAGES / "T91"), str(IMAGES / "BSD200")]
    fp32 = ensure_onnx(model, "fp32", out_dir=out).path
    base = gate.onnx_psnr(model, fp32, pairs)
    for prec in ("fp16", "int8"):
        art = ensure_onnx(model, prec, out_dir=out, calib=calib, calib_count=32)
        res = gate.judge(prec, gate.onnx_psnr(model, art.path, pairs, precision=prec), base)
        assert res.passed, res.line()
    from realtime_sr.runtime import cpu

    if cpu.openvino_available():  # the same int8 graph on OpenVINO's kernels; bf16 where the CPU has it
        res = gate.judge("int8", gate.onnx_psnr(model, art.path, pairs, precision="int8", runtime="openvino"), base)
        assert res.passed, res.line()
        if cpu.cpu_features().bf16:
            res = gate.judge("bf16", gate.onnx_psnr(model, fp32, pairs, precision="bf16"), base)
            assert res.passed, res.line()


def test_bf16_tolerance_is_fp16s():
    assert gate.judge("bf16", 30.0 - 0.05, 30.0).passed and not gate.judge("bf16", 30.0 - 0.051, 30.0).passed


needs_openvino = pytest.mark.skipif(__import__("importlib").util.find_spec("openvino") is None,
                                    reason="OpenVINO is not installed (pip install openvino)")


def _fake_cpu(monkeypatch, bf16: bool):
    from realtime_sr.runtime import cpu

    monkeypatch.setattr(cpu, "cpu_features", lambda: cpu.CpuFeatures(bf16=bf16, int8=True))


@needs_openvino
def test_export_gates_bf16_and_records_it(setup, tmp_path, monkeypatch, capsys, tmp_path_factory):
    """bf16 has no file of its own: the gate result goes beside the fp32 graph, where the openvino backend reads it."""
    import json

    from realtime_sr.export_cmd import run_export
    from realtime_sr.runtime import cpu, make_backend

    if not cpu.cpu_features().bf16:
        pytest.skip("this CPU has no bf16 units (the refusal is tested with a faked CPU)")
    model, gate_set, calib = setup
    seeded(tmp_path_factory, model, tmp_path)
    monkeypatch.setenv("REALTIME_SR_CACHE", str(tmp_path))
    assert run_export(_args(model.path, tmp_path, gate_set, calib, precision="fp32,bf16")) == 0
    assert "bf16: PSNR" in capsys.readouterr().out
    fp32 = [p for p in tmp_path.glob("*.fp32.*.onnx") if ".tiles" not in p.name]
    assert len(fp32) == 1 and not list(tmp_path.glob("*.bf16.*"))
    side = json.loads(Path(str(fp32[0]) + ".json").read_text())
    assert side["gate_bf16"]["passed"] is True and side["gate_bf16"]["runtime"] == "openvino"
    assert make_backend(model, backend="openvino", precision="bf16", log=None).name == "openvino-cpu-bf16"

    monkeypatch.setitem(gate.TOLERANCE_DB, "bf16", -1.0)  # nothing can pass: refused, and recorded as failed
    assert run_export(_args(model.path, tmp_path, gate_set, calib, precision="bf16")) == 1
    assert "refused" in capsys.readouterr().out
    side = json.loads(Path(str(fp32[0]) + ".json").read_text())
    assert side["gate_bf16"]["passed"] is False
    from realtime_sr.errors import UsageError

    with pytest.raises(UsageError, match="bf16 failed its quality gate"):
        make_backend(model, backend="openvino", precision="bf16", log=None)


@needs_openvino
def test_export_refuses_bf16_on_a_cpu_without_it(setup, tmp_path, monkeypatch, capsys, tmp_path_factory):
    from realtime_sr.export_cmd import default_precisions, run_export

    model, gate_set, calib = setup
    seeded(tmp_path_factory, model, tmp_path)
    _fake_cpu(monkeypatch, bf16=False)
    assert "bf16" not in default_precisions()
    assert run_export(_args(model.path, tmp_path, gate_set, calib, precision="fp32,bf16")) == 1
    assert "bf16: refused: --precision bf16 needs a CPU with bf16 units" in capsys.readouterr().out


@needs_openvino
def test_export_records_the_bf16_gate_where_a_machine_without_a_gate_set_reads_it(
        setup, tmp_path, monkeypatch, capsys, tmp_path_factory):
    """`export --record FILE` writes the bf16 gate keyed by the weights' sha256; with that file as the
    shipped record, a fresh cache (no local gate) takes it: auto says the gate passed at release,
    and a record that failed makes auto fall back to fp32 and --precision bf16 an error."""
    import json

    from realtime_sr import runtime
    from realtime_sr.errors import UsageError
    from realtime_sr.export_cmd import run_export
    from realtime_sr.runtime import cpu, make_backend

    if not cpu.cpu_features().bf16:
        pytest.skip("this CPU has no bf16 units")
    model, gate_set, calib = setup
    seeded(tmp_path_factory, model, tmp_path / "a")
    monkeypatch.setenv("REALTIME_SR_CACHE", str(tmp_path / "a"))
    rec = tmp_path / "gates.json"
    assert run_export(_args(model.path, tmp_path / "a", gate_set, calib, precision="bf16", record=str(rec))) == 0
    capsys.readouterr()
    data = json.loads(rec.read_text())
    (entry,) = data.values()
    assert entry["bf16"]["passed"] is True and entry["bf16"]["set"] == gate_set.name and entry["model"] == model.name

    monkeypatch.setattr(runtime, "RELEASE_GATES", rec)
    seeded(tmp_path_factory, model, tmp_path / "b")
    monkeypatch.setenv("REALTIME_SR_CACHE", str(tmp_path / "b"))  # a machine that never gated it
    said = []
    be = make_backend(model, backend="openvino", precision="auto", log=said.append)
    assert be.name == "openvino-cpu-bf16"
    assert any("gate passed at release" in m for m in said) and not any("not been quality-gated" in m for m in said)

    entry["bf16"]["passed"] = False
    rec.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="bf16 failed its quality gate"):
        make_backend(model, backend="openvino", precision="bf16", log=None)
    said = []
    assert make_backend(model, backend="openvino", precision="auto", log=said.append).name == "openvino-cpu-fp32"


def test_realtime_auto_takes_the_int8_graph_gated_at_release(setup, tmp_path, monkeypatch, capsys, tmp_path_factory):
    """`export --precision int8 --record FILE` with the default calibration (the packaged sample)
    records the gate and what identifies the graph; on a machine that never gated it, precision
    auto in a real-time command (video, preview) on a CPU without AMX makes the same graph, sees it
    is the gated one and runs it on OpenVINO's int8 kernels, while image/eval (realtime=False), an
    AMX CPU, a failed gate or a graph that is not the gated one keep the bf16/fp32 choice."""
    import json

    from realtime_sr import runtime
    from realtime_sr.export import artifacts
    from realtime_sr.export_cmd import run_export
    from realtime_sr.runtime import cpu, make_backend

    if not cpu.openvino_available():
        pytest.skip("OpenVINO is not installed (pip install openvino)")
    if not artifacts.SAMPLE.is_file():
        pytest.skip(f"{artifacts.SAMPLE} is not in this checkout")
    model, gate_set, _ = setup
    monkeypatch.delenv("REALTIME_SR_CALIB", raising=False)
    seeded(tmp_path_factory, model, tmp_path / "a")
    rec = tmp_path / "gates.json"
    sha = artifacts.cache.sha256_file(model.path)
    rec.write_text(json.dumps({sha: {"model": model.name, "bf16": {"passed": True, "drop_db": 0.01}}}))
    args = _args(model.path, tmp_path / "a", gate_set, None, precision="int8", calib_count=32, record=str(rec))
    args.calib = None  # the default calibration
    assert run_export(args) == 0
    capsys.readouterr()
    data = json.loads(rec.read_text())
    entry = data[sha]
    assert entry["bf16"] == {"passed": True, "drop_db": 0.01}  # merged, not replaced
    gate8 = entry["int8"]
    assert gate8["passed"] is True and gate8["calibration_source"] == artifacts.SAMPLE_SOURCE
    assert gate8["frames"] == 32 and "fidelity_db" in gate8 and gate8["set"] == gate_set.name

    monkeypatch.setattr(runtime, "RELEASE_GATES", rec)
    vnni = cpu.CpuFeatures(bf16=True, int8=True, flags=frozenset({"avx2", "avx512_vnni", "avx512_bf16"}))
    monkeypatch.setattr(cpu, "cpu_features", lambda: vnni)

    def fresh(name):  # a machine that never gated it: its own cache, the fp32 graph only
        seeded(tmp_path_factory, model, tmp_path / name)
        monkeypatch.setenv("REALTIME_SR_CACHE", str(tmp_path / name))

    fresh("b")
    said = []
    be = make_backend(model, backend="auto", device="cpu", precision="auto", realtime=True, log=said.append)
    assert be.name == "openvino-cpu-int8"
    assert any("precision auto -> int8" in m and "gate passed at release" in m for m in said)
    assert not any("not been quality-gated" in m for m in said)
    assert make_backend(model, backend="auto", device="cpu", precision="auto", log=None).name == "openvino-cpu-bf16"
    said = []  # asked for by name, the same graph is known as the gated one
    assert make_backend(model, backend="openvino", precision="int8", log=said.append).name == "openvino-cpu-int8"
    assert any("the graph gated at release" in m for m in said) and not any("not been quality-gated" in m for m in said)
    assert make_backend(model, backend="onnxruntime", precision="auto", realtime=True, log=None).name \
        == "onnxruntime-cpu-fp32"  # an explicit backend without fast int8 kernels is kept

    amx = cpu.CpuFeatures(bf16=True, int8=True, flags=vnni.flags | {"amx_bf16", "amx_int8"})
    monkeypatch.setattr(cpu, "cpu_features", lambda: amx)
    assert make_backend(model, backend="auto", device="cpu", precision="auto", realtime=True,
                        log=None).name == "openvino-cpu-bf16"
    monkeypatch.setattr(cpu, "cpu_features", lambda: vnni)

    gate8["fidelity_db"] += 3.0  # another calibration: not the graph the record measured
    rec.write_text(json.dumps(data))
    fresh("c")
    said = []
    assert make_backend(model, backend="auto", device="cpu", precision="auto", realtime=True,
                        log=said.append).name == "openvino-cpu-bf16"
    assert any("not the one gated at release" in m for m in said)

    gate8["fidelity_db"] -= 3.0
    gate8["passed"] = False
    rec.write_text(json.dumps(data))
    assert make_backend(model, backend="auto", device="cpu", precision="auto", realtime=True,
                        log=None).name == "openvino-cpu-bf16"


@pytest.mark.parametrize("flags, int8, openvino, expect", [
    ({"avx2", "avx512_vnni", "avx512_bf16"}, True, True, True),   # AVX-512 VNNI/BF16 without AMX (Zen 4)
    ({"avx2"}, False, True, True),                                # AVX2 only (Zen 3)
    ({"avx2", "avx512_vnni", "amx_bf16", "amx_int8"}, True, True, False),  # AMX: bf16 stays
    (set(), False, True, False),                                  # neither: not measured
    ({"avx2", "avx512_vnni"}, True, False, False),                # no OpenVINO
])
def test_int8_default_by_cpu(monkeypatch, flags, int8, openvino, expect):
    from realtime_sr.runtime import cpu

    monkeypatch.setattr(cpu, "openvino_available", lambda: openvino)
    ok, why = cpu.int8_default(cpu.CpuFeatures(bf16=False, int8=int8, flags=frozenset(flags)))
    assert ok is expect and why
