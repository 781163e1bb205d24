"""The GPU session's checks (benchmarks/gpu_session.py), each time-boxed to its share of the time left.

* ``tests``: the gpu- and tensorrt-marked tests;
* ``speed``: benchmarks/gpu_speed.py in its own process (torch CUDA fp32/fp16/bf16 rows, TensorRT
  where it imports), on the CPU at a tiny size in a dry run;
* ``video``: ``realtime-sr video`` on a generated clip, 1920x1080 -> 3840x2160 (fine, then routed,
  fp16) on a GPU, 96x54 coarse on a CPU; passed when the output has every frame at twice the size.

A check that starts gets at least ``--check-floor`` seconds; one not yet started when the session
is more than ``--overrun`` seconds past its budget is skipped, with that reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import gpu_train

ROOT = Path(__file__).resolve().parents[1]
CHECK_SHARES = {"tests": 0.3, "speed": 0.4, "video": 0.3}


class Checks:
    """Mixed into the session: needs ``a``, ``log``, ``left``, ``deadline``, ``device``, ``env``,
    ``work``, ``checks_dir`` and the ``checks`` list it appends to."""

    def budget(self, name: str) -> float | None:
        """This check's share of the time left, or None when too little is left to start it."""
        names = list(CHECK_SHARES)
        rest = sum(CHECK_SHARES[n] for n in names[names.index(name):])
        left = self.left()
        if left < -self.a.overrun:
            self.checks.append({"check": name, "status": "skipped", "seconds": 0,
                                "reason": f"out of time ({-left:.0f} s past the budget)"})
            return None
        return max(self.a.check_floor, left * CHECK_SHARES[name] / rest)

    def check_tests(self) -> None:
        timeout = self.budget("tests")
        if timeout is None:
            return
        files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                       if "mark.gpu" in p.read_text() or "mark.tensorrt" in p.read_text())
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu or tensorrt", *files,
               f"--junitxml={self.checks_dir / 'gpu_tests.xml'}"]
        r = run_cmd(cmd, timeout)
        (self.checks_dir / "gpu_tests.txt").write_text(r["output"])
        last = next((ln for ln in reversed(r["output"].splitlines()) if ln.strip()), "")
        status = "passed" if r["rc"] == 0 else ("timed out" if r["rc"] is None else "failed")
        self.checks.append({"check": "tests", "status": status, "reason": last[-200:], "seconds": r["seconds"]})
        self.log(f"gpu tests: {status}: {last}")

    def check_speed(self) -> None:
        timeout = self.budget("speed")
        if timeout is None:
            return
        cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_speed.py"), "--csv", str(self.checks_dir / "speed.csv"),
               "--device", self.device, "--seconds", f"{max(5.0, timeout - 20):.0f}"]
        if self.device == "cpu":
            cmd += ["--frames", "64x36", "--scales", "2", "--runs", "1", "--warmup", "0"]
        r = run_cmd(cmd, timeout + 15)
        (self.checks_dir / "speed.txt").write_text(r["output"])
        status = "ran" if r["rc"] == 0 else ("timed out" if r["rc"] is None else "failed")
        rows = csv_rows(self.checks_dir / "speed.csv")
        timed = [x for x in rows if x.get("p50_ms")]
        self.checks.append({"check": "speed", "status": status, "seconds": r["seconds"],
                            "reason": f"{len(timed)} rows timed, {len(rows) - len(timed)} not (see speed.csv)"})
        self.log(f"speed: {status}, {len(timed)} of {len(rows)} rows timed")

    def check_video(self) -> None:
        timeout = self.budget("video")
        if timeout is None:
            return
        if str(self.env.get("av", "not importable")).startswith("not importable"):
            self.checks.append({"check": "video", "status": "skipped", "seconds": 0,
                                "reason": f"PyAV {self.env.get('av')}: carry its wheel in .gpu/whl (docs/gpu.md)"})
            return
        from realtime_sr.pipeline.sample import make_sample_video

        cuda = self.device == "cuda"
        w, h, secs = (1920, 1080, 2.0) if cuda else (96, 54, 0.2)
        t0 = time.time()
        clip = make_sample_video(self.work / "clip_in.mp4", width=w, height=h, seconds=secs)
        frames_in = (probe(clip) or {}).get("frames")
        report = [f"input: {clip.name} {w}x{h}, {frames_in} frames, made in {time.time() - t0:.1f} s"]
        modes = [("fine", "fp16"), ("routed", "fp16")] if cuda else [("coarse", "fp32")]
        for mode, prec in modes:
            left = timeout - (time.time() - t0)
            if left < 10:
                report.append(f"{mode}: skipped (out of time)")
                continue
            dst = self.work / f"clip_x2_{mode}.mp4"
            cmd = [sys.executable, "-m", "realtime_sr", "video", str(clip), str(dst), "--scale", "2", "--mode", mode,
                   "--backend", "torch", "--device", self.device, "--precision", prec, "--preset", "veryfast",
                   "-y", "--no-progress"]
            r = run_cmd(cmd, left)
            got = probe(dst) if r["rc"] == 0 else None
            ok = got is not None and got["size"] == (2 * w, 2 * h) and got["frames"] == frames_in
            tail = r["output"].strip().splitlines()[-1][-200:] if r["output"].strip() else ""
            line = f"{mode} {prec}: {'ok' if ok else 'FAILED'} rc {r['rc']} in {r['seconds']:.1f} s; output {got}; {tail}"
            report.append(line)
            self.checks.append({"check": f"video {mode}", "status": "passed" if ok else "failed",
                                "seconds": r["seconds"], "reason": line[-240:]})
            self.log(f"video: {line}")
        (self.checks_dir / "video.txt").write_text("\n".join(report) + "\n")


def run_cmd(cmd: list[str], timeout: float) -> dict:
    """Run a command in the repository root, output captured; rc None when it ran out of time."""
    t0 = time.time()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        gpu_train._stop(proc)
        out, _ = proc.communicate()
        out, rc = (out or "") + f"\n(stopped after {timeout:.0f} s)\n", None
    return {"rc": rc, "output": out or "", "seconds": time.time() - t0}


def probe(path: Path) -> dict | None:
    import av

    try:
        with av.open(str(path)) as c:
            v = c.streams.video[0]
            return {"size": (v.codec_context.width, v.codec_context.height), "frames": sum(1 for _ in c.decode(v))}
    except (OSError, av.FFmpegError, IndexError):
        return None


def csv_rows(path: Path) -> list[dict]:
    import csv

    try:
        return list(csv.DictReader(path.open()))
    except OSError:
        return []
