"""Run a video job: the only module that knows about threads and queues.

Three stages run concurrently, joined by bounded queues (so memory stays flat and no stage runs
ahead of another by more than ``queue`` frames):

    decode thread  (:meth:`Pipeline.decode_stage`):  demux + decode + planes   -> q_in
    infer thread   (:meth:`Pipeline.infer_stage`):   the model (Y plane or RGB) -> q_out
    main thread    (:meth:`Pipeline.encode_stage`):  chroma resize + encode + segment files (+ progress bar)

With a backend of N streams (OpenVINO, :func:`.job.inference_workers`) N infer threads take frames
from q_in at once; each frame carries its place (``Work.seq``) and the encode stage puts them back
in order, so the output is the one-thread output frame for frame.

Before them, :func:`.job.plan` checks and sets up everything (probe, encoder, trial mux, model);
after them, :func:`assemble_output` writes the final file from the segments and the input's
audio/subtitles into a temporary file beside OUT, which is renamed to OUT. Any error or Ctrl-C
leaves OUT absent and the work folder in place for ``--resume``. Each stage adds up the seconds it
spends working and waiting (``Pipeline.times``), the per-stage profile of the summary (the infer
entries add up all the infer threads).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from pathlib import Path

from ..errors import OutputError
from . import stages
from .job import Plan, Result, VideoJob, check_paths, expected_frames, no_frames, plan, resume_key, summarize

__all__ = ["Result", "VideoJob", "check_paths", "run_video"]

_END = object()
# the profile's entries, in pipeline order: work, then time blocked on a queue ("... wait")
STAGES = ("decode", "planes", "model", "infer other", "finish", "encode", "decode wait", "infer wait", "encode wait")


def run_video(job: VideoJob, *, log=None) -> Result:
    """Upscale ``job.input`` to ``job.output``; returns what was done. Errors are RealtimeSRErrors.

    A second run on the same OUT while this one works is refused (see segments.RunLock)."""
    from .segments import RunLock

    log = log or (lambda m: print(m, file=sys.stderr))
    t_start = time.perf_counter()
    check_paths(job)
    with RunLock(job.output):
        return _run(job, plan(job, log), log, t_start)


def _run(job: VideoJob, p: Plan, log, t_start: float) -> Result:
    from .segments import WorkDir
    from .source import DecodeStats

    work = WorkDir(Path(job.output))
    work.begin(resume_key(job, p), resume=job.resume, log=log)
    done = work.segments
    resumed = sum(x["frames"] for x in done)
    after_pts = (max(x["last_pts"] for x in done) + p.t0) if done else None
    stats = DecodeStats()
    pipe = Pipeline(job, p, work, stats, after_pts)
    out_tmp = Path(job.output).with_name(f".{Path(job.output).name}.part{Path(job.output).suffix}")
    bar = _progress(job, expected_frames(job, p), resumed)
    try:
        pipe.run(bar)
        if bar:
            bar.close()
            bar = None
        if not work.segments:
            raise no_frames(p.info, job)
        assemble_output(job, p, work, out_tmp)
    except BaseException as exc:
        out_tmp.unlink(missing_ok=True)
        if not work.segments:
            work.remove()
        elif isinstance(exc, (KeyboardInterrupt, OutputError, OSError)):
            log(f"notice: {sum(x['frames'] for x in work.segments)} finished frames are kept in {work.dir}; "
                f"rerun with --resume to continue")
        raise
    finally:
        if bar:
            bar.close()
    work.remove()

    ow, oh = p.spec.out_size
    res = Result(frames=sum(x["frames"] for x in work.segments), seconds=time.perf_counter() - t_start,
                 model_seconds=p.backend.seconds, pipeline_seconds=pipe.seconds, workers=pipe.workers,
                 bytes=Path(job.output).stat().st_size, width=ow, height=oh, damaged=stats.damaged_packets,
                 truncated=stats.truncated, resumed_frames=resumed, profile=pipe.profile())
    summarize(job, p, res, stats, pipe.encoded, log)
    return res


def assemble_output(job: VideoJob, p: Plan, work, out_tmp: Path) -> None:
    """The final file from the finished segments and the input's planned streams, then renamed to OUT."""
    from . import mux

    mux.assemble(out_tmp, Path(job.output), [work.dir / x["file"] for x in work.segments], p.info.path, p.aux,
                 window=(job.start, p.end_s), offset_s=float(p.t0 * p.time_base), rotation=p.rotation)
    os.replace(out_tmp, job.output)


class Pipeline:
    """The three concurrent stages of one run, their queues, and the time each spends working and waiting."""

    def __init__(self, job: VideoJob, p: Plan, work, stats, after_pts: int | None) -> None:
        self.job, self.plan, self.work, self.stats, self.after_pts = job, p, work, stats, after_pts
        self.q_in: queue.Queue = queue.Queue(maxsize=job.queue)
        self.q_out: queue.Queue = queue.Queue(maxsize=job.queue)
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.times = dict.fromkeys(STAGES, 0.0)
        self.encoded = 0
        self.seconds = 0.0
        # one inference thread per OpenVINO stream: frames in flight at once, put back in order by encode
        self.workers = max(1, int(getattr(p.backend, "streams", 1)))

    # ------------------------------------------------------------------ queues
    def _put(self, q, item, wait_key: str) -> bool:
        t = time.perf_counter()
        try:
            while not self.stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False
        finally:
            self.times[wait_key] += time.perf_counter() - t

    def _get(self, q, wait_key: str):
        t = time.perf_counter()
        try:
            while True:
                try:
                    return q.get(timeout=0.1)
                except queue.Empty:
                    if self.stop.is_set():
                        return _END
        finally:
            self.times[wait_key] += time.perf_counter() - t

    # ------------------------------------------------------------------ the stages
    def decode_stage(self) -> None:
        """Decode thread: frames -> planes and the network's input -> q_in."""
        from .source import iter_frames

        job, p, times = self.job, self.plan, self.times
        it = iter_frames(p.info.path, start_s=job.start, end_s=p.end_s, after_pts=self.after_pts,
                         stats=self.stats, seek=p.info.real_pts)
        seq = 0
        while not self.stop.is_set():
            t = time.perf_counter()
            frame = next(it, None)
            t1 = time.perf_counter()
            times["decode"] += t1 - t
            if frame is None:
                break
            w = stages.prepare(frame, p.spec)
            w.pts -= p.t0
            w.duration = w.duration or p.default_duration
            w.seq, seq = seq, seq + 1
            times["planes"] += time.perf_counter() - t1
            if not self._put(self.q_in, w, "decode wait"):
                break

    def infer_stage(self) -> None:
        """Inference thread: q_in -> the model -> q_out."""
        while True:
            w = self._get(self.q_in, "infer wait")
            if w is _END:
                if self.workers > 1:  # the other inference threads need the end mark too
                    self._put(self.q_in, _END, "infer wait")
                break
            t = time.perf_counter()
            w = stages.infer(w, self.plan.spec, self.plan.backend)
            self.times["infer other"] += time.perf_counter() - t
            if not self._put(self.q_out, w, "infer wait"):
                break

    def _thread(self, stage, q, wait_key: str) -> threading.Thread:
        """A thread running ``stage``: its error goes to the main thread, and ``q`` always gets the end mark."""
        def body():
            try:
                stage()
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
                self.errors.append(exc)
            finally:
                self._put(q, _END, wait_key)

        return threading.Thread(target=body, name=stage.__name__, daemon=True)

    def encode_stage(self, bar) -> None:
        """Main thread: q_out -> chroma and frame -> encoder -> finished segments in the work folder."""
        from . import sink

        p, work, times = self.plan, self.work, self.times
        writer = None
        pending: dict[int, object] = {}  # frames that came back ahead of an earlier one (several inference threads)
        ends, next_seq = 0, 0
        try:
            while True:
                if next_seq in pending:
                    w = pending.pop(next_seq)
                else:
                    w = self._get(self.q_out, "encode wait")
                    if w is _END:
                        ends += 1
                        if ends < self.workers and not self.errors:
                            continue
                        break
                    if w.seq != next_seq:
                        pending[w.seq] = w
                        continue
                next_seq += 1
                t = time.perf_counter()
                frame = stages.finish(w, p.spec)
                t1 = time.perf_counter()
                times["finish"] += t1 - t
                if writer is None:
                    writer = sink.SegmentWriter(work.segment_path(len(work.segments)), p.encoder, **p.video_kwargs)
                writer.write(frame, w.duration)
                if writer.frames >= p.segment_frames:
                    work.add_segment(writer.close())
                    writer = None
                times["encode"] += time.perf_counter() - t1
                self.encoded += 1
                if bar:
                    bar.update(1)
            if self.errors:
                raise self.errors[0]
            if writer is not None:
                work.add_segment(writer.close())
                writer = None
        except BaseException:
            if writer is not None:
                writer.abort()
            raise

    def run(self, bar=None) -> None:
        """Run the three stages to the end of the input (or the first error, which is raised here)."""
        threads = [self._thread(self.decode_stage, self.q_in, "decode wait")]
        threads += [self._thread(self.infer_stage, self.q_out, "infer wait") for _ in range(self.workers)]
        t = time.perf_counter()
        try:
            for th in threads:
                th.start()
            self.encode_stage(bar)
        finally:
            self.stop.set()
            for th in threads:
                th.join(timeout=5)
            self.seconds = time.perf_counter() - t

    def profile(self) -> dict:
        """Seconds per stage; the model's own time is split out of the inference stage's."""
        out = dict(self.times)
        out["model"] = self.plan.backend.seconds
        out["infer other"] = max(0.0, out["infer other"] - out["model"])
        return out


def _progress(job, total, initial):
    if not job.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="frame", file=sys.stderr, dynamic_ncols=True, leave=False,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} frames [{elapsed}<{remaining}, {rate_fmt}]")
