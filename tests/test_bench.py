"""realtime-sr bench: PSNR beside ms and fps, end-to-end video rows, the quality/speed plot and its Pareto front."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from realtime_sr.plot import FRONT, OTHER, PAPER, RADIUS, REF, pareto_front, quality_speed_plot

from video_helpers import make_model, run_cli


def test_pareto_front_keeps_what_nothing_beats():
    pts = [(100.0, 30.0), (10.0, 32.5), (1.0, 33.0), (5.0, 32.0), (0.5, 33.0), (10.0, 32.0)]
    # (5, 32) is beaten by (10, 32.5); (0.5, 33) by (1, 33); (10, 32) by (10, 32.5): same speed, worse
    assert pareto_front(pts) == [0, 1, 2]  # fastest first
    assert pareto_front([(3.0, 30.0)]) == [0]
    assert pareto_front([(2.0, 31.0), (2.0, 31.0)]) == [0, 1]  # equals do not dominate each other
    assert pareto_front([(1.0, 30.0), (2.0, 31.0), (3.0, 32.0)]) == [2]  # one point better in both
    assert pareto_front([]) == []


def test_plot_is_a_png_with_every_point_and_the_front_marked(tmp_path):
    pts = [(400.0, 30.3), (14.0, 32.7), (1.3, 33.0), (9.0, 32.2)]
    labels = ["bicubic", "coarse", "fine", "coarse int8"]
    where = quality_speed_plot(pts, labels, tmp_path / "q.png", title="test")
    with Image.open(tmp_path / "q.png") as im:
        assert im.format == "PNG" and im.size == (1000, 640)
        img = np.asarray(im.convert("RGB"))
    assert set(where) == set(labels)
    xs = {lab: where[lab][0] for lab in labels}
    ys = {lab: where[lab][1] for lab in labels}
    assert xs["fine"] < xs["coarse int8"] < xs["coarse"] < xs["bicubic"]  # faster is further right
    assert ys["fine"] < ys["coarse"] < ys["coarse int8"] < ys["bicubic"]  # better is higher (smaller y)
    for lab in ("bicubic", "coarse", "fine"):  # on the front: filled
        x, y = where[lab]
        assert tuple(img[y, x]) == FRONT, lab
    x, y = where["coarse int8"]  # beaten by coarse: hollow, in the other colour
    assert tuple(img[y, x]) == PAPER
    ring = img[y - RADIUS - 1:y + RADIUS + 2, x - RADIUS - 1:x + RADIUS + 2].reshape(-1, 3)
    assert any(tuple(p) == OTHER for p in ring)
    assert not (tmp_path / "q.png.part").exists() and len(list(tmp_path.iterdir())) == 1


@pytest.fixture()
def hr_folder(tmp_path):
    """Two small HR images with texture (the bench's --data), made here."""
    d = tmp_path / "hr"
    d.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64]
    for i in range(2):
        img = np.stack([(xx * (3 + i)) % 256, (yy * 5) % 256, (xx + yy) * 2 % 256], -1).astype(np.float32)
        img += rng.normal(0, 8, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(d / f"img{i}.png")
    return d


def bench(*args):
    return run_cli("bench", "--backend", "torch", "--frame", "48x32", "--runs", "2", "--warmup", "0", *args)


def test_table_has_psnr_and_fps_and_the_plot_has_the_rows(tmp_path, hr_folder, capsys):
    model = make_model(tmp_path)
    plot = tmp_path / "bench.png"
    assert bench("--model", model, "--data", hr_folder, "--plot", plot) == 0
    out, err = capsys.readouterr()
    head, _, row = out.splitlines()[:3]
    cols = head.split()
    assert {"ms/frame", "fps", "PSNR"} <= set(cols)
    cells = row.split()
    assert cells[0] == "model" and cells[1] == "test" and cells[2] == "torch-cpu-fp32"
    psnr, fps = float(cells[-1]), float(cells[-2])
    assert 20 < psnr < 60 and fps > 0
    assert "bicubic:" in out and "on hr x2" in out and f"plot written to {plot}" in err
    with Image.open(plot) as im:
        assert im.format == "PNG"
        img = np.asarray(im.convert("RGB"))
    # two points (the model and bicubic): each is filled, or hollow in the other colour
    marks = (img == FRONT).all(axis=2).sum() + (img == OTHER).all(axis=2).sum()
    assert marks > 2 * 40


def test_json_rows_with_an_end_to_end_video_row(tmp_path, hr_folder, capsys):
    model = make_model(tmp_path)
    assert bench("--model", model, "--data", hr_folder, "--json", "--video", "--video-seconds", "0.4") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in rows] == ["model", "video"]
    m, v = rows
    assert m["psnr"] > 20 and m["data"] == "hr" and m["fps"] > 0
    assert v["network"] == m["network"] and v["backend"] == m["backend"] and v["model"] == "test"
    assert v["runs"] == 10 and v["frame"] == "48x32" and v["fps"] > 0  # 0.4 s of the generated 25 fps clip


def test_combinations_that_cannot_run_are_skipped_with_a_note(tmp_path, hr_folder, capsys):
    model = make_model(tmp_path)
    assert bench("--model", model, "--data", hr_folder, "--precisions", "fp32,int8", "--json") == 0
    out, err = capsys.readouterr()
    assert [r["precision"] for r in json.loads(out)] == ["fp32"]
    assert "skipped" in err and "int8" in err


def test_no_data_is_a_note_and_no_psnr_drops_the_column(tmp_path, capsys, monkeypatch):
    import realtime_sr.export_cmd

    monkeypatch.setattr(realtime_sr.export_cmd, "_gate_set", lambda arg: None)  # a machine without Set14
    model = make_model(tmp_path)
    assert bench("--model", model) == 0
    out = capsys.readouterr().out
    assert "PSNR" not in out.splitlines()[0] and "no PSNR: Set14 was not found" in out and "--data DIR" in out
    assert bench("--model", model, "--no-psnr") == 0
    assert "PSNR" not in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--plot", "x.png", "--no-psnr"], "--plot draws PSNR against fps"),
    (["--data", "no-such-folder"], "--data no-such-folder: not a folder"),
    (["--backends", "torch,cuda-magic"], "--backends: unknown cuda-magic"),
    (["--plot", "no/such/dir/p.png"], "its folder does not exist"),
    (["--csv", "no/such/dir/rows.csv"], "--csv no/such/dir/rows.csv: its folder does not exist"),
    (["--csv", "."], "is a folder; give a file name"),
    (["--video", "--frame", "16x16"], "at least 32x32"),
])
def test_bad_bench_flags_are_one_line_errors(tmp_path, capsys, args, message):
    rc = bench("--model", make_model(tmp_path), *args)
    err = capsys.readouterr().err
    assert rc != 0 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_reference_far_below_is_pinned_to_the_bottom_edge(tmp_path):
    where = quality_speed_plot([(14.0, 32.7), (1.3, 33.0)], ["coarse", "fine"], tmp_path / "q.png",
                               reference=(90.0, 30.3, "bicubic"))
    x, y = where["bicubic"]
    assert x > where["coarse"][0] and where["coarse"][1] < y < 640  # fastest; below every network, inside
    with Image.open(tmp_path / "q.png") as im:
        img = np.asarray(im.convert("RGB"))
    assert tuple(img[y, x]) == REF  # the grey diamond
    assert tuple(img[where["coarse"][1], where["coarse"][0]]) == FRONT  # the front: the networks only
