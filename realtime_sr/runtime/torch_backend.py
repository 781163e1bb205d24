"""The torch backend: the reference implementation, CPU or CUDA; fp32, or fp16 / bf16 on CUDA.

On CUDA the network and its inputs are channels-last (what cuDNN's fastest convolutions want);
``compile=True`` wraps the network in ``torch.compile`` (first calls are slow: it compiles per shape).
"""

from __future__ import annotations

import numpy as np

from ..errors import BackendError, UsageError


class TorchBackend:
    name = "torch"

    def __init__(self, net, *, device: str = "cpu", precision: str = "fp32", compile: bool = False) -> None:
        import torch

        if device == "cuda" and not torch.cuda.is_available():
            raise BackendError("--device cuda asked, but torch sees no CUDA device")
        if precision not in ("fp32", "fp16", "bf16"):
            raise UsageError(f"the torch backend runs fp32, fp16 or bf16, not {precision}")
        if precision != "fp32" and device == "cpu":
            raise UsageError(f"{precision} with the torch backend needs --device cuda"
                             + ("; on a CPU, bf16 runs on --backend openvino" if precision == "bf16" else ""))
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise UsageError("--precision bf16 asked, but this GPU has no bf16 support; use fp16")
        self.device = torch.device(device)
        self.dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)
        self.net = net.to(self.device, self.dtype).eval()
        self.channels_last = device == "cuda"
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        if compile:
            self.net = torch.compile(self.net, dynamic=True)
        self.name = f"torch-{device}-{precision}" + ("-compiled" if compile else "")

    def _prep(self, t):
        import torch

        t = t.to(self.device, self.dtype)
        return t.contiguous(memory_format=torch.channels_last) if self.channels_last else t

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            y = self.net(self._prep(torch.from_numpy(np.ascontiguousarray(x))))
            return y.float().cpu().numpy()  # sync point: device -> host copy

    def run_tensor(self, x):
        """Tensor in, tensor out on the backend's device (no host copy)."""
        import torch

        with torch.inference_mode():
            return self.net(self._prep(x))
