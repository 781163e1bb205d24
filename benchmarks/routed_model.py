"""Routed mode, the model alone: ms per frame of RoutedBackend on real frames, split by step.

    /tmp/quiet.sh python benchmarks/routed_model.py [--scale 2] [--rounds 5] [--compare-with DIR --label NAME]

Frames: every 10th frame of ``chaplin.mp4`` (8 frames, Y plane as the video pipeline feeds it),
x2 from 640x360 (x4: the frames scaled to 480x270 first), the shipped real coarse and fine
models, ``--backend auto`` and ``--precision auto`` resolved as ``video`` resolves them,
``RouteOptions(hold=VIDEO_HOLD)`` as in video. Each round runs the 8 frames once; the first
round is a warm-up and is not counted. Rows: total, the two networks (coarse call, fine calls),
the error estimate's bicubic, and everything else routing does (score, selection, gathers, blend).
``--compare-with DIR`` runs the same measurement for another checkout (DIR first on PYTHONPATH,
this interpreter) in a subprocess, alternating rounds with this one, so the two are timed side
by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

CLIP = ROOT.parent / "shared" / "data" / "videos" / "chaplin.mp4"


def frames(scale: int) -> list[np.ndarray]:
    import av
    from PIL import Image

    out = []
    with av.open(str(CLIP)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % 10:
                continue
            y = f.to_ndarray(format="gray")
            if scale == 4:
                y = np.asarray(Image.fromarray(y).resize((480, 270), Image.BICUBIC))
            out.append(np.ascontiguousarray(y, dtype=np.float32)[None, None] / 255.0)
            if len(out) == 8:
                break
    return out


def worker(scale: int) -> None:
    """Serve rounds on stdin/stdout: read a line, run one round, print its timings as JSON."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from realtime_sr import routing

    xs = frames(scale)
    _, be = routing.load(None, scale=scale, mode="routed", backend="auto", precision="auto", variant="real",
                         options=routing.RouteOptions(hold=routing.VIDEO_HOLD), realtime=True)  # as video does
    acc = {"coarse": 0.0, "fine": 0.0, "bicubic": 0.0}

    def timed(key, fn):
        def call(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                acc[key] += time.perf_counter() - t
        return call

    be.coarse, be.fine = timed("coarse", be.coarse), timed("fine", be.fine)
    if hasattr(be, "_bicubic"):
        be._bicubic = timed("bicubic", be._bicubic)
    print(json.dumps({"backend": be.name}), flush=True)
    for _ in sys.stdin:
        for k in acc:
            acc[k] = 0.0
        t = time.perf_counter()
        for x in xs:
            be(x)
        total = time.perf_counter() - t
        row = {k: 1e3 * v / len(xs) for k, v in acc.items()}
        row["total"] = 1e3 * total / len(xs)
        row["other"] = row["total"] - row["coarse"] - row["fine"] - row["bicubic"]
        print(json.dumps(row), flush=True)


def start(checkout: Path, scale: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(checkout) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", "--scale", str(scale)],
                            cwd=checkout, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, choices=(2, 4), default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--compare-with", type=Path)
    ap.add_argument("--label", default="other")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if a.worker:
        worker(a.scale)
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from video_e2e import machine  # puts this checkout on sys.path: not in the workers

    if not CLIP.is_file():
        print(f"routed_model: {CLIP} not found (the shared data is needed)", file=sys.stderr)
        return 1
    runs = {"this checkout": start(ROOT, a.scale)}
    if a.compare_with:
        runs[a.label] = start(a.compare_with.resolve(), a.scale)
    names = {k: json.loads(p.stdout.readline())["backend"] for k, p in runs.items()}
    rows: dict[str, list[dict]] = {k: [] for k in runs}
    for r in range(a.rounds + 1):  # round 0: warm-up
        for k, p in runs.items():
            p.stdin.write("go\n")
            p.stdin.flush()
            row = json.loads(p.stdout.readline())
            if r:
                rows[k].append(row)
    for p in runs.values():
        p.stdin.close()
        p.wait()
    cols = ("total", "coarse", "fine", "bicubic", "other")
    lines = [f"# Routed x{a.scale}, the model alone, ms per frame (median of {a.rounds} interleaved rounds of 8 frames)",
             "",
             f"- command: `python benchmarks/routed_model.py --scale {a.scale} --rounds {a.rounds}"
             + (f" --compare-with {a.compare_with} --label {a.label}`" if a.compare_with else "`"),
             f"- machine: {machine()}; date {time.strftime('%Y-%m-%d')}",
             f"- frames: every 10th of chaplin.mp4, Y, {'640x360' if a.scale == 2 else '480x270'}; "
             "shipped real models, backend auto, hold 1.5", "",
             "| checkout | backend | " + " | ".join(cols) + " |", "|---|---|" + "---:|" * len(cols)]
    for k, rs in rows.items():
        lines.append(f"| {k} | {names[k]} | " + " | ".join(f"{np.median([r[c] for r in rs]):.1f}" for c in cols) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
