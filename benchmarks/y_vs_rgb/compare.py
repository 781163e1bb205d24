"""Compare a Y and an RGB model: Set14 PSNR/SSIM (protocol) and time per 640x360 frame, side by side."""

import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from realtime_sr.evaluate import evaluate, load_pairs
from realtime_sr.models import load_model
from realtime_sr.runtime.torch_backend import TorchBackend
from realtime_sr.upscale import upscale_array

SET14 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "images" / "Set14"


def main(paths):
    torch.set_num_threads(1)
    models = [load_model(p) for p in paths]
    backends = [TorchBackend(m.net) for m in models]
    pairs = load_pairs(SET14, 2)
    quality = [evaluate(pairs, lambda lr, m=m, b=b: upscale_array(m, b, lr, tile=512), 2, m.colour)
               for m, b in zip(models, backends)]
    frame = (np.random.default_rng(0).random((360, 640, 3)) * 255).astype(np.uint8)
    times = {m.colour: [] for m in models}
    for _ in range(2):  # warm-up
        for m, b in zip(models, backends):
            upscale_array(m, b, frame, tile=1024)
    for _ in range(5):  # interleaved, so both see the same machine load
        for m, b in zip(models, backends):
            t = time.perf_counter()
            upscale_array(m, b, frame, tile=1024)
            times[m.colour].append(time.perf_counter() - t)
    print(f"# Y vs RGB coarse x2 ({date.today()}, {platform.processor() or platform.machine()}, 1 thread, torch fp32)\n")
    print("Command: `bash benchmarks/y_vs_rgb/run.sh` (same architecture, steps, data; only the colour space differs).\n")
    print("| network | Set14 PSNR-Y (dB) | Set14 SSIM-Y | ms per 640x360 frame (median of 5, whole pipeline) |")
    print("|---|---|---|---|")
    for m, q in zip(models, quality):
        print(f"| {m.colour} ({sum(p.numel() for p in m.net.parameters()):,} params) | {q.psnr:.2f} | {q.ssim:.4f} | "
              f"{1000 * float(np.median(times[m.colour])):.0f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
