"""Inference backends behind one protocol.

A backend runs one network on float32 NCHW arrays: ``backend(x) -> y`` with ``x`` of shape
(N, C, h, w) and ``y`` of shape (N, C, s*h, s*w), and has a ``name``. :func:`make_backend`
builds one by name:

* ``torch``: the reference; CPU or CUDA, fp32 or fp16 (CUDA), channels-last, optional torch.compile.
* ``onnxruntime``: CPU; fp32, fp16 or int8 ONNX graphs, exported on the fly into the cache.
* ``openvino``: CPU; the same ONNX graphs, fp32, bf16 (a compile-time hint on the fp32 graph)
  or int8 (the Q/DQ graph on OpenVINO's int8 kernels).
* ``tensorrt``: CUDA; an engine built from the same ONNX graphs (optional extra).
* ``auto``: TensorRT if installed and a GPU is present, else torch on CUDA, else on a CPU
  OpenVINO where it pays (:mod:`.cpu`), else onnxruntime; it says which it picked (one line
  through ``log``, stderr by default).

Precision ``auto`` (the command line's default) is bf16 on OpenVINO where the CPU has bf16
units and the model's bf16 gate has not failed, and fp32 everywhere else; in the real-time
commands (``realtime=True``: ``video``, ``preview``) on a CPU without AMX it is int8 on OpenVINO
for a model whose int8 graph passed its gate (:func:`gated_int8`, :func:`.cpu.int8_default`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

from ..errors import BackendError, UsageError

if TYPE_CHECKING:  # the command line imports the tuples below for --help: keep numpy out of it
    import numpy as np


class Backend(Protocol):
    name: str

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


BACKENDS = ("auto", "torch", "onnxruntime", "openvino", "tensorrt")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")


def _stderr(msg: str) -> None:
    print(f"realtime-sr: {msg}", file=sys.stderr)


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return bool(torch.cuda.is_available())


def tensorrt_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorrt") is not None


def pick_backend(*, device: str | None = "auto", precision: str = "fp32",
                 routed: bool = False) -> tuple[str, str, str]:
    """(backend, device, reason) that ``auto`` resolves to on this machine (``routed``: for a
    network run inside routing)."""
    from .cpu import pick_cpu

    if device == "cpu":
        be, why = pick_cpu(precision, routed=routed)
        return be, "cpu", f"--device cpu; {why}"
    if cuda_available():
        if tensorrt_available() and precision != "bf16":
            return "tensorrt", "cuda", "TensorRT and a CUDA GPU found"
        if precision != "int8":
            return "torch", "cuda", ("bf16 runs on torch on a GPU" if precision == "bf16"
                                     else "CUDA GPU found, TensorRT not installed")
        be, why = pick_cpu(precision, routed=routed)
        return be, "cpu", f"int8 needs TensorRT on a GPU, which is not installed; {why}"
    if device == "cuda":
        raise BackendError("--device cuda asked, but torch sees no CUDA device")
    be, why = pick_cpu(precision, routed=routed)
    return be, "cpu", f"no CUDA device; {why}"


def make_backend(model, *, backend: str = "auto", device: str | None = "auto", precision: str = "fp32",
                 calib=None, tile_batch: tuple[int, int] | None = None, compile: bool = False,
                 streams: int = 1, routed: bool = False, realtime: bool = False,
                 log: Callable[[str], None] | None = _stderr) -> Backend:
    """Build the backend that runs ``model`` (a :class:`~realtime_sr.models.Model`).

    ``precision``: one of :data:`PRECISIONS`; ``auto`` is resolved per backend (module docstring).
    ``calib``: calibration source for an int8/fp16 ONNX made on the fly (folders, or RGB uint8
    frames such as a video's first frames); see :mod:`realtime_sr.export.artifacts`.
    ``tile_batch``: (K, T) makes the TensorRT fine engine static, K tiles of T x T LR pixels
    (context included); other backends ignore it (on OpenVINO a static tile batch measured no
    faster than routing's merged rectangles: benchmarks/results/openvino_routed_tiles_*).
    ``streams``: OpenVINO only, that many frames at once (the cores shared among them; the
    backend's ``streams`` says what it got, and a caller runs that many threads on it: the video
    pipeline); other backends ignore it. ``routed``: the model runs inside routing, which ``auto``
    weighs on some CPUs (runtime/cpu.py). ``realtime``: a real-time command (video, preview), where
    precision ``auto`` may take a gated int8 graph (:func:`gated_int8`). ``log``: where progress and
    the ``auto`` choice go (None: silent).
    """
    say = log or (lambda m: None)
    device = device or "auto"
    if backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if device not in DEVICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICES)}, not {device!r}")
    if precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    auto = backend == "auto"
    if auto:
        backend, device, why = pick_backend(device=device, precision=precision, routed=routed)
    int8 = None  # (artifact, reason): the gated int8 graph precision auto takes here
    if (precision == "auto" and realtime and device in ("auto", "cpu") and calib is None
            and (backend == "openvino" or auto and backend == "onnxruntime")):
        int8 = gated_int8(model, say)
        if int8 is not None:
            if backend != "openvino":
                why = f"a gated int8 graph: {int8[1]}"
            backend, precision = "openvino", "int8"
    if auto:
        say(f"backend auto -> {backend} on {device} ({why})")
    if backend == "openvino":
        return _openvino(model, device, precision, calib, say, auto=auto, streams=streams, int8=int8)
    if precision == "auto":
        precision = "fp32"
    if precision == "bf16" and backend in ("onnxruntime", "tensorrt"):
        raise UsageError(f"bf16 does not run on {backend}: use --backend openvino on a CPU with bf16 units, "
                         "or --backend torch on a CUDA GPU")
    if backend == "torch":
        from .torch_backend import TorchBackend

        if precision == "int8":
            raise UsageError("the torch backend runs fp32, fp16 or bf16; int8 runs on openvino, onnxruntime or tensorrt")
        dev = ("cuda" if cuda_available() else "cpu") if device == "auto" else device
        return TorchBackend(model.net, device=dev, precision=precision, compile=compile)
    if backend == "onnxruntime":
        if device == "cuda":
            raise UsageError("the onnxruntime backend runs on CPU here; use --backend tensorrt or torch for CUDA")
        from .ort_backend import OrtBackend

        art = _artifact(model, precision, calib, say, torch_fallback=auto and precision == "fp32")
        if art is None:
            from .torch_backend import TorchBackend

            return TorchBackend(model.net, device="cpu", precision="fp32")
        return OrtBackend(art.path, precision=precision)
    # tensorrt
    if device == "cpu":
        raise UsageError("the tensorrt backend needs --device cuda (or auto)")
    from .trt_backend import TrtBackend

    return TrtBackend.for_model(model, precision=precision, calib=calib, tile_batch=tile_batch, log=say)


def _artifact(model, precision: str, calib, say, *, torch_fallback: bool = False):
    """The ONNX artifact for ``model`` at ``precision`` (None: no export tools, fall back to torch)."""
    from ..export.artifacts import ensure_onnx

    try:
        art = ensure_onnx(model, precision, calib=calib, log=say)
    except BackendError as exc:
        if not torch_fallback:
            raise
        say(f"{exc}; using torch on cpu instead")
        return None
    if precision not in ("fp32", "bf16") and "gate" not in art.info:
        from ..export.gate import is_gated_graph

        rel = release_gate(art.info.get("weights_sha256"), precision) if precision == "int8" else None
        if rel and is_gated_graph(art.info, rel):
            verdict = "passed" if rel.get("passed") else "FAILED"
            say(f"{model.name} {precision}: the graph gated at release (Set14 drop {rel['drop_db']:.3f} dB, "
                f"limit {rel['tolerance_db']:.2f}: {verdict})")
        else:
            say(f"note: this {precision} ONNX was made on the fly and has not been quality-gated; "
                f"`realtime-sr export --precision {precision}` measures it on Set14")
    return art


RELEASE_GATES = Path(__file__).resolve().parents[1] / "weights" / "gates.json"


def release_gate(weights_sha256: str | None, precision: str) -> dict | None:
    """The gate recorded for shipped weights (``realtime-sr export --record``, realtime_sr/weights/gates.json):
    the shipped models are gated once, on Set14, so a machine without the test set need not."""
    import json

    try:
        rec = json.loads(RELEASE_GATES.read_text())
    except (OSError, ValueError):
        return None
    entry = rec.get(weights_sha256 or "", {}).get(precision)
    return dict(entry, release=True) if isinstance(entry, dict) else None


def gated_int8(model, say) -> tuple[object, str] | None:
    """(int8 artifact, reason) where precision ``auto`` in a real-time command takes int8 for
    ``model`` on this CPU, else None (with a note when a gate exists but cannot be used).

    It takes int8 only where it measured faster (:func:`.cpu.int8_default`) and the int8 graph in
    hand passed a quality gate: its own (``realtime-sr export`` on this machine), or the release
    gate in ``gates.json`` when the graph is the one that gate measured. An int8 graph made on the
    fly is calibrated on the packaged sample image wherever it is made, so it is the same graph up
    to float rounding; it counts as the gated one when its export version, calibration source,
    frame count, strict mode and float-kept layers are the release's and its fidelity to fp32 on
    the probe frames is within ``export.gate.INT8_FIDELITY_SLACK_DB`` of the release's
    (:func:`~realtime_sr.export.gate.is_gated_graph`)."""
    from . import cpu

    pays, why = cpu.int8_default()
    if not pays:
        return None
    from ..export.cache import sha256_file

    gate = release_gate(sha256_file(model.path), "int8")
    if not gate or not gate.get("passed"):
        return None  # no gate (a model of one's own, a GAN): what it was before
    from ..export.artifacts import ensure_onnx

    try:
        art = ensure_onnx(model, "int8", calib_count=int(gate.get("frames", 32)), strict=bool(gate.get("strict")),
                          log=say)
    except (BackendError, UsageError, OSError) as exc:  # no export tools or calibration image; a cache it cannot write
        say(f"note: {model.name} stays off int8 ({exc})")
        return None
    own = art.info.get("gate") or {}
    if own.get("passed") and not own.get("forced"):
        return art, f"{why}; its int8 gate passed here (Set14 drop {own['drop_db']:.3f} dB)"
    from ..export.gate import is_gated_graph

    if not is_gated_graph(art.info, gate):
        info = art.info
        say(f"note: {model.name}'s int8 graph here ({info.get('calibration_source')}, fidelity "
            f"{info.get('fidelity_db')} dB) is not the one gated at release ({gate.get('calibration_source')}, "
            f"{gate.get('fidelity_db')} dB): not taken by --precision auto")
        return None
    return art, (f"{why}; int8 gate passed at release: Set14 drop {gate['drop_db']:.3f} dB, "
                 f"limit {gate['tolerance_db']:.2f}")



def _openvino(model, device: str, precision: str, calib, say, *, auto: bool = False, streams: int = 1,
              int8: tuple | None = None) -> Backend:
    """OpenVINO on the CPU: ``auto`` precision resolved, bf16 checked against the CPU and the model's gate.

    Picked by ``auto`` without the export tools (no ONNX can be made): torch fp32 on the CPU, as before."""
    from . import cpu
    from .ov_backend import OvBackend, check_precision, import_openvino

    if device == "cuda":
        raise UsageError("the openvino backend runs on the CPU here; use --backend tensorrt or torch for CUDA")
    import_openvino()
    if int8 is not None:  # precision auto, resolved to a gated int8 graph (make_backend)
        say(f"precision auto -> int8 for {model.name} on openvino ({int8[1]})")
        return OvBackend(int8[0].path, precision="int8", streams=streams)
    gate = None
    if precision in ("auto", "fp32", "bf16"):
        fp32 = _artifact(model, "fp32", None, say, torch_fallback=auto)
        if fp32 is None:
            from .torch_backend import TorchBackend

            return TorchBackend(model.net, device="cpu", precision="fp32")
        gate = fp32.info.get("gate_bf16")
        if not gate or gate.get("measured") is False:  # not gated here: the shipped models' record
            gate = release_gate(fp32.info.get("weights_sha256"), "bf16") or gate
    if precision == "auto":
        precision, why = cpu.default_precision("openvino", bf16_gate=gate)
        say(f"precision auto -> {precision} for {model.name} on openvino ({why})")
    check_precision(precision)
    if precision == "bf16":
        if gate and gate.get("passed") is False and not gate.get("forced"):
            raise UsageError(f"{model.name}: bf16 failed its quality gate (Set14 drop {gate['drop_db']:.3f} dB > "
                             f"{gate['tolerance_db']:.2f}); use --precision fp32 or int8")
        if not gate:
            say(f"note: bf16 has not been quality-gated for {model.name}; "
                "`realtime-sr export --precision bf16` measures it on Set14")
    art = _artifact(model, "fp32" if precision == "bf16" else precision, calib, say)
    return OvBackend(art.path, precision=precision, streams=streams)
