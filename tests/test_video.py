"""`realtime-sr video` on clips the tests make: timestamps, audio, colour, formats, options."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from video_helpers import FAST, make_clip, make_model, model, run_cli, video_facts  # noqa: F401 (model: a fixture)



@pytest.fixture(scope="module")
def rgb_model(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("model"), colour="rgb")


def upscale(src, dst, model, *extra):
    rc = run_cli("video", src, dst, "--model", model, *FAST, *extra)
    assert rc == 0
    return video_facts(dst)


def assert_audio_matches(a, b):
    assert len(a["audio"]) == len(b["audio"])
    for x, y in zip(a["audio"], b["audio"]):
        assert (x["codec"], x["channels"], x["rate"]) == (y["codec"], y["channels"], y["rate"])
        assert abs(x["duration"] - y["duration"]) <= y["frame_size"] / y["rate"]


def test_cfr_with_audio_keeps_everything_but_size(tmp_path, model, capsys):
    src = make_clip(tmp_path / "in.mp4", frames=12, audio=True)
    a, b = video_facts(src), upscale(src, tmp_path / "out.mp4", model)
    assert (b["width"], b["height"]) == (128, 96)
    assert b["times"] == a["times"] and b["duration"] == a["duration"]
    assert_audio_matches(b, a)
    # undeclared colour at 64x48: tagged BT.601 (SMPTE 170M), limited range, so players agree
    assert b["tags"] == (6, 1, 6, 6)
    err = capsys.readouterr().err
    assert "12 frames 128x96" in err and "pipeline efficiency" in err
    assert not list(tmp_path.glob(".out.mp4*")), "temporary files left beside OUT"


def test_variable_frame_rate_timestamps_survive(tmp_path, model):
    tb = Fraction(1, 90000)
    pts = [0, 3000, 6000, 12000, 13500, 15000, 27000, 30000, 31000, 40000]
    src = make_clip(tmp_path / "vfr.mp4", pts=pts, time_base=tb, audio=True)
    a, b = video_facts(src), upscale(src, tmp_path / "out.mp4", model)
    assert b["times"] == a["times"] == [p / 90000 for p in pts]
    assert b["duration"] == pytest.approx(a["duration"], abs=1e-9)
    assert_audio_matches(b, a)


@pytest.mark.parametrize("w,h", [(65, 47), (33, 18)])
def test_odd_sizes(tmp_path, model, w, h):
    src = make_clip(tmp_path / "odd.mp4", width=w, height=h, frames=4, pix_fmt="yuv444p")
    b = upscale(src, tmp_path / "out.mp4", model, "--pix-fmt", "yuv420p")
    assert (b["width"], b["height"]) == (2 * w, 2 * h)
    assert len(b["times"]) == 4 and b["pix_fmt"] == "yuv420p"


def test_ten_bit_stays_ten_bit_with_more_than_8_bit_precision(tmp_path, model):
    src = make_clip(tmp_path / "10.mp4", frames=4, pix_fmt="yuv420p10le")
    b = upscale(src, tmp_path / "out.mp4", model)
    assert b["pix_fmt"] == "yuv420p10le"
    import av

    with av.open(str(tmp_path / "out.mp4")) as c:
        f = next(c.decode(video=0))
        plane = f.planes[0]
        y = np.frombuffer(plane, np.uint16).reshape(plane.height, -1)[:, : plane.width]
    assert y.max() > 255 and np.mean(y % 4 != 0) > 0.3  # not 8-bit values shifted up


def test_yuv444_kept(tmp_path, model):
    src = make_clip(tmp_path / "444.mp4", frames=3, pix_fmt="yuv444p")
    assert upscale(src, tmp_path / "out.mp4", model)["pix_fmt"] == "yuv444p"


def test_declared_bt709_full_range_kept_and_not_squashed(tmp_path, model):
    tags = {"colorspace": 1, "color_primaries": 1, "color_trc": 1, "color_range": 2}
    src = make_clip(tmp_path / "full.mp4", frames=3, colour=tags)
    b = upscale(src, tmp_path / "out.mp4", model)
    assert b["tags"] == (1, 2, 1, 1)
    import av

    def luma(p):
        with av.open(str(p)) as c:
            f = next(c.decode(video=0))
            return np.frombuffer(f.planes[0], np.uint8).reshape(f.planes[0].height, -1)[:, : f.width]

    ya, yb = luma(src), luma(tmp_path / "out.mp4")
    assert abs(float(ya.mean()) - float(yb.mean())) < 2.0
    assert ya.min() < 10  # a real full-range input (codes below 16) ...
    assert abs(int(ya.max()) - int(yb.max())) <= 6 and abs(int(ya.min()) - int(yb.min())) <= 6  # ... stays full


def test_rotation_kept(tmp_path, model):
    src = make_clip(tmp_path / "rot.mp4", frames=3, rotation=90)
    assert video_facts(src)["rotation"] == 90
    assert upscale(src, tmp_path / "out.mp4", model)["rotation"] == 90


@pytest.mark.parametrize("ext", [".avi", ".mpg", ".mxf", ".ts", ".flv"])
def test_other_containers_get_a_playable_file(tmp_path, model, ext):
    """The segments are MP4 (length-prefixed H.264); AVI and MPEG-PS take only an Annex B stream
    and MXF needs the frame rate. Each output decodes to every frame, with its own timestamps."""
    import av

    src = make_clip(tmp_path / "in.mp4", frames=6, audio=True)
    out = tmp_path / f"out{ext}"
    assert run_cli("video", src, out, "--model", model, *FAST) == 0
    with av.open(str(out)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 6 and (frames[0].width, frames[0].height) == (128, 96)
    assert not list(tmp_path.glob(f".out{ext}*")), "temporary files left beside OUT"


def test_a_webm_out_gets_vp9_by_default(tmp_path, model, capsys):
    """WebM holds no H.264: without --codec a .webm OUT is encoded with VP9 (its real-time mode,
    constant quality); its --preset is a number (cpu-used), and a word is refused before any work."""
    import av

    src = make_clip(tmp_path / "in.mp4", frames=6, audio=True)
    out = tmp_path / "out.webm"
    assert run_cli("video", src, out, "--model", model, "--backend", "torch", "--no-progress") == 0
    assert "encoder libvpx-vp9 crf 24 deadline realtime cpu-used 8" in capsys.readouterr().err
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "vp9"
        assert len(list(c.decode(video=0))) == 6
    assert run_cli("video", src, tmp_path / "b.webm", "--model", model, "--backend", "torch", "--no-progress",
                   "--preset", "veryfast") == 2
    assert "libvpx-vp9 takes 0-5" in capsys.readouterr().err
    assert not list(tmp_path.glob("*b.webm*"))


def test_no_audio_flag(tmp_path, model):
    src = make_clip(tmp_path / "in.mp4", frames=3, audio=True)
    assert upscale(src, tmp_path / "out.mp4", model, "--no-audio")["audio"] == []


def test_surround_audio_copied(tmp_path, model):
    src = make_clip(tmp_path / "51.mp4", frames=5, audio=True, audio_layout="5.1")
    b = upscale(src, tmp_path / "out.mp4", model)
    assert b["audio"][0]["channels"] == 6
    assert_audio_matches(b, video_facts(src))


def test_audio_the_container_refuses_is_transcoded(tmp_path, model, capsys):
    import av

    src = tmp_path / "alaw.mov"
    make_clip(src, frames=5)
    with av.open(str(tmp_path / "v.mov"), "w") as out, av.open(str(src)) as inp:  # add a pcm_alaw track
        vs = out.add_stream_from_template(inp.streams.video[0])
        a = out.add_stream("pcm_alaw", rate=8000, layout="mono")
        for p in inp.demux(inp.streams.video[0]):
            if p.size:
                p.stream = vs
                out.mux(p)
        sig = (0.3 * np.sin(np.arange(1600) / 8000 * 2 * np.pi * 300)).astype(np.float32)[None]
        fr = av.AudioFrame.from_ndarray(sig, format="flt", layout="mono")
        fr.sample_rate, fr.pts = 8000, 0
        for p in list(a.encode(fr)) + list(a.encode(None)):
            out.mux(p)
    b = upscale(tmp_path / "v.mov", tmp_path / "out.mp4", model)
    assert b["audio"][0]["codec"] == "aac"
    assert "transcoding it to AAC" in capsys.readouterr().err
    # the same input into .mov is copied as it is
    assert upscale(tmp_path / "v.mov", tmp_path / "out.mov", model)["audio"][0]["codec"] == "pcm_alaw"


def test_start_and_duration(tmp_path, model):
    src = make_clip(tmp_path / "in.mp4", frames=25, audio=True)
    b = upscale(src, tmp_path / "out.mp4", model, "--start", "0.4", "--duration", "0.4")
    assert b["times"] == pytest.approx([i * 0.04 for i in range(10)])
    assert b["audio"][0]["duration"] == pytest.approx(0.4, abs=1024 / 48000 + 1e-6)


def test_rgb_model(tmp_path, rgb_model):
    src = make_clip(tmp_path / "in.mp4", frames=3)
    b = upscale(src, tmp_path / "out.mp4", rgb_model)
    assert (b["width"], b["height"]) == (128, 96) and len(b["times"]) == 3


@pytest.mark.parametrize("codec", ["libx265", "libsvtav1"])
def test_other_codecs(tmp_path, model, codec):
    import av

    try:
        av.codec.Codec(codec, "w")
    except av.codec.codec.UnknownCodecError:
        pytest.skip(f"{codec} is not in this FFmpeg build")
    src = make_clip(tmp_path / "in.mp4", width=64, height=64, frames=3)
    b = upscale(src, tmp_path / "out.mp4", model, "--codec", codec, "--crf", "35", "--preset", "8" if "svt" in codec
                else "ultrafast")
    assert len(b["times"]) == 3 and b["width"] == 128


@pytest.mark.parametrize("frames", [1, 2])
def test_x265_clips_shorter_than_its_reorder_delay(tmp_path, model, frames):
    """libx265 leaves the dts of such streams uninitialised in most runs; MP4 refused them."""
    import av

    try:
        av.codec.Codec("libx265", "w")
    except av.codec.codec.UnknownCodecError:
        pytest.skip("libx265 is not in this FFmpeg build")
    src = make_clip(tmp_path / "in.mp4", width=64, height=64, frames=frames)
    for k in range(4):  # the garbage differs from run to run: one pass proves little
        b = upscale(src, tmp_path / f"out{k}.mp4", model, "--codec", "libx265", "--crf", "35",
                    "--preset", "ultrafast")
        assert b["times"] == pytest.approx([i / 25 for i in range(frames)])


def test_dts_repair_keeps_valid_timestamps_and_fixes_garbage():
    from fractions import Fraction
    from types import SimpleNamespace as P

    from realtime_sr.pipeline.sink import DtsRepair

    valid = [(0, -2), (3, -1), (1, 0), (2, 1), (6, 2), (4, 3), (5, 4)]  # B-frame order, x264 style
    r = DtsRepair(Fraction(1, 25))
    assert [r(P(pts=a, dts=b)).dts for a, b in valid] == [b for _, b in valid]
    garbage = [(0, -4756800921378458956), (1, -4756800921378458955)]
    r = DtsRepair(Fraction(1, 25))
    assert [r(P(pts=a, dts=b)).dts for a, b in garbage] == [0, 1]
    r = DtsRepair(Fraction(1, 25))
    assert [r(P(pts=a, dts=b)).dts for a, b in [(0, None), (1, 5), (2, 1)]] == [0, 1, 2]


def test_bitrate_option(tmp_path, model):
    src = make_clip(tmp_path / "in.mp4", frames=3)
    assert len(upscale(src, tmp_path / "out.mp4", model, "--bitrate", "300k")["times"]) == 3


def test_folder_in_folder_out(tmp_path, model):
    d = tmp_path / "in"
    d.mkdir()
    make_clip(d / "a.mp4", frames=3)
    make_clip(d / "b.mkv", frames=3)
    (d / "notes.txt").write_text("not a video")
    assert run_cli("video", d, tmp_path / "out", "--model", model, *FAST) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp4", "b.mkv"]


def test_sample_video_then_upscale(tmp_path, model):
    from realtime_sr.pipeline.sample import make_sample_video

    src = make_sample_video(tmp_path / "sample.mp4", width=96, height=54, seconds=0.4)
    a = video_facts(src)
    assert (a["width"], a["height"], len(a["times"])) == (96, 54, 10) and a["audio"][0]["codec"] == "aac"
    b = upscale(src, tmp_path / "out.mp4", model)
    assert b["times"] == a["times"] and (b["width"], b["height"]) == (192, 108)
    assert_audio_matches(b, a)


def test_help_does_not_import_torch_or_av():
    code = ("import sys, argparse; import realtime_sr.video_cmd as v; p = argparse.ArgumentParser(); "
            "v.add_parser(p.add_subparsers(), lambda p: None); "
            "print('torch' in sys.modules, 'av' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"


def test_subtitles_copied_or_dropped_with_notice(tmp_path, model, capsys):
    import av

    src = make_clip(tmp_path / "v.mkv", frames=10)
    with av.open(str(tmp_path / "sub.mkv"), "w") as o, av.open(str(src)) as i:  # add an SRT track
        vs = o.add_stream_from_template(i.streams.video[0])
        ss = o.add_mux_stream("subrip")
        ss.time_base = Fraction(1, 1000)
        for p in i.demux(i.streams.video[0]):
            if p.size:
                p.stream = vs
                o.mux(p)
        for t, text in ((0, b"Hello"), (200, b"World")):
            pk = av.Packet(text)
            pk.pts = pk.dts = t
            pk.duration, pk.time_base, pk.stream = 150, Fraction(1, 1000), ss
            o.mux(pk)
    upscale(tmp_path / "sub.mkv", tmp_path / "out.mkv", model)
    with av.open(str(tmp_path / "out.mkv")) as c:
        got = [(p.pts, bytes(p)) for p in c.demux(c.streams.subtitles[0]) if p.size]
    assert got == [(0, b"Hello"), (200, b"World")]
    capsys.readouterr()
    assert upscale(tmp_path / "sub.mkv", tmp_path / "out.mp4", model)["subtitles"] == 0
    assert "dropping subtitle stream" in capsys.readouterr().err


def test_ten_bit_into_an_8_bit_codec_says_so(tmp_path, model, capsys):
    src = make_clip(tmp_path / "10.mp4", frames=3, pix_fmt="yuv420p10le")
    capsys.readouterr()
    b = upscale(src, tmp_path / "out.mp4", model, "--codec", "mpeg4")
    assert b["pix_fmt"] == "yuv420p" and len(b["times"]) == 3
    assert "notice: mpeg4 cannot write yuv420p10le; writing yuv420p (loses bit depth)" in capsys.readouterr().err


def test_encoder_defaults_by_mode(tmp_path, model, capsys):
    from realtime_sr.pipeline.sink import EncoderSpec, encoder_options, for_mode

    def preset(spec, mode):
        return encoder_options(for_mode(spec, mode))[0]["preset"]

    assert preset(EncoderSpec(), "coarse") == preset(EncoderSpec(), "routed") == "veryfast"  # real time
    assert preset(EncoderSpec(), "fine") == preset(EncoderSpec(), "gan") == "medium"  # offline quality
    assert preset(EncoderSpec(preset="slow"), "coarse") == "slow"  # --preset always wins
    assert preset(EncoderSpec(codec="libsvtav1"), "coarse") == "8"
    src = make_clip(tmp_path / "in.mp4", frames=3)
    assert run_cli("video", src, tmp_path / "out.mp4", "--model", model, "--mode", "coarse", "--backend", "torch",
                   "--no-progress") == 0
    err = capsys.readouterr().err
    assert "encoder libx264 crf 18 preset veryfast" in err
    stages = [p.split()[0] for p in err.split("profile, ms per frame: ")[1].splitlines()[0].split(", ")]
    assert stages[:3] == ["decode", "planes", "model"] and "encode" in stages


needs_openvino = pytest.mark.skipif(__import__("importlib").util.find_spec("openvino") is None,
                                    reason="OpenVINO is not installed (pip install openvino)")


def _planes(path):
    import av

    with av.open(str(path)) as c:
        return [(f.pts, f.to_ndarray(format="yuv420p")) for f in c.decode(video=0)]


@needs_openvino
def test_two_inference_workers_keep_frame_order(tmp_path, model, capsys, monkeypatch):
    """With two frames in the network at once (OpenVINO streams), frames that finish out of order
    are put back in order: the output equals the one-worker run frame for frame."""
    import time

    from realtime_sr.pipeline import stages

    src = make_clip(tmp_path / "in.mp4", frames=16)
    flags = ["--model", model, "--backend", "openvino", "--precision", "fp32", "--preset", "ultrafast",
             "--no-progress", "--crf", "0"]
    assert run_cli("video", src, tmp_path / "one.mp4", *flags, "--workers", "1") == 0
    real = stages.infer

    def uneven(work, spec, backend):  # even frames slower: the next one overtakes them
        time.sleep(0.05 if work.seq % 2 == 0 else 0)
        return real(work, spec, backend)

    monkeypatch.setattr(stages, "infer", uneven)
    capsys.readouterr()
    assert run_cli("video", src, tmp_path / "two.mp4", *flags, "--workers", "2") == 0
    assert "on 2 inference threads" in capsys.readouterr().err
    one, two = _planes(tmp_path / "one.mp4"), _planes(tmp_path / "two.mp4")
    assert [p for p, _ in two] == [p for p, _ in one] and len(one) == 16
    for (_, a), (_, b) in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("extra, text", [(["--workers", "0"], "--workers must be at least 1"),
                                         (["--workers", "2", "--mode", "routed"], "routed mode runs one frame")])
def test_bad_workers_are_refused(tmp_path, model, capsys, extra, text):
    src = make_clip(tmp_path / "in.mp4", frames=2)
    rc = run_cli("video", src, tmp_path / "out.mp4", "--model", model, *FAST, *extra)
    err = capsys.readouterr().err
    assert rc != 0 and text in err and "Traceback" not in err
    assert not (tmp_path / "out.mp4").exists()
