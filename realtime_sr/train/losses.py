"""Losses: pixel (content), adversarial on logits, discriminator feature matching, optional VGG."""

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
