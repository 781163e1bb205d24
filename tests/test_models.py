"""The model registry's variant axis: names, defaults per command, and routed pairs of one variant."""

import shutil

import pytest

from realtime_sr import models
from realtime_sr.cli import _apply_variant, build_parser
from realtime_sr.errors import ModelNotFoundError, UsageError


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A weights folder with clean coarse/fine x2, their real twins, and a real-only GAN."""
    src = models.WEIGHTS_DIR
    for stem, origin in (("coarse_x2", "coarse_x2"), ("fine_x2", "fine_x2"), ("coarse_x2_real", "coarse_x2"),
                         ("fine_x2_real", "fine_x2"), ("gan_x2_real", "fine_x2")):
        shutil.copy(src / f"{origin}.safetensors", tmp_path / f"{stem}.safetensors")
    monkeypatch.setattr(models, "WEIGHTS_DIR", tmp_path)
    return tmp_path


def test_names_carry_the_variant(registry):
    assert set(models.shipped_models()) == {"coarse-x2", "fine-x2", "coarse-x2-real", "fine-x2-real", "gan-x2-real"}
    assert models.model_name("fine", 2, "real") == "fine-x2-real" and models.model_name("fine", 4) == "fine-x4"
    assert models.variant_of("fine-x2-real") == "real" and models.variant_of("coarse-x4") == "clean"
    with pytest.raises(UsageError, match="--variant must be one of"):
        models.model_name("fine", 2, "noisy")


def test_defaults_fall_back_to_the_variant_that_is_shipped(registry):
    assert models.default_name("fine", 2, "real") == "fine-x2-real"
    assert models.default_name("fine", 2, "clean") == "fine-x2"
    assert models.default_name("gan", 2, "clean") == "gan-x2-real"  # the GAN ships as real only
    assert models.resolve(None, scale=2, mode="coarse", variant="real") == registry / "coarse_x2_real.safetensors"
    with pytest.raises(ModelNotFoundError, match="unknown model"):
        models.resolve("fine-x2-noisy")


def test_routed_pairs_coarse_and_fine_of_one_variant(registry):
    from realtime_sr.routing import load_for_mode

    real = load_for_mode("fine-x2-real", mode="routed")
    assert real.coarse.path.name == "coarse_x2_real.safetensors" and real.name == "routed-x2-real"
    clean = load_for_mode(None, scale=2, mode="routed")
    assert clean.coarse.path.name == "coarse_x2.safetensors" and clean.name == "routed-x2"


@pytest.mark.parametrize("argv, model, variant", [
    (["video", "in.mp4", "out.mp4", "--mode", "routed"], None, "auto"),  # chosen by the input (test_qp.py)
    (["video", "in.mp4", "out.mp4", "--mode", "routed", "--variant", "real"], "fine-x2-real", "real"),
    (["video", "in.mp4", "out.mp4", "--variant", "clean"], None, "clean"),
    (["preview", "0", "--mode", "coarse"], None, "auto"),  # chosen by the source (test_qp.py)
    (["preview", "0", "--variant", "real", "--mode", "fine"], "fine-x2-real", "real"),
    (["image", "a.png", "b.png", "--mode", "coarse"], None, "clean"),
    (["image", "a.png", "b.png", "--variant", "auto"], None, "clean"),
    (["eval", "Set14", "--variant", "auto"], None, None),  # eval: every shipped variant
    (["image", "a.png", "b.png", "--mode", "gan", "--variant", "real"], "gan-x2-real", "real"),
])
def test_commands_default_to_their_variant(registry, argv, model, variant):
    a = build_parser().parse_args(argv)
    _apply_variant(a)
    assert (a.model, a.variant) == (model, variant)


def test_interpolation_blends_two_networks_of_one_architecture(tmp_path):
    import torch

    from realtime_sr.checkpoints import load_weights, read_metadata
    from realtime_sr.train.interp import interpolate

    src = models.WEIGHTS_DIR
    a, b = src / "fine_x2.safetensors", src / "fine_x2_real.safetensors"
    for alpha in (0.0, 0.25, 1.0):
        out = interpolate(a, b, alpha, tmp_path / f"m{alpha}.safetensors", log=lambda m: None)
        got, ta, tb = load_weights(out)[0], load_weights(a)[0], load_weights(b)[0]
        for k in ("head.0.weight", "tail.weight"):
            assert torch.allclose(got[k], alpha * tb[k] + (1 - alpha) * ta[k], atol=1e-6)
        assert read_metadata(out)["training"]["interpolation"]["alpha"] == alpha
    with pytest.raises(UsageError, match="not the same architecture"):
        interpolate(a, src / "coarse_x2.safetensors", 0.5, tmp_path / "bad.safetensors", log=lambda m: None)
    with pytest.raises(UsageError, match="alpha must be in"):
        interpolate(a, b, 1.5, tmp_path / "bad.safetensors", log=lambda m: None)
    assert not (tmp_path / "bad.safetensors").exists()



def grown_from(a, out, **change):
    """A generator with ``change`` to ``a``'s hparams, started from ``a`` (``init_from``) and then
    moved a little, as a short fine-tune would, saved to ``out``."""
    import torch

    from realtime_sr.archs.generator import SRGANGenerator
    from realtime_sr.checkpoints import read_metadata, save_weights
    from realtime_sr.train.loop import _init_from

    ma = read_metadata(a)
    hparams = {**ma["hparams"], **change}
    net = SRGANGenerator(**hparams)
    _init_from(net, str(a))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return save_weights(out, net.state_dict(), {**ma, "hparams": hparams})


def test_interpolation_grows_a_shallower_a_to_the_deeper_b(tmp_path):
    """b grown from a (more residual blocks, init_from a): a is taken at b's depth with the new
    blocks as the identity, so alpha 0 computes what a does and the result has b's depth."""
    import torch

    from realtime_sr.checkpoints import build_network, load_weights, read_metadata
    from realtime_sr.train.interp import interpolate

    a = models.WEIGHTS_DIR / "fine_x2.safetensors"
    b = grown_from(a, tmp_path / "deep.safetensors", num_blocks=10)
    x = torch.rand(1, 1, 16, 16)
    shallow = build_network(a)[0].eval()
    for alpha in (0.0, 0.5):
        out = interpolate(a, b, alpha, tmp_path / f"m{alpha}.safetensors", log=lambda m: None)
        meta = read_metadata(out)
        assert meta["hparams"]["num_blocks"] == 10 and "grown" in meta["training"]["interpolation"]["a"]
        net = build_network(out)[0].eval()
        if alpha == 0.0:
            with torch.no_grad():
                assert torch.allclose(net(x), shallow(x), atol=1e-6)
        else:
            got, tb = load_weights(out)[0], load_weights(b)[0]
            assert torch.allclose(got["body.9.body.4.weight"], 0.5 * tb["body.9.body.4.weight"], atol=1e-6)

def test_interpolation_with_a_base_carries_the_fine_tuning_onto_a_newer_network(tmp_path):
    """--base: a + alpha * (b - base), for a real model whose clean parent has trained further."""
    import torch

    from realtime_sr.checkpoints import load_weights, read_metadata, save_weights
    from realtime_sr.train.interp import interpolate

    src = models.WEIGHTS_DIR
    base, b = src / "fine_x2.safetensors", src / "fine_x2_real.safetensors"
    sb, mb = load_weights(base)
    newer = save_weights(tmp_path / "newer.safetensors",
                         {k: v + 0.01 if v.is_floating_point() else v for k, v in sb.items()}, mb)
    out = interpolate(newer, b, 0.5, tmp_path / "tv.safetensors", base=base, log=lambda m: None)
    got, tn, tb, t0 = (load_weights(p)[0] for p in (out, newer, b, base))
    for k in ("head.0.weight", "tail.weight"):
        assert torch.allclose(got[k], tn[k] + 0.5 * (tb[k] - t0[k]), atol=1e-6)
    rec = read_metadata(out)["training"]["interpolation"]
    assert rec["base"]["file"] == "fine_x2.safetensors" and rec["rule"].startswith("a + alpha")
    with pytest.raises(UsageError, match="not the same architecture"):
        interpolate(newer, b, 0.5, tmp_path / "bad.safetensors", base=src / "coarse_x2.safetensors",
                    log=lambda m: None)


def test_every_shipped_model_has_its_bf16_gate_recorded():
    """realtime_sr/weights/gates.json holds a passed bf16 gate for the current bytes of every shipped
    weights file (re-record with `realtime-sr export --precision bf16 --record ...` after retraining)."""
    import hashlib
    import json

    from realtime_sr.models import shipped_models
    from realtime_sr.runtime import RELEASE_GATES

    rec = json.loads(RELEASE_GATES.read_text())
    for name, path in shipped_models().items():
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        assert sha in rec, f"{name}: no bf16 gate recorded for these weights"
        gate = rec[sha]["bf16"]
        assert rec[sha]["model"] == name and gate["set"] == "Set14" and gate["passed"] is True
        assert gate["drop_db"] <= gate["tolerance_db"] == 0.05


def test_every_shipped_coarse_and_fine_model_has_its_int8_gate_recorded():
    """The int8 graphs `video` and `preview` take under --precision auto on CPUs without AMX are
    gated at release: a passed Set14 entry with what identifies the graph, for the current bytes of
    every shipped coarse and fine model (re-record with `realtime-sr export --precision int8
    --record ...` after retraining; without it auto silently keeps bf16/fp32 for that model)."""
    import hashlib
    import json

    from realtime_sr.export.artifacts import SAMPLE_SOURCE
    from realtime_sr.export.cache import EXPORT_VERSION
    from realtime_sr.export.gate import INT8_IDENTITY
    from realtime_sr.models import shipped_models
    from realtime_sr.runtime import RELEASE_GATES

    rec = json.loads(RELEASE_GATES.read_text())
    names = [n for n in shipped_models() if n.startswith(("coarse-", "fine-"))]
    assert len(names) >= 4
    for name in names:
        sha = hashlib.sha256(shipped_models()[name].read_bytes()).hexdigest()
        gate = rec.get(sha, {}).get("int8")
        assert gate, f"{name}: no int8 gate recorded for these weights"
        assert gate["set"] == "Set14" and gate["passed"] is True and gate["drop_db"] <= gate["tolerance_db"] == 0.15
        assert all(k in gate for k in INT8_IDENTITY)
        assert gate["calibration_source"] == SAMPLE_SOURCE and gate["export_version"] == EXPORT_VERSION


def test_interpolation_grows_a_one_frame_a_to_the_multi_frame_b(tmp_path):
    """b a three-frame network grown from the one-frame a: alpha 0 computes what a does on the
    middle frame, and the blend has b's three frames."""
    import torch

    from realtime_sr.checkpoints import build_network, read_metadata
    from realtime_sr.train.interp import interpolate

    a = models.WEIGHTS_DIR / "fine_x2.safetensors"
    b = grown_from(a, tmp_path / "t3.safetensors", frames=3)
    x = torch.rand(1, 3, 16, 16)
    one = build_network(a)[0].eval()
    out = interpolate(a, b, 0.0, tmp_path / "m.safetensors", log=lambda m: None)
    meta = read_metadata(out)
    assert meta["hparams"]["frames"] == 3 and "neighbour frames" in meta["training"]["interpolation"]["a"]["grown"]
    with torch.no_grad():
        assert torch.allclose(build_network(out)[0].eval()(x), one(x[:, 1:2]), atol=1e-5)
