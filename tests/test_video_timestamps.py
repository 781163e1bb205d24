"""`realtime-sr video` on containers without real presentation timestamps: B-frame H.264 in AVI,
a raw H.264 stream, an MPEG-TS whose PES headers carry no PTS (inputs made here with PyAV)."""

from __future__ import annotations

import numpy as np
import pytest
from video_helpers import (FAST, interrupt_after, make_bframe_stream, make_ts_without_pts, model,  # noqa: F401
                           run_cli, video_facts)


def best_effort_times(path) -> list[float]:
    """ffprobe's best-effort timestamps where the container gives frames no pts: the packet dts
    (what the decoder hands back with each frame), and one frame duration on where there is none."""
    import av

    out = []
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        step = float(1 / vs.average_rate)
        for f in c.decode(vs):
            out.append(float(f.dts * vs.time_base) if f.dts is not None else out[-1] + step if out else 0.0)
    return out


def luma_frames(path, half: bool = False) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        ys = [f.to_ndarray(format="gray").astype(np.float32) for f in c.decode(video=0)]
    return [y.reshape(y.shape[0] // 2, 2, y.shape[1] // 2, 2).mean(axis=(1, 3)) for y in ys] if half else ys


def assert_same_order(src, out) -> None:
    """Output frame k is the upscale of input frame k (display order kept)."""
    a, b = luma_frames(src), luma_frames(out, half=True)
    assert len(a) == len(b)
    for k, y in enumerate(b):
        assert int(np.argmin([np.abs(y - x).mean() for x in a])) == k


def upscale(src, dst, model, *extra):
    assert run_cli("video", src, dst, "--model", model, *FAST, *extra) == 0
    return video_facts(dst)


def test_bframes_in_avi_come_out_in_order_with_best_effort_timestamps(tmp_path, model, capsys):
    src = make_bframe_stream(tmp_path / "cam.avi", audio="libmp3lame")
    want = best_effort_times(src)
    assert want == sorted(want) and len(want) == 25
    b = upscale(src, tmp_path / "out.mp4", model)
    assert b["times"] == pytest.approx(want, abs=1e-9)
    assert np.allclose(np.diff(b["times"]), 0.04)  # every frame one 25 fps frame after the last
    assert_same_order(src, tmp_path / "out.mp4")
    y = b["audio"][0]
    assert (y["codec"], y["channels"], y["rate"]) == ("mp3float", 2, 44100)
    assert _audio_end(tmp_path / "out.mp4") == pytest.approx(_audio_end(src), abs=1e-6)  # the AVI header's
    assert _stream_starts(tmp_path / "out.mp4")[1] == pytest.approx(_stream_starts(src)[1])  # length is not
    assert "best-effort timestamps" in capsys.readouterr().err


def test_raw_h264_stream_gets_timestamps_from_its_frame_rate(tmp_path, model):
    src = make_bframe_stream(tmp_path / "cam.h264", fmt="h264")
    b = upscale(src, tmp_path / "out.mp4", model)
    assert b["times"] == pytest.approx([k / 25 for k in range(25)], abs=1e-9)
    assert b["duration"] == pytest.approx(1.0, abs=1e-6) and b["audio"] == []
    assert_same_order(src, tmp_path / "out.mp4")


def test_mpegts_without_any_pts_keeps_video_and_audio_in_step(tmp_path, model):
    src = make_ts_without_pts(tmp_path / "nopts.ts")
    b = upscale(src, tmp_path / "out.mp4", model)
    assert b["times"] == pytest.approx([k / 25 for k in range(25)], abs=1e-9)
    y = b["audio"][0]
    assert (y["codec"], y["channels"]) == ("aac", 2)
    assert y["duration"] == pytest.approx(1.0, abs=2 * 1024 / 48000)  # all of it, not dropped, not stretched
    starts = _stream_starts(tmp_path / "out.mp4")
    assert abs(starts[0] - starts[1]) <= 1024 / 48000


def test_mpegts_audio_without_pts_is_kept_and_starts_with_the_video(tmp_path, model):
    src = make_ts_without_pts(tmp_path / "nopts.ts", kinds=("audio",))
    a = video_facts(src)
    b = upscale(src, tmp_path / "out.mp4", model)
    assert b["times"] == a["times"] and len(b["times"]) == 25
    assert b["audio"] and b["audio"][0]["duration"] == pytest.approx(1.0, abs=2 * 1024 / 48000)
    starts = _stream_starts(tmp_path / "out.mp4")
    assert abs(starts[0] - starts[1]) <= 1024 / 48000


def _audio_end(path) -> float:
    import av

    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        return max(float((p.pts + p.duration) * p.time_base) for p in c.demux(s) if p.size)


def _stream_starts(path) -> list[float]:
    import av

    first: dict[int, float] = {}
    with av.open(str(path)) as c:
        for p in c.demux():
            if p.pts is not None:
                first[p.stream.index] = min(first.get(p.stream.index, 1e18), float(p.pts * p.time_base))
    return [first[i] for i in sorted(first)]


def test_resume_of_a_bframe_avi_equals_an_uninterrupted_run(tmp_path, model, monkeypatch):
    src = make_bframe_stream(tmp_path / "cam.avi", audio="libmp3lame")
    args = ["--model", model, "--segment-seconds", "0.2", *FAST]  # 5-frame segments
    assert run_cli("video", src, tmp_path / "ref.mp4", *args) == 0
    interrupt_after(monkeypatch, 13)
    assert run_cli("video", src, tmp_path / "out.mp4", *args) == 130
    monkeypatch.undo()
    assert run_cli("video", src, tmp_path / "out.mp4", "--resume", *args) == 0
    a, b = video_facts(tmp_path / "ref.mp4"), video_facts(tmp_path / "out.mp4")
    assert b["times"] == a["times"] and b["duration"] == a["duration"] and b["audio"] == a["audio"]
    assert all(np.array_equal(x, y) for x, y in zip(luma_frames(tmp_path / "ref.mp4"),
                                                     luma_frames(tmp_path / "out.mp4")))


def test_frame_clock_is_ffmpegs_rule_and_never_goes_back():
    from realtime_sr.pipeline.source import FrameClock

    real = FrameClock(1)  # good pts (B-frames in MP4: pts in order, dts behind): unchanged
    assert [real(p, d) for p, d in [(0, -2), (1, -1), (2, 0), (3, 1)]] == [0, 1, 2, 3] and real.repaired == 0
    guessed = FrameClock(1)  # AVI-style guessed pts that go backwards: the dts from then on
    assert [guessed(p, d) for p, d in [(1, 2), (3, 3), (2, 4), (5, 5), (6, 6), (4, 7)]] == [1, 3, 4, 5, 6, 7]
    none = FrameClock(40, start=100)  # nothing at all: the start, then one frame duration apart
    assert [none(None, None) for _ in range(3)] == [100, 140, 180]
    clash = FrameClock(1)
    assert [clash(p, None) for p in (5, 5, 6)] == [5, 6, 7]


def test_packet_clock_fills_missing_audio_timestamps():
    from fractions import Fraction
    from types import SimpleNamespace as NS

    from realtime_sr.pipeline.mux import PacketClock

    cc = NS(sample_rate=48000, frame_size=1024)
    audio = NS(time_base=Fraction(1, 90000), start_time=None, type="audio", codec_context=cc)
    video = NS(time_base=Fraction(1, 25), start_time=2)
    clock = PacketClock(audio, video)
    pk = [clock(NS(pts=None, dts=None, duration=d)) for d in (1920, 0, 1920)]
    assert [(p.pts, p.dts) for p in pk] == [(7200, 7200), (9120, 9120), (11040, 11040)]
    kept = clock(NS(pts=50000, dts=None, duration=1920))
    assert (kept.pts, kept.dts) == (50000, 50000)
    back = clock(NS(pts=None, dts=50000, duration=1920))  # a repeated dts: one tick on, never back
    assert (back.pts, back.dts) == (50001, 50001)
