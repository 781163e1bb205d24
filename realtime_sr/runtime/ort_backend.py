"""The onnxruntime backend: CPU, fp32 / fp16 / int8 ONNX graphs exported by :mod:`realtime_sr.export`.

The graphs have dynamic N, H and W, so one session runs whole frames and tiles. Reduced
precision is in the graph itself (fp16 tensors, int8 Q/DQ nodes); the session does not care.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BackendError


class OrtBackend:
    """float32 NCHW numpy in -> float32 NCHW numpy out, through one onnxruntime session."""

    def __init__(self, onnx_path, *, precision: str = "fp32", threads: int | None = None,
                 providers: tuple[str, ...] = ("CPUExecutionProvider",), optimize: bool = True,
                 spin: bool = False) -> None:
        """``onnx_path``: a file, or an in-memory ModelProto. ``optimize=False`` keeps the graph as written.

        ``spin``: let idle intra-op threads spin-wait for the next call (onnxruntime's default). Off
        here: with two sessions (routing's coarse and fine) or decode/encode threads beside it, the
        spinning threads of the idle session take the cores the busy one needs (measured: the
        coarse network took 125 ms per frame beside a spinning fine session instead of 65 ms).
        """
        try:
            import onnxruntime as ort
        except ImportError:  # pragma: no cover - a dependency, but be explicit
            raise BackendError("the onnxruntime backend needs the onnxruntime package (pip install onnxruntime)") from None
        in_memory = hasattr(onnx_path, "SerializeToString")
        self.path = Path("<in-memory graph>") if in_memory else Path(onnx_path)
        if not in_memory and not self.path.is_file():
            raise BackendError(f"{self.path}: no such ONNX file")
        so = ort.SessionOptions()
        so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                       else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        so.log_severity_level = 3  # errors only: fp16 graphs on CPU log every inserted Cast otherwise
        if threads:
            so.intra_op_num_threads = int(threads)
        if not spin:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            src = onnx_path.SerializeToString() if in_memory else str(self.path)
            self.session = ort.InferenceSession(src, so, providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise BackendError(f"{self.path}: onnxruntime cannot load it ({str(exc).strip()[:300]})") from None
        self.input = self.session.get_inputs()[0].name
        self.output = self.session.get_outputs()[0].name
        self.precision = precision
        self.name = f"onnxruntime-cpu-{precision}"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        return self.session.run([self.output], {self.input: x})[0].astype(np.float32, copy=False)
