"""Time the coarse network against ESPCN's published architecture on a 640x360 luma frame.

Speed does not depend on weights, so both networks are built with the shipped coarse
hyperparameters and ESPCN's (Shi et al. 2016) and timed side by side, interleaved, in one run.
Each network runs under eager torch fp32 and under onnxruntime fp32 (the default CPU backend);
the figure is the fastest of the interleaved repetitions (the least disturbed by other load).
Usage: python benchmarks/coarse_vs_espcn.py [--threads N] [--reps N]  (prints a markdown table)
"""

import argparse
import platform
import tempfile
import time
from pathlib import Path
from datetime import date

import numpy as np
import torch

from realtime_sr.archs import build
from realtime_sr.export.onnx import export_onnx
from realtime_sr.runtime.ort_backend import OrtBackend
from realtime_sr.train.config import load_recipe


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    tmp = Path(tempfile.mkdtemp())
    x = torch.rand(1, 1, 360, 640)
    xn = x.numpy()
    for scale in (2, 4):
        cfg = load_recipe(f"coarse_x{scale}")
        nets = {"coarse": build("coarse", **cfg.hparams).eval(), "ESPCN": build("espcn", scale=scale).eval()}
        runners = {}
        for k, net in nets.items():
            ort = OrtBackend(export_onnx(net, tmp / f"{k}_x{scale}.onnx"), threads=a.threads)
            runners[(k, "torch")] = lambda net=net: net(x)
            runners[(k, "onnxruntime")] = lambda ort=ort: ort(xn)
        times = {key: [] for key in runners}
        with torch.inference_mode():
            for run in runners.values():
                run()
            for _ in range(a.reps):
                for key, run in runners.items():
                    t = time.perf_counter()
                    run()
                    times[key].append(time.perf_counter() - t)
        for (k, backend), ts in times.items():
            rows.append((scale, k, backend, sum(p.numel() for p in nets[k].parameters()), 1000 * min(ts)))
    print(f"# coarse vs ESPCN, 640x360 luma frame, fp32 CPU, {a.threads} thread(s)\n")
    print(f"{date.today()}, {platform.processor() or platform.machine()}, torch {torch.__version__}; "
          f"`python benchmarks/coarse_vs_espcn.py --threads {a.threads} --reps {a.reps}` "
          "(fastest of interleaved runs)\n")
    print("| scale | network | params | backend | ms/frame | vs ESPCN, same backend |")
    print("|---|---|---|---|---|---|")
    ref = {(s, b): ms for s, k, b, _, ms in rows if k == "ESPCN"}
    for s, k, b, n, ms in rows:
        print(f"| x{s} | {k} | {n:,} | {b} | {ms:.1f} | {ms / ref[(s, b)]:.2f}x |")


if __name__ == "__main__":
    main()
