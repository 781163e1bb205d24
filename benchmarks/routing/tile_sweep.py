"""Routing's tile size: quality on compressed clips against speed on a CPU, side by side.

Quality: PSNR-Y of routed x2 (the real coarse and fine models, int8 as ``video`` runs them) on the
four clips' frames (benchmarks/real_video.py's runs: downscale x2, libx264 at each CRF). Speed:
ms per 640x360 frame of the routed backend as ``video`` builds it (``realtime=True``, the video
hold), on 8 frames of chaplin.mp4, rounds interleaved in alternating order, the first round a
warm-up.

    python benchmarks/routing/tile_sweep.py [--tiles 32,48,64] [--context 4] [--start 90 --frames 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def load(tile: int, context: int):
    from realtime_sr import routing

    opts = routing.RouteOptions(tile=tile, context=context, hold=routing.VIDEO_HOLD)
    return routing.load(None, scale=2, mode="routed", backend="auto", precision="auto", variant="real",
                        options=opts, realtime=True)


def main(argv=None) -> int:
    import real_video as rv
    import routed_model

    from realtime_sr.colour import rgb_to_y
    from realtime_sr.metrics import psnr_y
    from realtime_sr.upscale import upscale_y

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiles", default="32,48,64")
    ap.add_argument("--context", type=int, default=4)
    ap.add_argument("--start", type=int, default=90)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--crf", default="lossless,23,28")
    ap.add_argument("--rounds", type=int, default=12)
    a = ap.parse_args(argv)
    tiles = [int(t) for t in a.tiles.split(",")]
    crfs = a.crf.split(",")
    runs = {}
    for clip in rv.CLIPS:
        hr = rv.read_run(rv.VIDEOS / clip, a.start, a.frames, scale=2)
        runs[clip] = ([np.rint(rgb_to_y(f / 255.0)) for f in hr], {c: rv.lr_planes(hr, 2, c) for c in crfs})
    backends = {t: load(t, a.context) for t in tiles}
    print(f"| tile | {' | '.join(crfs)} | ms per 640x360 frame |")
    print("|---:|" + "---:|" * (len(crfs) + 1))
    quality = {}
    for t, (model, be) in backends.items():
        quality[t] = []
        for c in crfs:
            vals = [psnr_y(np.clip(np.rint(upscale_y(be, y, 2, tile=1024, context=model.context)), 0, 255), ref[i], 2)
                    for ref, planes in runs.values() for i, y in enumerate(planes[c])]
            quality[t].append(float(np.mean(vals)))
    xs = routed_model.frames(2)
    times = {t: [] for t in tiles}
    for r in range(a.rounds + 1):
        for t in (tiles if r % 2 == 0 else tiles[::-1]):
            be = backends[t][1]
            t0 = time.perf_counter()
            for x in xs:
                be(x)
            if r:
                times[t].append((time.perf_counter() - t0) / len(xs) * 1e3)
    for t in tiles:
        print(f"| {t} | {' | '.join(f'{q:.3f}' for q in quality[t])} | {np.median(times[t]):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
