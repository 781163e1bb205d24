"""A bank of pre-degraded training pairs: the real-world degradations made once, trained on many times.

On two cores the degradations (a codec round trip per group of four samples) cost more than a
training step of the fine network, so one DataLoader worker starves it (docs/real.md: 11.4
steps/s against 21.6 with the data out of the loop). A bank moves that cost out of the loop: the
pairs of a recipe's ``[degrade]`` table are made once, in parallel, and training then draws from
them with a random dihedral transform (the 8 flips and rotations, which keep a codec's block grid
on the grid), using every core for the step.

A bank is a folder: ``lr.npy`` (N, p, p), or (N, F, p, p) for samples of F frames, and ``hr.npy``
(N, s*p, s*p), uint8 luma (BT.601 studio, as the evaluation protocol; the LR is the decoded Y
plane the video pipeline feeds the network), and ``bank.json`` with the scale, patch size, frames,
seed and degradation table it was made with. Sample ``i`` of the bank is sample ``i`` of the
recipe's :class:`~.data.PatchDataset`, so a bank is a pure function of (recipe, seed, count).

    python -m realtime_sr.train.bank --recipe fine_x2_real --count 200000 --out runs/bank_x2
    realtime-sr train --recipe fine_x2_real --data runs/bank_x2 ...
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import InputError

CHUNK = 256  # samples per task (a multiple of data.GROUP, so no codec group is split)


def is_bank(path: str | Path) -> bool:
    return (Path(path) / "bank.json").is_file()


def read_info(path: str | Path) -> dict:
    path = Path(path)
    try:
        info = json.loads((path / "bank.json").read_text())
        n, p = int(info["count"]), int(info["lr_patch"])
        s = int(info["scale"])
        f = int(info.get("frames", 1))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a readable training bank ({exc})") from None
    for name, shape in (("lr.npy", (n, *_lr_shape(p, f))), ("hr.npy", (n, s * p, s * p))):
        try:
            arr = np.load(path / name, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise InputError(f"{path / name}: not readable ({exc})") from None
        if arr.dtype != np.uint8 or arr.shape != shape:
            raise InputError(f"{path / name}: expected uint8 {shape}, got {arr.dtype} {arr.shape}")
    return info


class BankDataset:
    """(lr, hr) float32 pairs (F, p, p) and (1, s*p, s*p) in [0, 1] from a bank; sample ``index``
    is bank entry and dihedral transform drawn from (seed, rank, index), so a resumed run sees
    exactly what an uninterrupted one would.

    F is ``frames``: 1, or the bank's own frame count (a bank of temporal samples, made by a
    ``[degrade]`` table with ``temporal``); ``frames=1`` on such a bank gives its middle frame,
    the one the HR belongs to, so a single-frame network trains on exactly the same pairs."""

    def __init__(self, path: str | Path, *, seed: int = 0, rank: int = 0, length: int = 10**9,
                 frames: int = 1) -> None:
        self.path = Path(path)
        self.info = read_info(self.path)
        self.seed, self.rank, self.length = seed, rank, length
        have = int(self.info.get("frames", 1))
        if frames not in (1, have):
            raise InputError(f"{self.path}: a bank of {have}-frame samples, but the network takes {frames} frames")
        self.frames, self._have = frames, have
        self._lr = self._hr = None  # opened lazily, in each DataLoader worker

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        import torch

        if self._lr is None:
            self._lr = np.load(self.path / "lr.npy", mmap_mode="r")
            self._hr = np.load(self.path / "hr.npy", mmap_mode="r")
        rng = np.random.default_rng([self.seed, self.rank, 1 << 20, index])
        i = int(rng.integers(len(self._lr)))
        k, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
        lr = self._lr[i] if self.frames == self._have else self._lr[i, self._have // 2]
        out = []
        for arr in (lr, self._hr[i]):
            a = np.rot90(arr, k, axes=(-2, -1))
            if flip:
                a = a[..., ::-1]
            a = np.ascontiguousarray(a, dtype=np.float32) / 255.0
            out.append(torch.from_numpy(a if a.ndim == 3 else a[None]))
        return out[0], out[1]


def sample_frames(degrade: dict | None) -> int:
    """Frames per sample of a recipe's [degrade] table: 2 * temporal + 1 (1 without temporal neighbours)."""
    return 2 * int((degrade or {}).get("temporal", 0)) + 1


def _lr_shape(p: int, frames: int) -> tuple[int, ...]:
    """One bank entry's LR: (p, p), or (frames, p, p) for samples of several frames."""
    return (frames, p, p) if frames > 1 else (p, p)


_DS: dict = {}  # one dataset per worker process (it caches the decoded images)


def _make_chunk(args):
    cfg, start, stop = args
    ds = _DS.get(cfg.name)
    if ds is None:
        import torch

        from .data import PatchDataset, find_training_images
        from .degrade import config_from

        torch.set_num_threads(1)
        ds = _DS[cfg.name] = PatchDataset(
            find_training_images(list(cfg.train_dirs)), scale=cfg.scale, lr_patch=cfg.lr_patch, colour="y",
            scale_aug=tuple(cfg.scale_aug), seed=cfg.seed, degrade=config_from(cfg.degrade))
    lr = np.empty((stop - start, *_lr_shape(cfg.lr_patch, sample_frames(cfg.degrade))), np.uint8)
    hr = np.empty((stop - start, cfg.lr_patch * cfg.scale, cfg.lr_patch * cfg.scale), np.uint8)
    for j, idx in enumerate(range(start, stop)):
        lr_t, hr_t = ds[idx]
        lr[j] = np.clip(np.rint(lr_t.numpy().reshape(lr.shape[1:]) * 255.0), 0, 255)
        hr[j] = np.clip(np.rint(hr_t[0].numpy() * 255.0), 0, 255)
    return start, lr, hr


def make_bank(cfg, count: int, out: str | Path, *, procs: int = 0, deadline: float | None = None,
              log=print) -> Path:
    """Make ``count`` pairs of the recipe ``cfg`` into the bank folder ``out`` (written beside it
    and renamed into place; a failed or interrupted run removes what it wrote).

    With ``deadline`` (a ``time.time()``), making stops there and the bank holds the pairs made
    by then: a prefix of the same samples, so still sample ``i`` of the dataset is entry ``i``
    (at least one chunk is always made)."""
    import multiprocessing as mp

    if cfg.colour != "y":
        raise InputError("a training bank holds luma pairs; the recipe must have colour = 'y'")
    count = max(CHUNK, count - count % CHUNK)
    out = Path(out)
    if out.exists():
        raise InputError(f"{out}: already exists; choose another name or remove it")
    part = out.with_name(out.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    try:
        p, s = cfg.lr_patch, cfg.scale
        f = sample_frames(cfg.degrade)
        lr = np.lib.format.open_memmap(part / "lr.npy", "w+", np.uint8, (count, *_lr_shape(p, f)))
        hr = np.lib.format.open_memmap(part / "hr.npy", "w+", np.uint8, (count, s * p, s * p))
        procs = procs or os.cpu_count() or 1
        tasks = [(cfg, a, min(a + CHUNK, count)) for a in range(0, count, CHUNK)]
        t0, done = time.perf_counter(), 0
        with mp.get_context("spawn").Pool(procs) as pool:
            # in order when time-boxed, so that what is made by the deadline is a prefix
            results = pool.imap(_make_chunk, tasks) if deadline else pool.imap_unordered(_make_chunk, tasks)
            for start, lr_c, hr_c in results:
                lr[start:start + len(lr_c)] = lr_c
                hr[start:start + len(hr_c)] = hr_c
                done += len(lr_c)
                if done % (CHUNK * 40) == 0 or done == count:
                    rate = done / (time.perf_counter() - t0)
                    log(f"bank: {done}/{count} pairs, {rate:.0f}/s")
                if deadline and time.time() >= deadline and done < count:
                    log(f"bank: stopped at the deadline with {done} of {count} pairs")
                    pool.terminate()
                    break
        lr.flush()
        hr.flush()
        if done < count:  # time-boxed: keep the prefix that was made
            for name, arr in (("lr.npy", lr), ("hr.npy", hr)):
                np.save(part / f"{name}.tmp.npy", arr[:done])
            del lr, hr
            for name in ("lr.npy", "hr.npy"):
                os.replace(part / f"{name}.tmp.npy", part / name)
            count = done
        else:
            del lr, hr
        info = {"count": count, "scale": s, "lr_patch": p, "frames": f, "seed": cfg.seed, "recipe": cfg.name,
                "scale_aug": list(cfg.scale_aug), "data": list(cfg.train_dirs),
                "degrade": cfg.degrade or "none (clean PIL bicubic LR)",
                "time_s": round(time.perf_counter() - t0, 1), "procs": procs}
        (part / "bank.json").write_text(json.dumps(info, indent=1) + "\n")
        os.replace(part, out)
    except BaseException:  # a failed or interrupted run leaves no half-made bank
        shutil.rmtree(part, ignore_errors=True)
        raise
    return out


def main(argv=None) -> int:
    from .config import load_recipe, override

    ap = argparse.ArgumentParser(prog="python -m realtime_sr.train.bank", description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", required=True, help="recipe whose data, patch size and [degrade] table to use")
    ap.add_argument("--count", type=int, default=200_000, help="pairs to make (rounded down to a multiple of 256)")
    ap.add_argument("--out", required=True, help="bank folder to write (must not exist)")
    ap.add_argument("--procs", type=int, default=0, help="processes (default: one per core)")
    ap.add_argument("--data", action="append", help="training image folder (default: the recipe's)")
    ap.add_argument("--seed", type=int, help="sample seed (default: the recipe's)")
    a = ap.parse_args(argv)
    try:
        cfg = override(load_recipe(a.recipe), train_dirs=tuple(a.data) if a.data else None, seed=a.seed)
        path = make_bank(cfg, a.count, a.out, procs=a.procs, log=lambda m: print(m, file=sys.stderr, flush=True))
    except (InputError, ValueError) as exc:
        print(f"realtime-sr bank: error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
