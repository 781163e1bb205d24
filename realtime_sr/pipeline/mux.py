"""Mux: decide what happens to audio and subtitles (with a trial mux *before* the work), and
assemble the final file from the video segments plus the input's other streams.

Audio and subtitles are copied packet for packet where the output container accepts the codec;
audio it does not accept is transcoded to AAC (one notice), subtitles it does not accept are
dropped (one notice). The trial writes a one-frame file with the real encoder settings and the
first packets of every kept stream, so a run cannot fail at its final mux after all the work.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import OutputError, UsageError
from .sink import SEGMENT_FORMAT, DtsRepair, EncoderSpec, add_video_stream, container_options, raise_write_error

TRIAL_PACKETS = 8


@dataclass(frozen=True)
class AuxPlan:
    index: int  # stream index in the input
    type: str  # 'audio' or 'subtitle'
    codec: str
    action: str  # 'copy', or the audio encoder to transcode with: 'aac' ('libopus' for WebM)


def output_format(path: Path) -> str:
    """The muxer name FFmpeg picks for ``path``'s extension; UsageError for an unknown one."""
    import av

    tmp = path.with_name(f".{path.name}.probe{path.suffix}")
    try:
        with av.open(str(tmp), "w") as c:
            return c.format.name
    except (ValueError, av.error.FFmpegError):
        raise UsageError(f"{path}: unknown output format {path.suffix!r} (use .mp4, .mkv or .mov)") from None
    except OSError as exc:
        raise_write_error(exc, path)
    finally:
        tmp.unlink(missing_ok=True)


class PacketClock:
    """Timestamps for the audio/subtitle packets of one stream, where the container gives none.

    An MPEG-TS whose PES headers carry no PTS gives packets without pts or dts: each one then starts
    where the previous one ended (the stream's start, else the video's, for the first), and
    dts = pts (audio is not reordered). A packet with only one of the two gets the other, and a dts
    not after the previous one becomes the previous plus one tick (muxers refuse it). Packets with
    valid timestamps pass unchanged. The trial mux and the final mux both use it, so what the trial
    accepts is what the final file gets.
    """

    def __init__(self, stream, video) -> None:
        tb = stream.time_base
        if stream.start_time is not None:
            self.next = stream.start_time
        elif video.start_time is not None and video.time_base and tb:
            self.next = round(video.start_time * video.time_base / tb)
        else:
            self.next = 0
        cc = stream.codec_context
        rate = getattr(cc, "sample_rate", 0) if stream.type == "audio" else 0
        self.step = max(1, round((cc.frame_size or 1024) / rate / tb)) if rate and tb else 1
        self.last_dts: int | None = None

    def __call__(self, p):
        if p.pts is None and p.dts is None:
            p.pts = p.dts = self.next
        elif p.pts is None:
            p.pts = p.dts
        elif p.dts is None:
            p.dts = p.pts
        if self.last_dts is not None and p.dts <= self.last_dts:  # muxers refuse a dts that goes back (EINVAL)
            p.dts = self.last_dts + 1
            p.pts = max(p.pts, p.dts)
        self.last_dts = p.dts
        self.next = max(self.next, p.pts + (p.duration or self.step))
        return p


def _timed_packets(inp, streams):
    """Demux ``streams``, every packet with data carrying timestamps (see PacketClock); flush packets as they are."""
    clocks = {s.index: PacketClock(s, inp.streams.video[0]) for s in streams}
    for p in inp.demux(*streams):
        yield clocks[p.stream.index](p) if p.size else p


def _first_packets(inp, indices):
    """The first TRIAL_PACKETS packets of each input stream in ``indices``."""
    streams = [s for s in inp.streams if s.index in indices]
    got = {i: [] for i in indices}
    if not streams:
        return got
    try:
        for p in itertools.islice(_timed_packets(inp, streams), 4000):
            if p.size and len(got[p.stream.index]) < TRIAL_PACKETS:
                got[p.stream.index].append(p)
            if all(len(v) >= TRIAL_PACKETS for v in got.values()):
                break
    except Exception:  # noqa: BLE001, S110 - a damaged input: the trial uses what could be read
        pass
    return got


def _add_aux(out, in_stream, action):
    if action == "copy":
        return out.add_stream_from_template(in_stream)
    cc = in_stream.codec_context
    rate = cc.sample_rate or 48000
    layout = cc.layout.name if cc.layout else "stereo"
    if action == "libopus":
        rate = rate if rate in (8000, 12000, 16000, 24000, 48000) else 48000
    s = out.add_stream(action, rate=rate, layout=layout)
    s.bit_rate = 64_000 * max(2, cc.channels or 2)
    return s


def _transcode(in_stream, ostream, packets, offset_s: float = 0.0):
    """Decode ``packets`` and encode them with ``ostream``'s encoder (None flushes)."""
    for p in packets:
        for frame in (in_stream.codec_context.decode(p) if p is not None else in_stream.codec_context.decode(None)):
            if offset_s and frame.pts is not None:
                frame.pts -= round(offset_s / frame.time_base)
            yield from ostream.encode(frame)
    if packets and packets[-1] is None:
        yield from ostream.encode(None)


def _trial(path: Path, fmt: str, video_kwargs: dict, spec: EncoderSpec, input_path: Path, plans) -> None:
    """Write a one-frame file the way the real run will, and raise where it would fail: the real
    encoder into an MP4 segment (as the pipeline's segments are written), that segment's packets
    copied into ``fmt`` as :func:`assemble` copies them, and the first packets of ``plans``."""
    import av

    from .source import open_input

    w, h, pf = video_kwargs["width"], video_kwargs["height"], video_kwargs["pix_fmt"]
    seg = path.with_name(f"{path.name}.segment.{SEGMENT_FORMAT}")
    try:
        with av.open(str(seg), "w", format=SEGMENT_FORMAT,
                     options=container_options(SEGMENT_FORMAT, video_kwargs["time_base"])) as so:
            vs = add_video_stream(so, spec, **video_kwargs)
            frame = _black(pf, w, h) if pf in _ZERO_OK else av.VideoFrame(w, h, pf)
            frame.pts = 0
            repair = DtsRepair(vs.time_base)
            for pkt in itertools.chain(vs.encode(frame), vs.encode(None)):
                so.mux(repair(pkt))
        with open_input(input_path) as inp, av.open(str(seg)) as sg:
            vt = sg.streams.video[0]
            with av.open(str(path), "w", format=fmt, options=container_options(fmt, vt.time_base)) as out:
                firsts = _first_packets(inp, [p.index for p in plans])
                ov, bsf = copy_video_stream(out, vt, fmt)
                outs = {p.index: _add_aux(out, inp.streams[p.index], p.action) for p in plans}
                for _, _, pkt in _video_packets([sg], ov, bsf):
                    out.mux(pkt)
                for p in plans:
                    pk = firsts[p.index]
                    if p.action == "copy":
                        for packet in pk:
                            packet.stream = outs[p.index]
                            out.mux(packet)
                    else:
                        for packet in _transcode(inp.streams[p.index], outs[p.index], pk + [None]):
                            out.mux(packet)
    finally:
        path.unlink(missing_ok=True)
        seg.unlink(missing_ok=True)


_ZERO_OK = {"yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le", "gray", "gray10le"}


def _black(fmt: str, w: int, h: int):
    import numpy as np

    from .convert import bit_depth, plane_size, write_frame

    d = bit_depth(fmt)
    dtype = np.uint8 if d == 8 else np.uint16
    n = 1 if fmt.startswith("gray") else 3
    planes = [np.full(plane_size(fmt, w, h, i), (16 if i == 0 else 128) << (d - 8), dtype) for i in range(n)]
    return write_frame(planes, fmt, w, h)


def plan_streams(info, out_path: Path, video_kwargs: dict, spec: EncoderSpec, *, audio: bool = True,
                 subtitles: bool = True, log=print) -> list[AuxPlan]:
    """Check the whole mux before any work; returns what to do with each audio/subtitle stream."""
    import av

    fmt = output_format(out_path)
    trial = out_path.with_name(f".{out_path.name}.trial{out_path.suffix}")
    wanted = [(i, t, c) for i, t, c in info.aux_streams if (t == "audio" and audio) or (t == "subtitle" and subtitles)]
    try:
        _trial(trial, fmt, video_kwargs, spec, info.path, [])
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "avcodec_open2" in first:  # the encoder itself refused the settings (or has no device)
            hint = "needs an NVIDIA GPU and driver" if "nvenc" in spec.codec else "check --preset, --crf, --pix-fmt"
            raise OutputError(f"cannot open the {spec.codec} encoder with these settings ({hint}): "
                              f"{first.split(': ')[0]}") from None
        if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
            raise_write_error(exc, out_path)
        raise OutputError(f"{out_path.name}: cannot write {spec.codec} video into a {fmt} file ({first}); "
                          f"try .mkv or another --codec") from None
    plans = [AuxPlan(i, t, c, "copy") for i, t, c in wanted]
    if not plans:
        return []
    try:
        _trial(trial, fmt, video_kwargs, spec, info.path, plans)
        return plans
    except (av.error.FFmpegError, ValueError, OSError):
        pass
    out = []
    for p in plans:  # something failed: find out which, and what works instead
        for action in ("copy", "aac", "libopus") if p.type == "audio" else ("copy",):
            try:
                _trial(trial, fmt, video_kwargs, spec, info.path, [AuxPlan(p.index, p.type, p.codec, action)])
            except (av.error.FFmpegError, ValueError, OSError):
                continue
            if action != "copy":
                log(f"notice: {p.codec} audio (stream {p.index}) cannot go into a {fmt} file as it is; "
                    f"transcoding it to {'AAC' if action == 'aac' else 'Opus'}")
            out.append(AuxPlan(p.index, p.type, p.codec, action))
            break
        else:
            log(f"notice: dropping {p.type} stream {p.index} ({p.codec}): a {fmt} file cannot hold it")
    return out


def assemble(out_tmp: Path, out_path: Path, segments: list[Path], input_path: Path, plans: list[AuxPlan], *,
             window: tuple[float | None, float | None] = (None, None), offset_s: float = 0.0,
             rotation: float = 0.0) -> None:
    """Write ``out_tmp``: the video packets of ``segments`` plus the planned input streams."""
    import av

    from .source import open_input

    fmt = output_format(out_path)
    segs = []
    try:
        segs = [av.open(str(p)) for p in segments]
        vt = segs[0].streams.video[0]
        with open_input(input_path) as inp, \
                av.open(str(out_tmp), "w", format=fmt, options=container_options(fmt, vt.time_base)) as out:
            ov, bsf = copy_video_stream(out, vt, fmt, rotation)
            outs = {p.index: _add_aux(out, inp.streams[p.index], p.action) for p in plans}
            _copy_metadata(inp, out, ov, outs)
            video = _video_packets(segs, ov, bsf)
            aux = _aux_packets(inp, plans, outs, window, offset_s)
            for _, _, packet in heapq.merge(video, aux, key=lambda t: (t[0], t[1])):
                out.mux(packet)
        with open(out_tmp, "rb") as f:
            os.fsync(f.fileno())
    except OutputError:
        raise
    except (OSError, av.error.FFmpegError) as exc:
        raise_write_error(exc, out_path)
    finally:
        for s in segs:
            s.close()


_NOT_COPIED = {"encoder", "major_brand", "minor_version", "compatible_brands", "rotate", "duration"}


def _copy_metadata(inp, out, ov, outs) -> None:
    """Container tags (title, creation time ...) and stream tags (language, handler, title)."""
    def keep(md):
        return {k: v for k, v in (md or {}).items() if k.lower() not in _NOT_COPIED}

    try:
        out.metadata.update(keep(inp.metadata))
        ov.metadata.update(keep(inp.streams.video[0].metadata))
        for idx, st in outs.items():
            st.metadata.update(keep(inp.streams[idx].metadata))
    except (AttributeError, TypeError, ValueError):  # tags are a courtesy, never a reason to fail
        pass


# muxers that take H.264 / HEVC only as an Annex B byte stream (start codes), which FFmpeg does not
# convert to on its own (MPEG-TS does); the segments are MP4, whose packets are length-prefixed
_ANNEXB_FORMATS = {"avi", "mpeg", "vob", "dvd", "svcd", "vcd"}
_ANNEXB_FILTERS = {"h264": "h264_mp4toannexb", "hevc": "hevc_mp4toannexb"}


def copy_video_stream(out, vt, fmt: str, rotation: float = 0.0):
    """(output stream, bitstream filter or None) for copying segment stream ``vt``'s packets into
    ``out`` (a ``fmt`` container): the final mux and the trial both go through it."""
    ov = out.add_stream_from_template(vt, opaque=True)
    ov.time_base = vt.time_base
    rate = vt.average_rate or vt.guessed_rate
    if rate:  # some muxers (MXF) need the frame rate, which a copied stream does not carry
        ov.codec_context.framerate = rate
    if rotation:
        ov.set_display_rotation(rotation)
    return ov, annexb_filter(fmt, vt, ov)


def annexb_filter(fmt: str, vt, ov):
    """A bitstream filter context converting ``vt``'s packets to Annex B where the ``fmt`` muxer
    needs it and the packets are not already (their codec's extradata is avcC/hvcC), else None."""
    name = _ANNEXB_FILTERS.get(vt.codec_context.name)
    if fmt not in _ANNEXB_FORMATS or name is None:
        return None
    from av.bitstream import BitStreamFilterContext

    return BitStreamFilterContext(name, vt, ov)


def _video_packets(segs, ov, bsf=None):
    last_dts = None
    for seg in segs:
        st = seg.streams.video[0]
        for p in seg.demux(st):
            if p.pts is None and p.dts is None:
                continue
            if p.dts is not None and last_dts is not None and p.dts <= last_dts:
                p.dts = last_dts + 1  # segment joins: keep decode order strictly increasing
            last_dts = p.dts if p.dts is not None else last_dts
            t = float((p.dts if p.dts is not None else p.pts) * st.time_base)
            p.stream = ov
            for q in (bsf.filter(p) if bsf is not None else (p,)):
                q.stream = ov
                yield t, 0, q
    if bsf is not None and last_dts is not None:
        for q in bsf.filter(None):  # flush (the Annex B filters hold nothing back, but say so)
            q.stream = ov
            yield t, 0, q


def _aux_packets(inp, plans, outs, window, offset_s):
    if not plans:
        return
    t_start, t_end = window
    streams = [inp.streams[p.index] for p in plans]
    actions = {p.index: p.action for p in plans}
    for p in _timed_packets(inp, streams):
        idx = p.stream.index
        st = p.stream
        if p.pts is None and p.dts is None:  # a flush packet (no data)
            if actions[idx] != "copy":
                for q in _transcode(st, outs[idx], [None], offset_s):
                    yield float(q.pts * q.time_base) if q.pts is not None else 0.0, 1, q
            continue
        ts = p.pts if p.pts is not None else p.dts
        t = float(ts * st.time_base)
        if (t_start is not None and t < t_start - 1e-6) or (t_end is not None and t >= t_end):
            continue
        if actions[idx] == "copy":
            if offset_s:  # --start: shift to the output's zero
                off = round(offset_s / st.time_base)
                p.pts = p.pts - off if p.pts is not None else None
                p.dts = p.dts - off if p.dts is not None else None
            p.stream = outs[idx]
            yield t - offset_s, 1, p
        else:
            for q in _transcode(st, outs[idx], [p], offset_s):
                yield (float(q.pts * q.time_base) if q.pts is not None else t - offset_s), 1, q
