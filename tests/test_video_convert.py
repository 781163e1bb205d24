"""The video colour helpers: lossless luma mapping, matrix round trips, the default-by-resolution rule."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from realtime_sr.pipeline import convert


@pytest.mark.parametrize("depth,full", [(8, False), (8, True), (10, False), (10, True)])
def test_luma_mapping_is_lossless(depth, full):
    y = np.arange(0, 1 << depth, dtype=np.uint8 if depth == 8 else np.uint16)
    f = convert.luma_in(y, depth, full)
    if not full:
        assert f[(16 << (depth - 8))] == pytest.approx(16.0)  # studio black stays 16 (the network's space)
    assert np.array_equal(convert.luma_out(f, depth, full), y)


@pytest.mark.parametrize("cs", [1, 6, 9])
@pytest.mark.parametrize("rng", [1, 2])
def test_yuv_rgb_round_trip(cs, rng):
    tags = convert.ColourTags(cs, cs, 1, rng, False)
    r = np.random.default_rng(0)
    rgb = r.random((3, 8, 8)).astype(np.float32)
    y, u, v = convert.rgb_to_yuv(rgb, 10, tags)
    back = convert.yuv_to_rgb(y, u, v, 10, tags)
    assert np.abs(back - rgb).max() < 1e-4


def test_default_colour_by_resolution_and_declared_kept():
    undeclared = SimpleNamespace(colorspace=2, color_primaries=2, color_trc=2, color_range=0)
    sd = convert.resolve_colour(undeclared, 640, 360, "yuv420p")
    hd = convert.resolve_colour(undeclared, 1280, 720, "yuv420p")
    assert (sd.colorspace, sd.range, sd.assumed) == (6, 1, True)
    assert (hd.colorspace, hd.primaries, hd.trc) == (1, 1, 1)
    assert convert.resolve_colour(undeclared, 640, 360, "yuvj420p").full
    declared = SimpleNamespace(colorspace=1, color_primaries=1, color_trc=1, color_range=2)
    t = convert.resolve_colour(declared, 320, 240, "yuv420p")
    assert (t.colorspace, t.range, t.assumed) == (1, 2, False)


def test_left_sited_chroma_stays_on_its_luma_sample():
    a = np.tile(np.arange(8, dtype=np.float32) * 16, (2, 1)).astype(np.uint16)  # a linear ramp
    out = convert.resize_plane(a, 2, (4, 16), left_sited=True)[0].astype(float)
    # output chroma j sits on HR luma 2j <-> LR chroma position ((2j + 0.5) / 2 - 0.5) / 2
    want = [16 * (((2 * j + 0.5) / 2 - 0.5) / 2) for j in range(16)]
    assert np.abs(out[2:-2] - np.array(want[2:-2])).max() <= 1.0


needs_openvino = pytest.mark.skipif(__import__("importlib").util.find_spec("openvino") is None,
                                    reason="OpenVINO is not installed (pip install openvino)")


@needs_openvino
@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("left", [True, False])
def test_openvino_chroma_pair_matches_the_bicubic_resize(scale, left):
    """The fused 8-bit chroma path gives PIL's bicubic within a rounding step almost everywhere
    (PIL also clips its first pass's overshoot at strong edges) and keeps left-sited chroma on its
    luma sample; the planes it is given are not modified."""
    from realtime_sr.pipeline import chroma

    from helpers import natural_image

    img = natural_image("coffee", (48, 30))
    cb, cr = np.ascontiguousarray(img[..., 0]), np.ascontiguousarray(img[..., 2])
    before = cb.copy(), cr.copy()
    pair = chroma.upsample_pair(cb, cr, scale, left_sited=left)
    assert pair is not None
    for got, src in zip(pair, (cb, cr)):
        ref = convert.resize_plane(src, scale, (30 * scale, 48 * scale), left_sited=left)
        assert got.dtype == np.uint8 and got.shape == ref.shape
        d = np.abs(got.astype(int) - ref.astype(int))
        assert d.mean() < 0.35 and (d > 1).mean() < 0.02
    assert all(np.array_equal(a, b) for a, b in zip((cb, cr), before))
    ramp = np.tile(np.arange(8, dtype=np.uint8) * 16, (4, 1))
    out = chroma.upsample_pair(ramp, ramp, 2, left_sited=True)[0][0].astype(float)
    want = [16 * (((2 * j + 0.5) / 2 - 0.5) / 2) for j in range(16)]
    assert np.abs(out[2:-2] - np.array(want[2:-2])).max() <= 1.0
    assert chroma.upsample_pair(cb.astype(np.uint16), cr.astype(np.uint16), 2, left_sited=left) is None  # 16-bit: PIL
