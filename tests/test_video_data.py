"""`realtime-sr video` on the real clips in ../shared/data/videos (skipped when they are absent)."""

from __future__ import annotations

import pytest
from video_helpers import make_model, need_video, run_cli, video_facts

pytestmark = pytest.mark.data
FAST = ["--backend", "torch", "--preset", "ultrafast", "--no-progress"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("model"))


def run(src, out, model, *extra):
    assert run_cli("video", src, out, "--model", model, *FAST, *extra) == 0
    return video_facts(src), video_facts(out)


def test_carphone_no_audio_whole_clip(tmp_path, model):
    a, b = run(need_video("carphone_pristine.mp4"), tmp_path / "out.mp4", model)
    assert (b["width"], b["height"]) == (352, 288)
    assert len(b["times"]) == 120 and b["times"] == a["times"] and b["duration"] == a["duration"]
    assert b["audio"] == [] and b["tags"] == (6, 1, 6, 6)  # SD, undeclared -> tagged BT.601 limited


def _audio_packets_end(path):
    import av

    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        ends = [float((p.pts + p.duration) * p.time_base) for p in c.demux(s) if p.pts is not None]
        return max(ends), len(ends)


def test_fire2_variable_frame_rate_whole_clip(tmp_path, model):
    src = need_video("fire2.mp4")
    a, b = run(src, tmp_path / "out.mp4", model)
    assert len(b["times"]) == 25 and b["times"] == a["times"]  # irregular spacing, kept exactly
    assert len({round(t2 - t1, 4) for t1, t2 in zip(a["times"], a["times"][1:])}) > 3
    assert b["duration"] == a["duration"]
    assert (b["width"], b["height"]) == (2560, 1440) and b["tags"] == (1, 1, 1, 1)  # HD -> BT.709
    y = b["audio"][0]
    assert (y["codec"], y["channels"], y["rate"]) == ("aac", 1, 48000)
    # this phone clip's header duration disagrees with its own packets; the packets are what plays
    assert _audio_packets_end(tmp_path / "out.mp4") == _audio_packets_end(src)
    import av

    with av.open(str(tmp_path / "out.mp4")) as c:  # tags kept: creation time, stream languages
        assert c.metadata["creation_time"].startswith("2017-01-05")
        assert [s.metadata.get("language") for s in c.streams] == ["eng", "eng"]


def test_chaplin_mp3_part(tmp_path, model):
    a, b = run(need_video("chaplin.mp4"), tmp_path / "out.mp4", model, "--duration", "2")
    assert (b["width"], b["height"]) == (1280, 720)
    assert len(b["times"]) == 50 and b["times"] == a["times"][:50]
    y = b["audio"][0]
    assert (y["codec"], y["channels"], y["rate"]) == ("mp3float", 2, 44100)
    assert y["duration"] == pytest.approx(2.0, abs=y["frame_size"] / y["rate"] + 1e-6)


def test_bigbuckbunny_surround_part(tmp_path, model):
    a, b = run(need_video("bigbuckbunny.mp4"), tmp_path / "out.mp4", model, "--duration", "0.4")
    assert len(b["times"]) == 10 and b["times"] == a["times"][:10]
    y = b["audio"][0]
    assert (y["codec"], y["channels"]) == ("aac", 6)
    assert y["duration"] == pytest.approx(0.4, abs=1024 / 48000 + 1e-6)


def test_slow_traffic_ntsc_rate_from_the_middle(tmp_path, model):
    _, b = run(need_video("slow_traffic_small.mp4"), tmp_path / "out.mp4", model, "--start", "10", "--duration", "0.5")
    assert len(b["times"]) == 15 and b["times"][0] == 0.0
    assert b["times"] == pytest.approx([i * 1001 / 30000 for i in range(15)], abs=1e-9)
    assert b["audio"][0]["duration"] == pytest.approx(0.5, abs=1024 / 44100 * 2)
