"""``realtime-sr bench``: quality and speed of each mode x backend x precision, to help choose.

Each row times one network (or routing) on a chosen backend and precision: warm-up runs, then
timed runs, percentiles, ms per frame and fps. Beside that it gives the row's PSNR on a folder
(Set14 under ../shared/data/images when present, ``--data DIR`` otherwise), measured through
the very backend that was timed, so an int8 or bf16 row shows what that precision costs in
quality. ``--video`` adds end-to-end rows (decode + model + encode, ``realtime-sr video``'s own
path) on a given or a generated clip, and ``--plot FILE`` draws PSNR against fps with the
Pareto front marked (:mod:`realtime_sr.plot`). A measurement tool, not a test; heavy imports
happen in the handler.
"""

from __future__ import annotations

import argparse
import json
import time


def add_parser(sub, add_model_flags) -> argparse.ArgumentParser:
    p = sub.add_parser("bench", help="quality (PSNR) and speed (ms, fps) of each mode x backend x precision",
                       description="Time each network (mode) on each backend and precision, measure its PSNR "
                                   "on a folder through the same backend, optionally end to end on a clip, "
                                   "and plot quality against speed.")
    add_model_flags(p)
    p.add_argument("--networks", default="coarse,fine,routed",
                   help="what to time, comma-separated from coarse, fine, routed (the coarse network plus the "
                        "fine one on --fine-fraction of the tiles), gan; default coarse,fine,routed; "
                        "--model times one")
    p.add_argument("--backends", metavar="LIST",
                   help="comma-separated backends to compare (or 'all': every one the runtime knows); "
                        "default: --backend. Combinations a machine cannot run are skipped with a note")
    p.add_argument("--precisions", metavar="LIST",
                   help="comma-separated precisions to compare (or 'all'); default: --precision")
    p.add_argument("--frame", default="640x360", help="LR frame size WxH fed to each network (default 640x360)")
    p.add_argument("--tiles", metavar="KxT", help="time a batch of K tiles of T x T LR pixels instead of a frame "
                   "(the fine network's shape in --mode routed; TensorRT builds a static engine for it), e.g. 16x40")
    p.add_argument("--runs", type=int, default=10, help="timed runs (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed warm-up runs (default 2)")
    p.add_argument("--data", metavar="DIR", help="folder of HR images for the PSNR column (default: Set14 under "
                   "../shared/data/images when present)")
    p.add_argument("--no-psnr", dest="psnr", action="store_false", help="time only, no PSNR column")
    p.add_argument("--video", nargs="?", const="", metavar="FILE",
                   help="also time each row end to end (decode + model + encode) on FILE, or without FILE on a "
                        "generated clip of --frame size")
    p.add_argument("--video-seconds", type=float, default=2.0, metavar="S",
                   help="how much of the clip the end-to-end rows run (default 2 s)")
    p.add_argument("--plot", metavar="FILE", help="write a PNG of PSNR against fps, the Pareto front marked")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    p.add_argument("--csv", metavar="FILE", help="also append CSV rows to FILE")
    p.set_defaults(func=run_bench)
    return p


FIELDS = ("network", "model", "backend", "precision", "frame", "scale", "runs", "p50_ms", "p90_ms", "mean_ms",
          "min_ms", "fps", "fine_tiles", "psnr", "data", "kind")


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
                seed: int = 0, quality=None) -> dict:
    """Time ``model`` on one LR frame (W, H), or on a batch of ``tiles`` = (K, T): K tiles of T x T.
    ``quality(model, backend)``: more columns for the row (PSNR), measured through the same backend."""
    import numpy as np

    from .runtime import make_backend

    be = make_backend(model, backend=backend, device=device, precision=precision, tile_batch=tiles, log=log)
    n, (w, h) = (tiles[0], (tiles[1], tiles[1])) if tiles else (1, frame)
    x = np.random.default_rng(seed).random((n, model.in_channels, h, w), dtype=np.float32) * 0.86 + 0.06
    stats = time_backend(be, x, runs=runs, warmup=warmup)
    return {"network": network, "model": model.name, "backend": be.name, "precision": precision,
            "frame": f"{n}x{w}x{h}" if tiles else f"{w}x{h}", "scale": model.scale, **stats,
            **(quality(model, be) if quality else {})}


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
                 runs: int = 10, warmup: int = 2, fine_fraction: float = 0.25, log=None, quality=None) -> dict:
    """Time coarse + routed fine on a natural frame; the row also says how many tiles went to fine."""
    from . import routing

    model, be = routing.load(model_arg, scale=scale, mode="routed", backend=backend, device=device,
                             precision=precision, options=routing.RouteOptions(fraction=fine_fraction), log=log)
    x = natural_frame(*frame, channels=model.in_channels)
    stats = time_backend(be, x, runs=runs, warmup=warmup)
    row = {"network": "routed", "model": model.name, "backend": be.name, "precision": precision,
           "frame": f"{frame[0]}x{frame[1]}", "scale": model.scale,
           "fine_tiles": f"{be.last.get('fine', 0)}/{be.last.get('tiles', 0)}", **stats}
    return {**row, **(quality(model, be) if quality else {})}  # after the tile count: PSNR images change it


def _cell(v, fmt: str) -> str:
    return format("-", f">{fmt.split('.')[0]}") if v is None else format(v, fmt)


def format_table(rows: list[dict], *, notes: list[str] = ()) -> str:
    mw = max([len("model")] + [len(r["model"]) for r in rows])
    bw = max([len("backend")] + [len(r["backend"]) for r in rows])
    quality = any(r.get("psnr") is not None for r in rows)
    head = (f"{'network':8s} {'model':{mw}s} {'backend':{bw}s} {'input':9s} {'ms/frame':>9s} {'p90 ms':>9s} "
            f"{'fps':>7s}" + (f" {'PSNR dB':>8s}" if quality else ""))
    lines = [head, "-" * len(head)]
    for r in rows:
        name = r["network"] if r.get("kind", "model") == "model" else f"{r['network']}*"
        lines.append(f"{name:8s} {r['model']:{mw}s} {r['backend']:{bw}s} {r['frame']:9s} "
                     f"{r['p50_ms']:9.1f} {_cell(r.get('p90_ms'), '9.1f')} {r['fps']:7.2f}"
                     + (f" {_cell(r.get('psnr'), '8.2f')}" if quality else ""))
    lines += list(dict.fromkeys(f"{r['model']}: the fine network ran on {r['fine_tiles']} tiles of the frame"
                                for r in rows if r.get("fine_tiles")))  # once per distinct count
    videos = {r["clip"] for r in rows if r.get("kind") == "video"}
    if videos:
        lines.append(f"* end to end on {', '.join(sorted(videos))}: decode + model + encode, ms and fps per frame "
                     "of the whole pipeline")
    return "\n".join(lines + list(notes))


def write_csv(path, rows: list[dict]) -> None:
    import csv
    from pathlib import Path

    from .errors import OutputError

    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    try:
        with open(path, "a", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
            if new:
                wr.writeheader()
            for r in rows:
                wr.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})
    except OSError as exc:
        raise OutputError(f"--csv {path}: cannot write ({exc.strerror or exc})") from None


def _choices(arg: str | None, default: str, known: tuple[str, ...], flag: str) -> list[str]:
    """``--backends``/``--precisions``: a comma list of known values, 'all' (every one but auto), or the default."""
    from .errors import UsageError

    if not arg:
        return [default]
    if arg.strip() == "all":
        return [v for v in known if v != "auto"]
    vals = [v.strip() for v in arg.split(",") if v.strip()]
    bad = [v for v in vals if v not in known]
    if bad or not vals:
        raise UsageError(f"{flag}: unknown {', '.join(bad) or repr(arg)}; known: {', '.join(known)} or all")
    return vals


def _row(a, model_arg, net, backend: str, precision: str, frame, tiles, quality, log) -> dict | None:
    from .errors import UsageError
    from .models import load_model

    if net == "routed" or (a.model and a.mode == "routed"):
        if tiles:
            if a.model:
                raise UsageError("--tiles times one network; routing makes its own tiles (drop --tiles)")
            log("routed skipped: --tiles times single networks (routing makes its own tiles)")
            return None
        return bench_routed(scale=a.scale, model_arg=model_arg, backend=backend, device=a.device,
                            precision=precision, frame=frame, runs=a.runs, warmup=a.warmup,
                            fine_fraction=a.fine_fraction, log=log, quality=quality)
    model = load_model(model_arg, scale=a.scale if model_arg is None else None, mode=net or a.mode)
    return bench_model(model, network=net or model.meta.get("stage", "model"), backend=backend,
                       device=a.device, precision=precision, frame=frame, tiles=tiles, runs=a.runs,
                       warmup=a.warmup, log=log, quality=quality)


def _default_model(network: str, scale: int | None, variant: str) -> str | None:
    """--variant real: the shipped real-world model for a network (routed: its fine one); None: clean."""
    from .models import default_name

    if variant == "clean" or network not in ("coarse", "fine", "routed", "gan"):
        return None
    return default_name("fine" if network == "routed" else network, scale, variant)


def _quality(a, tiles, scale: int, notes: list[str]):
    """The PSNR measure for the rows (None, with a note, when there is no folder to measure on)."""
    from . import bench_quality as bq
    from .errors import UsageError

    if not a.psnr or tiles:
        if a.plot:
            raise UsageError("--plot draws PSNR against fps: it needs the PSNR column (drop --no-psnr / --tiles)")
        return None
    folder = bq.find_data(a.data)
    if folder is None:
        if a.plot:
            raise UsageError(bq.NO_DATA.replace("no PSNR", "--plot needs PSNR"))
        notes.append(bq.NO_DATA)
        return None
    return bq.Quality(folder, scale)


def run_bench(a) -> int:
    import tempfile
    from pathlib import Path

    from . import bench_quality as bq
    from .errors import BackendError, RealtimeSRError, UsageError
    from .models import pick_scale
    from .runtime import BACKENDS, PRECISIONS

    frame = parse_frame(a.frame)
    tiles = parse_frame(a.tiles) if a.tiles else None
    if a.runs < 1 or a.warmup < 0:
        raise UsageError("--runs must be at least 1 and --warmup at least 0")
    for flag, target in (("--plot", a.plot), ("--csv", a.csv)):  # before any timing, not after it
        if target and not Path(target).resolve().parent.is_dir():
            raise UsageError(f"{flag} {target}: its folder does not exist")
        if target and Path(target).is_dir():
            raise UsageError(f"{flag} {target}: is a folder; give a file name")
    if a.video is not None and (tiles or a.video_seconds <= 0):
        raise UsageError("--video needs a frame, not --tiles, and --video-seconds > 0")
    if a.video == "" and min(frame) < 32:
        raise UsageError(f"--video without FILE generates a clip of --frame size, at least 32x32 (not {a.frame}); "
                         "pass a larger --frame or a clip")
    backends = _choices(a.backends, a.backend, BACKENDS, "--backends")
    precisions = _choices(a.precisions, a.precision, PRECISIONS, "--precisions")
    log = bq.say
    variant = getattr(a, "variant", None) or "clean"
    targets = [(a.model, None)] if a.model else [(_default_model(n.strip(), a.scale, variant), n.strip())
                                                 for n in a.networks.split(",") if n.strip()]
    notes: list[str] = []
    quality = _quality(a, tiles, pick_scale(a.model, a.scale), notes)
    combos = [(m, n, b, p) for m, n in targets for b in backends for p in precisions]
    rows, asked = [], []
    for model_arg, net, backend, precision in combos:
        try:
            row = _row(a, model_arg, net, backend, precision, frame, tiles, quality, log)
        except RealtimeSRError as exc:
            if len(combos) == 1:
                raise
            log(f"skipped {net or model_arg} on {backend} {precision}: {exc}")
            continue
        if row:
            rows.append({**row, "kind": "model"})
            asked.append((model_arg, net or a.mode, backend, precision))
    if not rows and combos:
        raise BackendError("every combination was skipped (reasons above)")
    if a.video is not None:
        with tempfile.TemporaryDirectory(prefix="rsr-bench-") as d:
            clip = bq.clip_for(a.video, frame, a.video_seconds, Path(d))
            for r, (model_arg, mode, backend, precision) in zip(list(rows), asked):
                v = bq.bench_video(clip, model_arg=model_arg, scale=r["scale"], mode=mode, backend=backend,
                                   device=a.device, precision=precision, seconds=a.video_seconds,
                                   fine_fraction=a.fine_fraction)
                rows.append({**v, "network": r["network"], "model": r["model"], "backend": r["backend"]})
    bicubic = None
    if quality is not None:
        bicubic = (bq.bicubic_fps(frame, quality.scale), quality.bicubic())  # the reference point
        notes.append(f"bicubic: {bicubic[1]:.2f} dB on {quality.folder.name} x{quality.scale}, "
                     f"{bicubic[0]:.0f} fps (PIL, the Y plane)")
    if a.json:
        print(json.dumps(rows, indent=1))
        for n in notes:
            log(n)
    else:
        print(format_table(rows, notes=notes))
    if a.csv:
        write_csv(a.csv, rows)
    if a.plot:
        bq.plot_rows(rows, a.plot, bicubic=bicubic, frame=a.frame)
        log(f"plot written to {a.plot}")
    return 0
