"""CPU time per LR frame, backend x precision, for the coarse, fine and routed networks, in one interleaved run.

    python benchmarks/cpu_backends.py --scale 2 --frame 640x360            # shipped weights
    python benchmarks/cpu_backends.py --scale 4 --frame 1280x720 --rounds 3
    python benchmarks/cpu_backends.py --scale 2 --random                    # recipe architectures, random weights

Rows: torch fp32, onnxruntime fp32 / int8, OpenVINO fp32 / bf16 / int8 (bf16 only on a CPU with
bf16 units), for coarse, fine and routed (coarse + fine on a quarter of the tiles), plus OpenCV's
ESPCN (``cv2.dnn_superres``, the peers' ``ESPCN_x{2,4}.pb``) on the same frame as a BGR image,
when opencv-contrib is installed. Every backend is built and warmed first; then each round times
every row once, in turn, so load from other processes falls on all rows alike; the table gives
the median over rounds (and the minimum). The frame is the packaged sample photo (natural content:
routing's choice of tiles depends on it). int8 graphs come from the cache (``$REALTIME_SR_CACHE``;
run ``realtime-sr export`` first to have gated ones) or are made on the fly before timing.

Results: benchmarks/results/cpu_<machine>_<date>_x<scale>_<frame>.{csv,md}, with the command line,
CPU model and flags of note, load average and library versions.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from realtime_sr.runtime.cpu import cpu_model  # noqa: E402  (cheap: no heavy imports)

CONFIGS = [("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8"),
           ("openvino", "fp32"), ("openvino", "bf16"), ("openvino", "int8")]
NOTABLE = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8", "avx_vnni")
PEERS = REPO.parent / "shared" / "peers"


def machine() -> str:
    from realtime_sr.runtime.cpu import machine_tag

    return machine_tag()


def recipe_model(role: str, scale: int, folder: Path):
    import tomllib

    import torch

    from realtime_sr.archs import build
    from realtime_sr.checkpoints import save_weights
    from realtime_sr.models import load_model

    recipe = tomllib.loads((REPO / "realtime_sr" / "recipes" / f"{role}_x{scale}.toml").read_text())
    torch.manual_seed(0)
    net = build(recipe["arch"], **recipe["hparams"])
    path = folder / f"{role}_x{scale}.safetensors"
    save_weights(path, net.state_dict(), {
        "arch": recipe["arch"], "hparams": recipe["hparams"], "scale": scale, "colour": recipe.get("colour", "y"),
        "stage": recipe.get("stage", role), "name": f"{role}-x{scale}-random",
        "training": {"data": [str(REPO / d) for d in recipe.get("data", {}).get("train_dirs", [])]}})
    return load_model(path)


def available(backend: str, precision: str) -> str | None:
    """None if the row can run here, else why not."""
    from realtime_sr.runtime import cpu

    if backend == "openvino" and not cpu.openvino_available():
        return "OpenVINO not installed"
    if precision == "bf16" and not cpu.cpu_features().bf16:
        return "no bf16 units on this CPU"
    return None


def build_rows(scale: int, random: bool, tmp: Path, fraction: float, skip: set = frozenset()):
    """[(network, model name, backend, precision, callable taking the frame)], skipped rows with a reason."""
    from realtime_sr import routing
    from realtime_sr.models import load_model, shipped_models
    from realtime_sr.runtime import make_backend

    shipped = shipped_models()
    models = {}
    for role in ("coarse", "fine"):
        name = f"{role}-x{scale}"
        models[role] = load_model(name) if (name in shipped and not random) else recipe_model(role, scale, tmp)
    rows, skipped = [], []
    for network in ("coarse", "fine", "routed"):
        for backend, precision in CONFIGS:
            why = "skipped (--skip)" if f"{backend}:{network}" in skip else available(backend, precision)
            if why:
                skipped.append(f"{network} {backend} {precision}: {why}")
                continue
            kw = dict(backend=backend, device="cpu", precision=precision, log=None)
            if network == "routed":
                model = routing.RoutedModel(models["coarse"], models["fine"])
                be = routing.backend_for(model, options=routing.RouteOptions(fraction=fraction), **kw)
            else:
                model = models[network]
                be = make_backend(model, **kw)
            rows.append((network, model.name, be.name, backend, precision, be, getattr(model, "context", 24)))
    return rows, skipped


def espcn(scale: int, threads: int):
    """OpenCV's ESPCN as a callable on a BGR uint8 image, or None (why) without opencv-contrib or the peers."""
    try:
        import cv2
    except ImportError:
        return None, "opencv-contrib-python(-headless) not installed"
    pb = PEERS / f"ESPCN_x{scale}.pb"
    if not hasattr(cv2, "dnn_superres") or not pb.is_file():
        return None, f"cv2.dnn_superres or {pb} missing"
    cv2.setNumThreads(threads)
    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    sr.readModel(str(pb))
    sr.setModel("espcn", scale)
    return sr.upsample, f"OpenCV {cv2.__version__} dnn_superres ESPCN_x{scale}.pb"


def report(a, times, w, h, threads, load_before, skipped, up, espcn_what, done: int, quiet: bool = False) -> None:
    """Write the csv and md for the rounds done so far (so a run stopped by a time limit still leaves them)."""
    import onnxruntime
    import torch

    from realtime_sr.runtime import cpu

    load_after = os.getloadavg()
    results = []
    for (network, model, backend, engine, precision), ts in times.items():
        t = np.array(ts)
        results.append({"network": network, "model": model, "backend": backend, "engine": engine,
                        "precision": precision,
                        "frame": f"{w}x{h}", "scale": a.scale, "rounds": len(t), "p50_ms": float(np.median(t)),
                        "min_ms": float(t.min()), "fps": float(1e3 / np.median(t))})
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    stem = Path(a.out) / f"cpu_{machine()}_{date}_x{a.scale}_{w}x{h}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(results[0]))
        wr.writeheader()
        for r in results:
            wr.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})
    flags = sorted(set(NOTABLE) & cpu.read_flags())
    cmd = "python " + " ".join(["benchmarks/cpu_backends.py", *sys.argv[1:]])
    versions = f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__}"
    if cpu.openvino_available():
        import openvino

        versions += f", OpenVINO {openvino.__version__.split('-')[0]} ({threads} threads, 1 stream, LATENCY)"
    if up is not None:
        versions += f", {espcn_what}"
    md = [f"# CPU backends x precisions, {w}x{h} LR frame, x{a.scale}", "",
          f"- command: `{cmd}` (other jobs on the machine paused or stopped)",
          f"- date: {date}; machine: {cpu_model()} ({platform.machine()}), {os.cpu_count()} logical cores; "
          f"flags of note: {', '.join(flags) or 'none'}",
          f"- load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} (other jobs share the 2 cores: "
          "absolute times are pessimistic, ratios within this table are what it measures)",
          f"- {versions}",
          f"- weights: {'random, recipe architectures' if a.random else 'shipped'}; frame: the packaged sample photo"
          + (f"; coarse and fine in tiles of {a.tile} LR pixels plus their context" if a.tile else ""),
          f"- {a.warmup} warm-up calls per row (OpenVINO {max(a.warmup, 2)}), then {done} interleaved rounds; median (min) ms per frame, "
          "numpy in/out; routed: fine on {:g} of the 32x32 tiles".format(a.fine_fraction), "",
          "| network | model | backend | precision | ms per frame | min | fps | speed vs onnxruntime fp32 "
          "| vs torch fp32 | vs ESPCN |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]

    def base(r, engine):
        b = next((x for x in results if x["network"] == r["network"] and x["engine"] == engine
                  and x["precision"] == "fp32"), None)
        return f"{b['p50_ms'] / r['p50_ms']:.2f}x" if b else "-"

    ref = next((x for x in results if x["engine"] == "opencv"), None)
    for r in results:
        vs = f"{ref['p50_ms'] / r['p50_ms']:.2f}x" if ref else "-"
        md.append(f"| {r['network']} | {r['model']} | {r['engine']} | {r['precision']} | {r['p50_ms']:.1f} | "
                  f"{r['min_ms']:.1f} | {r['fps']:.2f} | {base(r, 'onnxruntime')} | {base(r, 'torch')} | {vs} |")
    if skipped:
        md += ["", "Not run: " + "; ".join(skipped) + "."]
    if up is not None:
        md += ["", "ESPCN runs through OpenCV's whole `upsample()` on a BGR image (its own colour conversion and "
               "chroma resize included); the networks here take the Y plane. \"vs ESPCN\": ESPCN's time over "
               "the row's (above 1: faster than ESPCN)."]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    if not quiet:
        print("\n".join(md))
        print(f"wrote {stem.with_suffix('.csv')} and {stem.with_suffix('.md')}", file=sys.stderr)

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=2, choices=(2, 4))
    ap.add_argument("--frame", default="640x360", help="LR frame WxH")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds (default 5)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls per row first (default 2; OpenVINO rows "
                    "at least 2: the second call compiles the frame's static shape)")
    ap.add_argument("--fine-fraction", type=float, default=0.25)
    ap.add_argument("--random", action="store_true", help="recipe architectures with random weights")
    ap.add_argument("--skip", default="", help="rows not to time, BACKEND:NETWORK comma-separated (e.g. "
                    "torch:fine,torch:routed: seconds per frame at 1280x720, which a 4-minute run cannot afford)")
    ap.add_argument("--tile", type=int, default=0, help="run coarse and fine in tiles of this many LR pixels (with "
                    "their context, as realtime_sr.upscale does); routed tiles itself. Large x4 frames need it: "
                    "1280x720 whole takes more than 24 GB over all rows")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    a = ap.parse_args(argv)

    from realtime_sr.bench_cmd import natural_frame, parse_frame
    from realtime_sr.runtime import cpu

    w, h = parse_frame(a.frame)
    tmp = Path(tempfile.mkdtemp(prefix="rsr-bench-"))
    os.environ.setdefault("REALTIME_SR_CACHE", str(tmp / "cache"))
    threads = cpu.cpu_threads()
    rows, skipped = build_rows(a.scale, a.random, tmp, a.fine_fraction, {v.strip() for v in a.skip.split(",") if v})
    x = natural_frame(w, h)
    if a.tile:
        from realtime_sr.upscale import run_tiled

        timers = [(r[:5], (lambda be=r[5], c=r[6]: run_tiled(be, x[0], a.scale, tile=a.tile, context=c))) for r in rows]
    else:
        timers = [(r[:5], (lambda be=r[5]: be(x))) for r in rows]
    up, espcn_what = espcn(a.scale, threads)
    if up is not None:
        bgr = np.ascontiguousarray((np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(
            REPO / "realtime_sr" / "assets" / "sample.png").convert("RGB").resize((w, h)))[:, :, ::-1]))
        timers.append((("espcn", f"ESPCN-x{a.scale}", "opencv-dnn", "opencv", "fp32"), lambda: up(bgr)))
    else:
        skipped.append(f"espcn: {espcn_what}")
    load_before = os.getloadavg()
    for key, run in timers:  # OpenVINO compiles a static shape on its second call: warm it past that
        for _ in range(max(a.warmup, 2) if key[3] == "openvino" else a.warmup):
            run()
    times = {key: [] for key, _ in timers}
    for i in range(a.rounds):
        for key, run in timers:
            t0 = time.perf_counter()
            run()
            times[key].append((time.perf_counter() - t0) * 1e3)
        print(f"round {i + 1}/{a.rounds} done", file=sys.stderr, flush=True)
        report(a, times, w, h, threads, load_before, skipped, up, espcn_what, i + 1, quiet=i + 1 < a.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
