"""The prepared GPU session (benchmarks/gpu_session.sh): its patch file and a CPU dry run of the whole script.

No GPU is needed: the dry run trains, packs, tests, times and upscales a clip on the CPU with a
tiny budget, which is what keeps the script working while no GPU is lent.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_train  # noqa: E402
import make_patches  # noqa: E402


def _images(folder: Path, sizes=((70, 50), (40, 100), (20, 20))) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for k, (h, w) in enumerate(sizes):
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 3, yy * 2, (xx + yy) * 2], -1) % 256
        img = (base + rng.integers(0, 40, (h, w, 3))).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"im{k}.png")
    return folder


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_patches_are_grid_crops_deterministic_and_pack_losslessly(tmp_path):
    src = _images(tmp_path / "src")
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    assert make_patches.main([str(src), "--out", str(a), "--size", "16", "--pack", str(tmp_path / "a.tar")]) == 0
    assert make_patches.main([str(src), "--out", str(b), "--size", "16"]) == 0
    assert _sha(a) == _sha(b)  # same sources and flags, same bytes
    crops = np.load(a)
    # 70x50 gives a 4x3 grid, 40x100 a 2x6 grid, 20x20 one crop
    assert crops.shape == (12 + 12 + 1, 16, 16, 3) and crops.dtype == np.uint8
    first = np.asarray(Image.open(src / "im0.png"))
    y0, x0 = (70 - 64) // 2, (50 - 48) // 2  # the grid is centred
    np.testing.assert_array_equal(crops[0], first[y0:y0 + 16, x0:x0 + 16])
    # the size limit keeps a seeded subset, in source order
    limit = tmp_path / "c.npy"
    assert make_patches.main([str(src), "--out", str(limit), "--size", "16", "--max-mib", str(5 * 768 / 2**20)]) == 0
    sub = np.load(limit)
    assert len(sub) == 5 and all(any((c == crops).all(axis=(1, 2, 3))) for c in sub)
    # the packed form rebuilds the same array, and a damaged one is refused without leaving a file
    assert make_patches.main(["--unpack", str(tmp_path / "a.tar"), "--out", str(tmp_path / "u.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "u.npy"), crops)
    (tmp_path / "bad.tar").write_bytes((tmp_path / "a.tar").read_bytes()[:3000])
    assert make_patches.main(["--unpack", str(tmp_path / "bad.tar"), "--out", str(tmp_path / "v.npy")]) == 2
    assert not (tmp_path / "v.npy").exists() and not list(tmp_path.glob(".v.npy*"))


def test_patch_errors_are_one_line(tmp_path, capsys):
    assert make_patches.main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("make_patches.py: error: ") and "\n" not in err and "not a folder" in err
    src = _images(tmp_path / "small", sizes=((10, 10),))
    assert make_patches.main([str(src), "--out", str(tmp_path / "x.npy"), "--size", "16"]) == 2
    assert "16x16 or larger" in capsys.readouterr().err
    assert not (tmp_path / "x.npy").exists()


def test_plan_skips_missing_recipes_and_scales_step_schedules(tmp_path):
    runs, skipped = gpu_train.plan_runs(["no_such_recipe|fine_x2", "nothing_here"], tmp_path)
    assert [r.recipe for r in runs] == ["fine_x2"] and "shipped" in runs[0].source
    assert skipped == [{"recipe": "nothing_here", "status": "skipped", "reason": "no such recipe in this checkout"}]
    gan = gpu_train.Run("gan_x4", tmp_path, {"schedule": "step", "steps": 400, "milestones": [300]})
    t = gpu_train.Trainer([gan], data=tmp_path, out=tmp_path, device="cpu", deadline=0, calib_steps=1,
                          extra_set=[], eval_on=False)
    assert t.schedule_args(gan, 2000) == ["--steps", "2000", "--set", "milestones=[1500]"]
    fine = gpu_train.Run("fine_x2", tmp_path, {"schedule": "cosine", "steps": 4000, "warmup_steps": 200})
    assert t.schedule_args(fine, 5000) == ["--steps", "5000"]
    assert t.schedule_args(fine, 500) == ["--steps", "500", "--set", "warmup_steps=50"]  # the decay still happens
    assert gpu_train.steps_that_fit(100, 30.0) == 2700 and gpu_train.steps_that_fit(-5, 30.0) == 0
    log = tmp_path / "log.csv"
    log.write_text("step,loss_g,loss_d,lr,it_s,val_psnr,val_ssim\n50,1,,1,3.0,,\n100,1,,1,7.5,,\n")
    assert gpu_train._last_rate(log, 0) == 7.5 and gpu_train._last_rate(log, 50) is None


def test_runs_start_from_committed_checkpoints_and_share_the_cores(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_train, "CHECKPOINTS", tmp_path / "checkpoints")
    monkeypatch.setattr(gpu_train, "WEIGHTS", tmp_path / "no_weights")  # none shipped under the recipes' names
    for recipe, step in (("fine_x2", 1000), ("fine_x4", 3500)):
        (tmp_path / "checkpoints" / recipe).mkdir(parents=True)
        torch.save({"step": step, "config": {"steps": 3500}}, tmp_path / "checkpoints" / recipe / "last.pt")
    runs, _ = gpu_train.plan_runs(["fine_x2", "fine_x4", "fine_x2_real"], tmp_path)
    unfinished, finished, real = runs
    assert unfinished.resume_from.name == "last.pt" and unfinished.start_step == 1000 and unfinished.init_from is None
    assert finished.resume_from is None and finished.init_from.endswith("fine_x4/last.pt")  # warm start from its EMA
    assert real.resume_from is None and real.init_from == "fine-x2"  # the recipe's own init_from
    # the real-world run reads a bank with one worker; the clean ones share the rest
    assert gpu_train.worker_shares(runs, 16) == {"fine_x2": 6, "fine_x4": 6, "fine_x2_real": 1}
    assert gpu_train.worker_shares(runs, 2) == {"fine_x2": 1, "fine_x4": 1, "fine_x2_real": 1}


def test_dry_run_of_the_whole_session_on_cpu(tmp_path):
    """``gpu_session.sh --minutes 0.2`` without CUDA: every stage runs, small, and OUT is what a
    device machine can return (at most 8 files, under 16 MiB each, plain names)."""
    src = _images(tmp_path / "src", sizes=((96, 96), (96, 144)))
    data = tmp_path / "patches.npy"
    assert make_patches.main([str(src), "--out", str(data), "--size", "48"]) == 0
    before = _sha(data)
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "CUDA_VISIBLE_DEVICES": ""}
    # a budget the dry run would overrun, so the checks' floors and the overrun allowance keep every
    # stage running; the second training chunk has a fixed length instead of what fits in time
    cmd = ["bash", str(ROOT / "benchmarks" / "gpu_session.sh"), "--minutes", "0.2", "--train-share", "0.9",
           "--recipes", "fine_x2,no_such_recipe", "--calib-steps", "2", "--main-steps", "2",
           "--set", "batch=2", "--set", "lr_patch=12", "--data", str(data), "--work", str(tmp_path / "work"),
           "--eval", "off", "--overrun", "600", "--check-floor", "120", "--pack-every", "1"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert _sha(data) == before  # the input is never modified

    files = sorted(p for p in out.iterdir())
    assert len(files) <= 8 and all(p.is_file() and p.stat().st_size < 16 * 2**20 for p in files)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", p.name) for p in files)
    assert {p.name for p in files} == {"summary.md", "session.log", "checks.tar", "train_fine_x2.tar"}

    summary = (out / "summary.md").read_text()
    assert "| fine_x2 | done |" in summary and "no_such_recipe | skipped" in summary
    with tarfile.open(out / "train_fine_x2.tar") as tar:
        names = tar.getnames()
        assert {"last.pt", "log.csv", "train.log", "run.json", "fine_x2.safetensors"} <= set(names)
        tar.extractall(tmp_path / "run", filter="data")
    from realtime_sr import load_model

    run = tmp_path / "run"
    final = load_model(str(run / "fine_x2.safetensors"))  # written by the CLI at the end of the schedule
    assert final.scale == 2 and final.meta["training"]["steps"] == 4 and final.meta["training"]["batch"] == 2
    assert json.loads((run / "run.json").read_text())["source"].startswith("warm start from the shipped")
    # a run cut short returns the EMA of its newest checkpoint as weights with metadata
    partial = load_model(str(gpu_train.export_weights(run / "last.pt", run / "p.safetensors", "fine_x2")))
    assert partial.meta["training"]["steps"] == 4 and partial.meta["training"]["complete"] is False
    assert partial.meta["name"] == final.meta["name"] == "fine-x2"  # named as the CLI names it
    for key, value in partial.net.state_dict().items():
        assert torch.equal(value, final.net.state_dict()[key]), key

    with tarfile.open(out / "checks.tar") as tar:
        tar.extractall(tmp_path / "checks", filter="data")
    checks = json.loads((tmp_path / "checks" / "summary.json").read_text())
    assert checks["finished"] and {c["check"]: c["status"] for c in checks["checks"]} == {
        "tests": "passed", "speed": "ran", "video coarse": "passed"}
    speed = (tmp_path / "checks" / "speed.csv").read_text().splitlines()
    assert any(",coarse-x2,torch-eager,cpu,fp32,64x36," in row for row in speed)
    assert any(row.startswith("backend,routed,") and ",fp32," in row and "tiles" in row for row in speed)
    assert "clip_x2_coarse" not in summary and "coarse fp32: ok" in (tmp_path / "checks" / "video.txt").read_text()


def test_preflight_adds_up_what_travels(tmp_path, monkeypatch, capsys):
    import gpu_session

    (tmp_path / "whl").mkdir()
    (tmp_path / "whl" / "av-1.0-py3-none-any.whl").write_bytes(b"w" * 1000)
    monkeypatch.setattr(gpu_session, "CARRY", (str(tmp_path / "patches.tar"), str(tmp_path / "whl")))
    assert gpu_session.preflight() == 1  # no patch file yet
    assert "MISSING" in capsys.readouterr().out
    (tmp_path / "patches.tar").write_bytes(b"p" * 5000)
    monkeypatch.setattr(gpu_session, "TRAVEL_LIMIT", 10**12)
    assert gpu_session.preflight() == 0
    out = capsys.readouterr().out
    assert "ready" in out and "bash benchmarks/gpu_session.sh" in out and "av-1.0-py3-none-any.whl" in out
    monkeypatch.setattr(gpu_session, "TRAVEL_LIMIT", 4000)  # the tree alone is larger than that
    assert gpu_session.preflight() == 1 and "NOT ready" in capsys.readouterr().out


def test_a_stage_that_breaks_is_recorded_and_the_session_goes_on(tmp_path):
    import gpu_session

    s = gpu_session.Session(gpu_session.parse_args(["--out", str(tmp_path / "o"), "--work", str(tmp_path / "w")]))
    s.stage("tests", lambda: 1 / 0, s.checks, "check")
    s.stage("speed", lambda: s.checks.append({"check": "speed", "status": "ran", "reason": "a | b", "seconds": 1}),
            s.checks, "check")
    s.logf.close()
    assert [c["status"] for c in s.checks] == ["failed", "ran"] and "ZeroDivisionError" in s.checks[0]["reason"]
    summary = (tmp_path / "o" / "summary.md").read_text()
    assert "| tests | failed |" in summary and "a \\| b" in summary  # a pipe in a note does not split the table


@pytest.mark.parametrize("flags, message", [(["--minutes", "0"], "--minutes must be positive"),
                                            (["--data", "/no/such/patches.npy"], "no such file")])
def test_bad_flags_are_one_line_errors(tmp_path, flags, message):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_session.py"), "--out", str(tmp_path / "o"),
                        *flags], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
