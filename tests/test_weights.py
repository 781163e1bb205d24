import json
import subprocess
import sys

import pytest
import torch

from realtime_sr.checkpoints import build_network, load_weights, read_metadata, save_weights
from realtime_sr.errors import RealtimeSRError, WeightsError
from realtime_sr.models import load_model

from helpers import tiny_model


def test_roundtrip_keeps_tensors_and_metadata(tmp_path):
    p = tiny_model(tmp_path / "m.safetensors", arch="srgan_generator", scale=4)
    net, meta = build_network(p)
    assert meta["arch"] == "srgan_generator" and meta["scale"] == 4 and meta["colour"] == "y"
    state, _ = load_weights(p)
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k])


def test_loading_never_unpickles(tmp_path):
    # a pickle (torch.save) is refused, not executed
    p = tmp_path / "evil.safetensors"
    torch.save({"x": torch.zeros(1)}, p)
    with pytest.raises(WeightsError, match="not a valid safetensors"):
        read_metadata(p)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "no-meta", "mismatch", "missing"])
def test_bad_weights_give_one_clear_error(tmp_path, damage):
    p = tiny_model(tmp_path / "m.safetensors")
    if damage == "truncate":
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    elif damage == "garbage":
        p.write_bytes(b"\x00" * 64 + b"not a weights file" * 10)
    elif damage == "empty":
        p.write_bytes(b"")
    elif damage == "no-meta":
        from safetensors.torch import save_file
        save_file({"w": torch.zeros(2)}, str(p))
    elif damage == "mismatch":
        state, meta = load_weights(p)
        meta["hparams"]["d"] = 16
        save_weights(p, state, meta)
    elif damage == "missing":
        p = tmp_path / "nope.safetensors"
    with pytest.raises(RealtimeSRError) as info:
        load_model(p)
    assert isinstance(info.value, WeightsError) or damage == "missing"
    msg = str(info.value)
    assert "\n" not in msg and str(p) in msg


def test_cli_reports_a_corrupt_model_in_one_line(tmp_path):
    p = tiny_model(tmp_path / "m.safetensors")
    p.write_bytes(p.read_bytes()[:100])
    img = tmp_path / "in.png"
    from PIL import Image
    Image.new("RGB", (16, 16)).save(img)
    r = subprocess.run([sys.executable, "-m", "realtime_sr", "image", str(img), str(tmp_path / "o.png"),
                        "--model", str(p)], capture_output=True, text=True)
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "m.safetensors" in r.stderr
    assert not (tmp_path / "o.png").exists()


def test_metadata_is_json_in_the_header(tmp_path):
    p = tiny_model(tmp_path / "m.safetensors")
    from safetensors import safe_open
    with safe_open(str(p), framework="pt") as f:
        meta = json.loads(f.metadata()["realtime_sr"])
    assert meta["hparams"]["d"] == 8
