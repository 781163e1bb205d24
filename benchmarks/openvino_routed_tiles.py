"""Routed on OpenVINO: merged rectangles on the dynamic compile vs a static tile batch, interleaved.

    /tmp/quiet.sh python benchmarks/openvino_routed_tiles.py [SCALE]     # default 2; one 640x360 frame

Rows, per precision (bf16, int8): routed with the fine network on merged rectangles of tiles
(what routing does on a CPU; every rectangle shape runs on the dynamic compile unless it
repeats), routed with a static compile of 16 tiles of 40x40 (routing then sends same-shaped
tiles, padded up to 16, as for TensorRT), and the coarse and fine networks alone. 2 warm-up calls
each, then 5 interleaved rounds; median (min) ms. Also prints the largest difference between the
two routed outputs (the tile layout changes which context each core sees).
"""

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realtime_sr import routing  # noqa: E402
from realtime_sr.bench_cmd import natural_frame  # noqa: E402
from realtime_sr.models import load_model  # noqa: E402
from realtime_sr.runtime import make_backend  # noqa: E402
from realtime_sr.runtime.ov_backend import OvBackend  # noqa: E402


def main() -> int:
    scale = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    os.environ.setdefault("REALTIME_SR_CACHE", str(Path.cwd() / "engines"))
    x = natural_frame(640, 360)
    m = routing.RoutedModel(load_model(f"coarse-x{scale}"), load_model(f"fine-x{scale}"))
    opt = routing.RouteOptions()
    runs = {}
    for prec in ("bf16", "int8"):
        cb = make_backend(m.coarse, backend="openvino", precision=prec, log=None)
        fb_dyn = make_backend(m.fine, backend="openvino", precision=prec, log=None)
        fb_st = OvBackend(fb_dyn.path, precision=prec, tile_batch=(opt.batch, opt.patch))
        runs[f"{prec} routed, merged rectangles"] = routing.RoutedBackend(cb, fb_dyn, scale, opt)
        runs[f"{prec} routed, static 16x40x40 tiles"] = routing.RoutedBackend(cb, fb_st, scale, opt)
        runs[f"{prec} fine, whole frame"] = fb_dyn
        runs[f"{prec} coarse, whole frame"] = cb
    outs = {}
    for k, r in runs.items():
        for _ in range(2):
            outs[k] = r(x)
    diff = np.abs(outs["bf16 routed, merged rectangles"] - outs["bf16 routed, static 16x40x40 tiles"]).max()
    print(f"x{scale}, 640x360 LR; max |merged - static tiles| (bf16): {diff:.4f}")
    ts = {k: [] for k in runs}
    for _ in range(5):
        for k, r in runs.items():
            t = time.perf_counter()
            r(x)
            ts[k].append(1e3 * (time.perf_counter() - t))
    for k, v in ts.items():
        last = getattr(runs[k], "last", None)
        print(f"{k}: {np.median(v):.1f} ms (min {min(v):.1f})" + (f", fine on {last['fine']}/{last['tiles']} tiles"
                                                                   if last else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
