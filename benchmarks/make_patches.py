"""Pre-cut HR training crops into one memory-mappable ``.npy`` (what ``realtime-sr train --data FILE.npy``
reads), and pack it small enough to travel to a GPU machine.

    python benchmarks/make_patches.py --out .gpu/patches.npy --pack .gpu/patches.tar   # T91 + BSD200
    python benchmarks/make_patches.py DIR [DIR ...] --out crops.npy --size 128 --max-mib 8
    python benchmarks/make_patches.py --unpack .gpu/patches.tar --out /tmp/patches.npy

Crops: a centred grid of non-overlapping ``--size`` squares from every image (images smaller than
that are left out), uint8 RGB, shape (N, size, size, 3); when they exceed ``--max-mib`` a seeded
random subset is kept, in source order. Flips, rotations, scale jitter and the LR are the training
loader's business. Deterministic: the same sources and flags give the same bytes.

The packed form is a tar of lossless WebP crops and a manifest holding the array's shape and
SHA-256 (natural crops compress to about 37% of their raw size); ``--unpack`` rebuilds the same
``.npy`` and checks the hash. Files are written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCES = [ROOT.parent / "shared" / "data" / "images" / "T91", ROOT.parent / "shared" / "data" / "images" / "BSD200"]
SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


class PatchError(Exception):
    """Bad input: reported as one line, never a traceback."""


def list_images(sources: list[Path]) -> list[Path]:
    files = []
    for src in sources:
        if not src.is_dir():
            raise PatchError(f"{src}: not a folder of images")
        found = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not found:
            raise PatchError(f"{src}: no images in it")
        files += found
    return files


def grid(h: int, w: int, size: int) -> list[tuple[int, int]]:
    """Top-left corners of a centred grid of non-overlapping size x size squares."""
    ny, nx = h // size, w // size
    y0, x0 = (h - ny * size) // 2, (w - nx * size) // 2
    return [(y0 + i * size, x0 + j * size) for i in range(ny) for j in range(nx)]


def _rgb(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as exc:
        raise PatchError(f"{path}: cannot read image ({exc})") from None


def _shape(path: Path) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.height, im.width
    except OSError as exc:
        raise PatchError(f"{path}: cannot read image ({exc})") from None


def _atomic(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.part")


def build(sources: list[Path], out: Path, *, size: int = 192, max_mib: float = 40.0, seed: int = 0) -> dict:
    """Write the crop file; returns what went in (counts, bytes)."""
    if size < 8:
        raise PatchError(f"--size {size}: too small")
    files = list_images(sources)
    shapes = [_shape(f) for f in files]
    cands = [(k, y, x) for k, (h, w) in enumerate(shapes) for y, x in grid(h, w, size)]
    if not cands:
        raise PatchError(f"no image is {size}x{size} or larger")
    limit = int(max_mib * 2**20 // (size * size * 3))
    if limit < 1:
        raise PatchError(f"--max-mib {max_mib}: not even one {size}x{size} crop fits")
    if len(cands) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(cands), limit, replace=False))
        cands = [cands[i] for i in keep]
    tmp = _atomic(out)
    arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(cands), size, size, 3))
    current, img = -1, None
    for n, (k, y, x) in enumerate(cands):
        if k != current:
            current, img = k, _rgb(files[k])
        arr[n] = img[y:y + size, x:x + size]
    arr.flush()
    del arr
    os.replace(tmp, out)
    used = len({k for k, _, _ in cands})
    return {"crops": len(cands), "size": size, "images": len(files), "images_used": used,
            "bytes": out.stat().st_size, "sources": [str(s) for s in sources]}


def digest(arr: np.ndarray) -> str:
    h = hashlib.sha256()
    for i in range(len(arr)):
        h.update(np.ascontiguousarray(arr[i]).tobytes())
    return h.hexdigest()


def pack(npy: Path, out: Path) -> dict:
    """A tar of lossless WebP crops + manifest.json (shape, sha256)."""
    from PIL import Image

    arr = _load(npy)
    manifest = {"format": "webp-lossless", "shape": list(arr.shape), "sha256": digest(arr)}
    tmp = _atomic(out)
    with tarfile.open(tmp, "w") as tar:
        _add(tar, "manifest.json", json.dumps(manifest, indent=1).encode())
        for i in range(len(arr)):
            buf = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(arr[i])).save(buf, "WEBP", lossless=True, quality=50, method=0)
            _add(tar, f"{i:06d}.webp", buf.getvalue())
    os.replace(tmp, out)
    return {**manifest, "bytes": out.stat().st_size}


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def unpack(packed: Path, out: Path) -> dict:
    """Rebuild the .npy from a packed tar; the array's hash must match the manifest."""
    from PIL import Image

    try:
        tar = tarfile.open(packed)
    except (OSError, tarfile.TarError) as exc:
        raise PatchError(f"{packed}: not a packed crop file ({exc})") from None
    with tar:
        try:
            manifest = json.load(tar.extractfile("manifest.json"))
            shape = tuple(manifest["shape"])
        except (KeyError, ValueError, TypeError):
            raise PatchError(f"{packed}: no valid manifest.json in it") from None
        tmp = _atomic(out)
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        for i in range(shape[0]):
            try:
                with Image.open(tar.extractfile(f"{i:06d}.webp")) as im:
                    arr[i] = np.asarray(im.convert("RGB"))
            except (KeyError, OSError, ValueError) as exc:
                tmp.unlink(missing_ok=True)
                raise PatchError(f"{packed}: crop {i} is missing or damaged ({exc})") from None
        arr.flush()
        ok = digest(arr) == manifest.get("sha256")
        del arr
    if not ok:
        tmp.unlink(missing_ok=True)
        raise PatchError(f"{packed}: unpacked crops do not match the manifest's sha256")
    os.replace(tmp, out)
    return {"crops": shape[0], "shape": list(shape), "bytes": out.stat().st_size}


def _load(npy: Path) -> np.ndarray:
    try:
        arr = np.load(npy, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise PatchError(f"{npy}: not a readable .npy file ({exc})") from None
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[3] != 3:
        raise PatchError(f"{npy}: expected uint8 crops (N, H, W, 3), got {arr.dtype} {arr.shape}")
    return arr


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make_patches.py", description=__doc__.split("\n\n")[0])
    p.add_argument("sources", nargs="*", type=Path, help="image folders (default: ../shared/data/images T91 and BSD200)")
    p.add_argument("--out", type=Path, required=True, help="the .npy to write")
    p.add_argument("--size", type=int, default=192, help="crop side in HR pixels (default 192)")
    p.add_argument("--max-mib", type=float, default=40.0, help="raw size limit of the crops (default 40 MiB)")
    p.add_argument("--seed", type=int, default=0, help="which crops are kept when over the limit")
    p.add_argument("--pack", type=Path, metavar="TAR", help="also write the packed form (lossless WebP tar)")
    p.add_argument("--unpack", type=Path, metavar="TAR", help="rebuild --out from a packed tar instead")
    a = p.parse_args(argv)
    try:
        if a.out.exists() and a.out.is_dir():
            raise PatchError(f"{a.out}: is a folder, give a .npy file name")
        if a.unpack:
            info = unpack(a.unpack, a.out)
            print(f"{a.out}: {info['crops']} crops {info['shape'][1]}x{info['shape'][2]} from {a.unpack}")
            return 0
        src = [s.resolve() for s in a.sources] if a.sources else DEFAULT_SOURCES
        info = build(src, a.out, size=a.size, max_mib=a.max_mib, seed=a.seed)
        print(f"{a.out}: {info['crops']} crops of {a.size}x{a.size} from {info['images_used']} of "
              f"{info['images']} images, {info['bytes'] / 2**20:.1f} MiB")
        if a.pack:
            packed = pack(a.out, a.pack)
            print(f"{a.pack}: packed to {packed['bytes'] / 2**20:.1f} MiB (lossless WebP)")
    except PatchError as exc:
        print(f"make_patches.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
