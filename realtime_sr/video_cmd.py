"""``realtime-sr video IN OUT``: the parser and its handler (heavy imports stay inside the handler)."""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import UsageError


def add_parser(sub, add_model_flags) -> None:
    p = sub.add_parser("video", help="upscale a video (or a folder of videos to a folder)",
                       description="Upscale a video: same timestamps, audio, subtitles and colour; "
                                   "only the resolution changes. See docs/video.md.")
    p.add_argument("input", help="video file, or a folder of videos")
    p.add_argument("output", help="output file (.mp4, .mkv, .mov ...), or a folder when IN is a folder")
    add_model_flags(p)
    g = p.add_argument_group("encoder")
    g.add_argument("--codec",
                   help="video encoder: libx264 (the default; libvpx-vp9 for a .webm OUT), libx265, libsvtav1, "
                        "libaom-av1, libvpx-vp9, h264_nvenc, hevc_nvenc (those the bundled FFmpeg has)")
    g.add_argument("--crf", type=int, help="constant quality (lower is better; default 18 for libx264, "
                   "20 libx265, 30 AV1, 24 VP9, cq 19 nvenc)")
    g.add_argument("--preset", help="encoder speed preset (x264/x265: veryfast for --mode coarse and routed, "
                   "medium for fine and gan; 8 for svt-av1, p5 nvenc; VP9: 0-5, its cpu-used in good mode, "
                   "default its real-time mode)")
    g.add_argument("--bitrate", help="target bit rate instead of constant quality, e.g. 4M or 2500k")
    g.add_argument("--pix-fmt", dest="pix_fmt", help="encoder pixel format (default: the input's, e.g. yuv420p10le "
                   "for 10-bit input, where the codec allows)")
    g = p.add_argument_group("what to process")
    g.add_argument("--start", type=float, help="start at this time in seconds")
    g.add_argument("--duration", type=float, help="process only this many seconds")
    g.add_argument("--no-audio", dest="audio", action="store_false", help="drop the audio streams")
    g.add_argument("--no-subtitles", dest="subtitles", action="store_false", help="drop the subtitle streams")
    g = p.add_argument_group("run")
    g.add_argument("--tile", type=int, default=1024,
                   help="tile size in LR pixels (bounded memory; default 1024: whole frames up to ~1024 px)")
    g.add_argument("-y", "--overwrite", action="store_true", help="replace an existing OUT")
    g.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its last finished segment")
    g.add_argument("--segment-seconds", dest="segment_seconds", type=float, default=10.0,
                   help="length of the resumable segments (default 10 s)")
    g.add_argument("--queue", type=int, default=4, help="frames buffered between stages (default 4)")
    g.add_argument("--workers", type=int, help="frames the network runs at once, each on its own OpenVINO stream "
                   "with a share of the cores (default: 2 for --mode coarse, fine and gan on a CPU with 2+ cores, "
                   "1 for routed; other backends run 1)")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run)


def _job(a, src: Path, dst: Path):
    from .pipeline.runner import VideoJob
    from .pipeline.sink import EncoderSpec, default_codec

    return VideoJob(input=src, output=dst, model=a.model, scale=a.scale, mode=a.mode,
                    fine_fraction=a.fine_fraction, backend=a.backend,
                    device=a.device, precision=a.precision,
                    encoder=EncoderSpec(codec=a.codec or default_codec(dst), crf=a.crf, preset=a.preset,
                                        bitrate=a.bitrate, pix_fmt=a.pix_fmt),
                    tile=a.tile, start=a.start, duration=a.duration, audio=a.audio, subtitles=a.subtitles,
                    overwrite=a.overwrite, resume=a.resume, segment_seconds=a.segment_seconds, queue=a.queue,
                    workers=a.workers, variant=a.variant,
                    progress=a.progress and sys.stderr.isatty())


def run(a) -> int:
    from .errors import RealtimeSRError
    from .pipeline.runner import run_video
    from .pipeline.source import VIDEO_SUFFIXES

    if a.tile < 16:
        raise UsageError("--tile must be at least 16")
    if a.segment_seconds <= 0 or a.queue < 1:
        raise UsageError("--segment-seconds must be > 0 and --queue >= 1")
    src, dst = Path(a.input), Path(a.output)
    if not src.is_dir():
        run_video(_job(a, src, dst))
        return 0
    if dst.exists() and not dst.is_dir():
        raise UsageError(f"{dst}: IN is a folder, so OUT must be a folder")
    if dst.resolve() == src.resolve():
        raise UsageError(f"{dst}: output folder is the input folder; choose another")
    files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not files:
        raise UsageError(f"{src}: no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
    dst.mkdir(parents=True, exist_ok=True)
    failed = 0
    for i, f in enumerate(files, 1):
        print(f"[{i}/{len(files)}] {f.name}", file=sys.stderr)
        try:
            run_video(_job(a, f, dst / f.name))
        except RealtimeSRError as exc:
            failed += 1
            print(f"realtime-sr: error: {exc}", file=sys.stderr)
    if failed:
        print(f"realtime-sr: {failed} of {len(files)} videos failed", file=sys.stderr)
        return 1
    return 0
