"""ONNX export: names, opset, shapes, DepthToSpace/Resize, parity; fp16 and int8 graphs (Q/DQ placement)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="export tests need the onnx package (the export/dev extras)")
pytest.importorskip("onnxscript", reason="the torch ONNX exporter needs onnxscript (the export/dev extras)")

from realtime_sr.errors import UsageError  # noqa: E402
from realtime_sr.export.artifacts import ensure_onnx  # noqa: E402
from realtime_sr.export.onnx import fix_shape, io_spec, op_types, parity  # noqa: E402
from realtime_sr.export.quantize import FP16_LIMIT, calibration_frames, check_not_test_set, to_fp16  # noqa: E402
from realtime_sr.runtime.ort_backend import OrtBackend  # noqa: E402

from test_export_helpers import calib_folder, seeded, session_dir, tiny  # noqa: E402

ARCHS = ["coarse", "srgan_generator"]


@pytest.fixture(scope="module", params=ARCHS)
def exported(request, tmp_path_factory):
    """(model, {precision: Artifact}) for a tiny network of each architecture."""
    model = tiny(tmp_path_factory, request.param)
    out = session_dir(tmp_path_factory, "onnx-cache")
    calib = [str(calib_folder(tmp_path_factory))]
    arts = {p: ensure_onnx(model, p, out_dir=out, calib=calib, calib_count=4) for p in ("fp32", "fp16", "int8")}
    return model, arts


def _graph(path):
    return onnx.load(str(path)).graph


def test_io_names_opset_and_dynamic_shapes(exported):
    model, arts = exported
    for art in arts.values():
        spec = io_spec(art.path)
        assert spec["opset"] >= 17
        assert spec["input"] == ("lr", ["n", 1, "h", "w"], "FLOAT")
        name, dims, dtype = spec["output"]
        assert name == "sr" and dtype == "FLOAT" and dims[:2] == ["n", 1]


def test_depth_to_space_and_exact_bicubic_skip(exported):
    from realtime_sr.archs.upsample import bicubic_phase_kernel

    model, arts = exported
    ops = op_types(arts["fp32"].path)
    assert "DepthToSpace" in ops  # PixelShuffle, not Reshape/Transpose
    assert "Transpose" not in ops and "Resize" not in ops  # onnxruntime's cubic Resize is slow on CPU
    g = _graph(arts["fp32"].path)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    pads = [n for n in g.node if n.op_type == "Pad" and n.input[0] == g.input[0].name]
    assert pads and {a.name: a.s for a in pads[0].attribute}.get("mode") == b"edge"  # edges clamped
    skip = [n for n in g.node if n.op_type == "Conv" and n.input[0] == pads[0].output[0]]
    assert len(skip) == 1
    expected = bicubic_phase_kernel(model.scale).numpy()
    assert np.allclose(inits[skip[0].input[1]], expected, atol=1e-6)  # the fixed bicubic phases


def test_parity_with_torch_across_shapes(exported):
    model, arts = exported
    assert arts["fp32"].info["parity_max_abs"] < 1e-5
    err = parity(model.net, arts["fp32"].path, shapes=((1, 17, 29), (3, 40, 12)))
    assert err < 1e-5


def test_x4_fine_has_two_depth_to_space_stages(tmp_path_factory):
    model = tiny(tmp_path_factory, "srgan_generator", scale=4)
    art = ensure_onnx(model, "fp32", out_dir=session_dir(tmp_path_factory, "onnx-cache"))
    assert op_types(art.path).count("DepthToSpace") == 3  # two x2 stages, and the x4 bicubic skip
    assert art.info["parity_max_abs"] < 1e-5
    assert io_spec(art.path)["output"][1] == ["n", 1, "4*h", "4*w"]


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_static_tile_batch_copy(exported, tmp_path, precision):
    model, arts = exported
    static = fix_shape(arts[precision].path, tmp_path / "static.onnx", (4, 1, 40, 40), model.scale)
    spec = io_spec(static)
    assert spec["input"][1] == [4, 1, 40, 40] and spec["output"][1] == [4, 1, 80, 80]
    x = np.random.default_rng(0).random((4, 1, 40, 40), dtype=np.float32)
    np.testing.assert_allclose(OrtBackend(static)(x), OrtBackend(arts[precision].path)(x), atol=1e-6)


def test_fp16_graph(exported):
    model, arts = exported
    g = _graph(arts["fp16"].path)
    convs = [n for n in g.node if n.op_type == "Conv"]
    inits = {t.name: t for t in g.initializer}
    weights = [inits[n.input[1]] for n in convs if n.input[1] in inits]
    assert weights and all(w.data_type == onnx.TensorProto.FLOAT16 for w in weights)
    assert arts["fp16"].info["kept_fp32"] == []  # natural images do not come near fp16's range
    x = np.random.default_rng(1).random((1, 1, 24, 20), dtype=np.float32)
    ref = OrtBackend(arts["fp32"].path)(x)
    out = OrtBackend(arts["fp16"].path)(x)
    assert out.dtype == np.float32
    assert 0 < np.abs(out - ref).max() < 5e-3  # fp16 rounding, no more


def test_fp16_emulation_rounds_between_layers(exported):
    """onnxruntime-CPU runs an fp16 file in fp32; the gate's emulation really rounds every tensor to fp16."""
    from realtime_sr.export.quantize import fp16_emulation

    model, arts = exported
    emu = fp16_emulation(arts["fp32"].path)
    assert sum(n.op_type == "Cast" for n in emu.graph.node) >= 2 * sum(n.op_type == "Conv" for n in emu.graph.node)
    x = np.random.default_rng(3).random((1, 1, 24, 20), dtype=np.float32)
    ref = OrtBackend(arts["fp32"].path)(x)
    out = OrtBackend(emu, optimize=False)(x)
    assert 0 < np.abs(out - ref).max() < 5e-3
    # the fp16-rounded graph sits within fp16's relative precision of the fp32 output
    assert np.abs(out - ref).max() <= 4 * 2.0 ** -11 * max(1.0, float(np.abs(ref).max()))


def test_fp16_keeps_measured_overflow_in_fp32(tmp_path_factory, tmp_path):
    import torch

    from realtime_sr.export.onnx import export_onnx

    model = tiny(tmp_path_factory, "coarse")
    net = __import__("copy").deepcopy(model.net)
    with torch.no_grad():  # make the first conv's output overflow fp16 on real frames
        net.features[0].weight.mul_(1e6)
    src = export_onnx(net, tmp_path / "hot.onnx")
    frames = calibration_frames([calib_folder(tmp_path_factory)], scale=2, count=2, size=24)
    info = to_fp16(src, tmp_path / "hot16.onnx", frames)
    g = _graph(src)
    first = next(n.name for n in g.node if n.op_type == "Conv" and n.input[0] == g.input[0].name)
    assert first in info["overflow_nodes"] and first in info["kept_fp32"]
    assert info["peak_activation"] > FP16_LIMIT


def test_int8_qdq_placement(exported):
    model, arts = exported
    g = _graph(arts["int8"].path)
    inp = g.input[0].name
    producers = {o: n for n in g.node for o in n.output}
    inits = {t.name: t for t in g.initializer}
    convs = [n for n in g.node if n.op_type == "Conv"]
    image = {inp} | {n.output[0] for n in g.node if n.op_type == "Pad" and n.input[0] == inp}
    first = [c for c in convs if c.input[0] in image]
    exact = arts["int8"].info["exact_int8_input"]
    # the bicubic skip always reads the float image; the first Conv too, unless it is the coarse
    # network's head, which reads it losslessly quantized (below)
    assert len(first) == (1 if exact else 2), "the first Conv and the bicubic skip read the float image"
    assert (exact is not None) == (model.meta["arch"] == "coarse")
    for c in first:
        assert c.input[1] in inits and inits[c.input[1]].data_type == onnx.TensorProto.FLOAT
    if exact:  # Sub(128/255) - Pad(-128/255) - Q(1/255, 0): every 8-bit Y/255 is an exact int8 code
        head = next(c for c in convs if c.name == exact)
        q = producers[producers[head.input[0]].input[0]]
        pad = producers[q.input[0]]
        sub = producers[pad.input[0]]
        assert (q.op_type, pad.op_type, sub.op_type) == ("QuantizeLinear", "Pad", "Sub") and sub.input[0] == inp
        val = lambda name: float(onnx.numpy_helper.to_array(inits[name]))  # noqa: E731
        assert val(q.input[1]) == np.float32(1 / 255) and val(sub.input[1]) == np.float32(128 / 255)
        assert val(pad.input[2]) == -val(sub.input[1])
        y = np.arange(256, dtype=np.float32) / 255
        codes = np.round((y - np.float32(128 / 255)) / np.float32(1 / 255))
        assert np.array_equal(codes, np.arange(256) - 128)
    sensitive = set(arts["int8"].info["sensitive_float_convs"])  # the fallback's choice (own test below)
    for c in convs:
        if c in first or c.name in sensitive:
            assert c.input[1] in inits and inits[c.input[1]].data_type == onnx.TensorProto.FLOAT
            continue
        act, w = producers.get(c.input[0]), producers.get(c.input[1])
        assert act is not None and act.op_type == "DequantizeLinear", f"{c.name}: activation not Q/DQ"
        assert w is not None and w.op_type == "DequantizeLinear", f"{c.name}: weight not Q/DQ"
        wq = inits[w.input[0]]
        assert wq.data_type == onnx.TensorProto.INT8  # int8 weights
        wscale = onnx.numpy_helper.to_array(inits[w.input[1]])
        assert wscale.shape == (wq.dims[0],)  # per output channel
        assert {a.name: a.i for a in w.attribute}.get("axis", 1) == 0
        assert not onnx.numpy_helper.to_array(inits[w.input[2]]).any()  # symmetric: zero points 0
        if len(c.input) > 2:  # bias stays float (TensorRT fuses it)
            assert c.input[2] in inits and inits[c.input[2]].data_type == onnx.TensorProto.FLOAT
    for q in (n for n in g.node if n.op_type == "QuantizeLinear"):
        zp = inits[q.input[2]]
        assert zp.data_type == onnx.TensorProto.INT8 and not onnx.numpy_helper.to_array(zp).any()
    final = producers[g.output[0].name]
    if final.op_type == "DepthToSpace":  # the coarse network adds its skip before its one shuffle
        final = producers[final.input[0]]
    assert final.op_type == "Add"  # the bicubic skip is added in float
    x = np.random.default_rng(2).random((1, 1, 32, 24), dtype=np.float32)
    out, ref = OrtBackend(arts["int8"].path)(x), OrtBackend(arts["fp32"].path)(x)
    assert 0 < np.abs(out - ref).max() < 0.1


def test_int8_sensitivity_fallback(exported, tmp_path, tmp_path_factory):
    """Below the fidelity target the most sensitive Convs (ranked on probe frames) go back to float, in order."""
    from realtime_sr.export.quantize import to_int8

    model, arts = exported
    frames = calibration_frames([calib_folder(tmp_path_factory)], scale=2, count=4, size=32)
    probe = calibration_frames([calib_folder(tmp_path_factory)], scale=2, count=4, size=32, seed=1)
    src = arts["fp32"].path
    plain = to_int8(src, tmp_path / "plain.onnx", frames, probe=probe, target_db=0.0)
    assert plain["sensitive_float_convs"] == [] and "sensitivity_db" not in plain
    assert plain["fidelity_db"] == plain["fidelity_all_int8_db"]
    none = to_int8(src, tmp_path / "none.onnx", frames, target_db=None)
    assert none["float_convs"] == plain["float_convs"] and "fidelity_db" not in none
    best = to_int8(src, tmp_path / "best.onnx", frames, probe=probe, target_db=1e9, max_float=2)
    ranking = list(best["sensitivity_db"])  # most helpful first
    assert len(ranking) == plain["quantized_convs"]
    assert best["sensitive_float_convs"] == ranking[:2]
    assert best["quantized_convs"] == plain["quantized_convs"] - 2
    assert best["fidelity_db"] > plain["fidelity_db"]
    g = _graph(tmp_path / "best.onnx")
    inits = {t.name: t for t in g.initializer}
    for c in (n for n in g.node if n.name in ranking[:2]):
        assert inits[c.input[1]].data_type == onnx.TensorProto.FLOAT  # float weights, no Q/DQ


def test_cache_reuse_and_key(exported, tmp_path_factory):
    model, arts = exported
    again = ensure_onnx(model, "int8", out_dir=session_dir(tmp_path_factory, "onnx-cache"),
                        log=lambda m: pytest.fail(f"re-exported: {m}"))  # no calibration needed: cached
    assert again.path == arts["int8"].path
    names = {a.path.name for a in arts.values()}
    assert len(names) == 3 and all(".opset17." in n for n in names)


def test_calibration_refuses_test_sets(tmp_path):
    for name in ("Set14", "set5", "Urban100"):
        with pytest.raises(UsageError, match="test set"):
            check_not_test_set([tmp_path / name])


def test_calibration_frames_are_lr_luma(tmp_path_factory):
    frames = calibration_frames([calib_folder(tmp_path_factory)], scale=2, count=5, size=16)
    assert len(frames) == 5
    for f in frames:
        assert f.shape == (1, 1, 16, 16) and f.dtype == np.float32
        assert 16 / 255 - 1e-3 <= f.min() and f.max() <= 235 / 255 + 1e-3  # studio-range Y / 255


def test_missing_calibration_names_the_fix(tmp_path_factory, monkeypatch, tmp_path):
    from realtime_sr.export import artifacts

    monkeypatch.delenv("REALTIME_SR_CALIB", raising=False)
    monkeypatch.setattr(artifacts, "SAMPLE", tmp_path / "no-sample.png")
    model = tiny(tmp_path_factory, "coarse")
    seeded(tmp_path_factory, model, tmp_path)
    with pytest.raises(UsageError, match="--calib"):
        ensure_onnx(model, "int8", out_dir=tmp_path)


def test_packaged_sample_is_the_default_on_every_machine(tmp_path_factory, monkeypatch):
    """Without --calib or $REALTIME_SR_CALIB, calibration is the packaged sample even where the
    training folders named in the weights' metadata exist: an int8 graph made on the fly is then
    the graph its release gate measured, wherever it is made."""
    from realtime_sr.export import artifacts

    if not artifacts.SAMPLE.is_file():
        pytest.skip(f"{artifacts.SAMPLE} is not in this checkout")
    monkeypatch.delenv("REALTIME_SR_CALIB", raising=False)
    model = tiny(tmp_path_factory, "coarse")
    monkeypatch.setitem(model.meta, "training", {"data": [str(calib_folder(tmp_path_factory))]})
    frames, source = artifacts.calibration_for(model, None, count=3, size=32)
    assert source == artifacts.SAMPLE_SOURCE and len(frames) == 3 and frames[0].shape == (1, 1, 32, 32)
    again, _ = artifacts.calibration_for(model, None, count=3, size=32)
    assert all(np.array_equal(a, b) for a, b in zip(frames, again))
    folder, source = artifacts.calibration_for(model, [str(calib_folder(tmp_path_factory))], count=3, size=32)
    assert "train_images" in source


def test_frames_in_hand_any_layout():
    from realtime_sr.export.quantize import frames_from_images

    rgb = np.full((40, 50, 3), 128, np.uint8)
    gray16 = np.full((30, 30), 65535, np.uint16)
    frames = frames_from_images([rgb, gray16], size=24, count=4)
    assert [f.shape for f in frames] == [(1, 1, 24, 24)] * 4
    assert frames[1].max() == pytest.approx(235 / 255, abs=1e-3)  # white -> Y 235 (studio range)


def test_a_cache_folder_that_cannot_be_made_is_a_one_line_error(tmp_path_factory, tmp_path, monkeypatch, capsys):
    """REALTIME_SR_CACHE under a file (or anywhere it cannot be made): a clear error naming the
    fix and a non-zero exit, not a traceback, and no output file."""
    from realtime_sr.cli import main
    from realtime_sr.errors import OutputError
    from helpers import write_image_folder

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    model = tiny(tmp_path_factory, "coarse")
    with pytest.raises(OutputError, match="REALTIME_SR_CACHE"):
        ensure_onnx(model, "fp32", out_dir=blocker / "cache")
    monkeypatch.setenv("REALTIME_SR_CACHE", str(blocker / "cache"))
    src = next(iter(sorted(write_image_folder(tmp_path / "in", n=1, size=(40, 30)).iterdir())))
    out = tmp_path / "out.png"
    rc = main(["image", str(src), str(out), "--model", str(model.path), "--backend", "onnxruntime"])
    err = capsys.readouterr().err
    assert rc != 0 and "REALTIME_SR_CACHE" in err and "Traceback" not in err and not out.exists()


def test_exact_int8_input_equals_the_float_head_with_rounded_weights(exported, tmp_path):
    """The rewritten first Conv computes what the float one does with its weights rounded to int8,
    borders included: the input quantization loses nothing on 8-bit frames."""
    import copy
    import shutil

    import torch

    from realtime_sr.export.quantize import int8_head, quantize_head_exactly

    model, arts = exported
    src = arts["fp32"].path
    head = int8_head(onnx.load(str(src)))
    if model.meta["arch"] != "coarse":
        assert head is None  # the fine network's head is a sliver of its arithmetic: it stays float
        return
    dst = tmp_path / "head.onnx"
    shutil.copy(src, dst)
    quantize_head_exactly(dst, head)
    conv = model.net.features[0]
    w = conv.weight.detach().double()
    s = w.abs().amax(dim=(1, 2, 3), keepdim=True) / 127
    rounded = (w / s).round().clamp(-127, 127) * s
    y = np.random.default_rng(3).integers(0, 256, (1, 1, 21, 17)).astype(np.float32) / 255
    net = copy.deepcopy(model.net).double()
    with torch.no_grad():
        net.features[0].weight.copy_(rounded)
        ref = net(torch.from_numpy(y).double()).numpy()
    out = OrtBackend(dst)(y)
    assert np.abs(out - ref).max() < 1e-5
    assert np.abs(OrtBackend(src)(y) - ref).max() > 1e-4  # the rounding is visible: the test can fail
