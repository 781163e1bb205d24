"""Two runs on one OUT: the second is refused naming the first; a killed run's lock does not block --resume."""

from __future__ import annotations

import os
import signal

import pytest
from video_helpers import FAST, make_clip, model, run_cli, start_run_and_pause, video_facts  # noqa: F401


def test_second_run_on_a_busy_output_is_refused_and_the_first_finishes(tmp_path, model, capsys):
    src = make_clip(tmp_path / "in.mp4", frames=30, width=96, height=64, audio=True)
    out = tmp_path / "out.mp4"
    first = start_run_and_pause(src, out, model)
    try:
        for extra in (["--resume"], [], ["-y"]):
            assert run_cli("video", src, out, "--model", model, "--segment-seconds", "0.2", *extra, *FAST) == 1
            err = capsys.readouterr().err.strip().splitlines()
            assert err[-1] == (f"realtime-sr: error: {out}: another realtime-sr run (pid {first.pid}) is writing "
                               f"it; wait for it to finish or stop it, then use --resume")
        assert (tmp_path / ".out.mp4.rsr-work" / "manifest.json").exists()  # the first run's work untouched
    finally:
        first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert video_facts(out)["times"] == video_facts(src)["times"]
    assert not list(tmp_path.glob(".out.mp4.*")), "lock or work files left beside OUT"


def test_a_killed_runs_lock_does_not_block_resume(tmp_path, model, capsys):
    src = make_clip(tmp_path / "in.mp4", frames=30, width=96, height=64, audio=True)
    out = tmp_path / "out.mp4"
    first = start_run_and_pause(src, out, model)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    assert (tmp_path / ".out.mp4.rsr-lock").read_text().strip() == str(first.pid)  # stale: still on disk
    capsys.readouterr()
    assert run_cli("video", src, out, "--model", model, "--segment-seconds", "0.2", "--resume", *FAST) == 0
    assert "resuming:" in capsys.readouterr().err
    a, b = video_facts(src), video_facts(out)
    assert b["times"] == a["times"] and b["duration"] == a["duration"]
    assert not (tmp_path / ".out.mp4.rsr-lock").exists()


def test_lock_on_a_read_only_folder_is_a_one_line_error(tmp_path, model, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    src = make_clip(tmp_path / "in.mp4", frames=3)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert run_cli("video", src, ro / "out.mp4", "--model", model, *FAST) == 1
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith("realtime-sr: error: ")
    finally:
        ro.chmod(0o755)
