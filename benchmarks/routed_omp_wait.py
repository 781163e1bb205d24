"""Routed on OpenVINO bf16 beside torch's OpenMP threads: torch at 1 vs 2 threads, interleaved.

    python benchmarks/routed_omp_wait.py [ROUNDS]                          # torch's default wait policy
    OMP_WAIT_POLICY=PASSIVE python benchmarks/routed_omp_wait.py [ROUNDS]  # idle OpenMP threads sleep

Routing runs its scores, gather and blend in torch between the two OpenVINO networks. torch's
OpenMP threads spin-wait after each parallel region by default, on the cores OpenVINO's threads
need next (the same starvation onnxruntime's spinning caused, docs/routing.md). Prints the median
(min) ms per 640x360 x2 frame for torch at 1 and 2 threads, and the load average.
"""

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    import torch

    from realtime_sr import routing
    from realtime_sr.bench_cmd import natural_frame
    from realtime_sr.models import load_model

    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    x = natural_frame(640, 360)
    m = routing.RoutedModel(load_model("coarse-x2"), load_model("fine-x2"))
    be = routing.backend_for(m, backend="openvino", device="cpu", precision="bf16", log=None)
    for _ in range(3):
        be(x)
    ts = {1: [], 2: []}
    for _ in range(rounds):
        for n in ts:
            torch.set_num_threads(n)
            t = time.perf_counter()
            be(x)
            ts[n].append(1e3 * (time.perf_counter() - t))
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(default)')}: "
          + ", ".join(f"torch {n} thread(s) {np.median(v):.0f} ms (min {min(v):.0f})" for n, v in ts.items())
          + f"; load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
