"""torch -> ONNX, with fixed input/output names and a parity check against torch.

Every exported graph has one input ``lr`` (N, C, h, w) float32 and one output ``sr``
(N, C, s*h, s*w) float32, opset 17 or later. PixelShuffle becomes DepthToSpace and the
bicubic skip (``F.interpolate(mode="bicubic")``) becomes Resize(cubic, coeff -0.75), both of
which onnxruntime and TensorRT run natively. N, h and w are dynamic, so one ONNX file serves
whole frames and tiles on onnxruntime; :func:`fix_shape` writes a static copy (the fine
network's tile batch) for TensorRT.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
from pathlib import Path

import numpy as np

INPUT = "lr"
OUTPUT = "sr"
OPSET = 17
MAX_SIDE = 8192  # upper bound of the dynamic H/W dims (LR pixels)


def export_onnx(net, path: str | Path, *, in_channels: int = 1, opset: int = OPSET) -> Path:
    """Export ``net`` (eval mode, batch norm folded) to ``path`` with dynamic N, H and W."""
    import torch

    if opset < 17:
        raise ValueError(f"opset {opset} < 17: realtime-sr needs opset 17 or later")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = _cpu_copy(net)
    example = torch.rand(1, in_channels, 32, 48)
    dims = {0: torch.export.Dim("n", min=1, max=1024),
            2: torch.export.Dim("h", min=8, max=MAX_SIDE), 3: torch.export.Dim("w", min=8, max=MAX_SIDE)}
    arg = next(iter(inspect.signature(net.forward).parameters))  # dynamic_shapes is keyed by argument name
    tmp = path.with_name(f".{path.name}.part")
    with _quiet():
        torch.onnx.export(net, (example,), str(tmp), input_names=[INPUT], output_names=[OUTPUT],
                          opset_version=opset, dynamic_shapes={arg: dims}, dynamo=True,
                          external_data=False, verbose=False)
    _rename_dims(tmp)
    tmp.replace(path)
    return path


def _cpu_copy(net):
    """A float32 CPU copy in eval mode (the caller's network may live on a GPU in fp16)."""
    import copy

    import torch

    return copy.deepcopy(net).to("cpu", torch.float32).eval()


def _rename_dims(path: Path) -> None:
    """Name the dynamic dims ``n``, ``h``, ``w`` on input and output (readable in Netron and TensorRT logs)."""
    import onnx

    m = onnx.load(str(path))
    for vi in (*m.graph.input, *m.graph.output):
        d = vi.type.tensor_type.shape.dim
        if len(d) == 4 and d[0].dim_param:
            d[0].dim_param = "n"
    onnx.save(m, str(path))


@contextlib.contextmanager
def _quiet():
    """The dynamo exporter prints progress lines and warns about torchvision: keep the CLI's output clean."""
    names = ("torch.onnx", "torch._dynamo", "torch.export", "onnxscript", "torch.fx")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    import warnings

    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for n, lvl in saved.items():
            logging.getLogger(n).setLevel(lvl)


def fix_shape(src: str | Path, dst: str | Path, shape: tuple[int, int, int, int], scale: int) -> Path:
    """Copy ``src`` to ``dst`` with a static input shape (N, C, h, w) and the matching output shape."""
    import onnx
    from onnx.tools import update_model_dims

    m = onnx.load(str(src))
    n, c, h, w = shape
    m = update_model_dims.update_inputs_outputs_dims(m, {INPUT: [n, c, h, w]},
                                                     {OUTPUT: [n, c, h * scale, w * scale]})
    del m.graph.value_info[:]  # stale intermediate shapes (and the fp16 converter's types): re-infer them all
    m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    onnx.checker.check_model(m)
    dst = Path(dst)
    onnx.save(m, str(dst))
    return dst


def op_types(path: str | Path) -> list[str]:
    """The op types of a graph's nodes, in order."""
    import onnx

    return [n.op_type for n in onnx.load(str(path)).graph.node]


def io_spec(path: str | Path) -> dict:
    """{'input': (name, dims, elem_type), 'output': (...), 'opset': int} of an exported graph."""
    import onnx

    m = onnx.load(str(path))

    def spec(vi):
        dims = [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
        return vi.name, dims, onnx.TensorProto.DataType.Name(vi.type.tensor_type.elem_type)

    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    return {"input": spec(m.graph.input[0]), "output": spec(m.graph.output[0]), "opset": opset}


def parity(net, onnx_path: str | Path, *, in_channels: int = 1,
           shapes=((1, 37, 53), (2, 24, 24)), seed: int = 0) -> float:
    """Max abs difference between torch and onnxruntime on random inputs of several shapes."""
    import torch

    from ..runtime.ort_backend import OrtBackend

    ort = OrtBackend(onnx_path)
    rng = np.random.default_rng(seed)
    worst = 0.0
    net = _cpu_copy(net)
    for n, h, w in shapes:
        x = rng.random((n, in_channels, h, w), dtype=np.float32)
        with torch.inference_mode():
            ref = net(torch.from_numpy(x)).numpy()
        out = ort(x)
        if out.shape != ref.shape:
            raise AssertionError(f"{onnx_path}: output shape {out.shape}, torch gives {ref.shape}")
        worst = max(worst, float(np.abs(out - ref).max()))
    return worst
