"""Which per-tile score finds where the fine network gains over the coarse one? (training images only)

    .venv/bin/python benchmarks/routing/estimators.py [--scale 2] [--tile 16] [--every 10]

For every 10th image of BSD200 (a training set), per LR tile: the gain
``mse(coarse, HR) - mse(fine, HR)``, and candidate scores. Prints, for the top 10/25/50% of tiles
per image by each score, the share of the total gain those tiles hold. The oracle ranks by
``(fine - coarse)^2``, which would need the fine network everywhere.
"""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data" / "images"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--tile", type=int, default=16)
    ap.add_argument("--every", type=int, default=10)
    a = ap.parse_args()
    from PIL import Image

    from realtime_sr.colour import rgb_to_y
    from realtime_sr.imageops import read_image, resize_bicubic
    from realtime_sr.models import load_model
    from realtime_sr.runtime import make_backend

    s, t = a.scale, a.tile
    cb = make_backend(load_model(f"coarse-x{s}"), backend="onnxruntime", log=None)
    fb = make_backend(load_model(f"fine-x{s}"), backend="onnxruntime", log=None)
    files = sorted(glob.glob(str(DATA / "BSD200" / "*")))[:: a.every]

    def pool(x, k):
        h, w = x.shape
        return x.reshape(h // k, k, w // k, k).mean(axis=(1, 3)).ravel()

    rows = []
    for f in files:
        img = read_image(f)[..., :3]
        h, w = img.shape[:2]
        h, w = h - h % (s * t), w - w % (s * t)
        img = img[:h, :w]
        lr = resize_bicubic(img, (w // s, h // s))
        hr_y = rgb_to_y(img.astype(np.float32) / 255) / 255
        lr_y = (rgb_to_y(lr.astype(np.float32) / 255) / 255).astype(np.float32)
        c, fi = cb(lr_y[None, None])[0, 0], fb(lr_y[None, None])[0, 0]
        bic = np.asarray(Image.fromarray(lr_y, "F").resize((w, h), Image.BICUBIC))
        gy, gx = np.gradient(lr_y)
        pad = np.pad(lr_y, 1, mode="edge")
        mean3 = sum(pad[i:i + lr_y.shape[0], j:j + lr_y.shape[1]] for i in range(3) for j in range(3)) / 9
        rows.append({"gain": pool((c - hr_y) ** 2 - (fi - hr_y) ** 2, s * t),
                     "LR gradient energy": pool(gx ** 2 + gy ** 2, t),
                     "LR high-pass energy": pool((lr_y - mean3) ** 2, t),
                     "coarse minus bicubic energy": pool((c - bic) ** 2, s * t),
                     "oracle (fine - coarse)^2": pool((fi - c) ** 2, s * t)})
    total = sum(r["gain"].sum() for r in rows)
    print(f"{len(files)} BSD200 images, x{s}, {t}-pixel LR tiles, {sum(len(r['gain']) for r in rows)} tiles")
    print(f"{'score':30s} {'top 10%':>8s} {'top 25%':>8s} {'top 50%':>8s}")
    for key in [k for k in rows[0] if k != "gain"]:
        shares = []
        for frac in (0.1, 0.25, 0.5):
            got = 0.0
            for r in rows:
                n = max(1, round(frac * len(r["gain"])))
                got += r["gain"][np.argsort(-r[key])[:n]].sum()
            shares.append(got / total)
        print(f"{key:30s} " + " ".join(f"{v:8.1%}" for v in shares))


if __name__ == "__main__":
    main()
