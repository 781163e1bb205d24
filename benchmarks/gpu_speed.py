"""Speed rows for the GPU session: per-frame time of coarse, fine and routed, by precision and frame size.

    python benchmarks/gpu_speed.py --csv OUT.csv [--device cuda] [--frames 640x360,1920x1080] [--seconds 150]

Two kinds of row, in one process (one CUDA start-up), each appended to the CSV as it is measured
so that a run cut short keeps what it measured:

* ``net``: the shipped network alone on the device (BN folded, channels-last), input already on
  the device, timed with CUDA events around each call, median of ``--runs``: fp32, fp16, bf16;
* ``backend``: the project's own path (``realtime-sr bench``'s functions: numpy in, numpy out,
  host copies included), torch on CUDA for coarse and fine, and routed (coarse on the whole frame,
  fine on a quarter of the tiles, on two CUDA streams) on a natural frame; TensorRT rows where
  ``tensorrt`` imports. A precision the backend refuses is a row with the reason.

Without CUDA (the CPU dry run) the same code runs on the CPU, fp32 only, on whatever frames are
given. Rows past ``--seconds`` are written as skipped, with that reason.
"""

from __future__ import annotations

import argparse
import copy
import csv
import importlib.util
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FIELDS = ("kind", "network", "model", "backend", "device", "precision", "frame", "runs", "p50_ms", "mean_ms",
          "fps", "note")


class Rows:
    def __init__(self, path: Path, deadline: float) -> None:
        self.path, self.deadline = path, deadline
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            csv.DictWriter(f, FIELDS).writeheader()

    def add(self, **row) -> None:
        row = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, FIELDS, extrasaction="ignore").writerow(row)
        shown = f"{row['p50_ms']:>9} ms" if row.get("p50_ms") not in (None, "") else f"  {row.get('note', '')}"
        print(f"{row['kind']:7s} {row['network']:7s} {row.get('model', ''):10s} {row.get('backend', ''):22s} "
              f"{row['precision']:5s} {row['frame']:10s} {shown}", flush=True)

    def out_of_time(self) -> bool:
        return time.time() > self.deadline


def time_net(net, x, runs: int, warmup: int, cuda: bool) -> list[float]:
    """Milliseconds per call of ``net(x)``, with CUDA events on a GPU (else a host clock)."""
    import torch

    with torch.inference_mode():
        for _ in range(warmup):
            net(x)
        times = []
        for _ in range(runs):
            if cuda:
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                net(x)
                b.record()
                b.synchronize()  # sync point: read this call's time
                times.append(a.elapsed_time(b))
            else:
                t0 = time.perf_counter()
                net(x)
                times.append((time.perf_counter() - t0) * 1e3)
    return times


def net_rows(rows: Rows, models, frames, precisions, device: str, runs: int, warmup: int) -> None:
    import torch

    from realtime_sr import load_model

    cuda = device == "cuda"
    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    loaded = {name: load_model(name) for name in models}
    for prec in precisions:  # precision outermost: when time runs out, the last one loses rows
        for name, model in loaded.items():
            for w, h in frames:
                base = dict(kind="net", network=name.split("-")[0], model=name, backend="torch-eager",
                            device=device, precision=prec, frame=f"{w}x{h}")
                if rows.out_of_time():
                    rows.add(**base, note="skipped: out of time")
                    continue
                if not cuda and prec != "fp32":
                    rows.add(**base, note="skipped: no CUDA (fp16/bf16 are timed on the GPU)")
                    continue
                try:
                    net = copy.deepcopy(model.net).to(device, dtypes[prec]).eval()
                    x = torch.rand(1, model.in_channels, h, w, device=device, dtype=dtypes[prec])
                    if cuda:
                        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
                    t = time_net(net, x, runs, warmup, cuda)
                except Exception as exc:  # e.g. out of memory: a row saying so, and on to the next
                    rows.add(**base, note=f"failed: {type(exc).__name__}: {str(exc)[:160]}")
                    continue
                finally:
                    if cuda:
                        torch.cuda.empty_cache()
                med = statistics.median(t)
                rows.add(**base, runs=len(t), p50_ms=med, mean_ms=statistics.fmean(t), fps=1e3 / med)


def backend_rows(rows: Rows, scales, frames, precisions, backends, device: str, runs: int, warmup: int) -> None:
    from realtime_sr.bench_cmd import bench_model, bench_routed
    from realtime_sr.models import load_model

    for backend in backends:
        for prec in precisions:
            for scale in scales:
                for w, h in frames:
                    for network in ("coarse", "fine", "routed"):
                        base = dict(kind="backend", network=network, model=f"{network}-x{scale}", backend=backend,
                                    device=device, precision=prec, frame=f"{w}x{h}")
                        if rows.out_of_time():
                            rows.add(**base, note="skipped: out of time")
                            continue
                        try:
                            if network == "routed":
                                r = bench_routed(scale=scale, backend=backend, device=device, precision=prec,
                                                 frame=(w, h), runs=runs, warmup=warmup, log=None)
                            else:
                                r = bench_model(load_model(f"{network}-x{scale}"), network=network, backend=backend,
                                                device=device, precision=prec, frame=(w, h), runs=runs,
                                                warmup=warmup, log=None)
                        except Exception as exc:  # a refused precision or a failure is a row, not the end
                            rows.add(**base, note=f"not run: {type(exc).__name__}: {str(exc)[:160]}")
                            continue
                        rows.add(**base, backend_name=r["backend"], runs=r["runs"], p50_ms=r["p50_ms"],
                                 mean_ms=r["mean_ms"], fps=r["fps"],
                                 note=f"{r['backend']}" + (f"; fine on {r['fine_tiles']} tiles" if r.get("fine_tiles") else ""))


def parse_frames(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        w, _, h = item.lower().partition("x")
        if not (w.isdigit() and h.isdigit()):
            raise SystemExit(f"gpu_speed.py: error: frame {item!r} is not WxH")
        out.append((int(w), int(h)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gpu_speed.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--csv", type=Path, required=True)
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    p.add_argument("--frames", default="640x360,1920x1080", help="LR frame sizes (default 640x360,1920x1080)")
    p.add_argument("--scales", default="2,4")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--seconds", type=float, default=150.0, help="time box: later rows are written as skipped")
    a = p.parse_args(argv)
    import torch

    device = a.device if a.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        print("gpu_speed.py: error: --device cuda, but torch sees no CUDA device", file=sys.stderr)
        return 2
    frames, scales = parse_frames(a.frames), [int(s) for s in a.scales.split(",")]
    rows = Rows(a.csv, time.time() + a.seconds)
    if device == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    models = [f"{role}-x{s}" for s in scales for role in ("coarse", "fine")]
    net_rows(rows, models, frames, ("fp16", "fp32", "bf16"), device, a.runs, a.warmup)
    precisions = ("fp16", "fp32", "bf16") if device == "cuda" else ("fp32",)
    backend_rows(rows, scales, frames, precisions, ["torch"], device, a.runs, a.warmup)
    if device == "cuda" and importlib.util.find_spec("tensorrt") is not None:
        # engine builds take a minute or more each: the smaller frame, fp16 and int8, while time lasts
        backend_rows(rows, scales, frames[:1], ("fp16", "int8"), ["tensorrt"], device, a.runs, a.warmup)
    else:
        rows.add(kind="backend", network="all", backend="tensorrt", device=device, precision="-", frame="-",
                 note="skipped: " + ("tensorrt does not import here" if device == "cuda" else "no CUDA"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
