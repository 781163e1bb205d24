"""Real-ESRGAN's SRVGGNetCompact, to run the `realesr-animevideov3` peer model beside ours.

A benchmark-only module: the peer weights (../shared/peers, BSD-3-Clause) never go in the package.
Architecture as in Real-ESRGAN's ``realesrgan/archs/srvgg_arch.py``: a 3x3 conv + PReLU, ``num_conv``
3x3 convs of ``num_feat`` channels each followed by PReLU, a 3x3 conv to 3 * s^2 channels,
PixelShuffle(s), plus the nearest-upsampled input. RGB in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PEER = Path(__file__).resolve().parents[2] / ".." / "shared" / "peers" / "realesr-animevideov3.pth"


class SRVGGNetCompact(nn.Module):
    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4):
        super().__init__()
        self.upscale = upscale
        body: list[nn.Module] = [nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), nn.PReLU(num_parameters=num_feat)]
        for _ in range(num_conv):
            body += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_parameters=num_feat)]
        body.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(body)
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        return self.upsampler(out) + F.interpolate(x, scale_factor=self.upscale, mode="nearest")


def load_animevideov3(path: str | Path = PEER) -> SRVGGNetCompact:
    """The peer model (x4), eval mode; raises FileNotFoundError when the file is absent."""
    path = Path(path).resolve()
    if not path.exists():
        raise FileNotFoundError(f"{path}: peer weights not found")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = SRVGGNetCompact()
    net.load_state_dict(state.get("params", state))
    return net.eval()


def animevideov3_method(scale: int, net: SRVGGNetCompact | None = None):
    """uint8 RGB (H, W, 3) -> uint8 RGB (sH, sW, 3); x2 is the x4 output downscaled by 0.5
    (PIL bicubic), as Real-ESRGAN's own script does for --outscale 2."""
    from realtime_sr.imageops import resize_bicubic

    net = net or load_animevideov3()

    @torch.inference_mode()
    def run(lr: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.array(lr[..., :3])).permute(2, 0, 1)[None].float() / 255
        y = net(x).clamp_(0, 1)[0].permute(1, 2, 0).numpy()
        out = (y * 255 + 0.5).astype(np.uint8)
        if scale != 4:
            out = resize_bicubic(out, (lr.shape[1] * scale, lr.shape[0] * scale))
        return out

    return run
