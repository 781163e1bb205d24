import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from realtime_sr.colour import rgb_to_y
from realtime_sr.metrics import psnr_y, ssim_y

from helpers import IMAGES, natural_image, needs_data


def _pair(seed=0):
    rng = np.random.default_rng(seed)
    hr = natural_image("coffee", (120, 90))
    noisy = np.clip(hr.astype(np.int16) + rng.integers(-12, 13, hr.shape), 0, 255).astype(np.uint8)
    return noisy, hr


@pytest.mark.parametrize("border", [0, 2, 4])
def test_psnr_and_ssim_match_scikit_image(border):
    sr, hr = _pair()
    ys = rgb_to_y(sr / 255.0).astype(np.float64)
    yh = rgb_to_y(hr / 255.0).astype(np.float64)
    if border:
        ys, yh = ys[border:-border, border:-border], yh[border:-border, border:-border]
    ref_psnr = peak_signal_noise_ratio(yh, ys, data_range=255)
    ref_ssim = structural_similarity(yh, ys, data_range=255, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)
    assert psnr_y(sr, hr, border) == pytest.approx(ref_psnr, abs=1e-9)
    assert ssim_y(sr, hr, border) == pytest.approx(ref_ssim, abs=1e-6)


def test_y_is_bt601_studio_range():
    assert rgb_to_y(np.zeros((1, 1, 3))) == pytest.approx(16.0)
    assert rgb_to_y(np.ones((1, 1, 3))) == pytest.approx(235.0)


def test_identical_images_and_size_mismatch():
    _, hr = _pair()
    assert psnr_y(hr, hr, 2) == float("inf")
    assert ssim_y(hr, hr, 2) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        psnr_y(hr[:-2], hr, 2)


@needs_data
@pytest.mark.parametrize("scale,published", [(2, 33.66), (4, 28.42)])
def test_bicubic_on_set5_matches_the_literature(scale, published):
    from realtime_sr.evaluate import bicubic_method, evaluate, load_pairs

    res = evaluate(load_pairs(IMAGES / "Set5", scale), bicubic_method(scale), scale, "bicubic")
    assert abs(res.psnr - published) <= 0.05
