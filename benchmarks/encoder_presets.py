"""What each x264 preset costs and gives on upscaled video: encode time, file size and PSNR-Y.

The frames are what ``realtime-sr video`` hands its encoder at x2: a clip's frames upscaled (here by
bicubic, which is what the encoder cares about: 1280x720 of smooth, detailed video), as yuv420p.
Each preset encodes the same frames at the same CRF in this one process, in interleaved rounds;
the encode time is the whole ``encode`` + ``flush`` wall time per frame, with x264's own threads
(as the pipeline runs it); the PSNR-Y is of the decoded file against the frames fed in, so it is
the loss the encoder adds on top of the network's output.

    python benchmarks/encoder_presets.py --frames 100 --rounds 3 --out benchmarks/results/encoder_presets_<machine>_<date>.md

A preset named ``vp9`` (or ``vp9-N``) is libvpx-vp9 with the options ``realtime-sr video`` gives it
(``pipeline.sink.encoder_options``: its defaults, or ``--preset N``) at ``--vp9-crf``, so the VP9
default of a .webm OUT can be set beside x264's in the same run.
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime_sr.metrics import psnr_y  # noqa: E402
from realtime_sr.runtime.cpu import cpu_model  # noqa: E402

CLIP = ROOT.parent / "shared" / "data" / "videos" / "chaplin.mp4"


def upscaled_frames(clip: Path, count: int, scale: int):
    import av

    out = []
    with av.open(str(clip)) as c:
        vs = c.streams.video[0]
        for fr in c.decode(vs):
            up = fr.reformat(width=fr.width * scale, height=fr.height * scale, format="yuv420p",
                             interpolation="BICUBIC")
            out.append(up.to_ndarray())  # (H*3/2, W) planar yuv420p
            if len(out) == count:
                break
    return out, vs.average_rate or Fraction(25)


def encode(frames, rate, preset: str, crf: int, vp9_crf: int = 24):
    import av

    from realtime_sr.pipeline.sink import EncoderSpec, encoder_options

    h = frames[0].shape[0] * 2 // 3
    w = frames[0].shape[1]
    buf = io.BytesIO()
    if preset.startswith("vp9"):  # "vp9": realtime-sr's VP9 defaults; "vp9-N": with --preset N
        level = preset.partition("-")[2] or None
        codec, fmt = "libvpx-vp9", "webm"
        opts, _ = encoder_options(EncoderSpec(codec=codec, crf=vp9_crf, preset=level))
    else:
        codec, fmt, opts = "libx264", "mp4", {"preset": preset, "crf": str(crf)}
    t0 = time.perf_counter()
    with av.open(buf, "w", format=fmt) as o:
        s = o.add_stream(codec, rate=rate, options=opts)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.thread_type = "AUTO"
        for a in frames:
            fr = av.VideoFrame.from_ndarray(a, format="yuv420p")
            for p in s.encode(fr):
                o.mux(p)
        for p in s.encode():
            o.mux(p)
    dt = time.perf_counter() - t0
    return dt, buf.getvalue()


def decoded_psnr_y(data: bytes, frames) -> float:
    """Mean PSNR-Y of the encoded file's frames against the frames fed in."""
    import av

    h = frames[0].shape[0] * 2 // 3
    with av.open(io.BytesIO(data)) as c:
        return float(np.mean([psnr_y(fr.to_ndarray(format="yuv420p")[:h], frames[i][:h], border=0)
                              for i, fr in enumerate(c.decode(video=0))]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", default=str(CLIP))
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--presets", default="ultrafast,superfast,veryfast,faster,fast,medium",
                    help="x264 presets, and vp9 / vp9-N for libvpx-vp9 as realtime-sr configures it")
    ap.add_argument("--vp9-crf", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    clip = Path(a.clip)
    if not clip.is_file():
        print(f"encoder_presets: error: no clip at {clip}", file=sys.stderr)
        return 2
    frames, rate = upscaled_frames(clip, a.frames, a.scale)
    presets = a.presets.split(",")
    times = {p: [] for p in presets}
    data = {}
    for r in range(a.rounds):
        for p in (presets if r % 2 == 0 else presets[::-1]):
            dt, d = encode(frames, rate, p, a.crf, a.vp9_crf)
            times[p].append(dt / len(frames) * 1000)
            data[p] = d
    h, w = frames[0].shape[0] * 2 // 3, frames[0].shape[1]
    secs = len(frames) / float(rate)
    lines = ["# Encoder presets on upscaled video: encode time, size, PSNR-Y", "",
             f"- command: `python benchmarks/encoder_presets.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
             (f"- machine: {cpu_model()}, {len(os.sched_getaffinity(0))} logical cores; "
              f"date {datetime.date.today().isoformat()}"),
             (f"- frames: first {len(frames)} of `{clip.name}`, bicubic x{a.scale} to {w}x{h}, yuv420p; "
              f"libx264 CRF {a.crf} (vp9 rows: libvpx-vp9 CRF {a.vp9_crf}), the encoders' own threads; "
              f"median of {a.rounds} interleaved rounds"),
             "- PSNR-Y: the decoded file against the frames fed in (what the encoder takes from the output)", "",
             "| preset | encode ms/frame | vs medium | size kB | kbit/s | PSNR-Y dB |",
             "|---|---:|---:|---:|---:|---:|"]
    med = statistics.median(times["medium"]) if "medium" in times else None
    for p in presets:
        t = statistics.median(times[p])
        rel = f"{t / med:.2f}x" if med else "-"
        size = len(data[p])
        lines.append(f"| {p} | {t:.1f} | {rel} | {size / 1000:.0f} | {size * 8 / secs / 1000:.0f} | "
                     f"{decoded_psnr_y(data[p], frames):.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        Path(a.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
