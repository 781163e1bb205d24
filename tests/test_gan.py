"""GAN losses, discriminator options and the GAN measures (halo, temporal PSNR)."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from helpers import REPO
from realtime_sr.archs.discriminator import SRGANDiscriminator
from realtime_sr.train.losses import (artifact_map, discriminator_loss, generator_adv_loss, ldl_loss,
                                      local_variance)

sys.path.insert(0, str(REPO / "benchmarks" / "gan"))
from measures import detail, halo, temporal_psnr  # noqa: E402
from srvgg import PEER, SRVGGNetCompact, animevideov3_method  # noqa: E402

LN2 = math.log(2)


@pytest.mark.parametrize("kind", ["vanilla", "ragan"])
def test_adversarial_losses_at_indifference(kind):
    # a discriminator that cannot tell: every logit 0 -> D loss 2 ln 2, G loss ln 2
    z = torch.zeros(4)
    assert discriminator_loss(kind, z, z).item() == pytest.approx(2 * LN2)
    assert generator_adv_loss(kind, z, z).item() == pytest.approx(LN2)


def test_relativistic_loss_compares_with_the_average_of_the_other_side():
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([0.0, 2.0])  # means 3 and 1
    sp = torch.nn.functional.softplus  # BCE with logits: target 1 -> softplus(-x), target 0 -> softplus(x)
    want_d = sp(-(real - 1)).mean() + sp(fake - 3).mean()
    assert discriminator_loss("ragan", real, fake).item() == pytest.approx(want_d.item())
    want_g = (sp(real - 1).mean() + sp(-(fake - 3)).mean()) / 2
    assert generator_adv_loss("ragan", real, fake).item() == pytest.approx(want_g.item())
    # shifting every logit by the same amount changes nothing: only differences count
    assert discriminator_loss("ragan", real + 5, fake + 5).item() == pytest.approx(want_d.item())


def test_generator_loss_trains_the_fake_only():
    real = torch.randn(3, requires_grad=True)
    fake = torch.randn(3, requires_grad=True)
    generator_adv_loss("ragan", real, fake).backward()
    assert real.grad is None and fake.grad is not None and fake.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="gan_loss"):
        discriminator_loss("wgan", real, fake)


def test_local_variance_matches_numpy():
    x = torch.arange(25.0).reshape(1, 1, 5, 5) ** 1.5
    v = local_variance(x, 3)
    assert v.shape == x.shape
    want = np.var(x[0, 0, 1:4, 1:4].numpy(), ddof=1)  # an interior pixel: no padding involved
    assert v[0, 0, 2, 2].item() == pytest.approx(want, rel=1e-5)
    assert local_variance(torch.full((1, 1, 8, 8), 3.0)).abs().max().item() == 0


def test_ldl_penalises_noisy_residuals_where_the_ema_is_better():
    torch.manual_seed(0)
    hr = torch.rand(2, 1, 16, 16)
    noise = 0.2 * torch.randn_like(hr)
    sr = (hr + noise).requires_grad_(True)
    # the EMA is clean: every residual of SR is an artifact
    loss = ldl_loss(sr, hr.clone(), hr)
    assert loss.item() > 0
    loss.backward()
    assert sr.grad.abs().sum() > 0
    # the EMA is worse everywhere: nothing counts as an artifact
    assert artifact_map(sr.detach(), hr + 2 * noise.abs() + 0.5, hr).abs().max().item() == 0
    # a perfect output has no artifacts
    assert ldl_loss(hr, hr + noise, hr).item() == 0
    assert not artifact_map(sr, hr, hr).requires_grad


@pytest.mark.parametrize("opts", [{}, {"spectral_norm": True, "batch_norm": False}, {"head": "patch"}])
def test_discriminator_options_shapes_and_gradients(opts):
    d = SRGANDiscriminator(in_channels=1, base_features=8, num_blocks=4, max_features=16, dense_features=16, **opts)
    for size in (24, 40):
        x = torch.rand(3, 1, size, size)
        logit, feats = d(x, return_features=True)
        want = (3,) if not opts.get("head") else (3, size // 4, size // 4)
        assert logit.shape == want and len(feats) == 4
    discriminator_loss("ragan", d(torch.rand(3, 1, 32, 32)), d(torch.rand(3, 1, 32, 32))).backward()
    assert all(p.grad is not None for p in d.parameters())
    assert ((0 <= d.score(x)) & (d.score(x) <= 1)).all()
    if opts.get("spectral_norm"):
        d.train()
        for _ in range(20):  # power iteration converges: the largest singular value of each conv is ~1
            d(x)
        w = d.blocks[1][0].weight.flatten(1)
        assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.05)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())


def test_halo_measure_on_a_step_edge():
    hr = np.zeros((32, 32, 3), np.uint8)
    hr[:, 16:] = 200
    assert halo(hr, hr, 2) == 0.0
    soft = hr.copy()
    soft[:, 15] = 100  # inside the local range: a blur is not a halo
    assert halo(soft, hr, 2) == 0.0
    ring = hr.copy()
    ring[:, 16] = 230  # 30 RGB codes over the bright side's max: 25.8 on Y, 23.8 past the slack
    # the strong-edge pixels are columns 14-17 (their 5x5 windows span both sides); one overshoots
    assert halo(ring, hr, 2) == pytest.approx((30 * 219 / 255 - 2) / 4, rel=1e-3)
    flat = np.full((16, 16, 3), 90, np.uint8)
    assert halo(flat + 50, flat, 2) == 0.0  # no strong edges: nothing to measure


def test_detail_measure_reads_blur_under_one_and_the_original_as_one():
    from PIL import Image

    from helpers import natural_image

    hr = natural_image("coffee", (96, 80))
    assert detail(hr, hr, 2) == pytest.approx(1.0)
    blurred = np.asarray(Image.fromarray(hr).resize((48, 40), Image.BICUBIC).resize((96, 80), Image.BICUBIC))
    assert 0.2 < detail(blurred, hr, 2) < 0.8  # bicubic loses the fine structure
    noise = np.random.default_rng(0).normal(0, 12, hr.shape)
    assert detail(np.clip(hr + noise, 0, 255).astype(np.uint8), hr, 2) > 1.1  # noise adds high band


def test_temporal_psnr_sees_flicker_not_a_constant_error():
    rng = np.random.default_rng(0)
    hr = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(4)]
    assert temporal_psnr(hr, hr, 2) == math.inf
    steady = [np.clip(f.astype(int) + 7, 0, 255).astype(np.uint8) for f in hr]
    assert temporal_psnr(steady, hr, 2) > 40  # wrong by the same amount in every frame: no flicker
    biased = [np.full_like(f, 128) for f in hr]
    flicker = [np.full_like(f, 128 + 20 * (t % 2)) for t, f in enumerate(hr)]
    # a constant output misses the true motion; one that flickers besides does worse
    assert temporal_psnr(flicker, hr, 2) < temporal_psnr(biased, hr, 2)
    with pytest.raises(ValueError):
        temporal_psnr(hr[:1], hr[:1], 2)


def test_peer_architecture_matches_animevideov3():
    net = SRVGGNetCompact()
    assert sum(p.numel() for p in net.parameters()) == 621_424  # the peers README's count
    out = net(torch.rand(1, 3, 8, 10))
    assert out.shape == (1, 3, 32, 40)


@pytest.mark.skipif(not PEER.exists(), reason=f"peer weights not found at {PEER}")
def test_peer_weights_load_and_upscale():
    lr = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    for s in (2, 4):
        assert animevideov3_method(s)(lr).shape == (12 * s, 10 * s, 3)


GAN_RECIPE = """
stage = "gan"
arch = "srgan_generator"
scale = 2
colour = "y"
[hparams]
scale = 2
in_channels = 1
num_features = 8
num_blocks = 1
[d_hparams]
base_features = 8
num_blocks = 4
max_features = 16
head = "{head}"
spectral_norm = {sn}
[data]
train_dirs = ["{data}"]
val_dir = "{data}"
lr_patch = 12
batch = 2
workers = 0
[optim]
steps = 4
lr = 1e-3
warmup_steps = 1
gan_loss = "ragan"
ldl_weight = 10.0
ema_decay = 0.5
[run]
val_every = 100
ckpt_every = 100
threads = 1
precision = "fp32"
"""


@pytest.mark.parametrize("head,sn", [("dense", "false"), ("patch", "true")])
def test_gan_stage_trains_with_ragan_and_ldl(tmp_path, head, sn):
    from helpers import write_image_folder
    from realtime_sr.checkpoints import load_weights
    from realtime_sr.train.config import load_recipe, override
    from realtime_sr.train.loop import train

    data = write_image_folder(tmp_path / "train", n=2, size=(48, 40))
    r = tmp_path / "tiny_gan.toml"
    r.write_text(GAN_RECIPE.format(data=data, head=head, sn=sn))
    cfg = load_recipe(str(r))
    out = train(cfg, out_dir=tmp_path / "run", progress=False, log=lambda m: None)
    state, meta = load_weights(out)
    assert meta["stage"] == "gan" and all(torch.isfinite(v).all() for v in state.values())
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]
    assert rows and all(math.isfinite(float(x)) for row in rows for x in row.split(",")[1:3])
    from realtime_sr.errors import UsageError

    with pytest.raises(UsageError, match="gan_loss"):
        override(cfg, gan_loss="wgan")


def test_gaussian_blur_and_high_band():
    from realtime_sr.train.losses import gaussian_blur, high_band

    flat = torch.full((2, 1, 16, 12), 0.3)
    assert torch.allclose(gaussian_blur(flat, 1.0), flat, atol=1e-6)  # a flat image has no high band
    assert high_band(flat, 1.0).abs().max() < 1e-6
    x = torch.rand(2, 1, 24, 20, generator=torch.Generator().manual_seed(0))
    b = gaussian_blur(x, 1.5)
    assert b.shape == x.shape and b.std() < x.std()  # smoother, same size
    assert torch.allclose(b + high_band(x, 1.5), x, atol=1e-6)  # the two bands add up to the image


def test_discriminator_warmup_and_frequency_separation(tmp_path):
    """During d_warmup_steps only the discriminator learns: the generator stays the weights it
    started from; then both train, the discriminator judging the high band only."""
    from helpers import write_image_folder
    from realtime_sr.checkpoints import load_weights, save_weights
    from realtime_sr.errors import UsageError
    from realtime_sr.train.config import load_recipe, override
    from realtime_sr.train.loop import train

    data = write_image_folder(tmp_path / "train", n=2, size=(48, 40))
    r = tmp_path / "tiny_gan.toml"
    r.write_text(GAN_RECIPE.format(data=data, head="dense", sn="false"))
    cfg = override(load_recipe(str(r)), steps=5, d_warmup_steps=3, fs_sigma=1.0, lowpass_weight=1.0,
                   ema_decay=0.0, ckpt_every=1, val_every=100)
    from realtime_sr.archs import build

    g0 = build(cfg.arch, **cfg.hparams)
    init = save_weights(tmp_path / "init.safetensors", g0.state_dict(),
                        {"name": "init", "arch": cfg.arch, "hparams": cfg.hparams, "scale": 2, "colour": "y"})
    cfg = override(cfg, init_from=str(init))
    train(cfg, out_dir=tmp_path / "run", progress=False, log=lambda m: None, stop_after=3)
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ck["step"] == 3
    # the generator's weights waited (its batch-norm running statistics see the fakes, as in every step)
    assert all(torch.equal(ck["g"][k], v) for k, v in g0.named_parameters())
    d3 = {k: v.clone() for k, v in ck["d"].items()}
    out = train(cfg, out_dir=tmp_path / "run", resume="auto", progress=False, log=lambda m: None)
    state, _ = load_weights(out)
    assert any(not torch.equal(state[k], v) for k, v in g0.named_parameters())  # then it learned
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert any(not torch.equal(ck["d"][k], v) for k, v in d3.items())
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]
    assert rows and all(math.isfinite(float(x)) for row in rows for x in row.split(",")[1:3] if x)
    with pytest.raises(UsageError, match="fewer than steps"):
        override(cfg, d_warmup_steps=5)
    with pytest.raises(UsageError, match="needs fs_sigma"):
        override(cfg, fs_sigma=0.0)
