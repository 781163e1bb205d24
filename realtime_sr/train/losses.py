"""Losses: pixel (content), adversarial on logits (standard or relativistic average), the LDL
artifact penalty, discriminator feature matching, optional VGG.

Adversarial kinds (``gan_loss`` in a recipe):

* ``vanilla``: SRGAN's. D: real -> 1, fake -> 0; G: fake -> 1.
* ``ragan``: ESRGAN's relativistic average GAN. D learns whether a real image is *more* real than
  the average fake (and a fake less real than the average real); G gets gradients from both the
  real and the fake terms, which trains a stronger, steadier generator.

Logits may be one per image (a dense head) or a map (a patch head); all means are over every
element, as ESRGAN's code does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pixel_loss(kind: str):
    return nn.L1Loss() if kind == "l1" else nn.MSELoss()


def d_loss(real_logit: torch.Tensor, fake_logit: torch.Tensor) -> torch.Tensor:
    """Discriminator: real -> 1, fake -> 0, on logits (BCE with logits is numerically stable)."""
    return F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit)) + \
        F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))


def g_adv_loss(fake_logit: torch.Tensor) -> torch.Tensor:
    """Generator: make the discriminator call the fake real."""
    return F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))


GAN_LOSSES = ("vanilla", "ragan")


def _bce(logit: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logit, torch.full_like(logit, target))


def discriminator_loss(kind: str, real_logit: torch.Tensor, fake_logit: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss of ``kind`` (see the module docstring); fake_logit from a detached fake."""
    if kind == "vanilla":
        return d_loss(real_logit, fake_logit)
    if kind == "ragan":
        return _bce(real_logit - fake_logit.mean(), 1.0) + _bce(fake_logit - real_logit.mean(), 0.0)
    raise ValueError(f"gan_loss must be one of {', '.join(GAN_LOSSES)}, not {kind!r}")


def generator_adv_loss(kind: str, real_logit: torch.Tensor, fake_logit: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial loss of ``kind``; real_logit carries no gradient to the generator."""
    if kind == "vanilla":
        return g_adv_loss(fake_logit)
    if kind == "ragan":
        real_logit = real_logit.detach()
        return (_bce(real_logit - fake_logit.mean(), 0.0) + _bce(fake_logit - real_logit.mean(), 1.0)) / 2
    raise ValueError(f"gan_loss must be one of {', '.join(GAN_LOSSES)}, not {kind!r}")


def local_variance(x: torch.Tensor, ksize: int = 7) -> torch.Tensor:
    """Unbiased variance of each ksize x ksize neighbourhood (reflect-padded), same shape as x (N, 1, H, W)."""
    pad = (ksize - 1) // 2
    win = F.pad(x, (pad, pad, pad, pad), mode="reflect").unfold(2, ksize, 1).unfold(3, ksize, 1)
    return win.var(dim=(-1, -2), unbiased=True)


@torch.no_grad()
def artifact_map(sr: torch.Tensor, ema_sr: torch.Tensor, hr: torch.Tensor, ksize: int = 7) -> torch.Tensor:
    """LDL's refined artifact map (Liang et al., CVPR 2022, "Details or Artifacts"), (N, 1, H, W).

    The residual |HR - SR| (summed over channels) is weighted per pixel by its local variance
    (artifacts are noisy residuals; a smooth miss is blur, not an artifact) and per patch by its
    variance to the power 1/5; pixels where the EMA generator's residual is larger are zeroed
    (there the current generator is better than its stable average: a detail, not an artifact).
    No gradient flows through the map.
    """
    res_sr = (hr - sr).abs().sum(1, keepdim=True)
    res_ema = (hr - ema_sr).abs().sum(1, keepdim=True)
    patch_w = res_sr.var(dim=(-1, -2, -3), keepdim=True) ** 0.2
    weight = patch_w * local_variance(res_sr, ksize)
    return weight.masked_fill(res_sr < res_ema, 0.0)


def ldl_loss(sr: torch.Tensor, ema_sr: torch.Tensor, hr: torch.Tensor, ksize: int = 7) -> torch.Tensor:
    """LDL's artifact penalty: L1 between map * SR and map * HR, the map from :func:`artifact_map`."""
    w = artifact_map(sr, ema_sr, hr, ksize)
    return F.l1_loss(w * sr, w * hr)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W), radius 3 sigma, reflect-padded; same shape."""
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, dtype=torch.float32, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def high_band(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """What a Gaussian blur of ``sigma`` removes: the band frequency separation lets the GAN judge
    (Fritsche et al., ICCVW 2019, "Frequency Separation for Real-World Super-Resolution")."""
    return x - gaussian_blur(x, sigma)


def feature_matching(real_feats: list[torch.Tensor], fake_feats: list[torch.Tensor]) -> torch.Tensor:
    """L1 between discriminator features of real and generated images: a perceptual loss that
    needs no downloaded network (the discriminator is the feature extractor)."""
    return sum(F.l1_loss(f, r.detach()) for r, f in zip(real_feats, fake_feats)) / len(real_feats)


class VGGLoss(nn.Module):
    """VGG19 conv5_4 feature loss (SRGAN's VGG54), from a local torchvision-layout state_dict file.

    Only built when a weights file is given: nothing is downloaded.
    """

    # torchvision vgg19 "features" configuration
    _CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]

    def __init__(self, weights_path: str) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in self._CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
                cin = v
        self.features = nn.Sequential(*layers[:-1])  # stop before the last ReLU (conv5_4)
        if weights_path.endswith(".safetensors"):
            from safetensors.torch import load_file
            state = load_file(weights_path)
        else:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        self.features.load_state_dict(state, strict=False)
        for p in self.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        if sr.shape[1] == 1:  # luma: use it as gray RGB
            sr, hr = sr.expand(-1, 3, -1, -1), hr.expand(-1, 3, -1, -1)
        f = lambda x: self.features((x - self.mean) / self.std)
        return F.mse_loss(f(sr), f(hr).detach())
