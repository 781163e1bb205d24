"""A video job before and after it runs: the options (:class:`VideoJob`), the checks and set-up done
before any frame is processed (:func:`plan`), and what is reported at the end (:func:`summarize`).

Nothing here knows about threads or queues; :mod:`.runner` runs the planned job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

from ..errors import InputError, OutputError, UsageError
from . import stages
from .sink import EncoderSpec


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
    workers: int | None = None  # frames the network runs at once (None: auto, see inference_workers)
    variant: str | None = None  # with model None: 'clean', 'real', or 'auto' (by the input's quantiser, pick_model)
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
    profile: dict = field(default_factory=dict)  # stage -> seconds (see runner.STAGES)
    workers: int = 1  # inference threads (frames the network ran at once)

    @property
    def efficiency(self) -> float:
        """The share of the inference threads' wall time spent inside the network (1: the network is the bill)."""
        return self.model_seconds / (self.workers * self.pipeline_seconds) if self.pipeline_seconds else 0.0


@dataclass
class Plan:
    """Everything fixed for a run, worked out (and checked) before the first frame is processed."""

    info: object  # source.VideoInfo
    model: object
    net: object  # the backend (routing.RoutedBackend for --mode routed)
    backend: stages.TimedBackend
    encoder: EncoderSpec  # with the mode's defaults filled in
    spec: stages.FrameSpec
    video_kwargs: dict  # the encoder stream's settings (sink.add_video_stream)
    aux: list  # mux.AuxPlan for each audio/subtitle stream kept
    end_s: float | None
    t0: int  # pts of the output's zero (the first kept frame with --start, else 0)
    default_duration: int
    rotation: float
    segment_frames: int

    @property
    def time_base(self) -> Fraction:
        return self.video_kwargs["time_base"]


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


def inference_workers(job: VideoJob) -> int:
    """How many frames the network runs at once: ``--workers``, else 2 for whole-frame modes on a
    CPU with 2 or more cores (OpenVINO gives each its own stream and half the cores: 1.1x the
    frame rate for coarse and 1.4x for fine end to end on 2 cores, docs/video.md), else 1. Routed
    mode runs one frame at a time: its tile choice follows the previous frame's, and two at once
    measured no faster. Backends other than OpenVINO run one whatever is asked."""
    from ..runtime import cpu

    if job.workers is not None:
        if job.workers < 1:
            raise UsageError("--workers must be at least 1")
        if job.workers > 1 and job.mode == "routed":
            raise UsageError("--workers above 1 is for --mode coarse, fine or gan: routed mode runs one frame at "
                             "a time (each frame's tile choice follows the previous one's)")
        return job.workers
    if job.mode == "routed" or job.device == "cuda" or cpu.cpu_threads() < 2:
        return 1
    return 2


def pick_model(job: VideoJob, info, log) -> tuple[str | None, str]:
    """(model name or None, variant) for load_for_mode: ``--variant auto`` (the video command's
    default) chooses by the input's quantiser (:func:`choose_by_quantiser`); a named model or an
    explicit variant wins."""
    if job.model is not None or job.variant != "auto":
        return job.model, job.variant or "clean"
    return choose_by_quantiser(info.path, mode=job.mode, scale=job.scale, start_s=job.start, log=log)


def choose_by_quantiser(path, *, mode: str, scale: int | None, start_s: float | None = None,
                        log=None) -> tuple[str, str]:
    """(model name, variant) for a file by its mean quantiser (H.264 QP or VP9 q-index,
    pipeline/qp.py): near-lossless input gets the clean models, heavily compressed input the
    real-strong fine model where one is shipped for the scale (fine and routed modes), everything
    else (and input whose quantiser is unknown: other codecs) the real models. The thresholds
    depend on the codec, the scale and the network (qp.THRESHOLDS). ``video`` and ``preview``
    (on a file) both choose so."""
    from ..models import DEFAULT_SCALE, ROLE_OF_MODE, default_name, strong_name
    from . import qp as qp_mod

    scale = DEFAULT_SCALE if scale is None else scale
    read = qp_mod.quantiser(path, start_s=start_s)
    codec, q = read if read is not None else (None, None)
    lvl = qp_mod.level(q, codec or "h264", "coarse" if mode == "coarse" else "fine", scale)
    variant = "clean" if lvl == "clean" else "real"
    name = default_name(ROLE_OF_MODE[mode], scale, variant)
    if lvl == "strong" and mode in ("fine", "routed"):
        name = strong_name(name) or name
    if q is not None and log is not None:
        # how compressed, in words, on one scale for every mode (x2 fine's thresholds); the model
        # chosen follows its own mode's and scale's thresholds
        what = {"clean": "near-lossless", "real": "compressed", "strong": "heavily compressed"}[qp_mod.level(q, codec)]
        shown = f"{default_name('coarse', scale, variant)} + {name}" if mode == "routed" else name
        log(f"input: mean {qp_mod.NAMES[codec]} {q:.1f} ({what}) -> {shown} "
            "(--variant real|clean or --model to choose)")
    return name, variant


def plan(job: VideoJob, log) -> Plan:
    """Probe the input, check the encoder and the whole mux (trial), load the model and its backend."""
    from .. import routing
    from . import convert, mux, sink
    from .source import iter_frames, probe

    info = probe(job.input)
    encoder = sink.for_mode(job.encoder, job.mode)
    sink.check_encoder(encoder)
    name, variant = pick_model(job, info, log)
    model = routing.load_for_mode(name, scale=job.scale, mode=job.mode, variant=variant)
    route = routing.RouteOptions(fraction=job.fine_fraction, hold=routing.VIDEO_HOLD).check()
    end_s = job.start + job.duration if job.duration is not None and job.start is not None else \
        (info.start_s + job.duration if job.duration is not None else None)

    first = next(iter_frames(info.path, start_s=job.start, end_s=end_s, seek=info.real_pts), None)
    if first is None:
        raise no_frames(info, job)
    fmt = convert.working_format(first.format.name)
    tags = convert.resolve_colour(first, info.width, info.height, first.format.name)
    rotation = float(getattr(first, "rotation", 0) or 0)
    out_fmt, notice = sink.choose_pix_fmt(encoder, fmt)
    if notice:
        log(notice)
    spec = stages.FrameSpec(fmt=fmt, out_fmt=out_fmt, width=first.width, height=first.height, scale=model.scale,
                            tags=tags, colour=model.colour, tile=job.tile, context=model.context)
    tb = first.time_base or info.time_base
    rate = info.average_rate
    t0 = first.pts if job.start is not None else 0
    del first

    ow, oh = spec.out_size
    video_kwargs = {"width": ow, "height": oh, "pix_fmt": out_fmt, "time_base": tb, "rate": rate, "tags": tags,
                    "rotation": rotation}
    aux = mux.plan_streams(info, Path(job.output), video_kwargs, encoder, audio=job.audio,
                           subtitles=job.subtitles, log=log)
    # the backend last: building one may export or compile a network, so every cheap check comes first
    net = routing.backend_for(model, backend=job.backend, device=job.device, precision=job.precision,
                              options=route, realtime=True,
                              **({"streams": n} if (n := inference_workers(job)) > 1 else {}))
    spec = replace(spec, luma_u8=hasattr(net, "upscale_u8"))
    return Plan(info=info, model=model, net=net, backend=stages.TimedBackend(net), encoder=encoder, spec=spec,
                video_kwargs=video_kwargs, aux=aux, end_s=end_s, t0=t0,
                default_duration=round(1 / (rate * tb)) if rate else 0, rotation=rotation,
                segment_frames=max(1, round(job.segment_seconds * float(rate))) if rate else 250)


def resume_key(job: VideoJob, p: Plan) -> dict:
    """What must be unchanged for ``--resume`` to continue a run (segments.WorkDir)."""
    from .segments import input_key

    m = p.model
    return dict(input_key(p.info.path), model=str(m.path), model_bytes=m.path.stat().st_size, scale=m.scale,
                encoder=p.encoder.__dict__, pix_fmt=p.spec.out_fmt, tile=job.tile, start=job.start, end=p.end_s,
                segment_frames=p.segment_frames, t0=p.t0, mode=job.mode,
                routing=dict(m.meta, fraction=job.fine_fraction) if job.mode == "routed" else None)


def no_frames(info, job) -> InputError:
    dur = getattr(info, "duration_s", None)
    if job.start is not None and dur and job.start >= dur:
        return InputError(f"{info.path}: --start {job.start:g} is past the end of the video ({dur:.1f} s)")
    where = " in the chosen --start/--duration" if job.start is not None or job.duration is not None else ""
    return InputError(f"{info.path}: no decodable video frames{where} (corrupt or truncated?)")


def expected_frames(job: VideoJob, p: Plan) -> int | None:
    """The frame count for the progress bar (None when it cannot be known)."""
    info, rate = p.info, p.info.average_rate
    if job.start is None and job.duration is None:
        return info.frames or None
    if not rate or info.duration_s is None:
        return None
    a = job.start or info.start_s
    b = min(p.end_s if p.end_s is not None else 1e18, info.start_s + info.duration_s)
    return max(0, round((b - a) * float(rate)))


def summarize(job: VideoJob, p: Plan, res: Result, stats, encoded: int, log) -> None:
    """The summary lines on stderr: totals, the per-stage profile, routing and damage."""
    net, backend, info = p.net, p.backend, p.info
    fps = encoded / res.pipeline_seconds if res.pipeline_seconds else 0.0
    log(f"{info.path.name} -> {job.output}: {res.frames} frames {res.width}x{res.height} in {res.seconds:.1f} s "
        f"({fps:.2f} fps), {res.bytes / 1e6:.1f} MB")
    bname = getattr(backend.backend, "name", type(backend.backend).__name__)
    on = f" on {res.workers} inference threads" if res.workers > 1 else ""
    log(f"pipeline efficiency {res.efficiency:.2f} (model {backend.seconds:.1f} s{on} of {res.pipeline_seconds:.1f} s "
        f"wall; model {p.model.name}, {bname}; encoder {describe_encoder(p.encoder)})")
    if encoded:
        log("profile, ms per frame: " + ", ".join(f"{k} {1e3 * v / encoded:.1f}" for k, v in res.profile.items()))
    if getattr(net, "total_tiles", 0):
        log(f"routing: the fine network ran on {net.fine_tiles} of {net.total_tiles} tiles "
            f"({100 * net.fine_tiles / net.total_tiles:.1f}%); {net.switches / max(1, backend.calls - 1):.1f} "
            f"tiles switched network per frame")
    if not stats.truncated and job.start is None and job.duration is None and info.frames \
            and res.frames + stats.damaged_packets < info.frames:
        stats.truncated = f"{res.frames} of the {info.frames} frames its index lists"
        res.truncated = stats.truncated
    if stats.repaired_pts:
        log(f"notice: {info.format_name} input without usable frame timestamps: {stats.repaired_pts} frame(s) "
            f"given best-effort timestamps (as ffprobe reports them)")
    if stats.damaged_packets or stats.truncated:
        log(f"warning: damaged input: {stats.damaged_packets} undecodable packet(s) skipped"
            + (f"; input ended early ({stats.truncated})" if stats.truncated else ""))


def describe_encoder(spec: EncoderSpec) -> str:
    from .sink import encoder_options

    opts, bitrate = encoder_options(spec)
    parts = [spec.codec] + [f"{k} {v}" for k, v in opts.items()
                            if k in ("preset", "crf", "cq", "threads", "deadline", "cpu-used")]
    return " ".join(parts) + (f" {bitrate / 1e6:g} Mbit/s" if bitrate else "")
