"""The live preview: newest-frame mailbox, pacing, comparison view, headless runs, errors."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from realtime_sr.preview import LatestFrame, compare_view, read_frames, webcam_spec

from video_helpers import make_clip, make_model, run_cli


def test_mailbox_keeps_only_the_newest_and_counts_drops():
    box = LatestFrame()
    for i in range(3):
        box.put(i)
    assert box.get() == 2 and box.dropped == 2
    assert box.get(timeout=0.01) is None  # nothing new
    box.put(3)
    box.close()
    assert box.get() == 3 and box.get() is None and box.dropped == 2


def test_mailbox_wakes_a_waiting_reader():
    box = LatestFrame()
    got = []
    t = threading.Thread(target=lambda: got.append(box.get()))
    t.start()
    time.sleep(0.05)
    box.put("frame")
    t.join(timeout=2)
    assert got == ["frame"]


def test_a_file_is_paced_to_its_timestamps(tmp_path):
    """Decoding a 25 fps file waits 40 ms (of its own clock) between frames, as a live source would."""
    import av

    src = make_clip(tmp_path / "in.mp4", width=32, height=32, frames=5, fps=25)
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    with av.open(str(src)) as c:
        box = LatestFrame()
        read_frames(c, c.streams.video[0], box, threading.Event(), pace=True, clock=lambda: now[0], sleep=sleep)
    assert slept == pytest.approx([0.04] * 4)
    assert box.dropped == 4  # nobody took them: each replaced the last
    with av.open(str(src)) as c:
        slept.clear()
        read_frames(c, c.streams.video[0], LatestFrame(), threading.Event(), pace=False, sleep=sleep)
    assert slept == []


def test_compare_view_halves():
    lr = np.zeros((10, 16, 3), np.uint8)
    lr[:, :, 0] = 200
    sr = np.full((20, 32, 3), 50, np.uint8)
    v = compare_view(lr, sr)
    assert v.shape == sr.shape
    assert (v[:, :15, 0] == 200).all() and (v[:, 17:] == 50).all()  # bicubic | divider | model
    assert (v[:, 15:17] == 255).all()


def test_webcam_names():
    import sys

    if sys.platform.startswith("linux"):
        assert webcam_spec("webcam") == ("/dev/video0", "v4l2")
        assert webcam_spec("webcam:2") == ("/dev/video2", "v4l2")
    assert webcam_spec("rtsp://host/stream") == ("rtsp://host/stream", None)


def test_headless_preview_of_a_file(tmp_path, capsys):
    model = make_model(tmp_path)
    src = make_clip(tmp_path / "in.mp4", width=48, height=32, frames=20)
    rc = run_cli("preview", src, "--no-window", "--no-pace", "--model", model, "--backend", "torch")
    err = capsys.readouterr().err
    assert rc == 0, err
    line = [ln for ln in err.splitlines() if ln.startswith("shown")][0]
    shown, decoded = int(line.split()[1]), int(line.split()[4])
    assert decoded == 20 and 1 <= shown <= 20  # every frame decoded; shown or dropped to stay live


def test_headless_preview_stops_after_frames(tmp_path, capsys):
    model = make_model(tmp_path)
    src = make_clip(tmp_path / "in.mp4", width=48, height=32, frames=30)
    assert run_cli("preview", src, "--no-window", "--frames", "3", "--model", model, "--backend", "torch",
                   "--compare") == 0
    assert "shown 3 frames" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["missing.mp4", "--no-window"], "no such file"),
    (["webcam:x", "--no-window", "--frames", "1"], "webcam:N"),
    (["webcam", "--no-window"], "needs --frames"),
])
def test_bad_sources_are_one_line_errors(tmp_path, capsys, args, message):
    rc = run_cli("preview", *args)
    err = capsys.readouterr().err
    assert rc != 0 and message in err and "Traceback" not in err


def test_a_text_file_is_not_a_source(tmp_path, capsys):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    rc = run_cli("preview", bad, "--no-window")
    err = capsys.readouterr().err
    assert rc != 0 and "cannot open it as a video source" in err


def test_window_without_opencv_names_the_extra(tmp_path, capsys, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_cv2(name, *a, **k):
        if name == "cv2":
            raise ImportError("no cv2")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_cv2)
    src = make_clip(tmp_path / "in.mp4", width=32, height=32, frames=2)
    rc = run_cli("preview", src, "--model", make_model(tmp_path), "--backend", "torch")
    err = capsys.readouterr().err
    assert rc != 0 and "realtime-sr[preview]" in err and "--no-window" in err


def test_frame_upscaler_gives_the_rgb_picture_at_scale(tmp_path):
    import av

    from realtime_sr.imageops import resize_bicubic
    from realtime_sr.models import load_model
    from realtime_sr.preview import FrameUpscaler
    from realtime_sr.runtime.torch_backend import TorchBackend

    model = load_model("coarse-x2")
    src = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=1)
    with av.open(str(src)) as c:
        frame = next(c.decode(video=0))
    out = FrameUpscaler(model, TorchBackend(model.net))(frame)
    assert out.shape == (96, 128, 3) and out.dtype == np.uint8
    ref = resize_bicubic(frame.to_ndarray(format="rgb24"), (128, 96)).astype(np.float32)
    assert np.abs(out.astype(np.float32) - ref).mean() < 6  # the same picture, sharper


def test_window_loop_with_a_stand_in_opencv(tmp_path, capsys, monkeypatch):
    """The window path without a display: frames are shown, 'c' toggles the comparison, 'q' quits."""
    import sys
    import types

    shown = []

    def wait_key(ms):  # keys by the number of frames shown so far
        n = sum(1 for s in shown if not isinstance(s, str) and s.shape[0] > 2)
        return {2: ord("c"), 4: ord("q")}.get(n, -1)

    cv2 = types.SimpleNamespace(
        WINDOW_NORMAL=0, WND_PROP_VISIBLE=1, FONT_HERSHEY_SIMPLEX=0, LINE_AA=16, error=RuntimeError,
        namedWindow=lambda *a: None, destroyWindow=lambda *a: shown.append("closed"),
        putText=lambda *a: None, getWindowProperty=lambda *a: 1.0,
        imshow=lambda title, img: shown.append(img.copy()), waitKey=wait_key)
    monkeypatch.setitem(sys.modules, "cv2", cv2)
    src = make_clip(tmp_path / "in.mp4", width=48, height=32, frames=30)
    # paced at 25 fps, so the source outlasts the four frames the keys allow
    assert run_cli("preview", src, "--model", make_model(tmp_path), "--backend", "torch") == 0
    frames = [s for s in shown if not isinstance(s, str) and s.shape[0] > 2]
    assert len(frames) == 4 and shown[-1] == "closed"  # quit on the 4th key
    assert all(f.shape == (64, 96, 3) for f in frames)  # BGR at x2
    divider = lambda f: (f[:, 47:49] == 255).all()  # noqa: E731 - the comparison view's white line
    assert not divider(frames[1]) and divider(frames[2]) and divider(frames[3])  # 'c' after the 2nd frame
    assert "shown 4 frames" in capsys.readouterr().err


def test_keys_still_work_while_paused(tmp_path, capsys, monkeypatch):
    """Space pauses (frames are then dropped, not shown) and space again resumes; q quits."""
    import sys
    import types

    shown, polls = [], {"paused": 0}

    def wait_key(ms):
        n = len(shown)
        if n == 1 and polls["paused"] == 0:
            polls["paused"] = 1
            return ord(" ")  # pause after the first frame
        if n == 1 and polls["paused"] < 6:
            polls["paused"] += 1
            return ord(" ") if polls["paused"] == 6 else -1  # a few polls later: resume
        return ord("q") if n == 2 else -1

    cv2 = types.SimpleNamespace(
        WINDOW_NORMAL=0, WND_PROP_VISIBLE=1, FONT_HERSHEY_SIMPLEX=0, LINE_AA=16, error=RuntimeError,
        namedWindow=lambda *a: None, destroyWindow=lambda *a: None, putText=lambda *a: None,
        getWindowProperty=lambda *a: 1.0, imshow=lambda title, img: shown.append(img), waitKey=wait_key)
    monkeypatch.setitem(sys.modules, "cv2", cv2)
    src = make_clip(tmp_path / "in.mp4", width=48, height=32, frames=50)
    assert run_cli("preview", src, "--model", make_model(tmp_path), "--backend", "torch") == 0
    line = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("shown")][0]
    assert line.startswith("shown 2 frames") and int(line.split()[6].lstrip("(")) >= 1  # dropped while paused
