"""Where a network's time goes under OpenVINO, layer by layer, and how close it runs to the CPU's
arithmetic: each convolution's multiply-accumulates over its measured time.

The graph is the one ``realtime-sr video`` runs (the exported ONNX of a shipped model, at the
precision asked: int8 is the gated Q/DQ graph), compiled with ``PERF_COUNT`` on the threads the
backend uses, one LR frame of the given size.

    python benchmarks/openvino_profile.py --model fine-x2 --precision int8 --frame 640x360
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def onnx_path(name: str, precision: str) -> Path:
    """The cached exported graph the backends run (exported, and for int8 calibrated and gated, if absent)."""
    from realtime_sr.models import load_model
    from realtime_sr.runtime import _artifact

    return Path(_artifact(load_model(name), precision, None, lambda m: print(m, file=sys.stderr)).path)


def conv_macs(onnx_file: Path, h: int, w: int) -> dict[str, float]:
    """Multiply-accumulates per frame of each Conv node, by name (stride 1, 'same' output at LR size)."""
    import onnx

    m = onnx.load(str(onnx_file))
    inits = {i.name: list(i.dims) for i in m.graph.initializer}
    prod = {o: n for n in m.graph.node for o in n.output}

    def weight_shape(name, depth=0):
        if name in inits and len(inits[name]) == 4:
            return inits[name]
        n = prod.get(name)
        if n is None or depth > 4:
            return None
        for i in n.input:
            s = weight_shape(i, depth + 1)
            if s:
                return s
        return None

    out = {}
    for n in m.graph.node:
        if n.op_type == "Conv":
            s = weight_shape(n.input[1])
            if s:
                oc, ic, kh, kw = s
                out[n.name] = float(oc * ic * kh * kw * h * w)
    return out


def main(argv=None) -> int:
    import openvino as ov

    from realtime_sr.runtime.cpu import cpu_threads, machine_tag

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="fine-x2")
    ap.add_argument("--precision", default="int8", choices=("fp32", "bf16", "int8"))
    ap.add_argument("--frame", default="640x360", help="LR frame WxH")
    ap.add_argument("--hint", choices=("f32", "bf16"), help="OpenVINO's inference precision for the layers "
                    "that are not int8 (default: bf16 for --precision bf16, else f32, as the backend does)")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--out", help="write the table here (markdown)")
    a = ap.parse_args(argv)
    w, h = (int(v) for v in a.frame.lower().split("x"))
    path = onnx_path(a.model, "int8" if a.precision == "int8" else "fp32")
    core = ov.Core()
    net = core.read_model(str(path))
    net.reshape([1, 1, h, w])
    threads = cpu_threads()
    cfg = {"PERF_COUNT": "YES", "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
           "INFERENCE_PRECISION_HINT": a.hint or ("bf16" if a.precision == "bf16" else "f32")}
    req = core.compile_model(net, "CPU", cfg).create_infer_request()
    x = np.random.default_rng(0).random((1, 1, h, w), dtype=np.float32)
    for _ in range(3):
        req.infer({0: x})
    times, per_node = [], {}
    for _ in range(a.runs):
        t0 = time.perf_counter()
        req.infer({0: x})
        times.append(time.perf_counter() - t0)
        for p in req.profiling_info:
            per_node.setdefault(p.node_name, (p.node_type, p.exec_type, []))[2].append(p.real_time.total_seconds())
    wall = float(np.median(times)) * 1e3
    macs = conv_macs(path, h, w)
    rows = []
    for name, (typ, exe, ts) in per_node.items():
        ms = float(np.median(ts)) * 1e3
        if ms <= 0:
            continue
        base = name.split("/")[0]
        mac = macs.get(base) if typ == "Convolution" else None
        rows.append((ms, typ, exe, base, mac))
    rows.sort(key=lambda r: -r[0])
    total_ms = sum(r[0] for r in rows)
    conv_ms = sum(r[0] for r in rows if r[1] == "Convolution")
    conv_mac = sum(r[4] for r in rows if r[4])
    lines = [f"# OpenVINO layer profile: {a.model}, {a.precision}, {w}x{h} LR", "",
             f"- command: `python benchmarks/openvino_profile.py --model {a.model} --precision {a.precision} "
             f"--frame {a.frame}`",
             f"- date: {datetime.date.today()}; machine: {machine_tag()} ({platform.machine()}), "
             f"OpenVINO {ov.get_version()}, {threads} threads, 1 stream, LATENCY, "
             f"inference precision hint {cfg['INFERENCE_PRECISION_HINT']}",
             f"- graph: {path.name}",
             f"- wall time per frame (median of {a.runs}): {wall:.1f} ms; sum of layer times {total_ms:.1f} ms, "
             f"convolutions {conv_ms:.1f} ms ({100 * conv_ms / max(total_ms, 1e-9):.0f}%)",
             f"- convolution work: {conv_mac / 1e9:.2f} GMAC a frame, {conv_mac / 1e9 / (conv_ms / 1e3):.0f} GMAC/s "
             f"over the convolutions' time ({conv_mac / 1e9 / (conv_ms / 1e3) / threads:.0f} per thread)", "",
             "| layer | type | kernel | ms | share | GMAC | GMAC/s |", "|---|---|---|---:|---:|---:|---:|"]
    for ms, typ, exe, base, mac in rows[:25]:
        g = f"{mac / 1e9:.2f}" if mac else ""
        rate = f"{mac / 1e9 / (ms / 1e3):.0f}" if mac else ""
        lines.append(f"| {base} | {typ} | {exe} | {ms:.2f} | {100 * ms / total_ms:.1f}% | {g} | {rate} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        Path(a.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
