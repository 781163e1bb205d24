"""Helpers for the video tests: tiny random-weight models, synthetic clips, and reading results back."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parents[1] / ".." / "shared" / "data"
VIDEOS = DATA / "videos"


def need_video(name: str) -> Path:
    p = VIDEOS / name
    if not p.exists():
        pytest.skip(f"{p} not found: the shared test clips (../shared/data/videos) are not available here")
    return p


def make_model(folder: Path, *, scale: int = 2, colour: str = "y") -> Path:
    """A tiny random-weight coarse model (near-bicubic thanks to its skip), as a weights file."""
    import torch

    from realtime_sr.archs import build
    from realtime_sr.checkpoints import save_weights

    torch.manual_seed(0)
    hp = {"scale": scale, "in_channels": 1 if colour == "y" else 3, "d": 8, "s": 4, "m": 1}
    net = build("coarse", **hp)
    path = Path(folder) / f"tiny_{colour}_x{scale}.safetensors"
    save_weights(path, net.state_dict(), {"arch": "coarse", "hparams": hp, "scale": scale, "colour": colour,
                                          "context": 8, "name": "test"})
    return path


def make_clip(path: Path, *, width: int = 64, height: int = 48, frames: int = 12, fps: int = 25,
              pix_fmt: str = "yuv420p", codec: str = "libx264", audio: bool = False, audio_layout: str = "stereo",
              pts: list[int] | None = None, time_base: Fraction | None = None, colour: dict | None = None,
              rotation: float = 0.0, crf: int = 20) -> Path:
    """A synthetic clip (moving gradient) with optional AAC audio, explicit pts and colour tags."""
    import av

    tb = time_base or Fraction(1, fps * 512)
    pts = pts or [round(i / fps / tb) for i in range(frames)]
    with av.open(str(path), "w") as out:
        opts = {"preset": "ultrafast", "crf": str(crf)} if "x26" in codec else {}
        if codec == "libvpx-vp9":
            opts = {"deadline": "realtime", "cpu-used": "8", "b": "0",
                    **({"lossless": "1"} if crf == 0 else {"crf": str(crf)})}
        vs = out.add_stream(codec, options=opts)
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        vs.time_base = tb
        vs.codec_context.time_base = tb
        vs.codec_context.framerate = Fraction(fps)
        for k, v in (colour or {}).items():
            setattr(vs.codec_context, k, v)
        if rotation:
            vs.set_display_rotation(rotation)
        if audio:
            aus = out.add_stream("aac", rate=48000, layout=audio_layout)
        yy, xx = np.mgrid[0:height, 0:width]
        for i, p in enumerate(pts):
            rgb = np.stack([(xx * 4 + i * 8) % 256, (yy * 4) % 256, ((xx + yy) * 2 + i * 16) % 256], -1).astype(np.uint8)
            full = (colour or {}).get("color_range") == 2
            fr = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format=pix_fmt, dst_color_range=av.video.reformatter.ColorRange.JPEG if full else None)
            fr.pts = p
            fr.time_base = tb
            for k, v in (colour or {}).items():
                setattr(fr, k, v)
            for pkt in vs.encode(fr):
                out.mux(pkt)
        for pkt in vs.encode(None):
            out.mux(pkt)
        if audio:
            dur = float((pts[-1] + round(1 / fps / tb)) * tb)
            n = int(dur * 48000)
            ch = aus.codec_context.channels if hasattr(aus.codec_context, "channels") else 2
            t = np.arange(n) / 48000
            sig = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            data = np.repeat(sig[None], ch, axis=0)
            for s0 in range(0, n, 1024):
                fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, s0:s0 + 1024]), format="fltp",
                                                layout=audio_layout)
                fr.sample_rate = 48000
                fr.pts = s0
                for pkt in aus.encode(fr):
                    out.mux(pkt)
            for pkt in aus.encode(None):
                out.mux(pkt)
    return path


def video_facts(path: Path) -> dict:
    """Frame pts (in seconds), size, pixel format, colour tags, audio facts of a file."""
    import av

    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        times, fmt, tags, rot = [], None, None, 0
        for f in c.decode(vs):
            times.append(float(f.pts * f.time_base))
            if fmt is None:
                fmt = f.format.name
                tags = (int(f.colorspace), int(f.color_range), int(f.color_primaries), int(f.color_trc))
                rot = f.rotation
            w, h = f.width, f.height
        vdur = float(vs.duration * vs.time_base) if vs.duration else None
        audio = []
        for a in c.streams.audio:
            audio.append({"codec": a.codec_context.name, "channels": a.codec_context.channels,
                          "rate": a.codec_context.sample_rate,
                          "duration": float(a.duration * a.time_base) if a.duration else None,
                          "frame_size": a.codec_context.frame_size or 1024})
        return {"times": times, "width": w, "height": h, "pix_fmt": fmt, "tags": tags, "rotation": rot,
                "duration": vdur, "audio": audio, "subtitles": len(c.streams.subtitles)}


def run_cli(*args) -> int:
    from realtime_sr.cli import main

    return main([str(a) for a in args])


FAST = ["--backend", "torch", "--preset", "ultrafast", "--no-progress"]  # the video tests' quick settings


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny luma model file, one per test module (import it into the module to use it)."""
    return make_model(tmp_path_factory.mktemp("model"))


def _gradient_frames(n: int, width: int, height: int):
    import av

    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(n):
        rgb = np.stack([(xx * 4 + i * 8) % 256, (yy * 4) % 256, ((xx + yy) * 2 + i * 16) % 256], -1).astype(np.uint8)
        yield av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")


def _write_tone(out, a, seconds: float) -> None:
    """A 440 Hz stereo tone, ``seconds`` long, encoded with audio stream ``a`` of ``out``."""
    import av

    rate = a.codec_context.sample_rate
    n, fs = int(seconds * rate), a.codec_context.frame_size or 1024
    sig = (0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.float32)
    for s0 in range(0, n, fs):
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(np.repeat(sig[None, s0:s0 + fs], 2, 0)), format="fltp",
                                        layout="stereo")
        fr.sample_rate, fr.pts = rate, s0
        for p in a.encode(fr):
            out.mux(p)
    for p in a.encode(None):
        out.mux(p)


def make_bframe_stream(path: Path, *, fmt: str | None = None, frames: int = 25, width: int = 64, height: int = 48,
                       audio: str | None = None) -> Path:
    """H.264 with B-frames (3) at 25 fps into a container that stores no pts: AVI (``audio``: e.g.
    libmp3lame, as cameras write) or a raw elementary stream (``fmt="h264"``)."""
    import av

    with av.open(str(path), "w", format=fmt) as out:
        vs = out.add_stream("libx264", rate=25, options={"preset": "veryfast", "crf": "20", "bf": "3"})
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        a = out.add_stream(audio, rate=44100, layout="stereo") if audio else None
        for i, f in enumerate(_gradient_frames(frames, width, height)):
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        if a is not None:
            _write_tone(out, a, frames / 25)
    return path


def strip_pes_timestamps(data: bytes, kinds=("video", "audio")) -> bytes:
    """An MPEG-TS with the PTS/DTS removed from the PES headers of ``kinds`` (replaced by stuffing)."""
    b = bytearray(data)
    for off in range(0, len(b) - 187, 188):
        if b[off] != 0x47 or not b[off + 1] & 0x40:  # not a packet that starts a PES
            continue
        afc, p = (b[off + 3] >> 4) & 3, off + 4
        if afc & 2:
            p += 1 + b[p]
        if not afc & 1 or p + 9 > off + 188 or b[p:p + 3] != b"\x00\x00\x01":
            continue
        sid = b[p + 3]
        kind = "video" if 0xE0 <= sid <= 0xEF else "audio" if 0xC0 <= sid <= 0xDF or sid == 0xBD else None
        if kind in kinds:
            n = {2: 5, 3: 10}.get(b[p + 7] >> 6, 0)
            b[p + 7] &= 0x3F
            b[p + 9:p + 9 + n] = b"\xff" * n
    return bytes(b)


def make_ts_without_pts(path: Path, *, kinds=("video", "audio"), frames: int = 25) -> Path:
    """An MPEG-TS (H.264 + AAC, 25 fps declared in the H.264 stream) whose PES headers of ``kinds`` carry no PTS."""
    import av

    src = make_clip(path.with_suffix(".src.mp4"), frames=frames, audio=True, time_base=Fraction(1, 25))
    ts = path.with_suffix(".full.ts")
    with av.open(str(src)) as i, av.open(str(ts), "w", format="mpegts") as o:
        outs = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for p in i.demux():
            if p.dts is not None:
                p.stream = outs[p.stream.index]
                o.mux(p)
    path.write_bytes(strip_pes_timestamps(ts.read_bytes(), kinds))
    src.unlink()
    ts.unlink()
    return path


def start_run_and_pause(src, out, model):
    """A real `realtime-sr video` run (a subprocess), stopped with SIGSTOP as soon as it has listed its
    first finished segment: mid-run whatever the machine's speed (the clip must outlast one poll)."""
    import json
    import signal
    import subprocess
    import sys
    import time

    args = [sys.executable, "-m", "realtime_sr", "video", str(src), str(out), "--model", str(model),
            "--segment-seconds", "0.2", "--queue", "1", *FAST]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    manifest = out.parent / f".{out.name}.rsr-work" / "manifest.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads(manifest.read_text())["segments"]:
                proc.send_signal(signal.SIGSTOP)
                return proc
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.005)
    proc.kill()
    pytest.fail(f"the first run ended before its first segment: {proc.communicate()[1][-500:]}")


def interrupt_after(monkeypatch, n):
    """Ctrl-C (KeyboardInterrupt) in the encode stage at its n-th frame."""
    from realtime_sr.pipeline import stages

    real = stages.finish
    calls = {"n": 0}

    def finish(work, spec):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real(work, spec)

    monkeypatch.setattr(stages, "finish", finish)
