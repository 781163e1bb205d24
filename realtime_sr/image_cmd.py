"""``realtime-sr image IN OUT``: a file to a file, or a folder to a folder."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .errors import InputError, OutputError, RealtimeSRError, UsageError
from .imageops import IMAGE_SUFFIXES, list_images, read_image, write_image


def _plan(src: Path, dst: Path, overwrite: bool) -> list[tuple[Path, Path]]:
    if not src.exists():
        raise InputError(f"{src}: no such file or folder")
    if src.is_dir():
        if dst.exists() and not dst.is_dir():
            raise UsageError(f"{dst}: input is a folder, so the output must be a folder too")
        if dst.resolve() == src.resolve():
            raise UsageError("the output folder must differ from the input folder")
        files = list_images(src)
        if not files:
            raise InputError(f"{src}: no images (.png, .jpg, .bmp, .webp, .tif) in it")
        pairs = [(f, dst / f.name) for f in files]
    else:
        if dst.is_dir():
            dst = dst / src.name
        if dst.suffix.lower() not in IMAGE_SUFFIXES:
            raise UsageError(f"{dst}: unsupported output format {dst.suffix!r} (use .png, .jpg, .bmp, .webp or .tif)")
        if dst.exists() and dst.resolve() == src.resolve():
            raise UsageError("the output must differ from the input (the input is never modified)")
        if not dst.parent.is_dir():  # before a model is loaded, not after the work
            raise OutputError(f"{dst.parent}: no such folder")
        pairs = [(src, dst)]
    if not overwrite:
        existing = [d for _, d in pairs if d.exists()]
        if existing:
            more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
            raise OutputError(f"{existing[0]} exists{more}; pass -y/--overwrite to replace")
    return pairs


def run_image(a) -> int:
    from .upscale import Upscaler

    src, dst = Path(a.input), Path(a.output)
    pairs = _plan(src, dst, a.overwrite)
    if a.tile < 16:
        raise UsageError("--tile must be at least 16")
    first = read_image(pairs[0][0]) if len(pairs) == 1 else None  # fail fast, before loading a model
    up = Upscaler.load(a.model, scale=a.scale, mode=a.mode, backend=a.backend, device=a.device,
                       precision=a.precision, fine_fraction=a.fine_fraction)
    print(f"model {up.model.name} (x{up.scale}), backend {up.backend.name}"
          + (", self-ensemble (8 passes)" if a.self_ensemble else ""), file=sys.stderr)
    if src.is_dir():
        try:
            dst.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{dst}: cannot make the output folder ({exc.strerror or exc})") from None
    failed = 0
    for i, (s, d) in enumerate(pairs, 1):
        t0 = time.perf_counter()
        try:
            img = first if first is not None else read_image(s)
            sr = up(img, tile=a.tile, self_ensemble=a.self_ensemble)
            write_image(d, sr)
        except RealtimeSRError as exc:
            if len(pairs) == 1:
                raise
            failed += 1
            print(f"realtime-sr: skipped {s.name}: {exc}", file=sys.stderr)
            continue
        dt = time.perf_counter() - t0
        print(f"[{i}/{len(pairs)}] {s} {img.shape[1]}x{img.shape[0]} -> {d} {sr.shape[1]}x{sr.shape[0]} "
              f"({dt:.2f} s)", file=sys.stderr)
    if failed:
        print(f"realtime-sr: error: {failed} of {len(pairs)} images failed", file=sys.stderr)
        return 1
    return 0
