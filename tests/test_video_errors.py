"""`realtime-sr video`: bad inputs, refused outputs, disk full, Ctrl-C, and --resume."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from video_helpers import (FAST, interrupt_after, make_clip, model, run_cli,  # noqa: F401 (model)
                           start_run_and_pause, video_facts)



@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("clip")
    return make_clip(d / "in.mp4", frames=25, audio=True)


def fails(capsys, *args, code=1) -> str:
    assert run_cli("video", *args, *FAST) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("realtime-sr: error: ")
    return err[-1]


def no_output_left(folder: Path, name: str = "out.mp4") -> bool:
    return not (folder / name).exists() and not list(folder.glob(f".{name}.part*"))


def test_missing_empty_text_image_audio_only(tmp_path, model, capsys):
    out = tmp_path / "out.mp4"
    assert "no such file" in fails(capsys, tmp_path / "nope.mp4", out, "--model", model)
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert "empty file" in fails(capsys, tmp_path / "empty.mp4", out, "--model", model)
    (tmp_path / "notes.mp4").write_text("just some text\n" * 20)
    assert "not a readable video" in fails(capsys, tmp_path / "notes.mp4", out, "--model", model)
    from PIL import Image

    Image.new("RGB", (32, 32), "red").save(tmp_path / "pic.png")
    assert "is an image" in fails(capsys, tmp_path / "pic.png", out, "--model", model)
    import av

    with av.open(str(tmp_path / "song.m4a"), "w") as o:
        a = o.add_stream("aac", rate=48000, layout="stereo")
        fr = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
        fr.sample_rate, fr.pts = 48000, 0
        for p in list(a.encode(fr)) + list(a.encode(None)):
            o.mux(p)
    assert "no video stream" in fails(capsys, tmp_path / "song.m4a", out, "--model", model)
    assert no_output_left(tmp_path)


def test_truncated_and_corrupt_inputs(tmp_path, model, capsys):
    import av

    src = make_clip(tmp_path / "src.mp4", frames=30, width=96, height=64)
    data = src.read_bytes()
    # moov at the end (the default): a cut file has no index at all -> a clear error
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    assert "truncated" in fails(capsys, tmp_path / "cut.mp4", tmp_path / "out.mp4", "--model", model)
    # index first (faststart): a cut file decodes up to the cut -> processed, reported as ending early
    fast = tmp_path / "fast.mp4"
    with av.open(str(src)) as i, av.open(str(fast), "w", options={"movflags": "faststart"}) as o:
        vs = o.add_stream_from_template(i.streams.video[0])
        for p in i.demux(i.streams.video[0]):
            if p.size:
                p.stream = vs
                o.mux(p)
    data = fast.read_bytes()
    (tmp_path / "fastcut.mp4").write_bytes(data[: len(data) * 2 // 3])
    assert run_cli("video", tmp_path / "fastcut.mp4", tmp_path / "o1.mp4", "--model", model, *FAST) == 0
    assert "input ended early" in capsys.readouterr().err
    assert 5 < len(video_facts(tmp_path / "o1.mp4")["times"]) < 30
    # damage in the middle: undecodable packets are skipped and counted
    bad = bytearray(data)
    for k in range(len(bad) // 2, len(bad) // 2 + 3000, 5):
        bad[k] ^= 0x5A
    (tmp_path / "bad.mp4").write_bytes(bytes(bad))
    assert run_cli("video", tmp_path / "bad.mp4", tmp_path / "o2.mp4", "--model", model, *FAST) == 0
    n = len(video_facts(tmp_path / "o2.mp4")["times"])
    err = capsys.readouterr().err
    assert n == 30 or "damaged input" in err


def test_refused_outputs(tmp_path, clip, model, capsys):
    assert "output is the input" in fails(capsys, clip, clip, "--model", model, "-y", code=2)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    assert "already exists" in fails(capsys, clip, out, "--model", model)
    assert out.read_bytes() == b"keep me"
    assert "not available" in fails(capsys, clip, tmp_path / "x.mp4", "--model", model, "--codec", "nosuchenc",
                                    code=2)
    assert "unknown output format" in fails(capsys, clip, tmp_path / "x.qqq", "--model", model, code=2)
    # a quality outside the codec's scale is refused, not clamped by the encoder
    assert "--crf 99: libx264 takes 0-51" in fails(capsys, clip, tmp_path / "x.mp4", "--model", model, "--crf", "99",
                                                   code=2)
    assert not (tmp_path / "x.mp4").exists()
    # a codec the container cannot hold: found by the trial mux, before any work
    assert "cannot write libx264 video into a webm" in fails(capsys, clip, tmp_path / "x.webm", "--model", model,
                                                             "--codec", "libx264")
    assert not list(tmp_path.glob(".x.*"))
    assert run_cli("video", clip, out, "--model", model, "-y", *FAST) == 0  # -y replaces
    assert len(video_facts(out)["times"]) == 25


def test_a_start_past_the_end_says_so(tmp_path, clip, model, capsys):
    msg = fails(capsys, clip, tmp_path / "out.mp4", "--model", model, "--start", "30")
    assert "--start 30 is past the end of the video (1.0 s)" in msg
    assert no_output_left(tmp_path)


def test_the_trial_mux_copies_the_video_as_the_final_mux_does(tmp_path, clip, model, capsys, monkeypatch):
    """The trial writes an MP4 segment and copies it the way the final mux does, so a container
    that refuses the copied packets is refused before any work. Without the Annex B conversion,
    AVI refuses MP4's H.264 packets: the run must stop at the trial, with no work folder left."""
    from realtime_sr.pipeline import mux

    monkeypatch.setattr(mux, "annexb_filter", lambda fmt, vt, ov: None)
    msg = fails(capsys, clip, tmp_path / "x.avi", "--model", model)
    assert "cannot write libx264 video into a avi file" in msg
    assert not list(tmp_path.glob(".x.avi*")) and not (tmp_path / "x.avi").exists()


def test_disk_full_simulated(tmp_path, clip, model, capsys, monkeypatch):
    """ENOSPC from the writer (simulated by monkeypatching, so it runs anywhere; see the tmpfs test)."""
    from realtime_sr.pipeline import mux, sink

    real_init = sink.SegmentWriter.__init__

    class FullDisk:  # the segment's container, whose writes fail as on a full disk after a few packets
        def __init__(self, container):
            self.container, self.n = container, 0

        def mux(self, packet):
            self.n += 1
            if self.n > 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.container.mux(packet)

        def __getattr__(self, name):
            return getattr(self.container, name)

    def init(self, *a, **k):
        real_init(self, *a, **k)
        self.container = FullDisk(self.container)

    monkeypatch.setattr(sink.SegmentWriter, "__init__", init)
    msg = fails(capsys, clip, tmp_path / "out.mp4", "--model", model)
    assert "disk full" in msg
    assert no_output_left(tmp_path)
    monkeypatch.undo()

    def packets(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
        yield  # pragma: no cover

    monkeypatch.setattr(mux, "_video_packets", packets)  # ENOSPC while writing the final file
    assert "disk full" in fails(capsys, clip, tmp_path / "out.mp4", "--model", model)
    assert no_output_left(tmp_path)


def test_disk_full_real_tmpfs(tmp_path, clip, model, capsys):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mnt)],
                                           capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root); test_disk_full_simulated covers ENOSPC")
    try:
        big = make_clip(tmp_path / "big.mp4", frames=25, width=160, height=120)
        assert "disk full" in fails(capsys, big, mnt / "out.mp4", "--model", model)
        assert not (mnt / "out.mp4").exists()
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


OV_TWO_WORKERS = ["--backend", "openvino", "--precision", "fp32", "--workers", "2", "--preset", "ultrafast",
                  "--no-progress"]


@pytest.mark.parametrize("flags", [
    FAST,
    pytest.param(OV_TWO_WORKERS, id="openvino-2-workers", marks=pytest.mark.skipif(
        __import__("importlib").util.find_spec("openvino") is None, reason="OpenVINO is not installed")),
])
def test_ctrl_c_leaves_nothing_then_resume_equals_uninterrupted(tmp_path, clip, model, capsys, monkeypatch, flags):
    args = ["--model", model, "--segment-seconds", "0.2", *flags]  # 5-frame segments
    assert run_cli("video", clip, tmp_path / "ref.mp4", *args) == 0
    before = clip.read_bytes()
    interrupt_after(monkeypatch, 13)
    assert run_cli("video", clip, tmp_path / "out.mp4", *args) == 130
    monkeypatch.undo()
    assert no_output_left(tmp_path) and clip.read_bytes() == before
    assert (tmp_path / ".out.mp4.rsr-work").is_dir()
    capsys.readouterr()
    assert run_cli("video", clip, tmp_path / "out.mp4", "--resume", *args) == 0
    assert "resuming: 2 finished segment(s), 10 frames" in capsys.readouterr().err
    a, b = video_facts(tmp_path / "ref.mp4"), video_facts(tmp_path / "out.mp4")
    assert b["times"] == a["times"] and b["duration"] == a["duration"] and b["audio"] == a["audio"]
    assert not (tmp_path / ".out.mp4.rsr-work").exists()
    import av

    def frames(p):
        with av.open(str(p)) as c:
            return [f.to_ndarray(format="yuv420p") for f in c.decode(video=0)]

    assert all(np.array_equal(x, y) for x, y in zip(frames(tmp_path / "ref.mp4"), frames(tmp_path / "out.mp4")))


def test_resume_refuses_changed_options(tmp_path, clip, model, capsys, monkeypatch):
    args = ["--model", model, "--segment-seconds", "0.2", *FAST]
    interrupt_after(monkeypatch, 8)
    assert run_cli("video", clip, tmp_path / "out.mp4", *args) == 130
    monkeypatch.undo()
    msg = fails(capsys, clip, tmp_path / "out.mp4", "--resume", "--crf", "30", *args, code=2)
    assert "cannot resume" in msg and "encoder" in msg
    # without --resume the old work is discarded and the run starts over
    assert run_cli("video", clip, tmp_path / "out.mp4", *args) == 0
    assert len(video_facts(tmp_path / "out.mp4")["times"]) == 25


def test_real_sigint_then_resume(tmp_path, model, capsys):
    """A real Ctrl-C (SIGINT to a running `realtime-sr video`, paused mid-run so it lands there on any machine),
    then --resume."""
    import signal

    src = make_clip(tmp_path / "in.mp4", frames=30, width=96, height=64, audio=True)
    proc = start_run_and_pause(src, tmp_path / "out.mp4", model)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err and no_output_left(tmp_path)
    assert run_cli("video", src, tmp_path / "out.mp4", "--model", model, "--segment-seconds", "0.2", "--resume",
                   *FAST) == 0
    a, b = video_facts(src), video_facts(tmp_path / "out.mp4")
    assert b["times"] == a["times"] and b["duration"] == a["duration"]
    assert abs(b["audio"][0]["duration"] - a["audio"][0]["duration"]) <= 1024 / 48000
