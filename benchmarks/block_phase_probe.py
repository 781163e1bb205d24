"""Where in the codec's block grid do the networks' errors lie? A probe for grid-aware networks.

    python benchmarks/block_phase_probe.py [--crf 23,28] [--start 90] [--frames 4]
        [--methods bicubic,coarse-x2-real,fine-x2-real-strong]

The clips of ``real_video.py`` (four clips, x2, one libx264 clip per CRF, preset medium): each
method's squared error on the HR Y plane, folded by position in the LR frame's block grid: the
HR pixels next to an edge of a 4x4 LR block (the transform grid H.264 codes on, its 8x8 lying on
the same lines; one HR pixel each side of the edge) against the rest. A network that knew the grid
(which no fully convolutional network does) could at best bring the edge pixels down to the
others' error; ``ceiling`` is that gain in dB, the most such a network could add over the same
network blind to it. The clips' originals are web video with block grids of their own (at HR
multiples of 4 and 8, on the same lines), so the lossless rows show what is not this encode's:
compare each CRF row with them. Writes benchmarks/results/block_phase_probe_<date>.md.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from real_video import CLIPS, VIDEOS, load_method, lr_planes, read_run  # noqa: E402

from realtime_sr.colour import rgb_to_y  # noqa: E402

SCALE, BLOCK = 2, 4  # LR transform block; in HR its edge pixels are its first and last row and column


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crf", default="23,28")
    ap.add_argument("--start", type=int, default=90)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--methods", default="bicubic,coarse-x2-real,fine-x2-real-strong")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if not VIDEOS.is_dir():
        print(f"block_phase_probe: {VIDEOS} not found (the shared data is needed)", file=sys.stderr)
        return 1
    names = a.methods.split(",")
    fns = {m: load_method(m, SCALE) for m in names}
    p = BLOCK * SCALE
    edge = np.zeros((p, p), bool)
    edge[0], edge[-1], edge[:, 0], edge[:, -1] = True, True, True, True
    lines = ["# Block-phase probe: error on and off the codec's block edges", "",
             f"- command: `python benchmarks/block_phase_probe.py --crf {a.crf} --start {a.start} --frames {a.frames}"
             f" --methods {a.methods}`",
             f"- date: {datetime.date.today()}; x2, frames {a.start}-{a.start + a.frames - 1} of the four clips, "
             f"libx264 medium; HR pixels on the edges of {BLOCK}x{BLOCK} LR blocks: {edge.mean():.0%}", "",
             "| CRF | method | MSE, block edges | MSE, the rest | ratio | PSNR-Y | ceiling of a grid-aware network |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for crf in a.crf.split(","):
        acc = {m: np.zeros((p, p)) for m in names}
        n = 0
        for clip in CLIPS:
            hr = read_run(VIDEOS / clip, a.start, a.frames, scale=SCALE)
            lr = lr_planes(hr, SCALE, crf)
            for i, f in enumerate(hr):
                y = np.rint(rgb_to_y(f / 255.0))
                h, w = (s // p * p for s in y.shape)
                for m, fn in fns.items():
                    e = (np.clip(np.rint(fn(lr[i])), 0, 255) - y)[:h, :w] ** 2
                    acc[m] += e.reshape(h // p, p, w // p, p).sum(axis=(0, 2))
                n += (h // p) * (w // p)
        for m in names:
            mse = acc[m] / n
            on, off = mse[edge].mean(), mse[~edge].mean()
            ceiling = 10 * np.log10(mse.mean() / off)
            lines.append(f"| {crf} | {m} | {on:.2f} | {off:.2f} | {on / off:.3f} | "
                         f"{10 * np.log10(255 ** 2 / mse.mean()):.2f} | {ceiling:+.2f} dB |")
            print(lines[-1], flush=True)
    out = a.out or ROOT / "benchmarks" / "results" / f"block_phase_probe_{datetime.date.today()}.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
