"""The torch backend: the reference implementation, CPU or CUDA, fp32 or fp16."""

from __future__ import annotations

import numpy as np

from ..errors import BackendError, UsageError


class TorchBackend:
    name = "torch"

    def __init__(self, net, *, device: str = "cpu", precision: str = "fp32") -> None:
        import torch

        if device == "cuda" and not torch.cuda.is_available():
            raise BackendError("--device cuda asked, but torch sees no CUDA device")
        if precision not in ("fp32", "fp16"):
            raise UsageError(f"the torch backend runs fp32 or fp16, not {precision}")
        if precision == "fp16" and device == "cpu":
            raise UsageError("fp16 with the torch backend needs --device cuda")
        self.device = torch.device(device)
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.net = net.to(self.device, self.dtype).eval()
        if device == "cuda":
            self.net = self.net.to(memory_format=torch.channels_last)
        self.name = f"torch-{device}-{precision}"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device, self.dtype)
            y = self.net(t)
            return y.float().cpu().numpy()  # sync point: device -> host copy

    def run_tensor(self, x):
        """Tensor in, tensor out on the backend's device (no host copy)."""
        import torch

        with torch.inference_mode():
            return self.net(x.to(self.device, self.dtype))
