"""The input's compression read from its bitstream, and the video command's model choice by it."""

from __future__ import annotations

import pytest
from video_helpers import FAST, make_clip, run_cli

from realtime_sr.pipeline import qp


def test_h264_quantiser_follows_the_encoders_quality(tmp_path):
    lossless = qp.quantiser(make_clip(tmp_path / "q0.mp4", frames=8, crf=0))
    mid = qp.quantiser(make_clip(tmp_path / "q23.mp4", frames=8, crf=23))
    low = qp.quantiser(make_clip(tmp_path / "q38.mp4", frames=8, crf=38))
    assert lossless == ("h264", 0.0)
    assert mid is not None and low is not None and mid[0] == low[0] == "h264" and 0 < mid[1] < low[1] <= 51


def test_vp9_quantiser_is_read_on_its_own_scale(tmp_path):
    lossless = qp.quantiser(make_clip(tmp_path / "v0.webm", frames=6, codec="libvpx-vp9", crf=0))
    mid = qp.quantiser(make_clip(tmp_path / "v30.webm", frames=6, codec="libvpx-vp9", crf=30))
    low = qp.quantiser(make_clip(tmp_path / "v55.webm", frames=6, codec="libvpx-vp9", crf=55))
    assert lossless == ("vp9", 0.0)
    assert mid[0] == low[0] == "vp9" and 0 < mid[1] < low[1] <= 255


def test_quantiser_is_none_where_it_cannot_know(tmp_path):
    assert qp.quantiser(make_clip(tmp_path / "m.mkv", frames=4, codec="mpeg4")) is None  # neither H.264 nor VP9
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    assert qp.quantiser(bad) is None
    assert qp.quantiser(tmp_path / "missing.mp4") is None


@pytest.mark.parametrize("q, want", [(None, "real"), (0.0, "clean"), (9.9, "clean"), (10.0, "real"),
                                     (24.9, "real"), (25.0, "strong"), (40.0, "strong")])
def test_levels(q, want):
    assert qp.level(q) == qp.level(q, "h264", "fine") == want


@pytest.mark.parametrize("q, codec, role, scale, want", [
    (15.0, "h264", "coarse", 2, "clean"), (20.0, "h264", "coarse", 2, "real"), (45.0, "h264", "coarse", 2, "real"),
    (20.0, "vp9", "fine", 2, "clean"), (48.0, "vp9", "fine", 2, "real"), (139.0, "vp9", "fine", 2, "real"),
    (146.0, "vp9", "fine", 2, "strong"), (83.0, "vp9", "coarse", 2, "clean"), (179.0, "vp9", "coarse", 2, "real"),
    (15.0, "h264", "fine", 4, "clean"), (27.0, "h264", "fine", 4, "real"), (33.0, "h264", "fine", 4, "strong"),
    (24.0, "h264", "coarse", 4, "clean"), (83.0, "vp9", "fine", 4, "clean"), (146.0, "vp9", "fine", 4, "real"),
    (30.0, "mpeg2", "fine", 2, "real"), (15.0, "h264", "fine", 3, "real"),
])
def test_levels_per_codec_scale_and_network(q, codec, role, scale, want):
    # the coarse network and the x4 models keep their clean models longer; coarse never takes a
    # strong one; scales without thresholds of their own use x2's (qp.THRESHOLDS)
    assert qp.level(q, codec, role, scale) == want


def test_model_names_keep_the_variant_axis():
    from realtime_sr.models import shipped_models, strong_name, variant_of

    assert variant_of("fine-x2-real-strong") == variant_of("fine_x2_real_strong.safetensors") == "real"
    assert variant_of("fine-x2") == "clean" and variant_of("my_model.safetensors") == "clean"
    known = shipped_models()
    assert "fine-x2-real-strong" in known and strong_name("fine-x2-real") == "fine-x2-real-strong"
    assert strong_name("fine-x2") is None and strong_name("coarse-x2-real") is None


@pytest.mark.parametrize("crf, mode, want", [
    (0, "fine", "-> fine-x2 "), (38, "fine", "-> fine-x2-real-strong "),
    (38, "routed", "-> coarse-x2-real + fine-x2-real-strong "), (0, "coarse", "-> coarse-x2 "),
    (38, "coarse", "-> coarse-x2-real "),
])
def test_video_picks_the_model_by_the_inputs_quantiser(tmp_path, capsys, crf, mode, want):
    src = make_clip(tmp_path / "in.mp4", frames=3, crf=crf)
    assert run_cli("video", src, tmp_path / "out.mp4", "--mode", mode, *FAST) == 0
    err = capsys.readouterr().err
    assert want in err, err


def test_video_reads_a_vp9_inputs_quantiser(tmp_path, capsys):
    src = make_clip(tmp_path / "in.webm", frames=3, codec="libvpx-vp9", crf=60)
    assert run_cli("video", src, tmp_path / "out.mp4", *FAST) == 0
    err = capsys.readouterr().err
    assert "input: mean VP9 q-index" in err and "-> fine-x2-real-strong " in err, err


def test_an_explicit_variant_or_model_wins(tmp_path, capsys):
    src = make_clip(tmp_path / "in.mp4", frames=3, crf=38)
    assert run_cli("video", src, tmp_path / "a.mp4", "--variant", "real", *FAST) == 0
    assert run_cli("video", src, tmp_path / "b.mp4", "--model", "fine-x2", *FAST) == 0
    err = capsys.readouterr().err
    assert "input: mean H.264 QP" not in err and "fine-x2-real-strong" not in err


@pytest.mark.parametrize("crf, want", [(0, "-> coarse-x2 "), (38, "-> coarse-x2-real ")])
def test_preview_of_a_file_chooses_as_video_does(tmp_path, capsys, crf, want):
    src = make_clip(tmp_path / "in.mp4", frames=3, crf=crf)
    assert run_cli("preview", src, "--no-window", "--no-pace", "--backend", "torch") == 0
    err = capsys.readouterr().err
    assert "input: mean H.264 QP" in err and want in err and f"model {want[3:].strip()} " in err, err


def test_preview_of_a_live_source_takes_the_real_model():
    from types import SimpleNamespace

    from realtime_sr.preview import _auto_model

    said = []
    for mode, want in (("coarse", "coarse-x2-real"), ("fine", "fine-x2-real")):
        a = SimpleNamespace(source="webcam", fmt=None, mode=mode, scale=None)
        assert _auto_model(a, said.append) == want
    assert said == []  # nothing is read from a live source
