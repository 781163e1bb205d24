"""Training steps per second for each compute option, side by side in one interleaved run.

Options: fp32 and bf16 autocast, each NCHW and channels-last (bf16 only where the CPU has bf16
units), optionally torch.compile. Data: synthetic tensors already in memory (the step alone),
and the real DataLoader (1 worker) with clean PIL-bicubic patches and with the real-world
degradations, so it shows whether the data starves the step; with ``--bank DIR`` (an x2, 32-pixel
bank of realtime_sr/train/bank.py) also the pre-degraded pairs read in the training process.

    python benchmarks/train_speed.py --out benchmarks/results/train_speed_<machine>_<date>.md
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from realtime_sr.archs import build  # noqa: E402
from realtime_sr.train.compute import Compute, cpu_has_bf16  # noqa: E402
from realtime_sr.train.data import PatchDataset, StepSampler, find_training_images  # noqa: E402
from realtime_sr.train.degrade import DegradeConfig  # noqa: E402

NETS = {
    "fine x2 (32x8)": ("srgan_generator", dict(scale=2, in_channels=1, num_features=32, num_blocks=8), 16, 32),
    "coarse x2": ("coarse", dict(scale=2, in_channels=1, d=48, s=16, m=4, act="relu"), 16, 32),
}


def loader(files, scale, patch, batch, degrade, steps):
    ds = PatchDataset(files, scale=scale, lr_patch=patch, degrade=degrade)
    for i in range(len(files)):  # decoded images are cached: the worker inherits them (steady state)
        ds._image(i)
    return iter(torch.utils.data.DataLoader(ds, batch_size=batch, sampler=StepSampler(0, steps + 4, batch),
                                            num_workers=1, prefetch_factor=4))


def bank_loader(path, batch, steps):
    from realtime_sr.train.bank import BankDataset

    return iter(torch.utils.data.DataLoader(BankDataset(path), batch_size=batch,
                                            sampler=StepSampler(0, steps + 4, batch), num_workers=0))


def run(net, comp: Compute, batches, steps: int, compiled: bool) -> float:
    """Steps per second over ``steps`` steps (after 2 warm-up steps) of L1 + Adam."""
    if comp.channels_last:
        net = net.to(memory_format=torch.channels_last)
    fn = torch.compile(net) if compiled else net
    opt = torch.optim.Adam(net.parameters(), lr=1e-5)
    for i in range(steps + 2):
        if i == 2:
            t0 = time.perf_counter()
        lr, hr = next(batches)
        lr, hr = comp.layout(lr), comp.layout(hr)
        with comp.autocast():
            loss = (fn(lr).float() - hr).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow to warm up)")
    ap.add_argument("--data", nargs="*", default=[str(ROOT.parent / "shared/data/images/T91")])
    ap.add_argument("--bank", help="an x2 32-pixel training bank: adds the 'bank' data rows")
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    files = find_training_images(a.data)
    precs = ["fp32"] + (["bf16"] if cpu_has_bf16() else [])
    options = [(p, cl, cp) for p in precs for cl in (False, True) for cp in ((False, True) if a.compile else (False,))]
    feeds = ("synthetic", "loader clean", "loader degraded") + (("bank degraded",) if a.bank else ())
    results: dict = {}
    warm = build("coarse", **NETS["coarse x2"][1]).train()  # thread pools and allocator warmed first
    run(warm, Compute("cpu", "fp32", False, ""), itertools.repeat((torch.rand(16, 1, 32, 32), torch.rand(16, 1, 64, 64))), 20, False)
    for r in range(a.rounds):
        for name, (arch, hp, batch, patch) in NETS.items():
            s = hp["scale"]
            combos = list(itertools.product(options, feeds))
            for (p, cl, cp), feed in (combos if r % 2 == 0 else combos[::-1]):  # alternate the order
                if feed != "synthetic" and (p, cl, cp) != max(options, key=lambda o: (o[0] == "bf16", o[1])):
                    continue  # the data feeds are timed with the fastest-kind option only
                torch.manual_seed(0)
                net = build(arch, **hp).train()
                if feed == "synthetic":
                    g = torch.Generator().manual_seed(0)
                    fixed = (torch.rand(batch, 1, patch, patch, generator=g),
                             torch.rand(batch, 1, patch * s, patch * s, generator=g))
                    batches = itertools.repeat(fixed)
                elif feed == "bank degraded":
                    batches = bank_loader(a.bank, batch, a.steps + 2)
                else:
                    batches = loader(files, s, patch, batch, DegradeConfig() if feed.endswith("degraded") else None,
                                     a.steps + 2)
                comp = Compute("cpu", p, cl, "benchmark")
                sps = run(net, comp, batches, a.steps, cp)
                results.setdefault((name, p, cl, cp, feed), []).append(sps)
                print(f"{name:16s} {p} cl={cl:d} compile={cp:d} {feed:16s} {sps:6.2f} steps/s", file=sys.stderr)
    lines = ["| network | precision | channels-last | compile | data | steps/s | vs fp32 NCHW |", "|---|---|---|---|---|---:|---:|"]
    for (name, p, cl, cp, feed), v in results.items():
        best = max(v)
        ref = max(results[(name, "fp32", False, False, "synthetic")])
        lines.append(f"| {name} | {p} | {'yes' if cl else 'no'} | {'yes' if cp else 'no'} | {feed} | {best:.2f} | {best / ref:.2f}x |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        cmd = "python benchmarks/train_speed.py " + " ".join(sys.argv[1:])
        Path(a.out).write_text(
            f"# Training speed by compute option\n\n`{cmd}`\n\n{datetime.date.today()}, {platform.processor() or platform.machine()}"
            f" ({'bf16 units' if cpu_has_bf16() else 'no bf16 units'}), {a.threads} threads, other training runs paused. "
            f"Batch 16 of 32x32 LR patches (x2); best of {a.rounds} interleaved rounds (order alternating) of {a.steps} steps; "
            f"'loader' rows read T91 through the DataLoader with 1 worker"
            + (f"; 'bank' rows read {a.bank} in the training process" if a.bank else "") + f".\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
