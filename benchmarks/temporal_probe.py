"""Is there new information in the neighbouring frames of a compressed clip? A probe, no network.

    python benchmarks/temporal_probe.py [--crf 23,28] [--start 88] [--frames 8]

For each of the project's four clips (``real_video.py``'s: centre-cropped to 640x360, PIL bicubic
/2, one libx264 clip per CRF, preset medium, as the real-world evaluation makes them), each
decoded LR frame t gets its neighbours t-1 and t+1 block-matched onto it (8x8 blocks, integer
search within +-3 px, mean absolute difference), and a neighbour's block joins a temporal average
(the frame itself weighted 2, each neighbour 1) where it matches within 3 code values. The
average is compared with the decoded frame, both against the clean LR frame (the bicubic
downscale before encoding), in PSNR-Y. If the coding errors of neighbouring frames were
independent, the average would be much closer to the clean frame (up to 1.8 dB for three equally
noisy frames); P and B frames predict from their references and inherit their errors, so on
H.264 it is not. The control: the same frames coded each on its own (all intra, the same CRF),
whose errors are independent wherever the content moves. A multi-frame network does more than
average, but it has only this information to draw on. Writes
benchmarks/results/temporal_probe_<date>.md.
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

from real_video import CLIPS, VIDEOS, read_run  # noqa: E402

from realtime_sr.colour import rgb_to_y  # noqa: E402
from realtime_sr.imageops import resize_bicubic  # noqa: E402
from realtime_sr.train.degrade import encode_clip  # noqa: E402

BLOCK, RADIUS, TRUST = 8, 3, 3.0


def block_match(cur: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ref`` warped onto ``cur`` block by block (integer search, least mean absolute difference)
    and each block's mean absolute difference after the match."""
    h, w = cur.shape
    pad = np.pad(ref, RADIUS, mode="edge")
    gh, gw = h // BLOCK, w // BLOCK
    c = cur.reshape(gh, BLOCK, gw, BLOCK)
    best = np.full((gh, gw), np.inf)
    out = np.empty_like(c)
    for dy in range(-RADIUS, RADIUS + 1):
        for dx in range(-RADIUS, RADIUS + 1):
            r = pad[RADIUS + dy:RADIUS + dy + h, RADIUS + dx:RADIUS + dx + w].reshape(gh, BLOCK, gw, BLOCK)
            e = np.abs(r - c).mean(axis=(1, 3))
            better = e < best
            best = np.where(better, e, best)
            out = np.where(better[:, None, :, None], r, out)
    return out.reshape(h, w), best


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0 ** 2 / np.mean((a - b) ** 2)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crf", default="23,28")
    ap.add_argument("--start", type=int, default=88)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if not VIDEOS.is_dir():
        print(f"temporal_probe: {VIDEOS} not found (the shared data is needed)", file=sys.stderr)
        return 1
    lines = ["# Temporal probe: block-matched neighbours of compressed LR frames", "",
             f"- command: `python benchmarks/temporal_probe.py --crf {a.crf} --start {a.start} --frames {a.frames}`",
             f"- date: {datetime.date.today()}; x2 LR of frames {a.start}-{a.start + a.frames - 1} of each clip, "
             f"libx264 medium; frames {a.start + 1}-{a.start + a.frames - 2} scored (each has both neighbours)",
             f"- {BLOCK}x{BLOCK} blocks, search +-{RADIUS} px, a neighbour block used where it matches within "
             f"{TRUST:g} code values; PSNR-Y against the clean LR", "",
             "| CRF | clip | coded as | decoded | temporal average | change | neighbour blocks used |",
             "|---:|---|---|---:|---:|---:|---:|"]
    for crf in a.crf.split(","):
        for clip in CLIPS:
            hr = read_run(VIDEOS / clip, a.start, a.frames)
            lr = [resize_bicubic(f, (f.shape[1] // 2, f.shape[0] // 2)) for f in hr]
            clean = [rgb_to_y(x / 255.0) for x in lr]
            codings = {
                "one clip": encode_clip(lr, "libx264", int(crf), "medium"),
                "all intra": [encode_clip([x], "libx264", int(crf), "medium")[0] for x in lr],
            }
            for coding, yuvs in codings.items():
                dec = [yuv[..., 0].astype(np.float64) for yuv in yuvs]
                rows = []
                for t in range(1, len(dec) - 1):
                    h, w = (s // BLOCK * BLOCK for s in dec[t].shape)
                    cur, ref = dec[t][:h, :w], clean[t][:h, :w]
                    acc, wsum, used = 2 * cur, np.full_like(cur, 2.0), []
                    for n in (t - 1, t + 1):
                        warped, err = block_match(cur, dec[n][:h, :w])
                        ok = np.kron((err < TRUST).astype(np.float64), np.ones((BLOCK, BLOCK)))
                        acc, wsum = acc + ok * warped, wsum + ok
                        used.append(ok.mean())
                    rows.append((psnr(cur, ref), psnr(acc / wsum, ref), float(np.mean(used))))
                d, f, u = (float(np.mean(v)) for v in zip(*rows))
                lines.append(f"| {crf} | {clip} | {coding} | {d:.2f} | {f:.2f} | {f - d:+.2f} | {u:.0%} |")
                print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    out = a.out or ROOT / "benchmarks" / "results" / f"temporal_probe_{datetime.date.today()}.md"
    out.write_text(text)
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
