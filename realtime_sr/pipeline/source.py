"""Decode: open and check an input video, then yield its frames with their own timestamps.

Nothing here is rebuilt from a frame rate where the container has timestamps: every frame keeps
the ``pts`` (and duration) the container gave it, in the video stream's time base. Where it has
none that can be trusted (AVI, which stores no pts, so B-frames come out of the decoder with
guessed pts out of order; a raw ``.h264`` stream; an MPEG-TS whose packets carry no PTS), frames
get FFmpeg's *best-effort timestamp* (what ``ffprobe -show_frames`` reports: the decoder's pts
unless they have gone backwards more often than the packets' dts, then the dts), and a frame with
neither gets the previous one's plus a frame duration (from the stream's frame rate where the
container declares none); timestamps never go backwards. See :class:`FrameClock`. Damaged input is handled by one policy,
*skip and count*: a packet the decoder rejects is skipped and counted, a demuxer error part-way
(a truncated file) ends the input early and is reported; only an input with no decodable frame at
all is an error. The runner reports the counts in its summary.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from ..errors import InputError, require_file, short_message

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".flv", ".wmv",
                  ".mpg", ".mpeg", ".3gp", ".ogv", ".nut", ".y4m"}
_IMAGE_DEMUXERS = ("image2", "_pipe", "apng", "gif", "webp")
DEFAULT_RATE = Fraction(25)  # for frames without timestamps in a stream that declares no frame rate either


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
    real_pts: bool = True  # False: the container stores no pts (AVI, raw streams, PES without PTS)


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
        rate = vs.average_rate or stream_rate(vs)
        dur = float(vs.duration * tb) if vs.duration else (c.duration / 1e6 if c.duration else None)
        start = float(vs.start_time * tb) if vs.start_time is not None else 0.0
        aux = tuple((s.index, s.type, s.codec_context.name if s.codec_context else "?")
                    for s in c.streams if s.type in ("audio", "subtitle"))
        return VideoInfo(path=path, format_name=fmt, width=cc.width, height=cc.height,
                         pix_fmt=cc.format.name if cc.format else "?", time_base=tb,
                         average_rate=rate, frames=int(vs.frames or 0), duration_s=dur,
                         start_s=start, aux_streams=aux, real_pts=_has_real_pts(c, vs))


_NO_PTS_DEMUXERS = {"avi", "h264", "hevc", "mpegvideo", "m4v", "vc1", "cavsvideo", "rawvideo"}


def _has_real_pts(c, vs) -> bool:
    """Whether the container stores presentation timestamps (so seeking lands on the same pts)."""
    if c.format.name in _NO_PTS_DEMUXERS:
        return False
    try:
        for packet in itertools.islice(c.demux(vs), 64):
            if packet.size:
                return packet.pts is not None
    except Exception:  # noqa: BLE001, S110 - a damaged input: decoding reports what is wrong
        pass
    return True


def stream_rate(vs):
    """The frame rate the video stream itself declares (H.264/HEVC timing info) when the container has none."""
    for rate in (vs.codec_context.framerate, vs.guessed_rate):
        if rate and 0 < rate <= 1000:
            return rate
    return None


class FrameClock:
    """Best-effort presentation timestamps for decoded frames, in the stream's time base.

    The choice between the decoder's pts and the packet dts is FFmpeg's (``guess_correct_pts``, the
    ``best_effort_timestamp`` that ffprobe shows): count how often each has gone backwards, use the
    pts unless it has done so more often than the dts. A frame with neither gets the previous
    timestamp plus a frame duration (``start`` for the first); a timestamp not after the previous one
    becomes the previous plus one tick, so the encoder always sees increasing pts. For files with real
    timestamps (MP4, MKV, MOV ...) this is the identity. ``repaired`` counts frames it changed.
    """

    def __init__(self, default_duration: int, start: int = 0) -> None:
        self.default_duration = max(1, int(default_duration or 1))
        self.start = int(start or 0)
        self.faulty_pts = self.faulty_dts = 0
        self.last_pts = self.last_dts = None
        self.prev: int | None = None
        self.prev_duration = self.default_duration
        self.repaired = 0

    def __call__(self, pts: int | None, dts: int | None, duration: int | None = None) -> int:
        if dts is not None:
            self.faulty_dts += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        elif pts is not None:
            self.last_dts = pts
        if pts is not None:
            self.faulty_pts += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        elif dts is not None:
            self.last_pts = dts
        t = pts if pts is not None and (self.faulty_pts <= self.faulty_dts or dts is None) else dts
        if t is None:
            t = self.start if self.prev is None else self.prev + self.prev_duration
        elif self.prev is not None and t <= self.prev:
            t = self.prev + 1
        self.repaired += t != pts
        self.prev = t
        self.prev_duration = int(duration or 0) or self.default_duration
        return t


@dataclass
class DecodeStats:
    frames: int = 0
    damaged_packets: int = 0  # packets the decoder rejected (skipped)
    concealed_frames: int = 0  # frames the decoder flagged corrupt but repaired (kept)
    truncated: str | None = None  # the demuxer error that ended the input early, if any
    repaired_pts: int = 0  # frames given best-effort timestamps (see FrameClock)


def iter_frames(path: Path, *, start_s: float | None = None, end_s: float | None = None,
                after_pts: int | None = None, stats: DecodeStats | None = None, seek: bool = True):
    """Yield decoded ``av.VideoFrame`` objects of the first video stream, in presentation order.

    ``start_s``/``end_s`` keep frames whose time lies in [start, end). ``after_pts`` skips every
    frame with ``pts <= after_pts`` (how a resumed run continues after its last finished segment);
    ``seek=False`` gets there by decoding from the start (for inputs whose timestamps are
    best-effort, which depend on what was decoded before). Frames keep the decoder's
    pts/duration/time_base untouched where the container has real timestamps (:class:`FrameClock`).
    """
    import av

    stats = stats if stats is not None else DecodeStats()
    with open_input(path) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        tb = vs.time_base
        rate = vs.average_rate or stream_rate(vs) or DEFAULT_RATE
        clock = FrameClock(round(1 / (rate * tb)), vs.start_time or 0)
        trust_pts = c.format.name not in _NO_PTS_DEMUXERS  # AVI's "pts" are guesses from packet order
        seek_s = float(after_pts * tb) if after_pts is not None else start_s
        if seek and seek_s is not None and seek_s > 0:
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
                frame.pts = clock(frame.pts if trust_pts else None, frame.dts, frame.duration)
                stats.repaired_pts = clock.repaired
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
