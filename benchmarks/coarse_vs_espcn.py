"""Time the coarse network against ESPCN's published architecture on a 640x360 luma frame.

Speed does not depend on weights, so both networks are built with the shipped coarse
hyperparameters and ESPCN's (Shi et al. 2016) and timed side by side, interleaved, in one run.
Usage: python benchmarks/coarse_vs_espcn.py [--threads N] [--reps N]  (prints a markdown table)
"""

import argparse
import platform
import time
from datetime import date

import numpy as np
import torch

from realtime_sr.archs import build
from realtime_sr.train.config import load_recipe


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    for scale in (2, 4):
        cfg = load_recipe(f"coarse_x{scale}")
        nets = {"coarse": build("coarse", **cfg.hparams).eval(), "ESPCN": build("espcn", scale=scale).eval()}
        x = torch.rand(1, 1, 360, 640)
        times = {k: [] for k in nets}
        with torch.inference_mode():
            for net in nets.values():
                net(x)
            for _ in range(a.reps):
                for k, net in nets.items():
                    t = time.perf_counter()
                    net(x)
                    times[k].append(time.perf_counter() - t)
        for k, net in nets.items():
            rows.append((scale, k, sum(p.numel() for p in net.parameters()), 1000 * float(np.median(times[k]))))
    print(f"# coarse vs ESPCN, 640x360 luma frame, torch {torch.__version__} fp32 CPU eager, {a.threads} threads\n")
    print(f"{date.today()}, {platform.processor() or platform.machine()}; "
          f"`python benchmarks/coarse_vs_espcn.py --threads {a.threads} --reps {a.reps}` "
          "(median of interleaved runs)\n")
    print("| scale | network | params | ms/frame | vs ESPCN |")
    print("|---|---|---|---|---|")
    ref = {s: ms for s, k, _, ms in rows if k == "ESPCN"}
    for s, k, n, ms in rows:
        print(f"| x{s} | {k} | {n:,} | {ms:.1f} | {ms / ref[s]:.2f}x |")


if __name__ == "__main__":
    main()
