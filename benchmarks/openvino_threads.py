"""OpenVINO CPU settings, measured: threads, streams and the performance hint, one interleaved run.

    /tmp/quiet.sh python benchmarks/openvino_threads.py [--scale 2] [--rounds 7]

Per network (shipped coarse and fine, bf16 hint, one 640x360 LR frame, static shape), the time of
one synchronous call under: the backend's settings (all cores, 1 stream, LATENCY), 1 thread,
OpenVINO's defaults (no property set but the precision), and the THROUGHPUT hint (several streams:
it pays only with requests in flight at once, which a frame-at-a-time pipeline does not have).
Prints a markdown table; median (min) ms over interleaved rounds.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=2, choices=(2, 4))
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    os.environ.setdefault("REALTIME_SR_CACHE", str(Path.cwd() / "engines"))
    from realtime_sr.bench_cmd import natural_frame
    from realtime_sr.export.artifacts import ensure_onnx
    from realtime_sr.models import load_model
    from realtime_sr.runtime.cpu import cpu_threads
    from realtime_sr.runtime.ov_backend import core

    n = cpu_threads()
    configs = {
        f"{n} threads, 1 stream, LATENCY (the backend's)": {"INFERENCE_NUM_THREADS": n, "NUM_STREAMS": 1,
                                                           "PERFORMANCE_HINT": "LATENCY"},
        "1 thread, 1 stream, LATENCY": {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"},
        "OpenVINO defaults": {},
        "THROUGHPUT hint": {"PERFORMANCE_HINT": "THROUGHPUT"},
    }
    x = natural_frame(640, 360)
    reqs = {}
    for role in ("coarse", "fine"):
        path = ensure_onnx(load_model(f"{role}-x{a.scale}"), "fp32").path
        for label, cfg in configs.items():
            m = core().read_model(str(path))
            m.reshape({m.inputs[0]: list(x.shape)})
            cm = core().compile_model(m, "CPU", {"INFERENCE_PRECISION_HINT": "bf16", **cfg})
            streams = cm.get_property("NUM_STREAMS")
            reqs[(role, label, streams)] = cm.create_infer_request()
    for r in reqs.values():
        r.infer({0: x})
    ts = {k: [] for k in reqs}
    for _ in range(a.rounds):
        for k, r in reqs.items():
            t = time.perf_counter()
            r.infer({0: x})
            ts[k].append(1e3 * (time.perf_counter() - t))
    print("| network | settings | streams | ms per frame (min) |\n|---|---|---:|---:|")
    for (role, label, streams), v in ts.items():
        print(f"| {role}-x{a.scale} | {label} | {streams} | {np.median(v):.1f} ({min(v):.1f}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
