"""A sample video the package makes itself (nothing downloaded), for the README's first command.

A camera pans across a procedurally generated scene (fractal-noise terrain, brickwork, fine
stripes and text-like marks, and ``assets/sample.png`` framed on a wall when it exists), with an
AAC track of a soft A-major chord. Deterministic: the same arguments give the same pixels.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

ASSET = Path(__file__).parents[1] / "assets" / "sample.png"


def _noise(rng, h: int, w: int, octaves: int = 6) -> np.ndarray:
    from PIL import Image

    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        gh, gw = max(2, h >> (octaves - o)), max(2, w >> (octaves - o))
        grid = rng.random((gh, gw), dtype=np.float32)
        out += amp * np.asarray(Image.fromarray(grid, mode="F").resize((w, h), Image.BICUBIC))
        total += amp
        amp *= 0.55
    out /= total
    return (out - out.min()) / max(1e-6, float(out.max() - out.min()))


def _scene(width: int, height: int, rng) -> np.ndarray:
    """An RGB float scene in [0, 1], ``width`` wide (the pan range) and ``height`` tall."""
    from PIL import Image

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    n = _noise(rng, height, width)
    sky = np.stack([0.45 + 0.2 * n, 0.6 + 0.2 * n, 0.85 + 0.1 * n], -1) * (1 - 0.3 * yy / height)[..., None]
    ridge = height * (0.45 + 0.15 * _noise(rng, 1, width, 5)[0])
    grass = np.stack([0.2 + 0.3 * n, 0.35 + 0.4 * n, 0.1 + 0.15 * n], -1)
    img = np.where((yy > ridge)[..., None], grass, sky)
    # brick wall on the right half, with mortar lines and per-brick tint
    x0 = width // 2
    bh, bw = max(6, height // 18), max(12, height // 9)
    row = (yy // bh).astype(int)
    col = ((xx + (row % 2) * bw / 2) // bw).astype(int)
    tint = rng.random((int(row.max()) + 2, int(col.max()) + 2))[row, col].astype(np.float32)
    mortar = ((yy % bh) < 1.5) | (((xx + (row % 2) * bw / 2) % bw) < 1.5)
    brick = np.stack([0.55 + 0.2 * tint, 0.25 + 0.1 * tint, 0.2 + 0.05 * tint], -1) * (0.85 + 0.3 * n[..., None])
    brick[mortar] = 0.8
    wall = (xx >= x0) & (yy > height * 0.15)
    img = np.where(wall[..., None], brick, img)
    # fine stripes and text-like marks: detail a bicubic upscale blurs and a network should keep
    band = (yy > height * 0.05) & (yy < height * 0.12) & (xx > width * 0.05) & (xx < width * 0.45)
    img[band] = (0.5 + 0.5 * np.sin(xx[band] * 1.3))[..., None] * np.array([1.0, 0.95, 0.8])
    for k in range(40):
        cx, cy = rng.integers(int(width * 0.05), int(width * 0.45)), rng.integers(int(height * 0.7), height - 8)
        img[cy:cy + 2, cx:cx + rng.integers(4, 14)] = 0.1
    if ASSET.exists():  # the bundled photo, framed on the wall
        with Image.open(ASSET) as im:
            side = int(height * 0.6)
            photo = np.asarray(im.convert("RGB").resize((side, side), Image.BICUBIC), np.float32) / 255
        py, px = int(height * 0.25), x0 + int(width * 0.12)
        img[py - 3:py + side + 3, px - 3:px + side + 3] = 0.15
        img[py:py + side, px:px + side] = photo
    return np.clip(img, 0, 1)


def make_sample_video(path: str | Path, *, width: int = 320, height: int = 180, seconds: float = 2.0,
                      fps: int = 25, audio: bool = True) -> Path:
    """Write a ``seconds``-long H.264 clip of a pan across a detailed scene (+ AAC chord) to ``path``."""
    import av

    path = Path(path)
    width, height = width - width % 2, height - height % 2
    rng = np.random.default_rng(1234)
    n = max(1, round(seconds * fps))
    scene = (_scene(width * 2, height, rng) * 255 + 0.5).astype(np.uint8)
    tb = Fraction(1, fps * 512)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", options={"crf": "16", "preset": "fast"})
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.time_base = vs.codec_context.time_base = tb
        vs.codec_context.framerate = Fraction(fps)
        vs.codec_context.colorspace = vs.codec_context.color_primaries = 6  # BT.601 (SMPTE 170M)
        vs.codec_context.color_trc, vs.codec_context.color_range = 6, 1
        a = out.add_stream("aac", rate=48000, layout="stereo") if audio else None
        for i in range(n):
            x = round(i * width / max(1, n - 1))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(scene[:, x:x + width]), format="rgb24")
            frame = frame.reformat(format="yuv420p", dst_colorspace=av.video.reformatter.Colorspace.ITU601,
                                   dst_color_range=av.video.reformatter.ColorRange.MPEG)
            frame.pts = i * 512
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        if a is not None:
            total = round(n / fps * 48000)
            t = np.arange(total) / 48000.0
            env = np.minimum(1.0, np.minimum(t / 0.05, (total / 48000 - t) / 0.3))
            sig = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63, 440.0)) * 0.12 * env
            stereo = np.stack([sig, np.roll(sig, 240)]).astype(np.float32)
            for s0 in range(0, total, 1024):
                fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(stereo[:, s0:s0 + 1024]), format="fltp",
                                                layout="stereo")
                fr.sample_rate, fr.pts = 48000, s0
                for p in a.encode(fr):
                    out.mux(p)
            for p in a.encode(None):
                out.mux(p)
    return path
