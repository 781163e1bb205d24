"""What this CPU can do for inference, and which CPU backend and precision pay on it.

The rule ``auto`` follows on a CPU, from measurements (benchmarks/results/cpu_backends_*):

* OpenVINO is picked where it is installed **and** the CPU has bf16 units (AVX-512 BF16 or AMX):
  that is the class of CPU it was measured faster on (fp32, bf16 and int8 alike). On other CPUs
  onnxruntime fp32, the path measured before OpenVINO existed here, stays the choice wherever
  OpenVINO was not measured faster (see fp32 on AVX2 below), so ``auto`` never picks something
  slower than it was.
* int8 asked explicitly: OpenVINO where it is installed and the CPU has int8 dot-product units
  (VNNI or AMX-INT8) or, without them, AVX2: on an AVX2-only AMD EPYC its int8 kernels ran
  coarse, fine and routed 1.4x, 2.2-2.4x and 1.5-1.6x faster than onnxruntime fp32 (and about
  twice onnxruntime int8; cpu_amd-epyc-2c_2026-12-02_x2_640x360*). onnxruntime's symmetric-int8
  path is slower than its fp32 on every CPU measured, so it is left only where neither holds.
* fp32 on an x86 CPU with AVX2 but no bf16 units (that AMD EPYC): one frame at a time, OpenVINO
  was 0.99-1.09x onnxruntime on coarse and 1.15-1.22x on fine; end to end in ``realtime-sr video``
  (two inference streams) 1.35x on coarse and 1.27x on fine, but 0.82x routed (its tile batches run
  one at a time) (video_e2e_amd-epyc-2c_2026-12-02_x2_openvino_fp32*). So there ``auto`` takes
  OpenVINO for whole frames and keeps onnxruntime for routing.
* The default precision (``auto``) on OpenVINO is bf16 where the CPU has the units and the
  model's bf16 gate did not fail, else fp32; on every other backend it is fp32.
* The real-time commands (``video``, ``preview``; ``realtime=True`` in ``make_backend``) go one step
  further on CPUs without AMX: there ``auto`` takes int8 on OpenVINO, for a model whose int8 graph
  passed its gate (:func:`int8_default`; ``runtime.gated_int8``). End to end, 2 cores, chaplin.mp4
  x2: on an AMD EPYC with AVX-512 BF16 and VNNI but no AMX (Zen 4) int8 ran coarse, routed and fine
  1.19x, 1.27x and 1.67x faster than bf16 (video_e2e_amd-epyc-zen4-2c_2026-12-04*); on an AVX2-only
  AMD EPYC (Zen 3) 1.3x, 1.5x and 1.9x faster than the fp32 default
  (video_e2e_amd-epyc-2c_2026-12-03_*). With AMX (Intel Xeon) bf16 ran within 0.8-1.3x of int8
  one frame at a time and loses less (cpu_intel-xeon-processor-2c_2026-12-01_*), so bf16 stays.
  ``image``, ``eval`` and ``bench`` keep bf16/fp32: they are where quality is measured.

Features come from the kernel's flags (``/proc/cpuinfo``) and, for bf16, from OpenVINO's own
``OPTIMIZATION_CAPABILITIES`` when it is installed; both must agree.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass

BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # x86; "bf16": ARM's FEAT_BF16
INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})  # x86: int8 dot-product units
AMX_FLAGS = frozenset({"amx_bf16", "amx_int8", "amx_tile"})  # x86: Intel's matrix units


@dataclass(frozen=True)
class CpuFeatures:
    bf16: bool  # bf16 dot-product units that OpenVINO (if installed) also reports
    int8: bool  # int8 dot-product units (VNNI, AMX-INT8)
    flags: frozenset = frozenset()

    def describe(self) -> str:
        have = [n for n, ok in (("bf16", self.bf16), ("int8", self.int8)) if ok]
        return f"CPU with {' and '.join(have)} units" if have else "CPU without bf16 or int8 units"


def read_flags(path: str = "/proc/cpuinfo") -> frozenset:
    """The feature flags of the first CPU listed (empty where the file is not there)."""
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def cpu_model(path: str = "/proc/cpuinfo") -> str:
    """The CPU's model name as the kernel reports it (else the platform's), e.g. 'Intel(R) Xeon(R) Processor'."""
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def openvino_capabilities() -> frozenset:
    """OpenVINO's OPTIMIZATION_CAPABILITIES of the CPU ('FP32', 'BF16', 'INT8', ...); empty without it."""
    if not openvino_available():
        return frozenset()
    from .ov_backend import core

    try:
        return frozenset(core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception:  # noqa: BLE001 - an OpenVINO without a CPU plugin: it cannot run here at all
        return frozenset()


@functools.lru_cache(maxsize=1)
def cpu_features() -> CpuFeatures:
    """This machine's features (cached; tests replace this function to fake another CPU)."""
    flags = read_flags()
    bf16 = bool(BF16_FLAGS & flags)
    if bf16 and openvino_available():
        bf16 = "BF16" in openvino_capabilities()
    return CpuFeatures(bf16=bf16, int8=bool(INT8_FLAGS & flags), flags=flags)


def cpu_threads() -> int:
    """The cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def pick_cpu(precision: str, feats: CpuFeatures | None = None, *, routed: bool = False) -> tuple[str, str]:
    """(backend, reason) for a CPU run at ``precision`` (``auto`` included); see the module docstring.

    ``routed``: the networks run inside routing (coarse frames plus fine tile batches), which
    measured differently from whole frames on a CPU without bf16 units."""
    feats = feats or cpu_features()
    if not openvino_available():
        return "onnxruntime", "OpenVINO not installed"
    if precision == "int8" and (feats.int8 or "avx2" in feats.flags):
        why = "" if feats.int8 else " (AVX2: OpenVINO's int8 measured faster)"
        return "openvino", f"int8 on a {feats.describe()}{why}"
    if precision in ("auto", "fp32", "bf16") and feats.bf16:
        return "openvino", feats.describe()
    if precision == "fp16":
        return "onnxruntime", "fp16 graphs run on onnxruntime on a CPU"
    if precision in ("auto", "fp32") and "avx2" in feats.flags:
        if not routed:
            return "openvino", f"fp32 on an AVX2 {feats.describe()}: OpenVINO measured faster on whole frames"
        return "onnxruntime", f"routed fp32 on an AVX2 {feats.describe()}: onnxruntime measured faster"
    return "onnxruntime", f"OpenVINO not measured faster on a {feats.describe()}"


def default_precision(backend: str, feats: CpuFeatures | None = None, bf16_gate: dict | None = None) -> tuple[str, str]:
    """(precision, reason) that ``--precision auto`` means on ``backend``."""
    if backend != "openvino":
        return "fp32", f"the {backend} default"
    feats = feats or cpu_features()
    if not feats.bf16:
        return "fp32", "no bf16 units on this CPU"
    if bf16_gate and bf16_gate.get("passed") is False:
        return "fp32", "bf16 failed this model's quality gate"
    passed = bool(bf16_gate and bf16_gate.get("passed"))
    return "bf16", "bf16 units on this CPU" + (", bf16 gate passed" if passed else "") + (
        " at release" if passed and bf16_gate.get("release") else "")


def int8_default(feats: CpuFeatures | None = None) -> tuple[bool, str]:
    """(whether a gated int8 graph is what ``--precision auto`` takes in the real-time commands on
    this CPU, why); see the module docstring."""
    feats = feats or cpu_features()
    if not openvino_available():
        return False, "OpenVINO not installed"
    if AMX_FLAGS & feats.flags:
        return False, "AMX: bf16 measured within 0.8-1.3x of int8 here, and loses less"
    if feats.int8:
        return True, ("int8 units without AMX: OpenVINO int8 measured fastest end to end, 1.2-1.7x bf16 on an "
                      "AVX-512 BF16/VNNI CPU")
    if "avx2" in feats.flags:
        return True, "AVX2: OpenVINO int8 measured 1.3-1.9x faster than fp32 end to end"
    return False, f"int8 not measured faster on a {feats.describe()}"


def machine_tag() -> str:
    """A short file-name tag for this machine, by model and by the units that decide speed here:
    e.g. ``amd-epyc-vnni-bf16-2c`` (an AMD EPYC with AVX-512 VNNI and BF16), ``amd-epyc-avx2-2c``,
    ``intel-xeon-processor-amx-2c``. Benchmarks name their results with it, so two CPUs that
    report the same model name (AMD's KVM guests say only "AMD EPYC") do not share a name."""
    import re

    flags = cpu_features().flags
    name = re.sub(r"[^a-z0-9]+", "-", cpu_model().replace("(R)", "").replace("(TM)", "").lower()).strip("-")
    units = ("amx" if AMX_FLAGS & flags else
             "vnni-bf16" if {"avx512_vnni", "avx512_bf16"} <= flags else
             "vnni" if INT8_FLAGS & flags else "avx2" if "avx2" in flags else "")
    return "-".join(p for p in (name or "cpu", units, f"{cpu_threads()}c") if p)
