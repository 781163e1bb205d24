import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from realtime_sr.checkpoints import load_weights, read_metadata
from realtime_sr.train.config import load_recipe, override
from realtime_sr.train.data import PatchDataset, find_training_images, find_validation_dir
from realtime_sr.train.loop import lr_factor, train

from helpers import write_image_folder

RECIPE = """
stage = "{stage}"
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
dense_features = 16
[data]
train_dirs = ["{data}"]
val_dir = "{val}"
lr_patch = 12
batch = 2
workers = 0
[optim]
steps = 6
lr = 1e-3
warmup_steps = 2
ema_decay = 0.9
[run]
val_every = 3
ckpt_every = 100
threads = 1
precision = "fp32"
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return write_image_folder(root / "train", n=3, size=(64, 48)), write_image_folder(root / "val", n=1, size=(40, 32))


def recipe(tmp_path, data, stage="fine"):
    p = tmp_path / f"tiny_{stage}.toml"
    p.write_text(RECIPE.format(stage=stage, data=data[0], val=data[1]))
    return p


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "realtime_sr", *map(str, args)], capture_output=True, text=True,
                          env=env)


def tensors(path):
    return load_weights(path)[0]


@pytest.mark.parametrize("stage", ["fine", "gan"])
def test_resume_continues_exactly(tmp_path, data, stage):
    r = recipe(tmp_path, data, stage)
    a = run_cli("train", "--recipe", r, "--out", tmp_path / "a", "--no-progress")
    assert a.returncode == 0, a.stderr
    b1 = run_cli("train", "--recipe", r, "--out", tmp_path / "b", "--no-progress", "--stop-after", "4")
    assert b1.returncode == 0, b1.stderr
    assert "stopped at step 4" in b1.stderr and not (tmp_path / "b" / f"{r.stem}.safetensors").exists()
    first_run_s = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["elapsed_s"]
    assert first_run_s > 0
    b2 = run_cli("train", "--recipe", r, "--out", tmp_path / "b", "--no-progress", "--resume")
    assert b2.returncode == 0, b2.stderr
    assert "resumed" in b2.stderr
    ta, tb = tensors(tmp_path / "a" / f"{r.stem}.safetensors"), tensors(tmp_path / "b" / f"{r.stem}.safetensors")
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
    ca = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    cb = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert ca["step"] == cb["step"] == 6
    # the training time in the metadata covers both runs of the resumed job
    assert read_metadata(tmp_path / "b" / f"{r.stem}.safetensors")["training"]["time_s"] > first_run_s
    assert ca["sched_g"] == cb["sched_g"]
    for k in ca["g"]:
        assert torch.equal(ca["g"][k], cb["g"][k])
    log = (tmp_path / "b" / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,") and any(line.split(",")[5] for line in log[1:])  # validation PSNR


def test_metadata_records_the_recipe_and_metrics(tmp_path, data):
    r = recipe(tmp_path, data)
    cfg = override(load_recipe(str(r)), eval_dirs=(str(data[1]),))
    path = train(cfg, out_dir=tmp_path / "run", progress=False, log=lambda m: None)
    meta = read_metadata(path)
    assert meta["arch"] == "srgan_generator" and meta["scale"] == 2 and meta["colour"] == "y"
    assert meta["training"]["steps"] == 6 and meta["training"]["time_s"] > 0
    assert "hardware" in meta["training"] and meta["recipe"].strip().startswith('stage = "fine"')
    assert meta["metrics"]["val"]["psnr"] > 10


def test_command_line_overrides_are_recorded_in_the_recipe_text(tmp_path, data):
    r = run_cli("train", "--recipe", recipe(tmp_path, data), "--out", tmp_path / "run", "--no-progress",
                "--set", "lr=5e-4", "--steps", "2")
    assert r.returncode == 0, r.stderr
    (weights,) = (tmp_path / "run").glob("*.safetensors")
    text = read_metadata(weights)["recipe"]
    assert "# overridden on the command line:" in text and "# lr = 0.0005" in text and "# steps = 2" in text
    assert load_recipe(str(recipe(tmp_path, data))).recipe_text in text  # the recipe itself, unchanged


def test_schedule_warms_up_then_decays(tmp_path, data):
    cfg = override(load_recipe(str(recipe(tmp_path, data))), steps=100, warmup_steps=10)
    f = [lr_factor(cfg, s) for s in range(100)]
    assert f[0] < f[5] < f[9] == 1.0
    assert f[50] < 1.0 and f[99] < f[50]
    step_cfg = override(cfg, schedule="step", milestones=(40, 80), gamma=0.5)
    assert lr_factor(step_cfg, 39) == 1.0 and lr_factor(step_cfg, 40) == 0.5 and lr_factor(step_cfg, 85) == 0.25


def test_patches_are_a_function_of_the_index(data):
    files = find_training_images([data[0]])
    ds = PatchDataset(files, scale=2, lr_patch=10, seed=1)
    lr1, hr1 = ds[7]
    lr2, hr2 = PatchDataset(files, scale=2, lr_patch=10, seed=1)[7]
    assert torch.equal(lr1, lr2) and torch.equal(hr1, hr2)
    assert lr1.shape == (1, 10, 10) and hr1.shape == (1, 20, 20)
    assert not torch.equal(ds[8][0], lr1)
    rgb = PatchDataset(files, scale=4, lr_patch=6, colour="rgb")[0]
    assert rgb[0].shape == (3, 6, 6) and rgb[1].shape == (3, 24, 24)


def test_div2k_layout_is_recognised(tmp_path, data):
    root = tmp_path / "DIV2K"
    shutil.copytree(data[0], root / "DIV2K_train_HR")
    shutil.copytree(data[1], root / "DIV2K_valid_HR")
    files = find_training_images([root, data[1]])
    assert sum("DIV2K_train_HR" in str(f) for f in files) == 3
    assert not any("DIV2K_valid_HR" in str(f) for f in files)
    assert find_validation_dir([root]) == root / "DIV2K_valid_HR"


def test_bad_recipe_and_data_are_one_line_errors(tmp_path, data):
    r = run_cli("train", "--recipe", "nonexistent_recipe")
    assert r.returncode != 0 and "unknown recipe" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("train", "--recipe", recipe(tmp_path, data), "--data", tmp_path / "missing", "--out", tmp_path / "o")
    assert r.returncode != 0 and "not found" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("train", "--recipe", recipe(tmp_path, data), "--set", "bogus=1")
    assert r.returncode != 0 and "unknown training settings: bogus" in r.stderr


def test_torchrun_trains_with_ddp_on_two_cpu_processes(tmp_path, data):
    r = recipe(tmp_path, data)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "realtime_sr", "train", "--recipe", str(r), "--out", str(tmp_path / "ddp"),
                        "--no-progress", "--device", "cpu"], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    meta = read_metadata(tmp_path / "ddp" / f"{r.stem}.safetensors")
    assert meta["training"]["world_size"] == 2 and meta["training"]["batch"] == 4


def test_recipes_for_every_shipped_model_parse():
    from realtime_sr.train.config import RECIPES_DIR

    names = sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))
    assert {"coarse_x2", "coarse_x4", "fine_x2", "fine_x4", "gan_x4"} <= set(names)
    for n in names:
        cfg = load_recipe(n)
        assert not any("Set5" in d or "Set14" in d for d in cfg.train_dirs)  # never train on the test sets


def test_init_from_applies_to_a_fresh_run_even_with_resume(tmp_path, data):
    r = recipe(tmp_path, data)
    cfg = load_recipe(str(r))
    parent = train(cfg, out_dir=tmp_path / "parent", progress=False, log=lambda m: None)
    child = override(load_recipe(str(recipe(tmp_path, data, "gan"))), init_from=str(parent), steps=2)
    said = []
    train(child, out_dir=tmp_path / "child", resume="auto", progress=False, log=said.append, stop_after=1)
    assert any(m.startswith("initialised") for m in said)
    ck = torch.load(tmp_path / "child" / "last.pt", weights_only=True)
    start = load_weights(parent)[0]
    # one small step away from the parent, not from a random initialisation
    params = [k for k in start if "running" not in k and "num_batches" not in k]
    assert all((ck["g"][k] - start[k]).abs().max() < 0.01 for k in params)


def test_a_deeper_generator_starts_as_the_shallower_one_it_grew_from():
    """init_from a network with fewer residual blocks: the shared tensors are copied and the new
    blocks add nothing, so the grown network computes exactly what its source does, and the new
    blocks still learn (their last batch norm is zero, not frozen)."""
    from realtime_sr.archs.generator import SRGANGenerator
    from realtime_sr.models import resolve
    from realtime_sr.train.loop import _init_from

    small = SRGANGenerator(scale=2, num_features=32, num_blocks=8).eval()
    small.load_state_dict(load_weights(resolve("fine-x2"))[0])
    big = SRGANGenerator(scale=2, num_features=32, num_blocks=12)
    said = _init_from(big, "fine-x2")
    assert "4 new residual blocks start as the identity" in said
    x = torch.rand(2, 1, 20, 20)
    big.eval()
    with torch.no_grad():
        assert torch.equal(big(x), small(x))
    big.train()
    big(x).mean().backward()
    assert big.body[11].body[-1].weight.grad.abs().sum() > 0
    # a network of the same depth is copied whole and nothing is zeroed
    same = SRGANGenerator(scale=2, num_features=32, num_blocks=8)
    assert "identity" not in _init_from(same, "fine-x2")
    assert same.body[7].body[-1].weight.abs().sum() > 0


def test_a_bank_holds_the_recipes_samples_and_trains_like_a_folder(tmp_path, data):
    """A bank made from a recipe holds exactly that recipe's samples (luma, uint8), a run on it
    trains and resumes, and its metadata says the data came from the bank."""
    from realtime_sr.train.bank import BankDataset, make_bank

    r = recipe(tmp_path, data)
    cfg = load_recipe(str(r))
    out = make_bank(cfg, 256, tmp_path / "bank", procs=1, log=lambda m: None)
    assert not (tmp_path / "bank.part").exists()
    ds = PatchDataset(find_training_images([data[0]]), scale=2, lr_patch=12, seed=cfg.seed)
    lr = torch.from_numpy(__import__("numpy").load(out / "lr.npy")[5].astype("float32")) / 255
    assert torch.allclose(lr, ds[5][0][0], atol=0.5 / 255 + 1e-6)
    bank = BankDataset(out, seed=0)
    a, b = bank[3], bank[3]
    assert a[0].shape == (1, 12, 12) and a[1].shape == (1, 24, 24) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="already exists"):
        make_bank(cfg, 256, out, procs=1, log=lambda m: None)
    with pytest.raises(ValueError, match="training data folder not found"):  # failed in a worker: nothing left
        make_bank(override(cfg, train_dirs=(str(tmp_path / "absent"),)), 256, tmp_path / "b2", procs=1,
                  log=lambda m: None)
    assert not (tmp_path / "b2").exists() and not (tmp_path / "b2.part").exists()
    res = run_cli("train", "--recipe", r, "--data", out, "--out", tmp_path / "run", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "data: bank" in res.stderr
    meta = read_metadata(tmp_path / "run" / f"{r.stem}.safetensors")
    assert meta["training"]["bank"]["count"] == 256 and meta["training"]["bank"]["recipe"] == r.stem
    wrong = run_cli("train", "--recipe", r, "--data", out, "--set", "lr_patch=16", "--out", tmp_path / "w",
                    "--no-progress")
    assert wrong.returncode != 0 and "bank of x2 12px" in wrong.stderr and "Traceback" not in wrong.stderr


def test_a_time_boxed_bank_keeps_a_prefix_of_the_same_samples(tmp_path, data):
    """With a deadline, making stops there and the bank holds the pairs made by then: the first
    entries of the untimed bank, whole chunks, readable like any other (the GPU session's banks)."""
    import numpy as np

    from realtime_sr.train.bank import CHUNK, make_bank, read_info

    cfg = load_recipe(str(recipe(tmp_path, data)))
    full = make_bank(cfg, 3 * CHUNK, tmp_path / "full", procs=1, log=lambda m: None)
    cut = make_bank(cfg, 3 * CHUNK, tmp_path / "cut", procs=1, deadline=time.time(), log=lambda m: None)
    info = read_info(cut)  # the arrays agree with bank.json
    assert info["count"] % CHUNK == 0 and CHUNK <= info["count"] < 3 * CHUNK
    n = info["count"]
    for name in ("lr.npy", "hr.npy"):
        assert np.array_equal(np.load(cut / name), np.load(full / name)[:n])
    assert not (tmp_path / "cut.part").exists() and sorted(p.name for p in cut.iterdir()) == [
        "bank.json", "hr.npy", "lr.npy"]


def test_a_multi_frame_generator_grows_from_a_single_frame_one():
    """A three-frame fine network started from a one-frame one computes exactly what it did (the
    neighbours' head weights start at zero) and learns from the neighbours (they get gradient);
    one frame given alone is a still (the frame repeated); the output is the middle frame's."""
    from realtime_sr.archs.generator import SRGANGenerator
    from realtime_sr.train.loop import copy_matching

    torch.manual_seed(0)
    one = SRGANGenerator(scale=2, num_features=8, num_blocks=2).eval()
    three = SRGANGenerator(scale=2, num_features=8, num_blocks=2, frames=3)
    copied, _ = copy_matching(three, one.state_dict())
    assert copied == len(one.state_dict())
    three.eval()
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        assert torch.allclose(three(x), one(x[:, 1:2]), atol=1e-6)
        assert three(x[:, 1:2]).shape == (1, 1, 24, 20)
        trained = SRGANGenerator(scale=2, num_features=8, num_blocks=2, frames=3).eval()
        still = x[:, 1:2].repeat(1, 3, 1, 1)
        assert torch.allclose(trained(x[:, 1:2]), trained(still)) and not torch.allclose(trained(x), trained(still))
    three.train()
    three(x).abs().mean().backward()
    assert three.head[0].weight.grad[:, 0].abs().sum() > 0
    with pytest.raises(ValueError, match="odd number of frames"):
        SRGANGenerator(scale=2, frames=2)
    spread = SRGANGenerator(scale=2, num_features=8, num_blocks=2, frames=3)
    copy_matching(spread, one.state_dict(), frames="spread")
    spread.eval()
    with torch.no_grad():  # the head shared among the frames: the source exactly on a still, not on motion
        assert torch.allclose(spread(still), one(x[:, 1:2]), atol=1e-5)
        assert not torch.allclose(spread(x), one(x[:, 1:2]), atol=1e-3)
        assert torch.allclose(spread.head[0].weight[:, 0], spread.head[0].weight[:, 2])


def test_a_temporal_bank_feeds_multi_frame_and_single_frame_networks(tmp_path, data):
    """A bank of three-frame samples stores (N, 3, p, p); a three-frame network trains on it, a
    one-frame network gets the middle frames (the same pairs), and a mismatch is a one-line error."""
    import numpy as np

    from realtime_sr.train.bank import BankDataset, make_bank

    r = recipe(tmp_path, data)
    text = r.read_text().replace("num_blocks = 1\n", "num_blocks = 1\nframes = 3\n", 1)
    r.write_text(text + "[degrade]\ntemporal = 1\nclean_prob = 0.5\n")
    cfg = load_recipe(str(r))
    out = make_bank(cfg, 256, tmp_path / "bank", procs=1, log=lambda m: None)
    lr = np.load(out / "lr.npy")
    assert lr.shape == (256, 3, 12, 12) and read_bank_frames(out) == 3
    three, one = BankDataset(out, seed=0, frames=3), BankDataset(out, seed=0)
    assert three[7][0].shape == (3, 12, 12) and torch.equal(one[7][0][0], three[7][0][1])
    with pytest.raises(ValueError, match="3-frame samples, but the network takes 5"):
        BankDataset(out, frames=5)
    res = run_cli("train", "--recipe", r, "--data", out, "--out", tmp_path / "run", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert read_metadata(tmp_path / "run" / f"{r.stem}.safetensors")["hparams"]["frames"] == 3
    r.write_text(text.replace("frames = 3\n", "") + "[degrade]\ntemporal = 1\n")
    res = run_cli("train", "--recipe", r, "--out", tmp_path / "bad", "--no-progress")
    assert res.returncode != 0 and "3-frame samples, but the network takes 1" in res.stderr
    assert "Traceback" not in res.stderr


def read_bank_frames(path):
    import json

    return json.loads((path / "bank.json").read_text())["frames"]
