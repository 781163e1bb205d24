"""Encode: encoder choice and settings, and the segment files the encoder writes.

The encoder gets the input's time base, and every frame its input pts, so timestamps go through
untouched (variable frame rate included); each packet gets back its frame's duration, so the
stream's duration equals the input's. Video is written as a series of segment files (each one a
fresh encoder, so each starts with a key frame); the final file is assembled from them by
:mod:`.mux`. A finished segment is never rewritten: that is what makes ``--resume`` possible.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from ..errors import OutputError, UsageError
from ..fsutil import is_disk_full

# codec -> (default quality, option name for it, default preset)
_QUALITY = {
    "libx264": (18, "crf", "medium"),
    "libx265": (20, "crf", "medium"),
    "libsvtav1": (30, "crf", "8"),
    "libaom-av1": (30, "crf", None),
    "h264_nvenc": (19, "cq", "p5"),
    "hevc_nvenc": (21, "cq", "p5"),
    "av1_nvenc": (30, "cq", "p5"),
    "libvpx-vp9": (24, "crf", None),
}
# the quality scale's range of each codec (x264/x265 and nvenc: 0-51; VP9 and the AV1 encoders: 0-63): a
# value outside it is refused rather than clamped by the encoder into something the user did not ask for
_QUALITY_MAX = {"libx264": 51, "libx265": 51, "h264_nvenc": 51, "hevc_nvenc": 51, "libsvtav1": 63, "libaom-av1": 63,
                "av1_nvenc": 63, "libvpx-vp9": 63}
# the x264/x265 preset of each mode where --preset is not given: the networks fast enough for real
# time (coarse, routed) get a fast preset, so the encoder does not cost more than the network; the
# offline ones (fine, gan) the slow, more efficient default (see docs/video.md, "Encoder defaults")
MODE_PRESETS = {"coarse": "veryfast", "routed": "veryfast"}
CODEC_CHOICES = ("libx264", "libx265", "libsvtav1", "libaom-av1", "libvpx-vp9", "h264_nvenc", "hevc_nvenc",
                 "av1_nvenc", "mpeg4")
# the default --codec for an OUT whose container cannot hold H.264 (WebM: VP8/VP9/AV1 only)
CONTAINER_CODECS = {".webm": "libvpx-vp9"}
SEGMENT_FORMAT = "mp4"


def default_codec(out_path) -> str:
    """libx264, or the codec ``out_path``'s container needs where it cannot hold H.264 (.webm: VP9)."""
    return CONTAINER_CODECS.get(Path(out_path).suffix.lower(), "libx264")


@dataclass(frozen=True)
class EncoderSpec:
    codec: str = "libx264"
    crf: int | None = None
    preset: str | None = None
    bitrate: str | None = None  # "4M", "2500k" or bits per second
    pix_fmt: str | None = None


def for_mode(spec: EncoderSpec, mode: str) -> EncoderSpec:
    """``spec`` with the mode's default preset where none is given (x264/x265 only)."""
    if spec.preset is None and spec.codec in ("libx264", "libx265") and mode in MODE_PRESETS:
        return replace(spec, preset=MODE_PRESETS[mode])
    return spec


def available_codecs() -> list[str]:
    import av

    out = []
    for name in CODEC_CHOICES:
        try:
            av.codec.Codec(name, "w")
        except av.codec.codec.UnknownCodecError:
            continue
        out.append(name)
    return out


def check_encoder(spec: EncoderSpec):
    """The av Codec for ``spec.codec``; UsageError naming the available ones otherwise."""
    import av

    try:
        codec = av.codec.Codec(spec.codec, "w")
    except av.codec.codec.UnknownCodecError:
        raise UsageError(f"--codec {spec.codec}: not available in this FFmpeg build; "
                         f"available: {', '.join(available_codecs())}") from None
    if codec.type != "video":
        raise UsageError(f"--codec {spec.codec} is not a video encoder")
    if spec.crf is not None and spec.bitrate is not None:
        raise UsageError("--crf and --bitrate are alternatives: give one")
    check_quality(spec.codec, spec.crf)
    if spec.codec == "libvpx-vp9":
        _vp9_speed(spec.preset)  # its --preset is a number: refused here, before any work
    if spec.bitrate is not None:
        parse_bitrate(spec.bitrate)
    return codec


def check_quality(codec: str, value: int | None, flag: str = "--crf") -> None:
    """UsageError when ``value`` lies outside ``codec``'s quality scale (codecs without a known scale pass)."""
    top = _QUALITY_MAX.get(codec)
    if value is not None and top is not None and not 0 <= value <= top:
        raise UsageError(f"{flag} {value}: {codec} takes 0-{top} (lower is better)")


def parse_bitrate(text: str) -> int:
    t = str(text).strip().lower()
    mult = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}.get(t[-1:], 1)
    try:
        val = float(t[:-1] if t[-1:] in "kmg" else t) * mult
    except ValueError:
        raise UsageError(f"--bitrate {text!r}: expected a number like 4M or 2500k") from None
    if val <= 0:
        raise UsageError(f"--bitrate {text!r} must be positive")
    return int(val)


def choose_pix_fmt(spec: EncoderSpec, working: str) -> tuple[str, str | None]:
    """The encoder's pixel format and, when it loses something the input had, a one-line notice."""
    codec = check_encoder(spec)
    formats = [f.name for f in codec.video_formats or ()]
    if spec.pix_fmt:
        if formats and spec.pix_fmt not in formats:
            raise UsageError(f"--pix-fmt {spec.pix_fmt}: {spec.codec} accepts {', '.join(formats)}")
        return spec.pix_fmt, None
    if not formats or working in formats:
        return working, None
    deep = working.endswith(("10le", "12le"))
    candidates = ([working.replace("12le", "10le")] if deep else []) + \
        (["yuv420p10le", "p010le"] if deep else []) + ["yuv420p", "nv12"]
    for c in candidates:
        if c in formats:
            lost = "bit depth" if deep and not c.endswith(("10le", "12le")) and c != "p010le" else "chroma resolution"
            return c, f"notice: {spec.codec} cannot write {working}; writing {c} (loses {lost})"
    return formats[0], f"notice: {spec.codec} cannot write {working}; writing {formats[0]}"


def encoder_options(spec: EncoderSpec) -> tuple[dict, int | None]:
    """(codec options, bit rate or None) for ``spec``: CRF-like quality unless a bitrate is given."""
    q, qname, preset = _QUALITY.get(spec.codec, (None, None, None))
    opts: dict[str, str] = {}
    bitrate = parse_bitrate(spec.bitrate) if spec.bitrate else None
    if bitrate is None and q is not None:
        opts[qname] = str(spec.crf if spec.crf is not None else q)
        if spec.codec == "libaom-av1":
            opts["b"] = "0"
    elif bitrate is None and spec.crf is not None:
        raise UsageError(f"--crf is not supported by {spec.codec}; use --bitrate")
    if bitrate is None and q is None:
        bitrate = 8_000_000
    if spec.codec == "libvpx-vp9":
        opts.update(_vp9_speed(spec.preset))
        if bitrate is None:
            opts["b"] = "0"  # libvpx's constant-quality mode: crf with no bit-rate target
    elif spec.preset or preset:
        opts["preset"] = str(spec.preset or preset)
    if spec.codec == "libx265":
        opts["x265-params"] = "log-level=error"
    if spec.codec == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner unless told: errors only
    return opts, bitrate


def _vp9_speed(preset: str | None) -> dict:
    """libvpx-vp9's speed options. Without ``--preset``: its real-time mode at cpu-used 8 with row
    threads: as fast as x264 veryfast on upscaled 1280x720 frames and about 1 dB better at the same
    size (docs/video.md, benchmarks/encoder_presets.py); ``--preset N`` (0-5): the ``good`` mode
    at cpu-used N, slower, smaller files."""
    if preset is None:
        return {"deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
    if not str(preset).isdigit() or not 0 <= int(preset) <= 5:
        raise UsageError(f"--preset {preset}: libvpx-vp9 takes 0-5 (its cpu-used; lower is slower, smaller)")
    return {"deadline": "good", "cpu-used": str(int(preset)), "row-mt": "1"}


def container_options(fmt_name: str, time_base: Fraction) -> dict:
    """Muxer options that keep timestamps exact (mov/mp4: a movie timescale of the stream's)."""
    if any(n in fmt_name for n in ("mp4", "mov", "ipod", "3gp")) and time_base.denominator < 2**31:
        return {"movie_timescale": str(time_base.denominator)}
    return {}


def add_video_stream(container, spec: EncoderSpec, *, width: int, height: int, pix_fmt: str,
                     time_base: Fraction, rate: Fraction | None, tags, rotation: float = 0.0):
    """An encoder stream configured from ``spec`` with the input's time base and colour tags."""
    opts, bitrate = encoder_options(spec)
    stream = container.add_stream(spec.codec, options=opts)
    cc = stream.codec_context
    cc.width, cc.height, cc.pix_fmt = width, height, pix_fmt
    cc.time_base = time_base
    stream.time_base = time_base
    if rate:
        cc.framerate = rate
    if bitrate:
        cc.bit_rate = bitrate
    cc.color_range, cc.colorspace = tags.range, tags.colorspace
    cc.color_primaries, cc.color_trc = tags.primaries, tags.trc
    cc.thread_type = "AUTO"
    if rotation:
        stream.set_display_rotation(rotation)
    return stream


def raise_write_error(exc: BaseException, path: Path):
    if is_disk_full(exc):
        raise OutputError(f"{path.parent}: disk full (no space left while writing {path.name})") from None
    raise OutputError(f"{path}: cannot write ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None


class DtsRepair:
    """Give every encoded packet a usable decode timestamp, in place.

    libx265 leaves the dts of a stream shorter than its frame-reorder delay uninitialised (a
    two-frame clip, or the one-frame trial mux, gets values like -4.7e18 in some runs and not
    others), and MP4 refuses such a packet ("pts/dts pair unsupported"). A dts that is missing,
    after its pts, not after the previous one, or more than a minute before its pts is replaced by
    the smallest value that keeps decode order: the pts for the first packet, else
    ``min(pts, previous + 1)``. Valid timestamps from any encoder pass unchanged.
    """

    def __init__(self, time_base: Fraction) -> None:
        self.prev: int | None = None
        self.limit = max(1, round(60 / time_base)) if time_base else 1 << 40

    def __call__(self, p):
        if p.pts is not None:
            dts = p.dts
            if (dts is None or dts > p.pts or p.pts - dts > self.limit
                    or (self.prev is not None and dts <= self.prev)):
                dts = p.pts if self.prev is None else min(p.pts, self.prev + 1)
                if self.prev is None or dts > self.prev:
                    p.dts = dts
        if p.dts is not None:
            self.prev = p.dts
        return p


class SegmentWriter:
    """Encodes frames into one segment file; ``close()`` flushes, syncs and reports what it holds."""

    def __init__(self, path: Path, spec: EncoderSpec, **stream_kwargs) -> None:
        import av

        self.path = Path(path)
        self.frames = 0
        self.first_pts = None
        self.last_pts = None
        self._durations: dict[int, int] = {}
        try:
            self.container = av.open(str(self.path), "w", format=SEGMENT_FORMAT,
                                     options=container_options(SEGMENT_FORMAT, stream_kwargs["time_base"]))
            self.stream = add_video_stream(self.container, spec, **stream_kwargs)
            self._repair = DtsRepair(self.stream.time_base)
        except (OSError, av.error.FFmpegError) as exc:
            raise_write_error(exc, self.path)

    def write(self, frame, duration: int) -> None:
        if self.first_pts is None:
            self.first_pts = frame.pts
        self.last_pts = frame.pts if self.last_pts is None else max(self.last_pts, frame.pts)
        self._durations[frame.pts] = duration
        self.frames += 1
        self._mux(self.stream.encode(frame))

    def _mux(self, packets) -> None:
        import av

        try:
            for p in packets:
                d = self._durations.pop(p.pts, 0) if p.pts is not None else 0
                if d:
                    p.duration = d
                self.container.mux(self._repair(p))
        except (OSError, av.error.FFmpegError) as exc:
            raise_write_error(exc, self.path)

    def close(self) -> dict:
        import av

        self._mux(self.stream.encode(None))
        try:
            self.container.close()
            with open(self.path, "rb") as f:
                os.fsync(f.fileno())
        except (OSError, av.error.FFmpegError) as exc:
            raise_write_error(exc, self.path)
        return {"file": self.path.name, "frames": self.frames, "first_pts": self.first_pts,
                "last_pts": self.last_pts, "bytes": self.path.stat().st_size}

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001, S110 - already failing; the file is deleted next
            pass
        self.path.unlink(missing_ok=True)
