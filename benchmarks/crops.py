"""Side-by-side crops for the docs: bicubic | fine | gan | animevideov3 | original, at 2x zoom.

Sources: ``astronaut`` (scikit-image's photo, NASA, public domain), ``set14:NAME`` (a Set14
image, e.g. ``set14:comic``) or ``video:FILE:FRAME`` (a frame of ../shared/data/videos, its
640x360 centre crop, downscaled with PIL bicubic and sent through libx264 at --crf with the
frames before it, as benchmarks/gan/compare.py measures). Real-ESRGAN's animevideov3 is drawn
when its weights are in ../shared/peers.

Usage: python benchmarks/crops.py --scale 4 --source set14:comic --box 60 40 220 200 --out docs/crops_x4_set14.png
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent / "gan"))
from compare import DATA, compress, read_frames  # noqa: E402
from srvgg import PEER, animevideov3_method  # noqa: E402

from realtime_sr.imageops import modcrop, read_image, resize_bicubic  # noqa: E402
from realtime_sr.upscale import Upscaler  # noqa: E402


def source_pair(source: str, scale: int, crf: int) -> tuple[np.ndarray, np.ndarray]:
    """(HR, LR) for a --source."""
    kind, _, rest = source.partition(":")
    if kind == "video":
        name, _, frame = rest.partition(":")
        n = int(frame or 0)
        hr = [modcrop(f, scale) for f in read_frames(DATA / "videos" / name, max(0, n - 4), min(n, 4) + 1)]
        lr = compress([resize_bicubic(f, (f.shape[1] // scale, f.shape[0] // scale)) for f in hr], crf)
        return hr[-1], lr[-1]  # an inter-coded frame, as in a real clip
    if kind == "set14":
        hr = read_image(DATA / "images" / "Set14" / f"{rest}.png")[..., :3]
    else:
        import skimage.data

        hr = skimage.data.astronaut()
    hr = modcrop(hr, scale)
    return hr, resize_bicubic(hr, (hr.shape[1] // scale, hr.shape[0] // scale))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--source", default="astronaut", help="astronaut | set14:NAME | video:FILE:FRAME")
    ap.add_argument("--crf", type=int, default=23)
    ap.add_argument("--fine", help="fine model (name or weights file); default fine-xS")
    ap.add_argument("--gan", help="GAN model (name or weights file); default gan-xS")
    ap.add_argument("--out", default="docs/crops_x4.png")
    ap.add_argument("--box", type=int, nargs=4, default=(150, 40, 310, 200), help="x0 y0 x1 y1 in HR pixels")
    ap.add_argument("--zoom", type=int, default=2)
    a = ap.parse_args()
    s = a.scale
    hr, lr = source_pair(a.source, s, a.crf)
    panels = [("bicubic", resize_bicubic(lr, (hr.shape[1], hr.shape[0])))]
    for role, model in (("fine", a.fine), ("gan", a.gan)):
        up = Upscaler.load(model or f"{role}-x{s}", backend="torch", device="cpu")
        panels.append((model and Path(model).stem or f"{role}-x{s}", up(lr)))
    if PEER.exists():
        panels.append(("animevideov3", animevideov3_method(s)(lr)))
    panels.append(("original", hr))
    x0, y0, x1, y1 = a.box
    w, h = (x1 - x0) * a.zoom, (y1 - y0) * a.zoom
    canvas = Image.new("RGB", (w * len(panels), h + 24), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (label, img) in enumerate(panels):
        crop = Image.fromarray(np.ascontiguousarray(img[y0:y1, x0:x1])).resize((w, h), Image.NEAREST)
        canvas.paste(crop, (i * w, 24))
        draw.text((i * w + 6, 5), label, fill="black")
    canvas.save(a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
