"""One prepared GPU session: train first, then check every GPU path, all inside a wall-clock budget.

    bash benchmarks/gpu_session.sh                       # on the GPU machine: OUT=... , 9 minutes
    bash benchmarks/gpu_session.sh --minutes 0.2         # a CPU dry run (what the test runs)

1. Training (``--train-share`` of the budget, two thirds by default): the recipes of
   benchmarks/gpu_train.py's plan, side by side, from the pre-cut patch file (``--data``; default
   ``.gpu/patches.npy``, else ``.gpu/patches.tar`` unpacked), each packed into
   ``OUT/train_<recipe>.tar`` as it goes.
2. Checks, in the time left: the gpu- and tensorrt-marked tests; speed rows
   (benchmarks/gpu_speed.py: torch CUDA fp32/fp16/bf16 for coarse, fine and routed at 640x360 and
   1920x1080 LR; TensorRT where it imports); one end-to-end ``realtime-sr video`` 1080p -> 4K on a
   generated clip (PyAV from carried wheels). Packed into ``OUT/checks.tar``.
3. ``OUT/summary.md``: what ran, what was skipped and why (rewritten after every stage), and
   ``OUT/session.log``. At most 8 files in OUT, each under 16 MiB: what a device machine returns.

Without CUDA everything still runs, small: the dry run that keeps this script from rotting.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
# the package need not be installed (the GPU image has only its dependencies): subprocesses
# (pytest, the speed rows) find it through PYTHONPATH, as gpu_session.sh also sets it
if str(ROOT) not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

import gpu_train  # noqa: E402
import make_patches  # noqa: E402
from gpu_checks import Checks, csv_rows, run_cmd  # noqa: E402


class Session(Checks):
    def __init__(self, a) -> None:
        self.a, self.out = a, a.out
        self.t0 = float(os.environ.get("GPU_SESSION_T0") or time.time())  # the shell's start, wheels included
        self.deadline = self.t0 + a.minutes * 60
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = a.work or Path(tempfile.mkdtemp(prefix="gpu_session_"))
        self.checks_dir = self.work / "checks"
        self.checks_dir.mkdir(parents=True, exist_ok=True)
        self.logf = open(self.out / "session.log", "a")
        self.env: dict = {}
        self.device = "cpu"  # environment() says
        self.runs: list = []
        self.train_notes: list[dict] = []
        self.checks: list[dict] = []

    def log(self, msg: str) -> None:
        line = f"[{time.time() - self.t0:6.1f} s] {msg}"
        print(line, flush=True)
        self.logf.write(line + "\n")
        self.logf.flush()

    def left(self) -> float:
        return self.deadline - time.time()

    # ------------------------------------------------------------------ environment
    def environment(self) -> None:
        import torch

        cuda = torch.cuda.is_available()
        self.device = "cuda" if cuda and not self.a.cpu else "cpu"
        env = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "host": platform.node(), "python": platform.python_version(), "cpus": os.cpu_count(),
               "torch": torch.__version__, "torch_cuda": torch.version.cuda, "device": self.device,
               "budget_min": self.a.minutes}
        if cuda:
            env["gpu"] = torch.cuda.get_device_name(0)
            env["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
            env["bf16"] = torch.cuda.is_bf16_supported()
        for mod in ("av", "tensorrt", "onnxruntime"):
            try:
                env[mod] = __import__(mod).__version__
            except Exception as exc:  # noqa: BLE001 - any import failure is a reason to report
                env[mod] = f"not importable ({type(exc).__name__})"
        smi = shutil.which("nvidia-smi")
        if smi:
            r = run_cmd([smi, "--query-gpu=name,driver_version,memory.total,compute_cap", "--format=csv,noheader"], 15)
            env["nvidia_smi"] = r["output"].strip()
        self.env = env
        (self.checks_dir / "env.json").write_text(json.dumps(env, indent=1))
        self.log("environment: " + ", ".join(f"{k} {v}" for k, v in env.items()))

    # ------------------------------------------------------------------ training
    def data_file(self) -> tuple[Path | None, str]:
        cand = [self.a.data] if self.a.data else [ROOT / ".gpu" / "patches.npy", ROOT / ".gpu" / "patches.tar"]
        for path in cand:
            if path.is_dir() or path.suffix == ".npy" and path.is_file():
                return path, f"{path}"
            if path.suffix == ".tar" and path.is_file():
                dest = self.work / "patches.npy"
                info = make_patches.unpack(path, dest)
                return dest, f"{path} ({info['crops']} crops {info['shape'][1]}x{info['shape'][2]}, unpacked)"
        return None, "no training data: make it with benchmarks/make_patches.py (docs/gpu.md)"

    def train(self) -> None:
        names = self.a.recipes.split(",") if self.a.recipes else list(gpu_train.PLAN)
        if self.a.skip_train:
            self.train_notes.append({"recipe": "all", "status": "skipped", "reason": "--skip-train"})
            return
        try:
            data, note = self.data_file()
        except make_patches.PatchError as exc:
            data, note = None, f"training data unusable: {exc}"
        if data is None:
            self.train_notes.append({"recipe": "all", "status": "skipped", "reason": note})
            self.log(note)
            return
        self.log(f"training data: {note}")
        self.runs, skipped = gpu_train.plan_runs(names[:5], self.work)  # a tar each: 8 files in all
        self.train_notes += skipped
        self.train_notes += [{"recipe": n, "status": "skipped", "reason": "more than 5 runs (a device returns 8 files)"}
                             for n in names[5:]]
        for n in self.train_notes:
            self.log(f"{n['recipe']}: skipped ({n['reason']})")
        if not self.runs:
            return
        eval_on = self.a.eval == "on" or (self.a.eval == "auto" and all(
            (ROOT / d).is_dir() for r in self.runs for d in r.cfg.get("eval_dirs", [])))
        for r in self.runs:
            self.log(f"{r.recipe}: {r.source}")
        end = self.t0 + self.a.minutes * 60 * self.a.train_share
        trainer = gpu_train.Trainer(self.runs, data=data, out=self.out, device=self.device, deadline=end,
                                    calib_steps=self.a.calib_steps, extra_set=self.a.set or [], eval_on=eval_on,
                                    pack_every=self.a.pack_every, main_steps=self.a.main_steps, log=self.log)
        workers = ", ".join(f"{k} {v}" for k, v in trainer.workers.items())
        self.log(f"training {len(self.runs)} runs side by side until +{end - self.t0:.0f} s, data workers: {workers}; "
                 f"evaluation {'on' if eval_on else 'off (no eval folders)'}")
        trainer.train_all()
        for r in self.runs:
            self.log(f"{r.recipe}: {r.status}, step {r.step}" + (f" ({r.reason})" if r.reason else ""))

    # ------------------------------------------------------------------ outputs
    def write_summary(self, final: bool = False) -> None:
        runs = [r.summary() for r in self.runs] + self.train_notes
        data = {"env": self.env, "training": runs, "checks": self.checks, "elapsed_s": round(time.time() - self.t0, 1),
                "finished": final}
        (self.checks_dir / "summary.json").write_text(json.dumps(data, indent=1))
        lines = [f"# GPU session, {self.env.get('date', '')}", "",
                 f"Machine: {self.env.get('nvidia_smi') or self.env.get('gpu', 'no CUDA GPU')}, "
                 f"{self.env.get('cpus')} CPUs; torch {self.env.get('torch')} (CUDA {self.env.get('torch_cuda')}); "
                 f"PyAV {self.env.get('av')}; TensorRT {self.env.get('tensorrt')}.",
                 f"Budget {self.a.minutes} min; {'finished' if final else 'in progress'} at "
                 f"{time.time() - self.t0:.0f} s.", "", "## Training", "",
                 "| recipe | status | start | steps | steps/s | wall s | files | notes |", "|---|---|---|---|---|---|---|---|"]
        for r in runs:
            lines.append(f"| {r['recipe']} | {r['status']} | {_cell(r.get('source', ''))} | {r.get('step', '')}"
                         f"{'/' + str(r['total']) if r.get('total') else ''} | {r.get('rate', 0):.1f} | "
                         f"{r.get('wall_s', 0):.0f} | {', '.join(r.get('files', []))} | {_cell(r.get('reason', ''))} |")
        lines += ["", "## Checks", "", "| check | status | seconds | notes |", "|---|---|---|---|"]
        for c in self.checks:
            lines.append(f"| {c['check']} | {c['status']} | {c['seconds']:.0f} | {_cell(c['reason'])} |")
        speed = csv_rows(self.checks_dir / "speed.csv")
        if speed:
            lines += ["", "## Speed (ms per frame, median)", ""]
            if self.device == "cpu":
                lines += ["A dry run on the CPU: tiny frames, one call each, no warm-up; these are not measurements.", ""]
            lines += ["| kind | network | backend | precision | frame | ms | fps | note |", "|---|---|---|---|---|---|---|---|"]
            lines += [f"| {s['kind']} | {s['model'] or s['network']} | {s['backend']} | {s['precision']} | {s['frame']} | "
                      f"{s['p50_ms']} | {s['fps']} | {_cell(s['note'])} |" for s in speed]
        _atomic_write(self.out / "summary.md", "\n".join(lines) + "\n")

    def pack_checks(self) -> None:
        dest = self.out / "checks.tar"
        tmp = dest.with_name(dest.name + ".tmp")
        with tarfile.open(tmp, "w") as tar:
            for p in sorted(self.checks_dir.iterdir()):
                if p.is_file():
                    tar.add(p, arcname=p.name)
        os.replace(tmp, dest)

    def stage(self, name: str, fn, notes: list, key: str) -> None:
        """Run one stage; an unexpected error is recorded as that stage's failure and the session goes on."""
        t0 = time.time()
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - the next stage must still run and the summary say why
            where = traceback.extract_tb(exc.__traceback__)[-1]
            reason = f"{type(exc).__name__}: {exc} ({Path(where.filename).name}:{where.lineno})"
            notes.append({key: name, "status": "failed", "reason": reason[-300:], "seconds": time.time() - t0})
            self.log(f"{name}: failed: {reason}")
        self.write_summary()

    def run(self) -> int:
        self.environment()
        self.write_summary()
        self.stage("training", self.train, self.train_notes, "recipe")
        if self.a.skip_checks:
            self.checks.append({"check": "all", "status": "skipped", "reason": "--skip-checks", "seconds": 0})
        else:
            for name in ("tests", "speed", "video"):
                self.stage(name, getattr(self, f"check_{name}"), self.checks, "check")
                self.pack_checks()
        self.write_summary(final=True)
        self.pack_checks()
        files = sorted(p.name for p in self.out.iterdir())
        if len(files) > 8:
            self.log(f"warning: {len(files)} files in {self.out}; a device machine returns 8")
        self.log(f"done in {time.time() - self.t0:.0f} s; {self.out}: {', '.join(files)}")
        print("\n" + (self.out / "summary.md").read_text(), flush=True)  # the end of the output is what a device call shows
        return 0 if all(c["status"] in ("passed", "ran", "skipped") for c in self.checks) else 1


def _cell(text) -> str:
    """Text for a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="gpu_session.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_session_out")),
                   help="where the results go (default $OUT, else ./gpu_session_out)")
    p.add_argument("--minutes", type=float, default=9.0, help="wall-clock budget for everything (default 9)")
    p.add_argument("--train-share", type=float, default=2 / 3, help="share of the budget for training (default 2/3)")
    p.add_argument("--data", type=Path, help="patch file (.npy, or the packed .tar) or an image folder")
    p.add_argument("--recipes", help=f"comma-separated recipes to train, 'a|b' = first that exists "
                                     f"(default {','.join(gpu_train.PLAN)}; at most 5)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="recipe override for every run")
    p.add_argument("--calib-steps", type=int, default=100, help="steps of each run's calibration chunk")
    p.add_argument("--main-steps", type=int, help="train exactly this many steps after calibration, whatever "
                   "the clock says (dry runs); default: what fits before the deadline")
    p.add_argument("--pack-every", type=float, default=60.0, help="seconds between packs of running runs")
    p.add_argument("--eval", choices=("auto", "on", "off"), default="auto",
                   help="measure Set5/Set14 at the end of each run (auto: where the folders exist)")
    p.add_argument("--overrun", type=float, default=30.0,
                   help="seconds past the budget after which checks not yet started are skipped (default 30)")
    p.add_argument("--check-floor", type=float, default=12.0,
                   help="seconds a check that starts gets at least (Python, torch and CUDA must start; default 12)")
    p.add_argument("--cpu", action="store_true", help="stay on the CPU even where CUDA is present")
    p.add_argument("--preflight", action="store_true",
                   help="only check the payload and the size of what travels, print the device call, exit")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-checks", action="store_true")
    p.add_argument("--work", type=Path, help="scratch folder (default: a temporary one, removed at the end)")
    a = p.parse_args(argv)
    if a.minutes <= 0 or not 0 < a.train_share < 1 or a.calib_steps < 1:
        p.error("--minutes must be positive, --train-share between 0 and 1, --calib-steps at least 1")
    if a.data and not a.data.exists():
        p.error(f"--data {a.data}: no such file or folder")
    return a


CARRY = (".gpu/patches.tar", ".gpu/whl")
TRAVEL_LIMIT = 64 * 2**20


def preflight() -> int:
    """Before a device call: is the payload there, and does the working tree fit the 64 MiB it may carry?"""
    r = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True)
    tree = sum((ROOT / f).stat().st_size for f in r.stdout.decode().split("\0") if f and (ROOT / f).is_file())
    carried = {c: sum(p.stat().st_size for p in ([ROOT / c] if (ROOT / c).is_file() else (ROOT / c).rglob("*"))
                      if p.is_file()) for c in CARRY}
    total = tree + sum(carried.values())
    print(f"working tree (tracked and untracked, not ignored): {tree / 2**20:.1f} MiB")
    for c, n in carried.items():
        print(f"carry {c}: {n / 2**20:.1f} MiB" + ("" if n else "  MISSING (docs/gpu.md says how to make it)"))
    wheels = sorted(p.name for p in (ROOT / CARRY[1]).glob("*.whl"))
    print(f"wheels: {', '.join(wheels) or 'none'}")
    ok = total <= TRAVEL_LIMIT and all(carried.values())
    print(f"total {total / 2**20:.1f} MiB of {TRAVEL_LIMIT / 2**20:.0f}: {'ready' if ok else 'NOT ready'}")
    if ok:
        print(f'device run: command "bash benchmarks/gpu_session.sh", carry {json.dumps(list(CARRY))}, timeout_s 600')
    elif total > TRAVEL_LIMIT and (ROOT / ".gpu" / "patches.npy").is_file() and carried[CARRY[0]]:
        over = total - TRAVEL_LIMIT + 2**20  # and a MiB to spare
        ratio = carried[CARRY[0]] / (ROOT / ".gpu" / "patches.npy").stat().st_size
        raw = max(0.0, (carried[CARRY[0]] - over) / ratio / 2**20)
        print(f"over by {(total - TRAVEL_LIMIT) / 2**20:.1f} MiB: move untracked files out of the tree "
              f"(`git status`), or remake the patches smaller: python benchmarks/make_patches.py "
              f"--out .gpu/patches.npy --pack .gpu/patches.tar --max-mib {int(raw)}")
    return 0 if ok else 1


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.preflight:
        return preflight()
    s = Session(a)
    try:
        return s.run()
    finally:
        s.logf.close()
        if a.work is None:
            shutil.rmtree(s.work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
