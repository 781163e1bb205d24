"""Run a video job: the only module that knows about threads and queues.

Three stages run concurrently, joined by bounded queues (so memory stays flat and no stage runs
ahead of another by more than ``queue`` frames):

    decode thread:  demux + decode + planes      -> q_in
    infer thread:   the model (Y plane or RGB)   -> q_out
    main thread:    chroma resize + encode + segment files (+ progress bar)

Then the final file is assembled from the segments and the input's audio/subtitles into a
temporary file beside OUT, which is renamed to OUT. Any error or Ctrl-C leaves OUT absent and the
work folder in place for ``--resume``.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OutputError, UsageError
from . import stages
from .sink import EncoderSpec

_END = object()


@dataclass(frozen=True)
class VideoJob:
    input: Path
    output: Path
    model: str | None = None
    scale: int | None = 2
    mode: str = "fine"
    fine_fraction: float = 0.25  # --mode routed
    backend: str = "auto"
    device: str = "cpu"
    precision: str = "fp32"
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    tile: int = 1024
    start: float | None = None
    duration: float | None = None
    audio: bool = True
    subtitles: bool = True
    overwrite: bool = False
    resume: bool = False
    segment_seconds: float = 10.0
    queue: int = 4
    progress: bool = True


@dataclass
class Result:
    frames: int
    seconds: float
    model_seconds: float
    pipeline_seconds: float
    bytes: int
    width: int
    height: int
    damaged: int = 0
    truncated: str | None = None
    resumed_frames: int = 0

    @property
    def efficiency(self) -> float:
        return self.model_seconds / self.pipeline_seconds if self.pipeline_seconds else 0.0


def check_paths(job: VideoJob) -> None:
    """IN == OUT, an existing OUT without -y, a missing output folder: refused before any work."""
    src, dst = Path(job.input), Path(job.output)
    if dst.exists() and (dst.resolve() == src.resolve() or (src.exists() and os.path.samefile(src, dst))):
        raise UsageError(f"{dst}: output is the input file; choose another name")
    if dst.is_dir():
        raise UsageError(f"{dst}: is a folder; give an output file name")
    if dst.exists() and not job.overwrite:
        raise OutputError(f"{dst}: already exists (use -y/--overwrite to replace it)")
    if not dst.parent.exists():
        raise OutputError(f"{dst.parent}: no such folder")
    if job.start is not None and job.start < 0 or job.duration is not None and job.duration <= 0:
        raise UsageError("--start must be >= 0 and --duration > 0")


def run_video(job: VideoJob, *, log=None) -> Result:
    """Upscale ``job.input`` to ``job.output``; returns what was done. Errors are RealtimeSRErrors.

    A second run on the same OUT while this one works is refused (see segments.RunLock)."""
    from .segments import RunLock

    log = log or (lambda m: print(m, file=sys.stderr))
    t_start = time.perf_counter()
    check_paths(job)
    with RunLock(job.output):
        return _run(job, log, t_start)


def _run(job: VideoJob, log, t_start: float) -> Result:
    from .. import routing
    from . import convert, mux, sink
    from .segments import WorkDir, input_key
    from .source import DecodeStats, iter_frames, probe

    info = probe(job.input)
    sink.check_encoder(job.encoder)
    model = routing.load_for_mode(job.model, scale=job.scale, mode=job.mode)
    route = routing.RouteOptions(fraction=job.fine_fraction, hold=routing.VIDEO_HOLD).check()
    s = model.scale
    end_s = job.start + job.duration if job.duration is not None and job.start is not None else \
        (info.start_s + job.duration if job.duration is not None else None)

    first = next(iter_frames(info.path, start_s=job.start, end_s=end_s, seek=info.real_pts), None)
    if first is None:
        raise _no_frames(info, job)
    fmt = convert.working_format(first.format.name)
    tags = convert.resolve_colour(first, info.width, info.height, first.format.name)
    rotation = float(getattr(first, "rotation", 0) or 0)
    out_fmt, notice = sink.choose_pix_fmt(job.encoder, fmt)
    if notice:
        log(notice)
    spec = stages.FrameSpec(fmt=fmt, out_fmt=out_fmt, width=first.width, height=first.height, scale=s, tags=tags,
                            colour=model.colour, tile=job.tile, context=model.context)
    tb = first.time_base or info.time_base
    rate = info.average_rate
    t0 = first.pts if job.start is not None else 0
    default_dur = round(1 / (rate * tb)) if rate else 0
    del first

    ow, oh = spec.out_size
    video_kwargs = {"width": ow, "height": oh, "pix_fmt": out_fmt, "time_base": tb, "rate": rate, "tags": tags,
                    "rotation": rotation}
    plans = mux.plan_streams(info, Path(job.output), video_kwargs, job.encoder, audio=job.audio,
                             subtitles=job.subtitles, log=log)

    # the backend last: building one may export or compile a network, so every cheap check comes first
    net = routing.backend_for(model, backend=job.backend, device=job.device, precision=job.precision,
                              options=route)
    backend = stages.TimedBackend(net)
    seg_frames = max(1, round(job.segment_seconds * float(rate))) if rate else 250
    work = WorkDir(Path(job.output))
    key = dict(input_key(info.path), model=str(model.path), model_bytes=model.path.stat().st_size, scale=s,
               encoder=job.encoder.__dict__, pix_fmt=out_fmt, tile=job.tile, start=job.start, end=end_s,
               segment_frames=seg_frames, t0=t0, mode=job.mode,
               routing=dict(model.meta, fraction=job.fine_fraction) if job.mode == "routed" else None)
    work.begin(key, resume=job.resume, log=log)
    done = work.segments
    after_pts = (max(x["last_pts"] for x in done) + t0) if done else None
    resumed = sum(x["frames"] for x in done)

    expected = _expected_frames(info, job, end_s, rate)
    stats = DecodeStats()
    q_in: queue.Queue = queue.Queue(maxsize=job.queue)
    q_out: queue.Queue = queue.Queue(maxsize=job.queue)
    stop = threading.Event()
    errors: list[BaseException] = []
    times = {"decode": 0.0, "encode": 0.0}

    def put(q, item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(q):
        while True:
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                if stop.is_set():
                    return _END

    def decode_loop():
        try:
            it = iter_frames(info.path, start_s=job.start, end_s=end_s, after_pts=after_pts, stats=stats,
                             seek=info.real_pts)
            while not stop.is_set():
                t = time.perf_counter()
                frame = next(it, None)
                if frame is None:
                    break
                w = stages.prepare(frame, spec)
                w.pts -= t0
                w.duration = w.duration or default_dur
                times["decode"] += time.perf_counter() - t
                if not put(q_in, w):
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            errors.append(exc)
        finally:
            put(q_in, _END)

    def infer_loop():
        try:
            while True:
                w = get(q_in)
                if w is _END:
                    break
                if not put(q_out, stages.infer(w, spec, backend)):
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
        finally:
            put(q_out, _END)

    bar = _progress(job, expected, resumed)
    writer = None
    encoded = 0
    t_pipe = time.perf_counter()
    threads = [threading.Thread(target=decode_loop, name="decode", daemon=True),
               threading.Thread(target=infer_loop, name="infer", daemon=True)]
    out_tmp = Path(job.output).with_name(f".{Path(job.output).name}.part{Path(job.output).suffix}")
    try:
        for th in threads:
            th.start()
        while True:
            w = get(q_out)
            if w is _END:
                break
            t = time.perf_counter()
            frame = stages.finish(w, spec)
            if writer is None:
                writer = sink.SegmentWriter(work.segment_path(len(work.segments)), job.encoder, **video_kwargs)
            writer.write(frame, w.duration)
            if writer.frames >= seg_frames:
                work.add_segment(writer.close())
                writer = None
            times["encode"] += time.perf_counter() - t
            encoded += 1
            if bar:
                bar.update(1)
        if errors:
            raise errors[0]
        if writer is not None:
            work.add_segment(writer.close())
            writer = None
        pipeline_s = time.perf_counter() - t_pipe
        if bar:
            bar.close()
            bar = None
        if not work.segments:
            raise _no_frames(info, job)
        mux.assemble(out_tmp, Path(job.output), [work.dir / x["file"] for x in work.segments], info.path, plans,
                     window=(job.start, end_s), offset_s=float(t0 * tb), rotation=rotation)
        os.replace(out_tmp, job.output)
    except BaseException as exc:
        stop.set()
        if writer is not None:
            writer.abort()
        out_tmp.unlink(missing_ok=True)
        if not work.segments:
            work.remove()
        elif isinstance(exc, (KeyboardInterrupt, OutputError, OSError)):
            log(f"notice: {sum(x['frames'] for x in work.segments)} finished frames are kept in {work.dir}; "
                f"rerun with --resume to continue")
        raise
    finally:
        stop.set()
        if bar:
            bar.close()
        for th in threads:
            th.join(timeout=5)
    work.remove()

    total = sum(x["frames"] for x in work.segments)
    res = Result(frames=total, seconds=time.perf_counter() - t_start, model_seconds=backend.seconds,
                 pipeline_seconds=pipeline_s, bytes=Path(job.output).stat().st_size, width=ow, height=oh,
                 damaged=stats.damaged_packets, truncated=stats.truncated, resumed_frames=resumed)
    fps = encoded / pipeline_s if pipeline_s else 0.0
    log(f"{info.path.name} -> {job.output}: {total} frames {ow}x{oh} in {res.seconds:.1f} s "
        f"({fps:.2f} fps), {res.bytes / 1e6:.1f} MB")
    log(f"pipeline efficiency {res.efficiency:.2f} (model {backend.seconds:.1f} s of {pipeline_s:.1f} s wall; "
        f"decode {times['decode']:.1f} s, encode {times['encode']:.1f} s; model {model.name}, {_bname(backend)})")
    if getattr(net, "total_tiles", 0):
        log(f"routing: the fine network ran on {net.fine_tiles} of {net.total_tiles} tiles "
            f"({100 * net.fine_tiles / net.total_tiles:.1f}%); {net.switches / max(1, backend.calls - 1):.1f} "
            f"tiles switched network per frame")
    if not stats.truncated and job.start is None and job.duration is None and info.frames \
            and total + stats.damaged_packets < info.frames:
        stats.truncated = f"{total} of the {info.frames} frames its index lists"
        res.truncated = stats.truncated
    if stats.repaired_pts:
        log(f"notice: {info.format_name} input without usable frame timestamps: {stats.repaired_pts} frame(s) "
            f"given best-effort timestamps (as ffprobe reports them)")
    if stats.damaged_packets or stats.truncated:
        log(f"warning: damaged input: {stats.damaged_packets} undecodable packet(s) skipped"
            + (f"; input ended early ({stats.truncated})" if stats.truncated else ""))
    return res


def _bname(backend) -> str:
    return getattr(backend.backend, "name", type(backend.backend).__name__)


def _no_frames(info, job):
    from ..errors import InputError

    where = " in the chosen --start/--duration" if job.start is not None or job.duration is not None else ""
    return InputError(f"{info.path}: no decodable video frames{where} (corrupt or truncated?)")


def _expected_frames(info, job, end_s, rate) -> int | None:
    if job.start is None and job.duration is None:
        return info.frames or None
    if not rate or info.duration_s is None:
        return None
    a = job.start or info.start_s
    b = min(end_s if end_s is not None else 1e18, info.start_s + info.duration_s)
    return max(0, round((b - a) * float(rate)))


def _progress(job, total, initial):
    if not job.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="frame", file=sys.stderr, dynamic_ncols=True, leave=False,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} frames [{elapsed}<{remaining}, {rate_fmt}]")
