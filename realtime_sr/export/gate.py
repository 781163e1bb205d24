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


# What identifies an int8 graph made on the fly as the one a recorded gate measured: ``export
# --record`` writes these fields beside the gate, and :func:`is_gated_graph` compares them.
INT8_IDENTITY = ("export_version", "calibration_source", "frames", "strict", "float_convs", "fidelity_db")
INT8_FIDELITY_SLACK_DB = 0.5  # float rounding moves it by hundredths of a dB; a different calibration by dBs


def is_gated_graph(info: dict, gate: dict) -> bool:
    """Whether the int8 graph whose sidecar is ``info`` is the one the recorded ``gate`` measured:
    every :data:`INT8_IDENTITY` field equal, but the fidelity to fp32 on the probe frames, which
    must be within :data:`INT8_FIDELITY_SLACK_DB`."""
    def norm(key, value):
        return sorted(value or ()) if key == "float_convs" else bool(value) if key == "strict" else value

    exact = [k for k in INT8_IDENTITY if k != "fidelity_db"]
    return (all(norm(k, info.get(k)) == norm(k, gate.get(k)) for k in exact)
            and abs(float(info.get("fidelity_db", 0.0)) - float(gate.get("fidelity_db", -99.0)))
            <= INT8_FIDELITY_SLACK_DB)
