"""Routed mode: quality (Set5/Set14 PSNR-Y, the literature's protocol) and CPU time per frame against coarse and fine.

    .venv/bin/python benchmarks/routing/run.py --scale 2 [--fractions 0,0.1,0.25,0.5,1] [--threads 2]

Every row runs in one process, side by side; time per frame is measured on a 640x360 LR frame of
a natural photo (the packaged sample image at its own scale, mirrored to cover the frame), because routing depends on the content (random
noise would make every tile look detailed). Writes benchmarks/results/routing_<machine>_<date>_x<S>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data" / "images"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--fractions", default="0.1,0.25,0.5,1")
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--sets", default="Set5,Set14")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch

    torch.set_num_threads(a.threads)
    from realtime_sr import routing
    from realtime_sr.evaluate import evaluate, load_pairs
    from realtime_sr.upscale import upscale_array

    from realtime_sr.bench_cmd import natural_frame

    frame = natural_frame(640, 360)
    rows, backends = [], []
    configs = [("coarse", None), ("fine", None)] + [("routed", float(f)) for f in a.fractions.split(",")]
    for mode, frac in configs:
        opts = routing.RouteOptions(fraction=frac) if frac is not None else None
        model, be = routing.load(None, scale=a.scale, mode=mode, backend=a.backend, device="cpu", options=opts,
                                 log=None)
        row = {"mode": mode if frac is None else f"routed {frac:g}"}
        for name in a.sets.split(","):
            pairs = load_pairs(DATA / name, a.scale)
            row[name] = evaluate(pairs, lambda lr: upscale_array(model, be, lr, tile=4096), a.scale, mode,
                                 with_ssim=False).psnr
        be(frame)  # warm-up
        if hasattr(be, "fine_tiles"):
            be.fine_tiles = be.total_tiles = 0
        rows.append(row)
        backends.append(be)
        print(row, flush=True)
    # timing interleaved: each round times every configuration once, so load changes hit all alike
    times = [[] for _ in rows]
    for _ in range(a.runs):
        for t, be in zip(times, backends):
            t0 = time.perf_counter()
            be(frame)
            t.append(time.perf_counter() - t0)
    for row, t, be in zip(rows, times, backends):
        row["ms"] = 1e3 * float(np.median(t))
        row["share"] = (be.fine_tiles / be.total_tiles) if getattr(be, "total_tiles", 0) else None
    base = next(r for r in rows if r["mode"] == "coarse")
    fine = next(r for r in rows if r["mode"] == "fine")
    sets = a.sets.split(",")
    lines = [f"# Routed mode x{a.scale}: quality and CPU time", "",
             f"- command: `python benchmarks/routing/run.py --scale {a.scale} --fractions {a.fractions} "
             f"--backend {a.backend} --threads {a.threads}`",
             f"- machine: {platform.machine()}, {os.cpu_count()} logical cores, {a.threads} threads; "
             f"date {dt.date.today().isoformat()}",
             f"- backend {a.backend}; defaults {routing.RouteOptions()}",
             "- time: median of %d interleaved rounds (each round times every row once) on a 640x360 LR "
             "frame of the packaged sample photo (mirrored)" % a.runs,
             "- gain captured: (routed - coarse) / (fine - coarse), per set", "",
             "| mode | " + " | ".join(f"{s} PSNR" for s in sets) + " | gain captured | tiles to fine (frame) "
             "| ms/frame | vs fine |",
             "|---|" + "---:|" * len(sets) + "---:|---:|---:|---:|"]
    for r in rows:
        cap = " / ".join(f"{(r[s] - base[s]) / (fine[s] - base[s]):.0%}" if fine[s] != base[s] else "-" for s in sets)
        share = f"{r['share']:.0%}" if r["share"] is not None else "-"
        lines.append(f"| {r['mode']} | " + " | ".join(f"{r[s]:.2f}" for s in sets)
                     + f" | {cap} | {share} | {r['ms']:.0f} | {fine['ms'] / r['ms']:.2f}x |")
    sys.path.insert(0, str(REPO / "benchmarks"))
    from cpu_backends import machine

    out = REPO / "benchmarks" / "results" / f"routing_{machine()}_{dt.date.today()}_x{a.scale}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
