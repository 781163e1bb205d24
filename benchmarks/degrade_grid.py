"""Example LR patches of the real-world degradations (docs/degradations.png) and their throughput.

    python benchmarks/degrade_grid.py --out docs/degradations.png

Each tile is one training sample's LR (x2, 48x48 LR, shown at 3x with nearest-neighbour), labelled
with what made it; the first tile of each row is the clean PIL-bicubic LR of the same crop for
reference. Throughput: samples per second of the training dataset in one process, clean and
degraded, after the source images are cached.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime_sr.train.data import PatchDataset, find_training_images  # noqa: E402
from realtime_sr.train.degrade import DegradeConfig, degrade  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "images"


def tiles(img: np.ndarray, n: int, seed: int = 0, p: int = 48, s: int = 2):
    """``n`` degraded LR patches of one fixed crop of ``img``, with labels, plus its clean LR."""
    from PIL import Image

    cy, cx = img.shape[0] // 2, img.shape[1] // 2

    def region(size, dx=0, dy=0):
        y0 = int(np.clip(cy - size // 2 + dy, 0, img.shape[0] - size))
        x0 = int(np.clip(cx - size // 2 + dx, 0, img.shape[1] - size))
        return np.ascontiguousarray(img[y0:y0 + size, x0:x0 + size])

    from realtime_sr.colour import rgb_to_y

    gray = lambda y: np.repeat(np.clip(np.rint(y), 0, 255).astype(np.uint8)[..., None], 3, axis=2)  # noqa: E731
    clean = np.asarray(Image.fromarray(region(p * s)).resize((p, p), Image.BICUBIC))
    out = [(gray(rgb_to_y(clean / 255.0)), "clean bicubic")]
    cfg = DegradeConfig(clean_prob=0.0)
    rng = np.random.default_rng(seed)
    while len(out) < n:
        d = degrade(region, scale=s, lr_patch=p, cfg=cfg, rng=rng)[0]
        lr = d.lr_y if d.lr_y is not None else rgb_to_y(d.lr_rgb / 255.0)
        out.append((gray(lr), d.kind))
    return out


def draw(rows, zoom: int = 3, out: str = "docs/degradations.png") -> None:
    from PIL import Image, ImageDraw

    p = rows[0][0][0].shape[0] * zoom
    label_h = 14
    cols = max(len(r) for r in rows)
    canvas = Image.new("RGB", (cols * (p + 4), len(rows) * (p + label_h + 4)), "white")
    pen = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        for c, (tile, label) in enumerate(row):
            x, y = c * (p + 4), r * (p + label_h + 4)
            canvas.paste(Image.fromarray(tile).resize((p, p), Image.NEAREST), (x, y + label_h))
            pen.text((x + 2, y + 1), label[:24], fill="black")
    canvas.save(out)


def throughput(n: int = 200) -> tuple[float, float]:
    files = find_training_images([DATA / "T91", DATA / "BSD200"])
    rates = []
    for deg in (None, DegradeConfig()):
        ds = PatchDataset(files, scale=2, lr_patch=32, degrade=deg)
        for i in range(len(files)):
            ds._image(i)
        for i in range(20):
            ds[i]
        t = time.perf_counter()
        for i in range(n):
            ds[1000 + i]
        rates.append(n / (time.perf_counter() - t))
    return rates[0], rates[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "degradations.png"))
    ap.add_argument("--images", default="BSD200/37073.png,BSD200/106020.png,T91/t30.bmp")
    ap.add_argument("--per-row", type=int, default=8)
    ap.add_argument("--no-throughput", action="store_true")
    a = ap.parse_args()
    from realtime_sr.imageops import read_image

    rows = []
    for k, name in enumerate(a.images.split(",")):
        path = DATA / name
        if not path.exists():
            path = sorted((DATA / name.split("/")[0]).iterdir())[k]
        img = read_image(path)[..., :3]
        rows.append(tiles(img, a.per_row, seed=k))
    draw(rows, out=a.out)
    print(f"wrote {a.out}")
    if not a.no_throughput:
        clean, deg = throughput()
        print(f"x2 32x32 LR patches, one process: clean {clean:.0f} samples/s, degraded {deg:.0f} samples/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
