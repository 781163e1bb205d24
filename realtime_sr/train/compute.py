"""Compute precision and memory layout for training, chosen by what the machine has and what pays.

* CUDA: AMP, bf16 where the GPU supports it (no loss scaler), else fp16 with a scaler.
* CPU: bf16 autocast only where the CPU has bf16 units (AVX-512 BF16 or AMX); whether it and
  channels-last pay is *measured*: a few timed steps of each candidate on a copy of the
  network, and the fastest wins (bf16 must be at least 10% faster to be taken, since it rounds).
  A CPU without the units trains in fp32, as before, and only the layout is measured there
  (channels-last taken where it is at least 5% faster: on an AVX2-only AMD EPYC it was 1.23x for
  the coarse network and 0.92x for the fine one, benchmarks/results/train_speed_amd-epyc-*).

``--precision`` (the recipe's ``precision``) overrides: ``auto`` | ``fp32`` | ``bf16`` | ``fp16``.
The choice is resolved once into a :class:`Compute` (dtype, autocast context, layout) and
recorded in the checkpoint and the weights' metadata.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass

import torch

from ..errors import UsageError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_has_bf16(flags: set[str] | frozenset | None = None) -> bool:
    """bf16 units in the kernel's CPU flags (the flags runtime/cpu.py reads for inference)."""
    from ..runtime.cpu import BF16_FLAGS, read_flags

    return bool(BF16_FLAGS & (read_flags() if flags is None else set(flags)))


@dataclass(frozen=True)
class Compute:
    device: str                 # cpu | cuda
    precision: str              # fp32 | bf16 | fp16
    channels_last: bool
    reason: str

    @property
    def dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    def autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device, dtype=self.dtype)

    def scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(self.device, enabled=self.device == "cuda" and self.precision == "fp16")

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def describe(self) -> str:
        return f"{self.precision}{' channels-last' if self.channels_last else ''} on {self.device} ({self.reason})"


def _time_steps(net: torch.nn.Module, lr: torch.Tensor, hr: torch.Tensor, c: Compute, steps: int = 3) -> float:
    """Seconds per training step (forward, L1, backward, Adam) of a copy of ``net`` under ``c``."""
    net = copy.deepcopy(net).train()
    if c.channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-5)
    x, y = c.layout(lr), c.layout(hr)
    best = float("inf")
    for i in range(steps + 1):  # the first is a warm-up
        t = time.perf_counter()
        with c.autocast():
            loss = (net(x).float() - y).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:
            best = min(best, time.perf_counter() - t)
    return best


def resolve(precision: str, device: torch.device, net: torch.nn.Module | None = None,
            sample: tuple[torch.Tensor, torch.Tensor] | None = None, *, channels_last: bool | None = None,
            flags: set[str] | None = None, log=None) -> Compute:
    """Turn the ``precision`` setting into a Compute for ``device``.

    ``net`` and ``sample`` (an LR and HR batch) are used to measure the CPU candidates under
    ``auto``; without them ``auto`` on a CPU with bf16 units takes bf16 channels-last.
    ``channels_last`` None means: measured (auto) or the device's usual best (given precision).
    """
    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    dev = device.type
    if dev == "cuda":
        if precision == "auto":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            reason = "auto: AMP on CUDA"
        else:
            reason = "asked"
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise UsageError("--precision bf16 asked, but this GPU has no bf16 support")
        return Compute("cuda", precision, bool(channels_last), reason)
    if precision == "fp16":
        raise UsageError("--precision fp16 is for CUDA; on a CPU use bf16 (where the CPU has it) or fp32")
    has_bf16 = cpu_has_bf16(flags)
    if precision == "bf16" and not has_bf16:
        raise UsageError("--precision bf16 asked, but this CPU has no bf16 units (AVX-512 BF16 or AMX); use fp32")
    if precision != "auto":
        return Compute("cpu", precision, precision == "bf16" if channels_last is None else channels_last, "asked")
    if not has_bf16 and (net is None or sample is None or channels_last is not None):
        return Compute("cpu", "fp32", bool(channels_last), "auto: no bf16 units on this CPU")
    if net is None or sample is None:
        return Compute("cpu", "bf16", True if channels_last is None else channels_last, "auto: CPU has bf16 units")
    layouts = (False, True) if channels_last is None else (channels_last,)
    timed = {}
    for prec in ("fp32", "bf16") if has_bf16 else ("fp32",):  # without the units: only the layout
        for cl in layouts:
            c = Compute("cpu", prec, cl, "")
            timed[(prec, cl)] = _time_steps(net, *sample, c)
    summary = ", ".join(f"{p}{'+cl' if cl else ''} {t * 1e3:.0f} ms" for (p, cl), t in timed.items())
    if log:
        log(f"training step, measured: {summary}")
    if not has_bf16:
        nchw, cl = timed[("fp32", False)], timed[("fp32", True)]
        if cl * 1.05 < nchw:
            return Compute("cpu", "fp32", True, f"auto: no bf16 units; channels-last measured {nchw / cl:.2f}x")
        return Compute("cpu", "fp32", False, "auto: no bf16 units; channels-last measured no faster")
    best32 = min((t, cl) for (p, cl), t in timed.items() if p == "fp32")
    best16 = min((t, cl) for (p, cl), t in timed.items() if p == "bf16")
    if best16[0] * 1.1 < best32[0]:
        return Compute("cpu", "bf16", best16[1], f"auto: measured {best32[0] / best16[0]:.2f}x over fp32")
    return Compute("cpu", "fp32", best32[1], "auto: bf16 measured no faster")
