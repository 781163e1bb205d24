"""Decode: open and check an input video, then yield its frames with their own timestamps.

Nothing here is rebuilt from a frame rate: every frame keeps the ``pts`` (and duration) the
container gave it, in the video stream's time base. Damaged input is handled by one policy,
*skip and count*: a packet the decoder rejects is skipped and counted, a demuxer error part-way
(a truncated file) ends the input early and is reported; only an input with no decodable frame at
all is an error. The runner reports the counts in its summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from ..errors import InputError, require_file, short_message

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".flv", ".wmv",
                  ".mpg", ".mpeg", ".3gp", ".ogv", ".nut", ".y4m"}
_IMAGE_DEMUXERS = ("image2", "_pipe", "apng", "gif", "webp")


@dataclass(frozen=True)
class VideoInfo:
    """What the rest of the pipeline needs to know about an input, from a cheap probe."""

    path: Path
    format_name: str
    width: int
    height: int
    pix_fmt: str
    time_base: Fraction
    average_rate: Fraction | None
    frames: int  # as the container declares it (0 when unknown)
    duration_s: float | None
    start_s: float
    aux_streams: tuple = field(default=())  # (index, type, codec name) of audio/subtitle streams


def open_input(path: Path):
    """av.open() with every failure turned into one clear InputError."""
    import av

    path = require_file(path, "a video file")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable video file (corrupt, truncated or not video: {short_message(exc)})") from None


def probe(path: str | Path) -> VideoInfo:
    """Check that ``path`` is a video file and describe it; InputError otherwise."""
    path = Path(path)
    with open_input(path) as c:
        fmt = c.format.name
        if any(k in fmt for k in _IMAGE_DEMUXERS):
            raise InputError(f"{path}: is an image ({fmt}), not a video (use `realtime-sr image`)")
        if not c.streams.video:
            kinds = sorted({s.type for s in c.streams}) or ["no streams"]
            raise InputError(f"{path}: has no video stream ({', '.join(kinds)} only)")
        vs = c.streams.video[0]
        cc = vs.codec_context
        if not cc.width or not cc.height:
            raise InputError(f"{path}: video stream has no size (corrupt or unsupported codec)")
        tb = vs.time_base
        dur = float(vs.duration * tb) if vs.duration else (c.duration / 1e6 if c.duration else None)
        start = float(vs.start_time * tb) if vs.start_time is not None else 0.0
        aux = tuple((s.index, s.type, s.codec_context.name if s.codec_context else "?")
                    for s in c.streams if s.type in ("audio", "subtitle"))
        return VideoInfo(path=path, format_name=fmt, width=cc.width, height=cc.height,
                         pix_fmt=cc.format.name if cc.format else "?", time_base=tb,
                         average_rate=vs.average_rate, frames=int(vs.frames or 0), duration_s=dur,
                         start_s=start, aux_streams=aux)


@dataclass
class DecodeStats:
    frames: int = 0
    damaged_packets: int = 0  # packets the decoder rejected (skipped)
    concealed_frames: int = 0  # frames the decoder flagged corrupt but repaired (kept)
    truncated: str | None = None  # the demuxer error that ended the input early, if any


def iter_frames(path: Path, *, start_s: float | None = None, end_s: float | None = None,
                after_pts: int | None = None, stats: DecodeStats | None = None):
    """Yield decoded ``av.VideoFrame`` objects of the first video stream, in presentation order.

    ``start_s``/``end_s`` keep frames whose time lies in [start, end). ``after_pts`` skips every
    frame with ``pts <= after_pts`` (how a resumed run continues after its last finished segment).
    Frames keep the decoder's pts/duration/time_base untouched.
    """
    import av

    stats = stats if stats is not None else DecodeStats()
    with open_input(path) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        tb = vs.time_base
        seek_s = None
        if after_pts is not None:
            seek_s = float(after_pts * tb)
        elif start_s:
            seek_s = start_s
        if seek_s is not None and seek_s > 0:
            try:
                c.seek(int(seek_s / tb), stream=vs, backward=True)
            except av.error.FFmpegError:
                c.seek(0, stream=vs)
        demux = c.demux(vs)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except (av.error.FFmpegError, OSError) as exc:
                stats.truncated = short_message(exc)
                packet = None  # flush what the decoder holds, then stop
            try:
                frames = packet.decode() if packet is not None else vs.codec_context.decode(None)
            except av.error.FFmpegError:
                if packet is None:
                    break
                stats.damaged_packets += 1
                continue
            for frame in frames:
                if frame.pts is None:
                    stats.damaged_packets += 1
                    continue
                t = float(frame.pts * tb)
                if after_pts is not None and frame.pts <= after_pts:
                    continue
                if start_s is not None and t < start_s - 1e-6:
                    continue
                if end_s is not None and t >= end_s - 1e-9:
                    return
                if getattr(frame, "is_corrupt", False):
                    stats.concealed_frames += 1
                stats.frames += 1
                yield frame
            if packet is None:
                break
