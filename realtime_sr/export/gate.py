"""The quality gate: a reduced-precision ONNX must keep PSNR on a test set within a tolerance of fp32.

PSNR is measured on Y by the literature's protocol (:mod:`realtime_sr.evaluate`), through
onnxruntime on CPU, for the fp32 graph and for the reduced one; the same ONNX files are what
TensorRT builds from. bf16 has no graph of its own: it is the fp32 graph under OpenVINO's bf16
hint, so it is measured there; int8 is measured through OpenVINO too where it is installed (its
int8 kernels round differently). Tolerances: 0.05 dB for fp16 and bf16, 0.15 dB for int8.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TOLERANCE_DB = {"fp32": 0.0, "fp16": 0.05, "bf16": 0.05, "int8": 0.15}


@dataclass(frozen=True)
class GateResult:
    precision: str
    psnr: float
    fp32_psnr: float
    tolerance: float

    @property
    def drop(self) -> float:
        return self.fp32_psnr - self.psnr

    @property
    def passed(self) -> bool:
        return self.drop <= self.tolerance + 1e-9

    def line(self) -> str:
        verdict = "pass" if self.passed else "FAIL"
        return (f"{self.precision}: PSNR {self.psnr:.3f} dB vs fp32 {self.fp32_psnr:.3f} dB "
                f"(drop {self.drop:+.3f} dB, limit {self.tolerance:.2f}) {verdict}")


def onnx_psnr(model, onnx_path: str | Path, pairs, *, precision: str = "fp32", fp32_path=None,
              keep_fp32=(), runtime: str = "onnxruntime") -> float:
    """Mean PSNR (Y) of ``model``'s colour handling with the network run from ``onnx_path``.

    fp16 on CPU: onnxruntime has no fp16 kernels here and would run the fp16 file in fp32 (only
    its weights rounded), so with ``fp32_path`` the gate runs
    :func:`~realtime_sr.export.quantize.fp16_emulation` instead: the same weights, and every
    tensor between layers rounded to fp16 (except ``keep_fp32`` nodes, as in the fp16 file).
    ``runtime="openvino"`` (always for bf16: ``onnx_path`` is then the fp32 graph) runs OpenVINO.
    """
    from ..evaluate import evaluate
    from ..runtime.ort_backend import OrtBackend
    from ..upscale import upscale_array

    if precision == "bf16" or runtime == "openvino":
        from ..runtime.ov_backend import OvBackend

        backend = OvBackend(onnx_path, precision=precision)
    elif precision == "fp16" and fp32_path is not None:
        from .quantize import fp16_emulation

        backend = OrtBackend(fp16_emulation(fp32_path, keep_fp32), precision="fp16-emulated", optimize=False)
    else:
        backend = OrtBackend(onnx_path, precision=precision)
    res = evaluate(pairs, lambda lr: upscale_array(model, backend, lr), model.scale, backend.name,
                   with_ssim=False)
    return res.psnr


def judge(precision: str, psnr: float, fp32_psnr: float) -> GateResult:
    return GateResult(precision, psnr, fp32_psnr, TOLERANCE_DB[precision])
