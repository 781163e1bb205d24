"""Side-by-side crops for the README: bicubic, coarse, fine and GAN next to the original.

The source is scikit-image's astronaut photo (NASA, public domain), downscaled by the scale
with the evaluation protocol's bicubic, then upscaled back by each method.
Usage: python benchmarks/crops.py --scale 4 --out docs/crops_x4.png
"""

import argparse

import numpy as np
from PIL import Image, ImageDraw

from realtime_sr.imageops import resize_bicubic
from realtime_sr.models import shipped_models
from realtime_sr.upscale import Upscaler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--out", default="docs/crops_x4.png")
    ap.add_argument("--box", type=int, nargs=4, default=(150, 40, 310, 200), help="x0 y0 x1 y1 in HR pixels")
    ap.add_argument("--zoom", type=int, default=2)
    a = ap.parse_args()
    import skimage.data

    hr = skimage.data.astronaut()
    s = a.scale
    hr = hr[: hr.shape[0] - hr.shape[0] % s, : hr.shape[1] - hr.shape[1] % s]
    lr = resize_bicubic(hr, (hr.shape[1] // s, hr.shape[0] // s))
    panels = [("bicubic", resize_bicubic(lr, (hr.shape[1], hr.shape[0])))]
    for role in ("coarse", "fine", "gan"):
        name = f"{role}-x{s}"
        if name in shipped_models():
            panels.append((name, Upscaler.load(name, backend="torch")(lr)))
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
