"""``realtime-sr bench``: time the coarse and fine networks per frame on a chosen backend and precision.

A measurement tool, not a test: warm-up runs, then timed runs; percentiles per network. Heavy
imports happen in the handler.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def add_parser(sub, add_model_flags) -> argparse.ArgumentParser:
    p = sub.add_parser("bench", help="time the coarse and fine networks per frame (backend, precision, percentiles)")
    add_model_flags(p)
    p.add_argument("--networks", default="coarse,fine,routed",
                   help="what to time, comma-separated from coarse, fine, routed (the coarse network plus the "
                        "fine one on --fine-fraction of the tiles), gan; default coarse,fine,routed; "
                        "--model times one")
    p.add_argument("--frame", default="640x360", help="LR frame size WxH fed to each network (default 640x360)")
    p.add_argument("--tiles", metavar="KxT", help="time a batch of K tiles of T x T LR pixels instead of a frame "
                   "(the fine network's shape in --mode routed; TensorRT builds a static engine for it), e.g. 16x40")
    p.add_argument("--runs", type=int, default=10, help="timed runs (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed warm-up runs (default 2)")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    p.add_argument("--csv", metavar="FILE", help="also append CSV rows to FILE")
    p.set_defaults(func=run_bench)
    return p


FIELDS = ("network", "model", "backend", "precision", "frame", "scale", "runs", "p50_ms", "p90_ms", "mean_ms",
          "min_ms", "fps", "fine_tiles")


def parse_frame(text: str) -> tuple[int, int]:
    """'640x360' -> (640, 360); also '16x40' for --tiles (K, T)."""
    from .errors import UsageError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"expected AxB (e.g. 640x360 or 16x40), not {text!r}") from None
    if w < 1 or h < 8:
        raise UsageError(f"{text}: too small")
    return w, h


def time_backend(backend, x, *, runs: int = 10, warmup: int = 2) -> dict:
    """Per-call wall-clock times (ms) of ``backend(x)``: percentiles, mean, min."""
    import numpy as np

    for _ in range(max(0, warmup)):
        backend(x)
    times = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        backend(x)  # numpy out: includes the device -> host copy, i.e. a full sync
        times.append((time.perf_counter() - t0) * 1e3)
    t = np.array(times)
    return {"runs": len(t), "p50_ms": float(np.percentile(t, 50)), "p90_ms": float(np.percentile(t, 90)),
            "mean_ms": float(t.mean()), "min_ms": float(t.min()), "fps": float(1e3 / np.percentile(t, 50))}


def bench_model(model, *, network: str, backend: str, device: str, precision: str, frame=(640, 360),
                tiles: tuple[int, int] | None = None, runs: int = 10, warmup: int = 2, log=None,
                seed: int = 0) -> dict:
    """Time ``model`` on one LR frame (W, H), or on a batch of ``tiles`` = (K, T): K tiles of T x T."""
    import numpy as np

    from .runtime import make_backend

    be = make_backend(model, backend=backend, device=device, precision=precision, tile_batch=tiles, log=log)
    n, (w, h) = (tiles[0], (tiles[1], tiles[1])) if tiles else (1, frame)
    x = np.random.default_rng(seed).random((n, model.in_channels, h, w), dtype=np.float32) * 0.86 + 0.06
    stats = time_backend(be, x, runs=runs, warmup=warmup)
    return {"network": network, "model": model.name, "backend": be.name, "precision": precision,
            "frame": f"{n}x{w}x{h}" if tiles else f"{w}x{h}", "scale": model.scale, **stats}


def natural_frame(w: int, h: int, channels: int = 1):
    """(1, C, h, w) float32 from the packaged sample photo at its own scale (mirrored to cover the frame).

    Routing depends on the content (noise would make every tile look detailed), so it is timed on
    a real photo; the networks alone are timed on noise, their speed does not depend on it.
    """
    import numpy as np
    from PIL import Image

    from .colour import rgb_to_y
    from .export.artifacts import SAMPLE

    rgb = np.asarray(Image.open(SAMPLE).convert("RGB"), dtype=np.float32) / 255.0
    ry, rx = -(-h // rgb.shape[0]), -(-w // rgb.shape[1])  # copies needed down and across
    rows = [np.concatenate([rgb[::1 - 2 * (i % 2), ::1 - 2 * (j % 2)] for j in range(rx)], axis=1) for i in range(ry)]
    rgb = np.concatenate(rows, axis=0)[:h, :w]
    x = (rgb_to_y(rgb) / 255.0)[None] if channels == 1 else rgb.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None], dtype=np.float32)


def bench_routed(*, scale: int | None, model_arg=None, backend: str, device: str, precision: str, frame=(640, 360),
                 runs: int = 10, warmup: int = 2, fine_fraction: float = 0.25, log=None) -> dict:
    """Time coarse + routed fine on a natural frame; the row also says how many tiles went to fine."""
    from . import routing

    model, be = routing.load(model_arg, scale=scale, mode="routed", backend=backend, device=device,
                             precision=precision, options=routing.RouteOptions(fraction=fine_fraction), log=log)
    x = natural_frame(*frame, channels=model.in_channels)
    stats = time_backend(be, x, runs=runs, warmup=warmup)
    return {"network": "routed", "model": model.name, "backend": be.name, "precision": precision,
            "frame": f"{frame[0]}x{frame[1]}", "scale": model.scale,
            "fine_tiles": f"{be.last.get('fine', 0)}/{be.last.get('tiles', 0)}", **stats}


def format_table(rows: list[dict]) -> str:
    mw = max([len("model")] + [len(r["model"]) for r in rows])
    bw = max([len("backend")] + [len(r["backend"]) for r in rows])
    head = f"{'network':8s} {'model':{mw}s} {'backend':{bw}s} {'input':9s} {'p50 ms':>9s} {'p90 ms':>9s} {'fps':>7s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['network']:8s} {r['model']:{mw}s} {r['backend']:{bw}s} {r['frame']:9s} "
                     f"{r['p50_ms']:9.1f} {r['p90_ms']:9.1f} {r['fps']:7.2f}")
    lines += [f"{r['model']}: the fine network ran on {r['fine_tiles']} tiles of the frame"
              for r in rows if r.get("fine_tiles")]
    return "\n".join(lines)


def write_csv(path, rows: list[dict]) -> None:
    import csv
    from pathlib import Path

    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        if new:
            wr.writeheader()
        for r in rows:
            wr.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})


def run_bench(a) -> int:
    from .errors import UsageError
    from .models import load_model

    frame = parse_frame(a.frame)
    tiles = None
    if a.tiles:
        k, t = parse_frame(a.tiles)
        tiles = (k, t)
    log = lambda m: print(f"realtime-sr: {m}", file=sys.stderr)  # noqa: E731
    targets = [(a.model, None)] if a.model else [(None, n.strip()) for n in a.networks.split(",") if n.strip()]
    rows = []
    for model_arg, net in targets:
        if net == "routed" or (model_arg and a.mode == "routed"):
            if tiles:
                if model_arg:
                    raise UsageError("--tiles times one network; routing makes its own tiles (drop --tiles)")
                log("routed skipped: --tiles times single networks (routing makes its own tiles)")
                continue
            rows.append(bench_routed(scale=a.scale, model_arg=model_arg, backend=a.backend, device=a.device,
                                     precision=a.precision, frame=frame, runs=a.runs, warmup=a.warmup,
                                     fine_fraction=a.fine_fraction, log=log))
            continue
        model = load_model(model_arg, scale=a.scale if model_arg is None else None, mode=net or a.mode)
        rows.append(bench_model(model, network=net or model.meta.get("stage", "model"), backend=a.backend,
                                device=a.device, precision=a.precision, frame=frame, tiles=tiles, runs=a.runs,
                                warmup=a.warmup, log=log))
    if a.json:
        print(json.dumps(rows, indent=1))
    else:
        print(format_table(rows))
    if a.csv:
        write_csv(a.csv, rows)
    return 0
