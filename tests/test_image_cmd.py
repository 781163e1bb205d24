import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from realtime_sr.upscale import Upscaler, run_tiled

from helpers import natural_image, tiny_model


def cli(*args):
    return subprocess.run([sys.executable, "-m", "realtime_sr", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("m") / "tiny.safetensors", arch="srgan_generator", scale=2)


def test_upscales_a_real_photo_file_to_file(tmp_path, model):
    src = tmp_path / "photo.jpg"
    Image.fromarray(natural_image("chelsea", (120, 80))).save(src, quality=92)
    before = src.read_bytes()
    r = cli("image", src, tmp_path / "out.png", "--model", model)
    assert r.returncode == 0, r.stderr
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (160, 240, 3)
    assert src.read_bytes() == before  # input untouched


@pytest.mark.parametrize("mode,suffix", [("L", ".png"), ("RGBA", ".png"), ("RGB", ".bmp"), ("RGB", ".webp"),
                                         ("LA", ".png"), ("P", ".png")])
def test_formats_grayscale_and_alpha(tmp_path, model, mode, suffix):
    img = Image.fromarray(natural_image("coffee", (40, 30))).convert(mode)
    if mode == "RGBA":
        a = np.zeros((30, 40), np.uint8)
        a[:, 20:] = 255  # half transparent
        img.putalpha(Image.fromarray(a))
    src = tmp_path / f"in{suffix}"
    img.save(src)
    dst = tmp_path / f"out{suffix}"
    r = cli("image", src, dst, "--model", model)
    assert r.returncode == 0, r.stderr
    out = Image.open(dst)
    assert out.size == (80, 60)
    if mode in ("L",):
        assert out.mode == "L"
    if mode in ("RGBA", "LA"):
        arr = np.asarray(out)
        assert arr.shape[2] in (2, 4)
        if mode == "RGBA":
            # alpha is resized conventionally: opaque stays opaque, transparent stays transparent
            assert arr[:, :30, 3].max() <= 5 and arr[:, 50:, 3].min() >= 250


def test_folder_to_folder(tmp_path, model):
    src = tmp_path / "in"
    src.mkdir()
    for i, ext in enumerate([".png", ".jpg", ".bmp"]):
        Image.fromarray(natural_image("astronaut", (32, 24))).save(src / f"a{i}{ext}")
    (src / "notes.txt").write_text("not an image")
    r = cli("image", src, tmp_path / "out", "--model", model)
    assert r.returncode == 0, r.stderr
    outs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outs == ["a0.png", "a1.jpg", "a2.bmp"]
    assert Image.open(tmp_path / "out" / "a1.jpg").size == (64, 48)


def test_tiles_leave_no_seams(model):
    up = Upscaler.load(model)
    img = natural_image("astronaut", (150, 110))
    whole = up(img, tile=1024)
    tiled = up(img, tile=40)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


def test_run_tiled_matches_whole_input():
    calls = []

    def backend(x):
        calls.append(x.shape)
        # a 3x3 box filter, then nearest x2: its output depends on a 1-pixel neighbourhood
        from scipy.ndimage import uniform_filter
        y = np.stack([[uniform_filter(c, 3, mode="constant") for c in n] for n in x])
        return y.repeat(2, axis=2).repeat(2, axis=3)

    x = np.random.default_rng(0).random((1, 70, 50), dtype=np.float32)
    ref = backend(x[None])[0]
    out = run_tiled(backend, x, 2, tile=16, context=2)
    assert len(calls) > 4 and np.allclose(out, ref, atol=1e-6)


def test_python_api_takes_arrays_and_pil(model):
    up = Upscaler.load(model)
    arr = natural_image("coffee", (30, 20))
    assert up(arr).shape == (40, 60, 3)
    assert up(arr[..., 0]).shape == (40, 60)
    pil = up(Image.fromarray(arr))
    assert isinstance(pil, Image.Image) and pil.size == (60, 40)
    sixteen = (arr.astype(np.uint16) * 257)
    out16 = up(sixteen)
    assert out16.dtype == np.uint16 and out16.shape == (40, 60, 3)
    for bad, msg in ((np.zeros((0, 0, 3), np.uint8), "empty image"), (np.zeros((4, 4, 5), np.uint8), "1-4 channels")):
        with pytest.raises(ValueError, match=msg):
            up(bad)


@pytest.mark.parametrize("case", ["missing", "empty", "text", "exists", "same", "badsuffix", "nofolder",
                                  "underfile"])
def test_bad_input_one_line_error_nonzero_exit(tmp_path, model, case):
    src = tmp_path / "in.png"
    Image.fromarray(natural_image("coffee", (20, 20))).save(src)
    dst = tmp_path / "out.png"
    if case == "missing":
        src = tmp_path / "nope.png"
    elif case == "empty":
        src.write_bytes(b"")
    elif case == "text":
        src.write_text("hello, I am not an image")
    elif case == "exists":
        dst.write_bytes(b"keep me")
    elif case == "same":
        dst = src
    elif case == "badsuffix":
        dst = tmp_path / "out.xyz"
    elif case == "nofolder":  # the output's folder does not exist: refused before the model loads
        dst = tmp_path / "no" / "such" / "out.png"
    elif case == "underfile":  # the output's "folder" is a file
        (tmp_path / "afile").write_text("x")
        dst = tmp_path / "afile" / "out.png"
    r = cli("image", src, dst, "--model", model)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr
    assert r.stderr.startswith("realtime-sr: error:")
    if case == "exists":
        assert dst.read_bytes() == b"keep me"
    if case not in ("same", "exists"):
        assert not dst.exists()
    assert not list(tmp_path.glob("*.part"))


def test_output_gets_ordinary_permissions(tmp_path, model):
    import os
    src = tmp_path / "in.png"
    Image.fromarray(natural_image("coffee", (20, 20))).save(src)
    r = cli("image", src, tmp_path / "out.png", "--model", model)
    assert r.returncode == 0, r.stderr
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "out.png").stat().st_mode & 0o777 == 0o666 & ~umask


def test_eval_refuses_an_image_too_small_to_score(tmp_path, model):
    folder = tmp_path / "hr"
    folder.mkdir()
    Image.fromarray(natural_image("coffee", (40, 30))).save(folder / "ok.png")
    Image.fromarray(natural_image("coffee", (14, 40))).save(folder / "thin.png")  # x2 needs 15 px a side
    r = cli("eval", folder, "--model", model)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr
    assert "thin.png: 14x40 is too small to evaluate at x2" in r.stderr
    (folder / "thin.png").unlink()
    r = cli("eval", folder, "--model", model)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("args, msg", [
    (["--lr-codec", "libx264", "--lr-crf", "99"], "--lr-crf 99: libx264 takes 0-51"),
    (["--lr-codec", "jpeg", "--lr-quality", "0"], "--lr-quality 0: JPEG takes 1-100")])
def test_eval_refuses_a_quality_outside_the_codec_scale(tmp_path, model, args, msg):
    folder = tmp_path / "hr"
    folder.mkdir()
    Image.fromarray(natural_image("coffee", (40, 30))).save(folder / "ok.png")
    r = cli("eval", folder, "--model", model, *args)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and msg in r.stderr, r.stderr


def test_dihedral_mean_undoes_each_flip_and_rotation():
    """Self-ensemble: an upscaler that commutes with flips and rotations is left unchanged (so each
    transform is undone exactly, also on non-square input), and one that does not is averaged."""
    from realtime_sr.upscale import dihedral_mean

    x = np.random.default_rng(0).random((2, 5, 7)).astype(np.float32)
    nearest = lambda t: np.repeat(np.repeat(t, 2, axis=-2), 2, axis=-1)  # noqa: E731
    assert np.allclose(dihedral_mean(nearest, x), nearest(x), atol=1e-6)
    calls = []

    def biased(t):  # not equivariant: adds a ramp along the last axis, records the shapes it saw
        calls.append(t.shape)
        return nearest(t) + np.arange(t.shape[-1] * 2, dtype=np.float32)

    out = dihedral_mean(biased, x)
    assert out.shape == (2, 10, 14) and sorted(set(calls)) == [(2, 5, 7), (2, 7, 5)] and len(calls) == 8
    assert not np.allclose(out, biased(x))
    # the ramp turned back and averaged: half the transforms put it along each axis, both directions
    ramp = out - nearest(x)
    assert np.allclose(ramp, ramp[..., ::-1], atol=1e-5) and np.allclose(ramp, ramp[..., ::-1, :], atol=1e-5)


def test_self_ensemble_from_the_command_line_and_in_eval(tmp_path, model):
    src = tmp_path / "photo.png"
    Image.fromarray(natural_image("chelsea", (60, 40))).save(src)
    plain, ens = tmp_path / "plain.png", tmp_path / "ens.png"
    flags = ("--model", model, "--backend", "torch", "--precision", "fp32")
    assert cli("image", src, plain, *flags).returncode == 0
    r = cli("image", src, ens, *flags, "--self-ensemble")
    assert r.returncode == 0 and "self-ensemble" in r.stderr, r.stderr
    a, b = np.asarray(Image.open(plain)), np.asarray(Image.open(ens))
    assert a.shape == b.shape == (80, 120, 3) and not np.array_equal(a, b)
    api = Upscaler.load(model, backend="torch")(np.asarray(Image.open(src)), self_ensemble=True)
    assert np.array_equal(api, b)  # the same computation as the API's
    folder = tmp_path / "hr"
    folder.mkdir()
    Image.fromarray(natural_image("coffee", (40, 30))).save(folder / "a.png")
    r = cli("eval", folder, *flags, "--self-ensemble")
    assert r.returncode == 0, r.stderr
    assert "self-ensemble" in r.stdout and r.stdout.count("\n") == 4  # header, bicubic, model, model+
