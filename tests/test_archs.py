import pytest
import torch
from torch import nn

from realtime_sr.archs import ARCHS, build
from realtime_sr.archs.fuse import fuse_batchnorm

SMALL = {
    "coarse": {"d": 8, "s": 4, "m": 2},
    "srgan_generator": {"num_features": 8, "num_blocks": 2},
    "espcn": {},
}


@pytest.mark.parametrize("arch", sorted(SMALL))
@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("channels", [1, 3])
def test_generators_upscale_by_their_scale(arch, scale, channels):
    net = build(arch, scale=scale, in_channels=channels, **SMALL[arch]).eval()
    out = net(torch.rand(2, channels, 13, 17))
    assert out.shape == (2, channels, 13 * scale, 17 * scale)


def test_registry_is_keyword_only_and_names_the_valid_choices():
    for cls in ARCHS.values():
        with pytest.raises(TypeError):
            cls(2)
    with pytest.raises(KeyError, match="coarse.*srgan_generator"):
        build("edsr")


def test_generator_is_srgan_shaped():
    g = build("srgan_generator", scale=4, num_features=16, num_blocks=3)
    kinds = [type(m) for m in g.body[0].body]
    assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.LeakyReLU, nn.Conv2d, nn.BatchNorm2d]
    assert len(g.body) == 3
    assert sum(isinstance(m, nn.PixelShuffle) for m in g.modules()) == 2  # x4 = two x2 stages
    g.eval()
    x = torch.rand(1, 1, 8, 8)
    # the residual block adds its input: zero its body's last BN and it becomes the identity
    blk = g.body[0]
    nn.init.zeros_(blk.body[4].weight)
    nn.init.zeros_(blk.body[4].bias)
    f = torch.rand(1, 16, 8, 8)
    assert torch.allclose(blk(f), f)
    assert g(x).shape == (1, 1, 32, 32)


def test_bicubic_skip_means_a_zero_residual_gives_bicubic():
    import torch.nn.functional as F

    g = build("srgan_generator", scale=2, num_features=8, num_blocks=1).eval()
    nn.init.zeros_(g.tail.weight)
    nn.init.zeros_(g.tail.bias)
    x = torch.rand(1, 1, 10, 12, generator=torch.Generator().manual_seed(0))
    # float rounding only: a convolution and F.interpolate sum the same taps in another order
    assert torch.allclose(g(x), F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False), atol=1e-6)


def test_discriminator_gives_logits_and_sigmoid_scores():
    d = build("srgan_discriminator", in_channels=1, base_features=8, num_blocks=4, dense_features=16).eval()
    x = torch.rand(3, 1, 48, 48)
    logit = d(x)
    assert logit.shape == (3,)
    assert torch.allclose(d.score(x), torch.sigmoid(logit))
    logit2, feats = d(x, return_features=True)
    assert len(feats) == 4 and torch.allclose(logit, logit2)
    # any patch size: the dense layers sit behind an adaptive pool
    assert d(torch.rand(1, 1, 64, 80)).shape == (1,)
    # conv + BN + LeakyReLU blocks with growing width and stride
    widths = [b[0].out_channels for b in d.blocks]
    strides = [b[0].stride[0] for b in d.blocks]
    assert widths == sorted(widths) and widths[-1] > widths[0]
    assert 2 in strides and isinstance(d.blocks[1][1], nn.BatchNorm2d)


def test_fusing_batchnorm_keeps_the_output():
    torch.manual_seed(0)
    g = build("srgan_generator", scale=2, num_features=8, num_blocks=2)
    g.train()
    for _ in range(3):  # non-trivial running statistics
        g(torch.rand(4, 1, 16, 16))
    g.eval()
    x = torch.rand(1, 1, 20, 20)
    ref = g(x)
    fuse_batchnorm(g)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in g.modules())
    assert torch.allclose(g(x), ref, atol=1e-5)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_skip_is_exactly_torch_bicubic_at_every_pixel(scale):
    import torch.nn.functional as F

    from realtime_sr.archs.upsample import BicubicUpsample

    x = torch.rand(2, 3, 9, 14)
    ref = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
    out = BicubicUpsample(scale=scale, channels=3)(x)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-5)  # borders included: edge pixels are clamped in both


@pytest.mark.parametrize("scale,skip", [(2, True), (2, False), (4, True)])
def test_fine_network_folded_tail_gives_the_same_output(scale, skip):
    """fold_tail (used at inference) moves the output conv before the last PixelShuffle, exactly."""
    import copy

    from realtime_sr.archs.fuse import fuse_batchnorm
    from realtime_sr.archs.generator import SRGANGenerator

    torch.manual_seed(0)
    g = SRGANGenerator(scale=scale, in_channels=1, num_features=8, num_blocks=2, bicubic_skip=skip).eval()
    with torch.no_grad():
        for p in g.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    fuse_batchnorm(g)
    x = torch.rand(2, 1, 11, 14)  # odd sizes: the borders' zero padding must map to the LR's
    f = copy.deepcopy(g).fold_tail()
    assert f.folded and not any(isinstance(m, torch.nn.PixelShuffle) for m in f.upsample[-2:])
    assert torch.allclose(f(x), g(x), atol=1e-5)
    assert f.fold_tail() is f  # idempotent
