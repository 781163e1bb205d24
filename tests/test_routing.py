"""Coarse/fine routing: selection by the error estimate, static tile batches, seamless blend, CLI use."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from realtime_sr.routing import RoutedBackend, RouteOptions, feather_mask
from realtime_sr.runtime.torch_backend import TorchBackend

from helpers import natural_image, tiny_model, write_image_folder
from video_helpers import make_clip, run_cli, video_facts


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    from realtime_sr.models import load_model

    d = tmp_path_factory.mktemp("routing-models")
    # the shipped coarse network: a trained one adds (almost) nothing to bicubic on flat areas,
    # which is what the error estimate relies on; the fine one is a small random network
    coarse = load_model("coarse-x2")
    fine = load_model(tiny_model(d / "fine.safetensors", arch="srgan_generator", seed=1))
    return coarse, fine


class Recorder:
    """A backend that remembers the input shapes it was called with."""

    def __init__(self, be) -> None:
        self.be, self.name, self.shapes = be, be.name, []

    def __call__(self, x):
        self.shapes.append(tuple(x.shape))
        return self.be(x)


def routed(nets, **opts):
    coarse, fine = nets
    fine_be = Recorder(TorchBackend(fine.net))
    return RoutedBackend(TorchBackend(coarse.net), fine_be, 2, RouteOptions(**opts)), fine_be


def half_textured(h=96, w=128):
    """Y/255 frame: a flat grey left half, a natural photo's texture on the right half."""
    from realtime_sr.colour import rgb_to_y

    img = natural_image("astronaut", (w, h)).astype(np.float32) / 255.0
    y = rgb_to_y(img) / 255.0
    y[:, : w // 2] = 0.5
    return np.ascontiguousarray(y[None, None], dtype=np.float32)


def test_fraction_zero_is_the_coarse_network(nets):
    be, fine = routed(nets, fraction=0.0)
    x = half_textured()
    assert np.array_equal(be(x), TorchBackend(nets[0].net)(x))
    assert fine.shapes == []


def test_fraction_one_with_enough_context_is_the_fine_network(nets):
    be, _ = routed(nets, fraction=1.0, min_score=0.0, tile=16, context=16)
    x = half_textured()
    out, ref = be(x), TorchBackend(nets[1].net)(x)
    assert np.abs(out - ref).max() < 1e-4  # every tile fine; cores agree where they meet: no seams


def test_tiles_with_detail_go_to_fine_flat_ones_never(nets):
    be, fine = routed(nets, fraction=0.5, tile=16, context=8, merge=False)
    x = half_textured(96, 128)
    out = be(x)
    coarse = TorchBackend(nets[0].net)(x)
    tiles = math.ceil(96 / 16) * math.ceil(128 / 16)
    assert be.last["tiles"] == tiles and 0 < be.last["fine"] <= tiles // 2
    changed = np.abs(out - coarse)[0, 0] > 1e-6
    assert changed[:, 128:].any()  # the textured right half (HR columns 128..255) got fine detail
    # the flat left half did not, except its last tile column, whose coarse output sees the texture's edge
    assert not changed[:, : 128 - 32].any()
    assert all(s[1:] == (1, 32, 32) and s[0] <= 16 for s in fine.shapes)  # one static patch shape


@pytest.mark.parametrize("fraction", [0.3, 1.0])
def test_merged_rectangles_equal_separate_tiles(nets, fraction):
    """The CPU path (adjacent tiles as one patch) gives what same-shaped tiles give, with less work."""
    x = half_textured(96, 128)
    tiled, t_rec = routed(nets, fraction=fraction, tile=16, context=16, merge=False)
    merged, m_rec = routed(nets, fraction=fraction, tile=16, context=16, merge=True, whole_above=1.0)
    assert np.abs(tiled(x) - merged(x)).max() < 1e-4
    assert tiled.last == merged.last
    work = lambda rec: sum(n * h * w for n, _, h, w in rec.shapes)  # noqa: E731
    assert work(m_rec) < work(t_rec)


def test_most_of_the_frame_selected_runs_fine_on_the_whole_frame(nets):
    be, fine = routed(nets, fraction=0.9, min_score=0.0, tile=16, merge=True, whole_above=0.6)
    x = half_textured(64, 96)
    assert np.array_equal(be(x), TorchBackend(nets[1].net)(x))
    assert fine.shapes == [(1, 1, 64, 96)] and be.last == {"tiles": 24, "fine": 24}


def test_merge_tiles_covers_exactly_the_selected_tiles():
    from realtime_sr.routing import merge_tiles

    gw = 5
    sel = {0, 1, 2, 5, 6, 7, 9, 14, 16, 22}
    rects = merge_tiles(sel, gw)
    covered = [gy * gw + gx for gy0, gy1, gx0, gx1 in rects for gy in range(gy0, gy1) for gx in range(gx0, gx1)]
    assert sorted(covered) == sorted(sel)  # every selected tile once, nothing else
    assert (0, 2, 0, 3) in rects and (1, 3, 4, 5) in rects  # a 2x3 block and a 2-tall column
    assert merge_tiles(set(range(20)), gw) == [(0, 4, 0, 5)]  # everything: one rectangle
    assert merge_tiles([], gw) == []


def test_flat_frame_sends_nothing_to_fine(nets):
    be, fine = routed(nets, fraction=1.0, tile=16, context=8)
    be(np.full((1, 1, 64, 64), 0.4, dtype=np.float32))
    assert fine.shapes == [] and be.last["fine"] == 0


def test_batches_are_bounded_and_same_shaped(nets):
    be, fine = routed(nets, fraction=1.0, min_score=0.0, tile=16, context=4, batch=5, merge=False)
    be(half_textured(80, 112))  # 5 x 7 = 35 tiles; the last row/column are full tiles here
    assert [s[0] for s in fine.shapes] == [5] * 7
    assert {s[2:] for s in fine.shapes} == {(24, 24)}


def test_frame_smaller_than_a_patch_runs_fine_whole(nets):
    be, fine = routed(nets, fraction=0.25, tile=32, context=8)
    x = half_textured(40, 40)
    assert np.allclose(be(x), TorchBackend(nets[1].net)(x))
    assert fine.shapes == [(1, 1, 40, 40)]


def test_blend_has_no_seam_at_the_selection_border(nets):
    """Across the border between fine and coarse the step per pixel stays small: a ramp, not a cut."""
    be, _ = routed(nets, fraction=0.5, tile=16, context=8, feather=6)
    x = half_textured(96, 128)
    out = be(x)[0, 0]
    coarse = TorchBackend(nets[0].net)(x)[0, 0]
    fine = TorchBackend(nets[1].net)(x)[0, 0]
    gap = fine - coarse
    assert np.abs(gap).max() > 0.05  # the two networks differ visibly: a cut would show
    ok = np.abs(gap) > 0.02  # where they differ, out = coarse + alpha * (fine - coarse) gives alpha
    alpha = np.where(ok, (out - coarse) / np.where(ok, gap, 1), np.nan)
    assert np.nanmin(alpha) > -0.01 and np.nanmax(alpha) < 1.01
    assert np.nanmax(alpha) > 0.99 and np.nanmin(alpha) < 0.01  # both fine and coarse areas exist
    k = 2 * 6 + 1
    for axis in (0, 1):  # alpha changes by at most one box step (1/k) per pixel: a ramp, never a cut
        assert np.nanmax(np.abs(np.diff(alpha, axis=axis))) < 1.0 / k + 0.01


def test_feather_mask():
    m = torch.zeros(1, 1, 40, 60)
    m[..., 10:30, 20:60] = 1.0  # touches the right edge of the frame
    a = feather_mask(m, 3)[0, 0]
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.all(a[m[0, 0] == 0] == 0)  # the ramp lies inside the mask
    assert torch.all(a[16:24, 30:60] == 1)  # deep inside, and up to the frame edge: no ramp there
    row = a[20, 18:30]
    assert torch.all(row[1:] >= row[:-1]) and row[-1] == 1 and row[2] < 0.2  # a monotone ramp in
    assert torch.equal(feather_mask(torch.ones(1, 1, 8, 8), 2), torch.ones(1, 1, 8, 8))


def test_options_are_checked():
    from realtime_sr.errors import UsageError

    with pytest.raises(UsageError, match="fine-fraction"):
        RouteOptions(fraction=1.5).check()


# ----------------------------------------------------------------------------- through the CLI

def test_image_cli_routed(nets, tmp_path, capsys):
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray(natural_image("astronaut", (96, 80))).save(src)
    rc = run_cli("image", src, tmp_path / "out.png", "--mode", "routed", "--model", nets[1].path,
                 "--backend", "torch", "--fine-fraction", "0.5")
    assert rc == 0
    assert Image.open(tmp_path / "out.png").size == (192, 160)
    assert "routed" in capsys.readouterr().err


def test_bad_fraction_is_a_one_line_error(nets, tmp_path, capsys):
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray(natural_image("astronaut", (32, 32))).save(src)
    rc = run_cli("image", src, tmp_path / "out.png", "--mode", "routed", "--model", nets[1].path,
                 "--backend", "torch", "--fine-fraction", "2")
    err = capsys.readouterr().err
    assert rc != 0 and "fine-fraction" in err and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()


def test_eval_cli_routed(nets, tmp_path, capsys):
    folder = write_image_folder(tmp_path / "hr", n=2, size=(64, 48))
    assert run_cli("eval", folder, "--mode", "routed", "--model", nets[1].path, "--backend", "torch") == 0
    assert "routed" in capsys.readouterr().out


def test_video_cli_routed(nets, tmp_path, capsys):
    src = make_clip(tmp_path / "in.mp4", width=96, height=64, frames=4)
    rc = run_cli("video", src, tmp_path / "out.mp4", "--mode", "routed", "--model", nets[1].path,
                 "--backend", "torch", "--preset", "ultrafast", "--no-progress")
    assert rc == 0
    f = video_facts(tmp_path / "out.mp4")
    assert (f["width"], f["height"]) == (192, 128) and len(f["times"]) == 4
    assert "routing: the fine network ran on" in capsys.readouterr().err


def test_bench_times_routed_on_a_natural_frame(nets, capsys):
    import json

    assert run_cli("bench", "--networks", "coarse,routed", "--scale", "2", "--backend", "torch", "--frame", "128x96",
                   "--runs", "1", "--warmup", "0", "--no-psnr", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["network"] for r in rows] == ["coarse", "routed"]
    fine, tiles = (int(v) for v in rows[1]["fine_tiles"].split("/"))
    assert tiles == 12 and 0 < fine <= 3  # 128x96 LR in 32-pixel tiles; a quarter at most to fine


def test_natural_frame_covers_any_size():
    from realtime_sr.bench_cmd import natural_frame

    x = natural_frame(1100, 700)
    assert x.shape == (1, 1, 700, 1100) and x.dtype == np.float32
    assert 0.05 < float(x.mean()) < 0.95 and float(x.std()) > 0.05
    assert natural_frame(64, 48, channels=3).shape == (1, 3, 48, 64)


def test_hold_makes_the_selection_stick_between_frames(nets):
    """Hysteresis: with small frame-to-frame noise, fewer tiles switch network when held."""
    x = half_textured(96, 128)
    rng = np.random.default_rng(0)
    frames = [np.clip(x + rng.normal(0, 0.01, x.shape).astype(np.float32), 0, 1) for _ in range(6)]
    counts = {}
    for hold in (1.0, 1.5):
        be, _ = routed(nets, fraction=0.25, tile=16, context=4, hold=hold)
        for f in frames:
            be(f)
        counts[hold] = be.switches
        assert be.last["fine"] == math.ceil(0.25 * 48)  # the budget is kept either way
    assert counts[1.0] > 0 and counts[1.5] < counts[1.0]


def test_huge_images_still_go_in_tiles_with_routing(monkeypatch):
    """Routing takes whole frames, but an image beyond WHOLE_FRAME_TILE is still cut (bounded memory)."""
    from realtime_sr import upscale

    class Whole:
        whole_frame = True
        name = "whole"

        def __init__(self):
            self.shapes = []

        def __call__(self, x):
            self.shapes.append(x.shape)
            return np.repeat(np.repeat(x, 2, axis=2), 2, axis=3)

    monkeypatch.setattr(upscale, "WHOLE_FRAME_TILE", 64)
    be = Whole()
    x = np.random.default_rng(0).random((1, 100, 60), dtype=np.float32)
    out = upscale.run_tiled(be, x, 2, tile=16, context=4)
    assert out.shape == (1, 200, 120) and np.array_equal(out, np.repeat(np.repeat(x, 2, 1), 2, 2))
    assert len(be.shapes) == 2 and all(s[2] <= 64 + 8 for s in be.shapes)  # 64-pixel tiles, not 16
    be.shapes.clear()
    upscale.run_tiled(be, x[:, :60, :60], 2, tile=16, context=4)
    assert be.shapes == [(1, 1, 60, 60)]  # small enough: whole


@pytest.mark.parametrize("seed", range(6))
def test_tile_alphas_equal_the_whole_frame_feather(seed):
    """The blend's per-tile alphas, cached by neighbourhood, are feather_mask of the whole frame's
    selection, tile by tile: partial tiles at the frame's edges, tiles narrower than the ramp."""
    from realtime_sr.routing import TileAlphas

    rng = np.random.default_rng(seed)
    th, tw = [(8, 8), (16, 16), (6, 10)][seed % 3]
    height, width = int(rng.integers(20, 90)), int(rng.integers(20, 90))
    f = int(rng.integers(1, 5))
    gh, gw = math.ceil(height / th), math.ceil(width / tw)
    sel = torch.from_numpy(rng.random((gh, gw)) < 0.5)
    mask = sel.repeat_interleave(th, 0)[:height].repeat_interleave(tw, 1)[:, :width].float()[None, None]
    want = feather_mask(mask, f)[0, 0]
    cache = TileAlphas()
    for _ in range(2):  # the second pass is answered from the cache
        for gy in range(gh):
            for gx in range(gw):
                a = cache.get(sel, gy, gx, th, tw, height, width, f, want)
                ref = want[gy * th:(gy + 1) * th, gx * tw:(gx + 1) * tw]
                if not sel[gy, gx]:
                    assert torch.all(ref == 0)
                    continue
                if a is None:
                    assert torch.all(ref == 1)
                else:
                    assert torch.allclose(a[0, 0], ref, atol=1e-6)


def test_routed_on_a_gpu_says_that_fine_is_faster(nets, monkeypatch):
    """Routing on a torch CUDA fine backend measured slower than fine on the whole frame: the user
    is told once, when the backend is made; on a CPU nothing is said."""
    from types import SimpleNamespace

    from realtime_sr import routing, runtime

    coarse, fine = nets
    model = routing.RoutedModel(coarse, fine)
    for device, expect in (("cuda", True), ("cpu", False)):
        made = []
        monkeypatch.setattr(runtime, "make_backend", lambda m, **kw: made.append(m) or SimpleNamespace(
            name=f"torch-{device}-fp16", device=torch.device(device)))
        monkeypatch.setattr(routing, "RoutedBackend", lambda *a, **k: "routed")
        said = []
        assert routing.backend_for(model, log=said.append) == "routed" and len(made) == 2
        assert (routing.GPU_ROUTED_NOTICE in said) is expect, said
