"""``realtime-sr preview SOURCE``: upscale a webcam, a stream or a file live, in a window.

Live means the newest frame wins. A reader thread decodes the source (a file is paced to its own
timestamps, as if it were live; a camera or stream paces itself) into a one-slot mailbox that
keeps only the latest frame; the main thread upscales whatever is newest and shows it. When the
model is slower than the source, frames are dropped (and counted), never queued, so the picture
stays current instead of falling further behind. The summary gives shown and dropped frames,
display fps and latency (decode to display).

The window is OpenCV's (the ``preview`` extra); ``--no-window`` runs the same loop without one,
which measures whether a model and backend keep up with a source in real time.
The window (:mod:`realtime_sr.preview_window`) opens at the output's size; keys: q or Esc quits,
c toggles the comparison view (bicubic left of a movable, labelled divider, the model right),
[ ] / arrows / the mouse move the divider, o toggles the overlay, s saves a side-by-side PNG,
space pauses.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, UsageError, short_message
from .preview_window import KEYS, Window

_END = object()


class LatestFrame:
    """A one-slot mailbox: ``put`` replaces what was not taken yet (counted as dropped)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item = None
        self._has = False
        self.dropped = 0
        self.closed = False

    def put(self, item) -> None:
        with self._cond:
            if self._has and self._item is not _END:
                self.dropped += 1
            self._item, self._has = item, True
            self._cond.notify()

    @property
    def empty(self) -> bool:
        with self._cond:
            return not self._has

    def close(self) -> None:
        """No more frames: ``get`` returns None once the last one was taken."""
        with self._cond:
            self.closed = True
            self._cond.notify()

    def get(self, timeout: float | None = None):
        """The newest frame not taken yet; None when closed and empty (or after ``timeout``)."""
        with self._cond:
            end = None if timeout is None else time.monotonic() + timeout
            while not self._has and not self.closed:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            if not self._has:
                return None
            item, self._item, self._has = self._item, None, False
            return item


@dataclass
class Frame:
    frame: object  # the decoded av.VideoFrame
    t_decoded: float  # time.monotonic() when it entered the mailbox
    index: int


def webcam_spec(source: str) -> tuple[str, str | None]:
    """``webcam`` / ``webcam:N`` -> (device, FFmpeg input format) for this platform; others unchanged."""
    if not source.startswith("webcam"):
        return source, None
    n = source.partition(":")[2] or "0"
    if not n.isdigit():
        raise UsageError(f"{source}: expected webcam or webcam:N (N a camera number)")
    if sys.platform.startswith("linux"):
        return f"/dev/video{n}", "v4l2"
    if sys.platform == "darwin":
        return n, "avfoundation"
    if sys.platform.startswith("win"):
        raise UsageError("on Windows, name the camera as FFmpeg's dshow does, e.g. 'video=Integrated Camera', "
                         "with --format dshow")
    raise UsageError(f"no webcam support known for {sys.platform}; pass the device and --format")


def is_live(source: str, fmt: str | None = None) -> bool:
    """A camera, device or network stream (paces itself) rather than a file (paced here)."""
    return fmt is not None or source.startswith(("webcam", "/dev/")) or "://" in source


def open_source(source: str, fmt: str | None = None):
    """(container, video stream, is_live) for a file, URL, device or ``webcam[:N]``."""
    import av

    live = is_live(source, fmt)
    target, default_fmt = webcam_spec(source)
    fmt = fmt or default_fmt
    is_file = not live
    if is_file:
        from .errors import require_file

        require_file(target, "a video file")
    try:
        c = av.open(target, format=fmt, metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"{source}: cannot open it as a video source ({short_message(exc)})") from None
    if not c.streams.video:
        c.close()
        raise InputError(f"{source}: has no video stream")
    vs = c.streams.video[0]
    vs.thread_type = "AUTO"
    return c, vs, not is_file


def read_frames(container, stream, box: LatestFrame, stop: threading.Event, *, pace: bool,
                clock=time.monotonic, sleep=time.sleep) -> None:
    """Decode into ``box`` until the end or ``stop``; ``pace``: hold each frame until its pts time."""
    import av

    t0 = p0 = None
    i = 0
    try:
        for frame in container.decode(stream):
            if stop.is_set():
                break
            if pace and frame.pts is not None and frame.time_base is not None:
                t = float(frame.pts * frame.time_base)
                if t0 is None:
                    t0, p0 = clock(), t
                wait = (t - p0) - (clock() - t0)
                if wait > 0:
                    sleep(wait)
            box.put(Frame(frame, clock(), i))
            i += 1
    except av.error.FFmpegError:
        pass  # a damaged tail or an unplugged camera ends the preview like an end of file
    finally:
        box.close()


def compare_view(lr, sr, split: float = 0.5):
    """Left of ``split``: bicubic of ``lr`` to ``sr``'s size; right: ``sr``; a 2-pixel divider."""
    from .imageops import resize_bicubic  # numpy and PIL stay out of ``--help``

    h, w = sr.shape[:2]
    out = sr.copy()
    x = int(round(w * split))
    out[:, :x] = resize_bicubic(lr, (w, h))[:, :x]
    out[:, max(x - 1, 0):x + 1] = 255
    return out


@dataclass
class Stats:
    shown: int = 0
    decoded: int = 0
    dropped: int = 0
    seconds: float = 0.0
    latency_ms: float = 0.0  # mean, decode to display
    model_ms: float = 0.0  # mean per shown frame

    def line(self) -> str:
        fps = self.shown / self.seconds if self.seconds else 0.0
        return (f"shown {self.shown} frames of {self.decoded} decoded ({self.dropped} dropped to stay live) "
                f"in {self.seconds:.1f} s: {fps:.2f} fps, model {self.model_ms:.0f} ms/frame, "
                f"latency {self.latency_ms:.0f} ms")


class FrameUpscaler:
    """The video pipeline's per-frame path (Y plane through the network, chroma resized, no RGB
    round trip), then RGB for the screen. Colour handling as in ``realtime-sr video``."""

    def __init__(self, model, backend) -> None:
        self.model, self.backend, self.spec = model, backend, None

    def __call__(self, frame):
        from .pipeline import convert, stages

        if self.spec is None or (frame.width, frame.height) != (self.spec.width, self.spec.height):
            fmt = convert.working_format(frame.format.name)
            self.spec = stages.FrameSpec(
                fmt=fmt, out_fmt=fmt, width=frame.width, height=frame.height, scale=self.model.scale,
                tags=convert.resolve_colour(frame, frame.width, frame.height, frame.format.name),
                colour=self.model.colour, tile=1024, context=self.model.context,
                luma_u8=hasattr(self.backend, "upscale_u8"))
        work = stages.infer(stages.prepare(frame, self.spec), self.spec, self.backend)
        return stages.finish(work, self.spec).to_ndarray(format="rgb24")


def run_preview(source: str, model, backend, *, fmt: str | None = None, window=True,
                compare: bool = False, max_frames: int | None = None, pace: bool | None = None,
                mode: str | None = None, log=print) -> Stats:
    """The live loop; returns its statistics (also logged). ``window``: True, False or a Window."""

    upscale = FrameUpscaler(model, backend)
    win = window if isinstance(window, Window) else (Window(f"realtime-sr: {source}") if window else None)
    try:
        container, stream, live = open_source(source, fmt)
    except BaseException:
        if win:
            win.close()
        raise
    box, stop = LatestFrame(), threading.Event()
    reader = threading.Thread(target=read_frames, args=(container, stream, box, stop),
                              kwargs={"pace": (not live) if pace is None else pace}, daemon=True)
    stats = Stats()
    latency = model_s = 0.0
    paused, skipped = False, 0
    if win:
        win.compare = compare
        win.describe(model.name, mode=mode or model.meta.get("stage", "model"), backend=backend.name)
    t_start = time.monotonic()
    reader.start()
    try:
        while max_frames is None or stats.shown < max_frames:
            frame = box.get(timeout=0.05 if win else None)  # with a window: poll keys while waiting
            if frame is None and box.closed and box.empty:
                break
            if frame is not None and paused:
                skipped += 1  # taken from the mailbox but not shown: dropped to stay live
            elif frame is not None:
                t = time.monotonic()
                sr = upscale(frame.frame)
                model_s += time.monotonic() - t
                lr = frame.frame.to_ndarray(format="rgb24") if (win or compare) else None
                if compare and not win:
                    compare_view(lr, sr)  # headless: the same work as the window's comparison view
                stats.shown += 1
                latency += time.monotonic() - frame.t_decoded
                if win:
                    n = max(stats.shown, 1)
                    win.show(sr, lr, fps=stats.shown / max(time.monotonic() - t_start, 1e-9),
                             dropped=box.dropped + skipped, latency_ms=1e3 * latency / n, paused=False)
            if win:  # after every frame, while idle and while paused: keys must always work
                action = win.poll()
                if action == "quit":
                    break
                if action == "pause":
                    paused = not paused
                    win.status["paused"] = paused
                    win.redraw()  # the overlay says so
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        reader.join(timeout=2)
        container.close()
        if win:
            win.close()
    stats.seconds = time.monotonic() - t_start
    stats.dropped = box.dropped + skipped
    stats.decoded = stats.shown + box.dropped
    stats.latency_ms = 1e3 * latency / max(stats.shown, 1)
    stats.model_ms = 1e3 * model_s / max(stats.shown, 1)
    log(stats.line())
    return stats


def add_parser(sub, add_model_flags) -> None:
    p = sub.add_parser("preview", help="upscale a webcam, stream or file live in a window",
                       description="Live preview: the newest frame is always the one upscaled (frames the model "
                                   f"cannot keep up with are dropped, not queued). Keys: {KEYS}.")
    p.add_argument("source", help="webcam, webcam:N, a device (/dev/video0), a URL (rtsp://, http://) or a file")
    add_model_flags(p)
    p.set_defaults(mode="coarse")  # the one that keeps up on a CPU
    p.add_argument("--format", dest="fmt", help="FFmpeg input format for a device (v4l2, avfoundation, dshow)")
    p.add_argument("--compare", action="store_true", help="start in the comparison view (left bicubic, right model)")
    p.add_argument("--no-window", dest="window", action="store_false",
                   help="no window: run the live loop and report whether it keeps up")
    p.add_argument("--frames", type=int, help="stop after showing this many frames")
    p.add_argument("--save-dir", default=".", metavar="DIR",
                   help="where the s key saves side-by-side PNGs, bicubic | model (default: the current folder)")
    p.add_argument("--no-pace", dest="pace", action="store_false", default=None,
                   help="read a file as fast as it decodes instead of at its own frame rate")
    p.set_defaults(func=_run)


def _auto_model(a, log) -> str:
    """``--variant auto``: for a file, the model ``video`` would choose by its quantiser; for a live
    source (which has no file to read ahead), the real model of the mode."""
    from .models import ROLE_OF_MODE, default_name

    if is_live(a.source, a.fmt):
        return default_name(ROLE_OF_MODE[a.mode], a.scale, "real")
    from .pipeline.job import choose_by_quantiser

    return choose_by_quantiser(a.source, mode=a.mode, scale=a.scale, log=log)[0]


def _run(a) -> int:
    from . import routing

    if a.frames is not None and a.frames < 1:
        raise UsageError("--frames must be at least 1")
    if not a.window and a.frames is None and is_live(a.source, a.fmt):
        raise UsageError("--no-window on a live source needs --frames N (it would run forever)")
    if not is_live(a.source, a.fmt):
        from .errors import require_file

        require_file(a.source, "a video file")  # before a window opens or a model loads
    if a.window and not Path(a.save_dir).is_dir():
        raise UsageError(f"--save-dir {a.save_dir}: no such folder")
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    name = a.model
    if name is None and a.variant == "auto":
        name = _auto_model(a, log)
    win = Window(f"realtime-sr: {a.source}", save_dir=a.save_dir, log=log) if a.window else None  # before the model
    try:
        model, backend = routing.load(name, scale=a.scale, mode=a.mode, backend=a.backend, device=a.device,
                                      precision=a.precision, realtime=True,
                                      options=routing.RouteOptions(fraction=a.fine_fraction,
                                                                   hold=routing.VIDEO_HOLD))
    except BaseException:
        if win:
            win.close()
        raise
    print(f"model {model.name} (x{model.scale}), backend {backend.name}", file=sys.stderr)
    run_preview(a.source, model, backend, fmt=a.fmt, window=win or False, compare=a.compare,
                max_frames=a.frames, pace=a.pace, mode=a.mode, log=log)
    return 0
