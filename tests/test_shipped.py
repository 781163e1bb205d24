"""The shipped weights: present, self-describing, honest about their metrics, and ordered by quality."""

import pytest

from realtime_sr.checkpoints import read_metadata
from realtime_sr.models import load_model, shipped_models

from helpers import IMAGES, needs_data

EXPECTED = ["coarse-x2", "coarse-x4", "fine-x2", "fine-x4",
            "coarse-x2-real", "coarse-x4-real", "fine-x2-real", "fine-x4-real", "gan-x2-real", "gan-x4-real"]


@pytest.mark.parametrize("name", EXPECTED)
def test_shipped_model_loads_and_describes_itself(name):
    assert name in shipped_models(), f"{name} is not shipped"
    meta = read_metadata(shipped_models()[name])
    role, rest = name.split("-x")
    scale = rest.split("-")[0]
    assert meta["scale"] == int(scale) and meta["colour"] in ("y", "rgb")
    assert meta["arch"] == ("coarse" if role == "coarse" else "srgan_generator")
    t = meta["training"]
    assert t["time_s"] > 0 and t["hardware"] and t["steps"] > 0
    assert all("Set5" not in d and "Set14" not in d for d in t["data"])  # never trained on the test sets
    assert {"T91", "BSD200"} <= {d.rstrip("/").split("/")[-1] for d in t["data"]}
    assert meta["recipe"] and meta["source_commit"]
    assert {"Set5", "Set14"} <= set(meta["metrics"])
    model = load_model(name)
    assert model.scale == int(scale)


@needs_data
@pytest.mark.parametrize("scale", [2, 4])
def test_recorded_metrics_are_what_eval_measures_and_fine_beats_coarse(scale):
    from realtime_sr.evaluate import bicubic_method, evaluate, load_pairs
    from realtime_sr.runtime.torch_backend import TorchBackend
    from realtime_sr.upscale import upscale_array

    pairs = load_pairs(IMAGES / "Set5", scale)
    bicubic = evaluate(pairs, bicubic_method(scale), scale, "bicubic", with_ssim=False).psnr
    measured = {}
    for role in ("coarse", "fine"):
        m = load_model(f"{role}-x{scale}")
        b = TorchBackend(m.net)
        measured[role] = evaluate(pairs, lambda lr: upscale_array(m, b, lr, tile=512), scale, role,
                                  with_ssim=False).psnr
        assert measured[role] == pytest.approx(m.meta["metrics"]["Set5"]["psnr"], abs=0.02)
    assert measured["coarse"] > bicubic + 1.0
    assert measured["fine"] > measured["coarse"]


@needs_data
def test_real_models_lead_on_compressed_input_and_say_what_they_saw():
    """On LR compressed as video is (libx264 CRF 28), the real fine model beats the clean one;
    the metadata says which degradations it was trained on."""
    from realtime_sr.evaluate import evaluate, load_pairs
    from realtime_sr.runtime.torch_backend import TorchBackend
    from realtime_sr.upscale import upscale_array

    pairs = load_pairs(IMAGES / "Set5", 2, lr_codec="libx264", lr_crf=28)
    psnr = {}
    for name in ("fine-x2", "fine-x2-real"):
        m = load_model(name)
        b = TorchBackend(m.net)
        psnr[name] = evaluate(pairs, lambda lr: upscale_array(m, b, lr, tile=512), 2, name, with_ssim=False).psnr
    assert psnr["fine-x2-real"] > psnr["fine-x2"] + 0.1
    deg = read_metadata(shipped_models()["fine-x2-real"])["training"]["degradations"]
    assert isinstance(deg, dict) and deg["clean_prob"] < 1
