"""Reduced precision, written into the ONNX graph. The ONLY place precision enters a graph.

TensorRT 11 builds strongly typed networks only (no FP16/INT8 builder flags, no calibrators), so
the precision a network runs in is the precision its ONNX file says:

* **fp16**: every float tensor and weight becomes float16, except the graph's input and output
  (kept float32 behind a Cast, so callers feed and get float32) and the nodes that *measurement*
  shows would overflow: the fp32 graph is run on calibration frames with every intermediate
  tensor exposed, and a node whose output magnitude exceeds :data:`FP16_LIMIT` (a quarter of
  fp16's 65504, headroom for frames brighter than the calibration set) stays float32.
* **int8**: explicit QuantizeLinear/DequantizeLinear pairs from ``onnxruntime.quantization
  .quantize_static`` (QDQ format): symmetric int8 activations (zero point 0, the only kind
  TensorRT takes), symmetric per-channel int8 weights (axis 0), float bias (TensorRT fuses it),
  calibrated by min/max on real frames from the *training* images. Only Conv is quantized. The
  bicubic skip, which reads the image too, stays float: it must stay exact. The first Conv
  stays float where it is a small share of the arithmetic (the fine network); where it is not
  (the coarse network's 5x5 head, 9% of its multiply-adds and, in float with its reorder, a
  third of its OpenVINO time), it reads the image *losslessly* quantized: ``x - 128/255``
  padded with ``-128/255`` (what zero padding of ``x`` is) at scale 1/255 is ``Y - 128``, an
  exact int8 code for every 8-bit Y, and ``128/255 * sum(W)`` goes into the bias. Only its
  weights are rounded (per channel, as every other Conv's). A calibrated scale (max/127 on
  Y/255) would be coarser than the 8-bit input itself, which is why it is not used there.
  **Sensitivity fallback**: the int8 graph's output is compared with the fp32 graph's on *probe*
  frames (other crops of the training images). Below :data:`INT8_TARGET_DB` (PSNR of int8 vs
  fp32 output), each quantized Conv is ranked by how much keeping it alone in float would help,
  and the most sensitive ones are kept in float, one at a time, until the target is met (at most
  :data:`MAX_FLOAT_CONVS`). A narrow bottleneck layer after ReLU (whose outputs use only half of
  the symmetric int8 range) is the usual culprit. The export gate on Set14 still judges the
  result; ``strict`` raises the target to :data:`INT8_STRICT_DB` for its retry.

Calibration frames are LR crops made exactly as training makes them (PIL bicubic downscale of
an HR crop, Y of BT.601 studio range / 255). Test sets are refused as calibration data.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import UsageError

FP16_LIMIT = 16384.0
INT8_TARGET_DB = 48.0  # int8 output vs fp32 output, PSNR on probe frames (peak 1.0)
INT8_STRICT_DB = 51.0
MAX_FLOAT_CONVS = 4
INT8_HEAD_SHARE = 0.02  # the first Conv goes int8 (exact input) where it has this share of the weights
_HEAD_OFFSET = 128.0 / 255.0
TEST_SETS = {"set5", "set14", "bsd100", "b100", "urban100", "manga109", "div2k_valid", "div2k-valid"}
PRECISIONS = ("fp32", "fp16", "int8")


# ----------------------------------------------------------------------------- calibration data

def check_not_test_set(folders: Iterable[str | Path]) -> None:
    for f in folders:
        if Path(f).name.lower() in TEST_SETS:
            raise UsageError(f"{f}: a test set cannot be calibration data (use training images, e.g. T91, BSD200)")


def calibration_frames(folders: Sequence[str | Path], *, scale: int, count: int = 32, size: int = 96,
                       seed: int = 0) -> list[np.ndarray]:
    """``count`` LR luma crops (1, 1, size, size) float32 in [0, 1] from the images in ``folders``."""
    from ..colour import rgb_to_y
    from ..imageops import list_images, read_image, resize_bicubic

    check_not_test_set(folders)
    files = [p for f in folders if Path(f).is_dir() for p in list_images(f)]
    if not files:
        raise UsageError(f"no calibration images in {', '.join(map(str, folders)) or '(no folders)'}")
    rng = random.Random(seed)
    order = sorted(files)
    rng.shuffle(order)
    picks = [order[i % len(order)] for i in range(count)]
    frames, hr_size = [], size * scale
    for p in picks:
        img = read_image(p)
        if img.dtype != np.uint8:
            img = (img >> 8).astype(np.uint8)
        img = img[..., :3] if img.shape[2] >= 3 else np.repeat(img[..., :1], 3, axis=2)
        h, w = img.shape[:2]
        ch, cw = min(hr_size, h - h % scale), min(hr_size, w - w % scale)
        y0, x0 = rng.randrange(h - ch + 1), rng.randrange(w - cw + 1)
        crop = img[y0:y0 + ch, x0:x0 + cw]
        lr = resize_bicubic(np.ascontiguousarray(crop), (cw // scale, ch // scale))
        y = rgb_to_y(lr.astype(np.float32) / 255.0) / 255.0
        frames.append(np.ascontiguousarray(y[None, None], dtype=np.float32))
    return frames


def frames_from_images(images: Iterable[np.ndarray], *, size: int = 96, count: int = 16,
                       seed: int = 0) -> list[np.ndarray]:
    """Calibration crops from LR frames already in hand (e.g. the first frames of a video).

    Frames are (H, W[, C]) uint8 or uint16, gray or RGB(A), as :func:`~realtime_sr.upscale.upscale_array` takes.
    """
    from ..colour import rgb_to_y, to_float

    rng = random.Random(seed)
    out = []
    images = list(images)
    for i in range(count):
        img = images[i % len(images)]
        img = img[..., None] if img.ndim == 2 else img
        h, w = img.shape[:2]
        ch, cw = min(size, h), min(size, w)
        y0, x0 = rng.randrange(h - ch + 1), rng.randrange(w - cw + 1)
        rgb = to_float(img[y0:y0 + ch, x0:x0 + cw])
        rgb = np.repeat(rgb[..., :1], 3, axis=2) if rgb.shape[2] < 3 else rgb[..., :3]
        out.append(np.ascontiguousarray((rgb_to_y(rgb) / 255.0)[None, None], dtype=np.float32))
    return out


# ----------------------------------------------------------------------------- fp16

def activation_peaks(src: str | Path, frames: Sequence[np.ndarray]) -> dict[str, float]:
    """Max |value| of every node output of the fp32 graph over ``frames``."""
    import onnx
    import onnxruntime as ort

    m = onnx.load(str(src))
    graph_outputs = {o.name for o in m.graph.output}
    for node in m.graph.node:
        for out in node.output:
            if out and out not in graph_outputs:
                m.graph.output.append(onnx.ValueInfoProto(name=out))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    so.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    inp = sess.get_inputs()[0].name
    peaks = dict.fromkeys(names, 0.0)
    for x in frames:
        for name, val in zip(names, sess.run(names, {inp: x})):
            if np.issubdtype(np.asarray(val).dtype, np.floating):
                peaks[name] = max(peaks[name], float(np.abs(val).max(initial=0.0)))
    return peaks


def to_fp16(src: str | Path, dst: str | Path, frames: Sequence[np.ndarray], *,
            keep_fp32: Sequence[str] = ()) -> dict:
    """Write a float16 copy of ``src``; nodes whose measured outputs could overflow stay float32."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    peaks = activation_peaks(src, frames)
    m = onnx.load(str(src))
    hot = [n.name for n in m.graph.node if any(peaks.get(o, 0.0) > FP16_LIMIT for o in n.output)]
    block = sorted(set(hot) | set(keep_fp32))
    m16 = convert_float_to_float16(m, keep_io_types=True, node_block_list=block or None)
    _toposort(m16.graph)  # the converter appends its I/O Casts at the end; TensorRT's parser wants order
    onnx.checker.check_model(m16)
    onnx.save(m16, str(dst))
    return {"precision": "fp16", "kept_fp32": block, "overflow_nodes": hot,
            "peak_activation": round(max(peaks.values(), default=0.0), 3), "limit": FP16_LIMIT}


def fp16_emulation(fp32_src: str | Path, keep_fp32: Sequence[str] = ()):
    """An fp32 graph that rounds like the fp16 one: weights and every intermediate tensor pass through float16.

    onnxruntime on CPU has no fp16 kernels for these ops: it runs an fp16 graph in fp32 and
    keeps only the weights' rounding, which would make the fp16 gate meaningless. This graph
    rounds each node's output to fp16 (Cast pairs; run it without graph optimizations so the
    pairs stay), except the nodes kept in fp32 and the graph output, so the gate measures fp16
    storage between layers with fp32 arithmetic inside them (TensorRT's fp16 kernels accumulate
    in fp32 as well). Returns a ModelProto.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(fp32_src))
    for init in m.graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            arr = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array(arr.astype(np.float16).astype(np.float32), init.name))
    keep = set(keep_fp32)
    final = {o.name for o in m.graph.output}
    nodes = []
    for node in m.graph.node:
        nodes.append(node)
        if node.name in keep or node.op_type in ("Shape", "Constant"):
            continue
        for i, out in enumerate(node.output):
            if not out or out in final:
                continue
            raw = f"{out}__fp32"
            node.output[i] = raw
            nodes.append(helper.make_node("Cast", [raw], [f"{out}__fp16"], to=TensorProto.FLOAT16,
                                          name=f"{node.name}_round16_{i}"))
            nodes.append(helper.make_node("Cast", [f"{out}__fp16"], [out], to=TensorProto.FLOAT,
                                          name=f"{node.name}_back32_{i}"))
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    del m.graph.value_info[:]
    return m


def _toposort(graph) -> None:
    """Reorder ``graph.node`` so that every node comes after the producers of its inputs."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = [n for n in pending if not all(i in ready for i in n.input)]
        now = [n for n in pending if all(i in ready for i in n.input)]
        if not now:
            raise ValueError("graph has a cycle or a dangling input")
        for n in now:
            ordered.append(n)
            ready.update(n.output)
        pending = rest
    copies = [type(n)() for n in ordered]
    for c, n in zip(copies, ordered):
        c.CopyFrom(n)
    del graph.node[:]
    graph.node.extend(copies)


# ----------------------------------------------------------------------------- int8

class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of frames."""

    def __init__(self, name: str, frames: Sequence[np.ndarray]) -> None:
        self.name, self.frames, self.i = name, list(frames), 0

    def get_next(self):
        if self.i >= len(self.frames):
            return None
        self.i += 1
        return {self.name: self.frames[self.i - 1]}

    def rewind(self) -> None:
        self.i = 0


def to_int8(src: str | Path, dst: str | Path, frames: Sequence[np.ndarray], *,
            exclude: Sequence[str] | None = None, method: str = "minmax",
            probe: Sequence[np.ndarray] | None = None, target_db: float | None = INT8_TARGET_DB,
            max_float: int = MAX_FLOAT_CONVS) -> dict:
    """Write a Q/DQ int8 copy of ``src``: symmetric activations, symmetric per-channel weights.

    With ``probe`` frames and a ``target_db``, the sensitivity fallback of the module docstring
    keeps the fewest most sensitive Convs in float that bring the output within ``target_db``.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod

    m = onnx.load(str(src))
    convs = [n.name for n in m.graph.node if n.op_type == "Conv"]
    # Convs that read the image (directly or through a Pad) stay float in onnxruntime's pass: the
    # first layer and the bicubic skip; ``exclude`` adds to them. The first layer may then be
    # made int8 with an exact input (module docstring), as a candidate of the fallback like any other.
    image = {m.graph.input[0].name}
    image |= {o for n in m.graph.node if n.op_type == "Pad" and n.input[0] in image for o in n.output}
    base = sorted({n.name for n in m.graph.node if n.op_type == "Conv" and image & set(n.input)}
                  | set(exclude or ()))
    head = int8_head(m)
    if head is not None and head in set(exclude or ()):
        head = None
    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    name = m.graph.input[0].name
    del m

    def quantize(out: Path, excluded) -> None:
        import logging

        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # quantize_static logs a pre-processing hint on the root logger
        try:
            _quantize(str(src), str(out), _Reader(name, frames), sorted(set(base) | set(excluded)),
                      methods[method])
        finally:
            root.setLevel(level)
        if head is not None and head not in excluded:
            quantize_head_exactly(out, head)

    quantize(Path(dst), [])
    info = {"precision": "int8", "format": "QDQ", "activations": "int8 symmetric",
            "weights": "int8 symmetric per-channel", "calibration": method, "frames": len(frames)}
    extra: list[str] = []
    if probe and target_db is not None:
        import tempfile

        from ..runtime.ort_backend import OrtBackend

        ref = OrtBackend(src)
        refs = [ref(x) for x in probe]  # the fp32 outputs, computed once for every comparison below
        del ref
        fid = output_fidelity(refs, dst, probe)
        info.update(target_db=target_db, probe_frames=len(probe), fidelity_all_int8_db=round(fid, 3))
        if fid < target_db:
            candidates = [c for c in convs if c not in base or c == head]
            with tempfile.TemporaryDirectory() as td:
                trial = Path(td) / "trial.onnx"
                gain = {}
                for c in candidates:  # one pass: rank by the fidelity with only ``c`` kept float
                    quantize(trial, [c])
                    gain[c] = output_fidelity(refs, trial, probe)
            info["sensitivity_db"] = {c: round(v, 3) for c, v in sorted(gain.items(), key=lambda kv: -kv[1])}
            for c in sorted(candidates, key=lambda c: -gain[c])[:max_float]:
                extra.append(c)
                quantize(Path(dst), extra)
                fid = output_fidelity(refs, dst, probe)
                if fid >= target_db:
                    break
        info["fidelity_db"] = round(fid, 3)
    floats = sorted((set(base) - ({head} - set(extra))) | set(extra))
    info.update(quantized_convs=len(convs) - len(floats), float_convs=floats, sensitive_float_convs=extra,
                exact_int8_input=head if head is not None and head not in extra else None)
    return info


def int8_head(model) -> str | None:
    """The first Conv (reading the graph's input itself, one 8-bit image plane) if it holds at least
    :data:`INT8_HEAD_SHARE` of the Convs' weights, else None (kept float: it costs little there)."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    inp = g.input[0].name
    size = {n.name: int(np.prod(inits[n.input[1]].dims)) for n in g.node
            if n.op_type == "Conv" and len(n.input) > 1 and n.input[1] in inits}
    heads = [n for n in g.node if n.op_type == "Conv" and n.input[0] == inp and n.name in size]
    if len(heads) != 1 or not size:
        return None
    h = heads[0]
    if inits[h.input[1]].dims[1] != 1 or {a.name: a.i for a in h.attribute if a.type == a.INT}.get("group", 1) != 1:
        return None
    return h.name if size[h.name] >= INT8_HEAD_SHARE * sum(size.values()) else None


def quantize_head_exactly(path: str | Path, head: str) -> None:
    """Rewrite the float Conv ``head`` of the int8 graph at ``path`` (in place) to read its input
    exactly quantized: Sub(128/255) - Pad(-128/255) - Q/DQ(1/255) - Conv(int8 per-channel weights,
    no padding, bias + 128/255 * sum(W)). Equal to the float Conv with its weights rounded."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(path))
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    h = next(n for n in g.node if n.name == head)
    w = numpy_helper.to_array(inits[h.input[1]]).astype(np.float32)
    b = (numpy_helper.to_array(inits[h.input[2]]).astype(np.float32) if len(h.input) > 2
         else np.zeros(w.shape[0], np.float32))
    attrs = {a.name: helper.get_attribute_value(a) for a in h.attribute}
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    scale = np.maximum(np.abs(w).reshape(w.shape[0], -1).max(1), 1e-12) / 127.0
    wq = np.clip(np.round(w / scale[:, None, None, None]), -127, 127).astype(np.int8)
    bias = b + _HEAD_OFFSET * (wq.astype(np.float64) * scale[:, None, None, None]).reshape(w.shape[0], -1).sum(1)
    k = head + "_exact"
    g.initializer.extend([
        numpy_helper.from_array(np.array(_HEAD_OFFSET, np.float32), k + "_offset"),
        numpy_helper.from_array(np.array([0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]], np.int64), k + "_pads"),
        numpy_helper.from_array(np.array(-_HEAD_OFFSET, np.float32), k + "_pad_value"),
        numpy_helper.from_array(np.array(1.0 / 255.0, np.float32), k + "_x_scale"),
        numpy_helper.from_array(np.array(0, np.int8), k + "_x_zero_point"),
        numpy_helper.from_array(wq, k + "_w_quantized"),
        numpy_helper.from_array(scale.astype(np.float32), k + "_w_scale"),
        numpy_helper.from_array(np.zeros(w.shape[0], np.int8), k + "_w_zero_point"),
        numpy_helper.from_array(bias.astype(np.float32), k + "_bias"),
    ])
    nodes = [
        helper.make_node("Sub", [h.input[0], k + "_offset"], [k + "_centred"], name=k + "_sub"),
        helper.make_node("Pad", [k + "_centred", k + "_pads", k + "_pad_value"], [k + "_padded"],
                         name=k + "_pad", mode="constant"),
        helper.make_node("QuantizeLinear", [k + "_padded", k + "_x_scale", k + "_x_zero_point"], [k + "_xq"],
                         name=k + "_q"),
        helper.make_node("DequantizeLinear", [k + "_xq", k + "_x_scale", k + "_x_zero_point"], [k + "_xdq"],
                         name=k + "_dq"),
        helper.make_node("DequantizeLinear", [k + "_w_quantized", k + "_w_scale", k + "_w_zero_point"],
                         [k + "_wdq"], name=k + "_wdq", axis=0),
    ]
    conv = helper.make_node("Conv", [k + "_xdq", k + "_wdq", k + "_bias"], list(h.output), name=h.name,
                            **{a: v for a, v in attrs.items() if a != "pads"})
    at = list(g.node).index(h)
    for old in list(h.input[1:]):  # the float weights, unless something else reads them
        if sum(old in n.input for n in g.node) == 1 and old in inits:
            g.initializer.remove(inits[old])
    g.node.remove(h)
    for i, n in enumerate(nodes + [conv]):
        g.node.insert(at + i, n)
    onnx.save(m, str(path))


def output_fidelity(refs: Sequence[np.ndarray], src: str | Path, probe: Sequence[np.ndarray]) -> float:
    """PSNR (dB, peak 1.0) of ``src``'s outputs on the ``probe`` frames against ``refs`` (the fp32 ones)."""
    from ..runtime.ort_backend import OrtBackend

    run = OrtBackend(src, precision="int8")
    se, n = 0.0, 0
    for x, a in zip(probe, refs):
        b = run(x)
        se += float(np.sum((a.astype(np.float64) - b) ** 2))
        n += a.size
    mse = se / max(n, 1)
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def _quantize(src: str, dst: str, reader, exclude, method) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(
        src, dst, reader,
        quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
        per_channel=True, op_types_to_quantize=["Conv"], nodes_to_exclude=list(exclude),
        calibrate_method=method,
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                       "CalibPercentile": 99.999},
    )


def edge_nodes(src: str | Path) -> list[str]:
    """The first and last Conv and the node producing the output: what a strict fp16 conversion keeps in float32."""
    import onnx

    g = onnx.load(str(src)).graph
    convs = [n.name for n in g.node if n.op_type == "Conv"]
    out = [n.name for n in g.node if g.output[0].name in n.output]
    return sorted(set(convs[:1] + convs[-1:] + out))


def convert(src: str | Path, dst: str | Path, precision: str, frames: Sequence[np.ndarray] | None, *,
            probe: Sequence[np.ndarray] | None = None, strict: bool = False) -> dict:
    """fp32 -> ``precision`` (fp16 or int8); both need calibration frames (fp16 for its overflow scan).

    ``strict``, the export command's retry when a gate fails: fp16 also keeps the first and last
    Conv (and the output node) in float32; int8 raises the fidelity target of the sensitivity
    fallback from :data:`INT8_TARGET_DB` to :data:`INT8_STRICT_DB` (``probe`` frames needed).
    """
    if precision not in ("fp16", "int8"):
        raise UsageError(f"can convert to fp16 or int8, not {precision!r}")
    if not frames:
        raise UsageError(f"{precision} export needs calibration frames")
    if precision == "fp16":
        info = to_fp16(src, dst, frames, keep_fp32=edge_nodes(src) if strict else [])
    else:
        info = to_int8(src, dst, frames, probe=probe, target_db=INT8_STRICT_DB if strict else INT8_TARGET_DB)
    return {**info, "strict": strict}
