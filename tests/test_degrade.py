"""Real-world degradations (train/degrade.py), the pre-cut crop file, and the training compute choice."""

import numpy as np
import pytest
import torch

from realtime_sr.errors import UsageError
from realtime_sr.train import compute
from realtime_sr.train.data import PatchDataset, find_training_images
from realtime_sr.train.degrade import CODECS, DegradeConfig, config_from, degrade, encode_clip

from helpers import write_image_folder


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return find_training_images([write_image_folder(tmp_path_factory.mktemp("d") / "train", n=2, size=(160, 120))])


def only(codec: str, **kw) -> DegradeConfig:
    probs = tuple(1.0 if c == codec else 0.0 for c in CODECS)
    return DegradeConfig(clean_prob=0.0, codec_probs=probs, **kw)


def natural(size=96, seed=0):
    """A smooth image with edges (codecs at CRF leave such content recognisable)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    img = 128 + 60 * np.sin(xx / 7.0) * np.cos(yy / 5.0) + rng.normal(0, 4, (size, size))
    img[size // 3: size // 2, :] += 50
    return np.clip(np.stack([img, img * 0.9, img * 0.8], -1), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("codec", ["libx264", "libvpx-vp9", "libx265"])
def test_a_codec_round_trip_keeps_the_picture_and_adds_loss(codec):
    frames = [natural(64, s) for s in range(3)]
    out = encode_clip(frames, codec, crf=30)
    assert len(out) == 3 and out[0].shape == (64, 64, 3) and out[0].dtype == np.uint8
    from realtime_sr.colour import rgb_to_y

    y = rgb_to_y(frames[2] / 255.0)
    err = np.abs(out[2][..., 0].astype(np.float64) - y)
    assert 0.2 < err.mean() < 12  # the same picture, with compression loss


@pytest.mark.parametrize("codec", ["none", "jpeg", "libx264", "libvpx-vp9", "libx265"])
def test_degraded_pairs_have_the_patch_shapes_and_differ_from_clean(files, codec):
    clean = PatchDataset(files, scale=2, lr_patch=16, seed=3)
    deg = PatchDataset(files, scale=2, lr_patch=16, seed=3, degrade=only(codec, blur_prob=1.0, noise_prob=1.0))
    lr, hr = deg[5]
    assert lr.shape == (1, 16, 16) and hr.shape == (1, 32, 32)
    assert 0.0 <= lr.min() and lr.max() <= 1.0
    lr_c, hr_c = clean[5]
    assert not torch.equal(lr, lr_c)


def test_degraded_samples_are_a_function_of_the_index(files):
    cfg = DegradeConfig(clean_prob=0.0, inter_prob=1.0)
    a = PatchDataset(files, scale=4, lr_patch=12, seed=9, degrade=cfg)
    b = PatchDataset(files, scale=4, lr_patch=12, seed=9, degrade=cfg)
    for i in (0, 1, 2, 3):
        la, ha = a[i]
        lb, hb = b[i]
        assert torch.equal(la, lb) and torch.equal(ha, hb)
        assert la.shape == (1, 12, 12) and ha.shape == (1, 48, 48)
    assert not torch.equal(a[0][0], a[1][0])


def test_an_inter_clip_returns_the_frame_its_target_matches(files):
    """The LR of a moving clip is the degraded version of *its* HR frame, not of another one."""
    cfg = only("libx264", inter_prob=1.0, clip_frames=(5, 5), crf=(18, 18), blur_prob=0.0, noise_prob=0.0,
               second_prob=0.0, scale_jitter=0.0, kernel_probs=(1, 0, 0, 0), max_motion=3.0)
    img = natural(200)

    def region(size, dx=0, dy=0):
        return np.ascontiguousarray(img[40 + dy:40 + dy + size, 40 + dx:40 + dx + size])

    from PIL import Image

    from realtime_sr.colour import rgb_to_y

    for seed in range(4):
        pairs = degrade(region, scale=2, lr_patch=16, cfg=cfg, rng=np.random.default_rng(seed), count=4)
        assert len(pairs) == 4 and len({p.hr.tobytes() for p in pairs}) == 4
        for d in pairs:
            want = rgb_to_y(np.asarray(Image.fromarray(d.hr).resize((16, 16), Image.BICUBIC)) / 255.0)
            assert np.abs(d.lr_y - want).mean() < 3.0, d.kind


def test_bad_degradation_settings_are_one_line_errors():
    with pytest.raises(UsageError, match="unknown degradation settings: bogus"):
        config_from({"bogus": 1})
    with pytest.raises(UsageError, match="codec_probs needs 5"):
        config_from({"codec_probs": [1, 0]})
    assert config_from({}) is None and config_from({"crf": [20, 24]}).crf == (20, 24)


def test_a_crop_file_is_training_data(tmp_path):
    crops = np.stack([natural(48, s) for s in range(4)])
    path = tmp_path / "crops.npy"
    np.save(path, crops)
    files = find_training_images([path])
    assert files == [(path, i) for i in range(4)]
    lr, hr = PatchDataset(files, scale=2, lr_patch=12, scale_aug=(1.0, 1.0))[0]
    assert lr.shape == (1, 12, 12) and hr.shape == (1, 24, 24)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 8, 8), np.float32))
    from realtime_sr.errors import InputError

    with pytest.raises(InputError, match="expected uint8 HR crops"):
        find_training_images([bad])


def test_compute_precision_follows_the_cpu():
    cpu = torch.device("cpu")
    assert compute.resolve("auto", cpu, flags={"avx2"}).precision == "fp32"
    assert compute.resolve("auto", cpu, flags={"avx512_bf16", "amx_bf16"}).precision == "bf16"
    assert compute.resolve("fp32", cpu, flags={"amx_bf16"}).precision == "fp32"
    with pytest.raises(UsageError, match="no bf16 units"):
        compute.resolve("bf16", cpu, flags={"avx2"})
    with pytest.raises(UsageError, match="fp16 is for CUDA"):
        compute.resolve("fp16", cpu)
    with pytest.raises(UsageError, match="precision must be one of"):
        compute.resolve("int4", cpu)


def test_measured_choice_times_each_candidate_and_picks_one():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Conv2d(4, 1, 3, padding=1))
    sample = (torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8))
    said = []
    c = compute.resolve("auto", torch.device("cpu"), net, sample, flags={"amx_bf16"}, log=said.append)
    assert c.precision in ("fp32", "bf16") and c.reason.startswith("auto: ")
    assert said and "fp32" in said[0] and "bf16+cl" in said[0]
    before = [p.clone() for p in net.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))  # timing used a copy
    said.clear()  # without bf16 units: fp32, and only the layout is measured
    c = compute.resolve("auto", torch.device("cpu"), net, sample, flags={"avx2"}, log=said.append)
    assert c.precision == "fp32" and "channels-last measured" in c.reason
    assert said and "fp32+cl" in said[0] and "bf16" not in said[0]


def test_temporal_samples_give_the_target_between_its_neighbours(files):
    """With temporal neighbours every sample is a clip: the LR is (3, p, p) in time order, its
    middle frame the one the HR belongs to, the neighbours the moving scene around it; without
    motion (a still camera) and without noise or a codec the three frames are the same."""
    cfg = only("libx264", clip_frames=(3, 5), crf=(18, 18), blur_prob=0.0, noise_prob=0.0, second_prob=0.0,
               scale_jitter=0.0, kernel_probs=(1, 0, 0, 0), max_motion=3.0, temporal=1)
    img = natural(220)

    def region(size, dx=0, dy=0):
        return np.ascontiguousarray(img[50 + dy:50 + dy + size, 50 + dx:50 + dx + size])

    from PIL import Image

    from realtime_sr.colour import rgb_to_y

    for seed in range(3):
        for d in degrade(region, scale=2, lr_patch=16, cfg=cfg, rng=np.random.default_rng(seed), count=4):
            assert d.lr_y.shape == (3, 16, 16) and d.kind.endswith("-inter")
            want = rgb_to_y(np.asarray(Image.fromarray(d.hr).resize((16, 16), Image.BICUBIC)) / 255.0)
            errs = [np.abs(f - want).mean() for f in d.lr_y]
            assert errs[1] < 3.0 and errs[1] < min(errs[0], errs[2]), (d.kind, errs)
    still = DegradeConfig(clean_prob=1.0, temporal=1, static_prob=1.0)
    d = degrade(region, scale=2, lr_patch=16, cfg=still, rng=np.random.default_rng(0), count=1)[0]
    assert d.lr_rgb.shape == (3, 16, 16, 3) and (d.lr_rgb == d.lr_rgb[1]).all()
    ds = PatchDataset(files, scale=2, lr_patch=16, seed=1, degrade=DegradeConfig(temporal=1))
    lr, hr = ds[2]
    assert lr.shape == (3, 16, 16) and hr.shape == (1, 32, 32)
    assert torch.equal(lr, PatchDataset(files, scale=2, lr_patch=16, seed=1, degrade=DegradeConfig(temporal=1))[2][0])


def test_single_frame_samples_are_unchanged_by_the_temporal_settings(files):
    """temporal = 0 draws exactly what it drew before the setting existed (banks stay reproducible)."""
    a = PatchDataset(files, scale=2, lr_patch=16, seed=4, degrade=DegradeConfig())
    b = PatchDataset(files, scale=2, lr_patch=16, seed=4, degrade=DegradeConfig(static_prob=1.0))
    for i in range(8):
        assert torch.equal(a[i][0], b[i][0]) and a[i][0].shape == (1, 16, 16)
