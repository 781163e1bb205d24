"""Time-boxed training runs for the GPU session (benchmarks/gpu_session.py), through the public CLI.

Each run is ``realtime-sr train`` in two chunks:

1. a short calibration chunk (``--stop-after``, inside the recipe's warm-up, where the learning
   rate does not depend on the total step count) that measures steps per second and the fixed
   cost of a run (start-up, data workers, checkpoint);
2. one chunk resumed from it with ``--steps`` set to what fits before the deadline, so the
   schedule completes and the CLI writes the final weights with its metadata.

All runs of a session train side by side on the one GPU (these networks are far too small to fill
it alone), each with a share of the CPU cores for its data workers. While they train, each run's
newest checkpoint is packed into ``OUT/train_<recipe>.tar`` every ``pack_every`` seconds, with
its EMA weights exported to a weights file with metadata, so a session cut short still returns
usable weights. Runs on the real-world degradations train from a bank (realtime_sr/train/bank.py)
made on the machine's cores at the start, time-boxed, with a seed of its own so that its pairs are
new ones, shared by the runs of one scale, patch size and degradation table: the codecs cost far
more CPU time per sample than a GPU step, so a DataLoader that degrades as it goes would starve the
GPU. The banks are made first, with every core, and then all the runs start together, so that each
run's calibration chunk measures the rate it will have for the rest of the session.

Where each run starts from: a committed ``checkpoints/<recipe>/last.pt`` (resumed if unfinished;
a finished one is a warm start from its EMA weights), else the shipped weights of the same name,
else the recipe's ``init_from``, else from scratch.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "realtime_sr" / "recipes"
WEIGHTS = ROOT / "realtime_sr" / "weights"
CHECKPOINTS = ROOT / "checkpoints"
# what to train, in order of value; "a|b" trains the first of them that exists
# One run: on the H200 (2026-12-04) five small runs side by side got 18-24 steps/s each, one alone 66,
# and the question with a signal is whether the wide real x2 network's CRF 28 lead reaches CRF 23
# with several times the steps (docs/gpu.md). The five-run plan of that session, for --recipes:
# fine_x2_real_deep,fine_x2_real_wide,fine_x4_real_deep,fine_x2_gpu,fine_x4_gpu
PLAN = ("fine_x2_real_wide",)
# batch and LR patch on a GPU, by (stage, scale): the recipes' are sized for a 2-core CPU
GPU_SIZES = {("fine", 2): (64, 48), ("fine", 4): (64, 32), ("gan", 2): (32, 48), ("gan", 4): (32, 32),
             ("coarse", 2): (128, 48), ("coarse", 4): (128, 32)}
BANK_BATCH = 128     # a run that reads a bank costs no CPU per sample: a larger batch per launch
BANK_SHARE = 0.22    # of the training time, for making the banks (before any run starts)
BANK_SEED_OFFSET = 1000  # a GPU bank's seed: the recipe's plus this, so its pairs are not the CPU banks'
BANK_MAX = 400_000       # pairs asked of a bank at most; the deadline decides how many are made
MAX_TAR = 15.5 * 2**20  # files that come back from the device machine are at most 16 MiB


def read_recipe(name: str) -> dict | None:
    path = RECIPES / f"{name}.toml"
    if not path.is_file():
        return None
    flat = {}
    for key, value in tomllib.loads(path.read_text()).items():
        if isinstance(value, dict) and key not in ("hparams", "d_hparams", "degrade"):
            flat.update(value)
        else:
            flat[key] = value
    return flat


@dataclass
class Run:
    recipe: str
    dir: Path
    cfg: dict
    status: str = "planned"       # planned | skipped | failed | partial | done
    reason: str = ""
    source: str = "scratch"
    resume_from: Path | None = None
    init_from: str | None = None
    start_step: int = 0
    step: int = 0
    total: int = 0
    rate: float = 0.0             # steps/s measured in the calibration chunk
    overhead_s: float = 0.0
    wall_s: float = 0.0
    args: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    bank: Path | None = None      # the bank it trains from (real-world runs), once made
    bank_note: str = ""

    def summary(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items() if k not in ("cfg", "dir")}

    @property
    def degraded(self) -> bool:
        return self.cfg.get("degrade") is not None

    def bank_key(self) -> tuple:
        """Runs with the same key can share one bank: scale, LR patch and degradation table."""
        return (int(self.cfg.get("scale", 2)), int(self.cfg.get("lr_patch", 32)),
                json.dumps(self.cfg.get("degrade"), sort_keys=True))


def plan_runs(names: list[str], work: Path) -> tuple[list[Run], list[dict]]:
    """Runs for the recipes that exist; a skip note for each that does not."""
    runs, skipped = [], []
    for alt in names:
        found = next(((n, c) for n in alt.split("|") if (c := read_recipe(n)) is not None), None)
        if found is None:
            skipped.append({"recipe": alt, "status": "skipped", "reason": "no such recipe in this checkout"})
            continue
        name, cfg = found
        run = Run(name, work / "runs" / name, cfg)
        choose_start(run)
        runs.append(run)
    return runs, skipped


def _weights_exist(ref: str) -> bool:
    """Whether ``init_from`` names something there: a checkpoint, a weights file or a shipped name."""
    from realtime_sr.errors import RealtimeSRError
    from realtime_sr.models import resolve

    if ref.endswith(".pt"):
        return (ROOT / ref).is_file()
    try:
        resolve(str(ROOT / ref) if (ROOT / ref).is_file() else ref)
    except RealtimeSRError:
        return False
    return True


def choose_start(run: Run) -> None:
    ck = CHECKPOINTS / run.recipe / "last.pt"
    if ck.is_file():
        import torch

        state = torch.load(ck, map_location="cpu", weights_only=True)
        step, steps = int(state["step"]), int(state["config"]["steps"])
        shown = ck.relative_to(ROOT) if ck.is_relative_to(ROOT) else ck
        if step < steps:
            run.resume_from, run.start_step, run.source = ck, step, f"resumed from {shown} at step {step}"
        else:  # a finished run: a warm start from its EMA, with a fresh warm-up and schedule
            run.init_from, run.source = str(ck), f"warm start from the EMA of finished {shown} ({step} steps)"
        return
    init = run.cfg.get("init_from")
    if (WEIGHTS / f"{run.recipe}.safetensors").is_file():  # the best this recipe has made so far
        run.init_from = str(WEIGHTS / f"{run.recipe}.safetensors")
        run.source = f"warm start from the shipped {run.recipe}.safetensors"
    elif init and _weights_exist(init):
        run.init_from, run.source = init, f"warm start from {init} (the recipe's init_from)"
    elif init:
        run.source = f"from scratch (init_from {init} not found)"
        run.init_from = ""


def export_weights(ckpt: Path, out: Path, recipe: str) -> Path:
    """The EMA generator of a checkpoint as a weights file with metadata (steps, time, hardware)."""
    import torch

    from realtime_sr.checkpoints import save_weights
    from realtime_sr.train.loop import receptive_context

    ck = torch.load(ckpt, map_location="cpu", weights_only=True)
    cfg = ck.get("config", {})
    params = sum(v.numel() for k, v in ck["g"].items() if v.is_floating_point() and "running_" not in k)
    hardware = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    meta = {"name": str(cfg.get("name") or recipe).replace("_", "-"), "arch": ck["arch"], "hparams": ck["hparams"],
            "scale": cfg.get("scale", ck["hparams"].get("scale")), "colour": cfg.get("colour", "y"),
            "stage": ck["stage"], "context": receptive_context(ck["arch"], ck["hparams"]), "params": params,
            "training": {"steps": int(ck["step"]), "planned_steps": cfg.get("steps"), "complete": False,
                         "batch": cfg.get("batch"), "lr_patch": cfg.get("lr_patch"),
                         "data": list(cfg.get("train_dirs", [])), "hardware": f"1x {hardware}",
                         "time_s": round(float(ck.get("elapsed_s", 0.0)), 1), "torch": torch.__version__,
                         "init_from": cfg.get("init_from")},
            "recipe": cfg.get("recipe_text", ""), "metrics": {}}
    return save_weights(out, ck["ema"], meta)


def _last_rate(log_csv: Path, after: int) -> float | None:
    """Steps per second from the newest row of log.csv past step ``after``."""
    try:
        rows = [r for r in csv.DictReader(log_csv.open()) if r.get("it_s") and int(r["step"]) > after]
    except (OSError, ValueError, KeyError):
        return None
    return float(rows[-1]["it_s"]) if len(rows) >= 2 else None


class Trainer:
    """Runs the planned runs side by side before a deadline; packs results into ``out``."""

    def __init__(self, runs: list[Run], *, data: Path, out: Path, device: str, deadline: float,
                 calib_steps: int, extra_set: list[str], eval_on: bool, pack_every: float = 60.0,
                 main_steps: int | None = None, log=print) -> None:
        self.runs, self.data, self.out, self.device = runs, data, out, device
        self.deadline, self.calib_steps, self.extra_set = deadline, calib_steps, extra_set
        self.eval_on, self.pack_every, self.log = eval_on, pack_every, log
        self.main_steps = main_steps  # a fixed length for the second chunk instead of what fits (dry runs)
        self.cores = os.cpu_count() or 2
        self.workers = worker_shares(runs, self.cores)
        self.lock = threading.Lock()
        self.bank_deadline = time.time() + BANK_SHARE * max(0.0, deadline - time.time())
        self.banks: dict[tuple, dict] = {}  # key -> {"event", "path", "note"}

    # ---------------------------------------------------------------- command lines
    def base_args(self, run: Run) -> list[str]:
        stage, scale = run.cfg.get("stage", "fine"), int(run.cfg.get("scale", 2))
        data, workers = (run.bank, 1) if run.bank else (self.data, self.workers[run.recipe])
        a = [sys.executable, "-m", "realtime_sr", "train", "--recipe", run.recipe, "--out", str(run.dir),
             "--weights-out", str(run.dir / f"{run.recipe}.safetensors"), "--data", str(data),
             "--val-dir", "", "--no-progress", "--device", self.device, "--workers", str(workers),
             "--set", "val_every=1000000000"]
        if self.device == "cuda" and run.bank:  # the bank's patch size; a larger batch
            a += ["--precision", "auto", "--batch", str(BANK_BATCH), "--set", "threads=2"]
        elif self.device == "cuda":
            batch, patch = GPU_SIZES.get((stage, scale), (64, 32))
            a += ["--precision", "auto", "--batch", str(batch), "--set", f"lr_patch={patch}", "--set", "threads=2"]
        else:  # a CPU dry run: no precision probe, the recipe's sizes unless --set says otherwise
            a += ["--precision", "fp32"]
        if not self.eval_on:
            a += ["--set", "eval_dirs=[]"]
        if run.init_from is not None:
            a += ["--set", f"init_from={json.dumps(run.init_from)}"]
        for kv in self.extra_set:
            a += ["--set", kv]
        return a

    def schedule_args(self, run: Run, total: int) -> list[str]:
        """--steps, and a step schedule's milestones moved in proportion to the new length."""
        a = ["--steps", str(total)]
        warm = int(run.cfg.get("warmup_steps", 0) or 0)
        if warm and total < 10 * warm:  # a short run: a tenth of it for warm-up, so the decay happens
            a += ["--set", f"warmup_steps={max(1, total // 10)}"]
        if run.cfg.get("schedule") == "step" and run.cfg.get("milestones"):
            ms = [max(1, round(m / run.cfg["steps"] * total)) for m in run.cfg["milestones"]]
            a += ["--set", f"milestones={ms}"]
        return a

    # ---------------------------------------------------------------- one chunk
    def chunk(self, run: Run, args: list[str], timeout: float) -> int:
        run.dir.mkdir(parents=True, exist_ok=True)
        run.args = args
        with open(run.dir / "train.log", "a") as logf:
            logf.write("$ " + " ".join(args) + "\n")
            logf.flush()
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            proc = subprocess.Popen(args, cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
            t0 = last_pack = time.monotonic()
            while proc.poll() is None:
                time.sleep(0.5)
                now = time.monotonic()
                if now - t0 > timeout:
                    self.log(f"{run.recipe}: past its time, stopping it (the newest checkpoint is kept)")
                    _stop(proc)
                    break
                if now - last_pack > self.pack_every:
                    self.pack(run)
                    last_pack = now
            return proc.wait()

    def calibrate(self, run: Run) -> None:
        n = self.calib_steps  # 100 by default: inside the recipes' warm-up, and two rows of log.csv
        guess = max(int(run.cfg.get("steps", 1000)), run.start_step + n + 1)
        args = self.base_args(run) + self.schedule_args(run, guess) + ["--stop-after", str(n)]
        args += ["--resume", str(run.resume_from)] if run.resume_from else ["--set", "ckpt_every=1000000000"]
        t0 = time.monotonic()
        rc = self.chunk(run, args, timeout=max(120.0, self.deadline - time.time()))  # tiny budgets: dry runs
        wall = time.monotonic() - t0
        run.wall_s += wall
        if rc != 0 or not (run.dir / "last.pt").is_file():
            run.status, run.reason = "failed", f"calibration chunk exited {rc}: {_tail(run.dir / 'train.log')}"
            return
        run.step = run.start_step + n
        rate = _last_rate(run.dir / "log.csv", run.start_step)
        steady = rate is not None
        run.rate = rate if steady else n / max(wall * 0.5, 1e-3)  # no steady-state row: assume half was set-up
        run.overhead_s = max(0.0, wall - n / run.rate)
        run.status = "partial"
        self.log(f"{run.recipe}: {n} calibration steps in {wall:.1f} s: {run.rate:.1f} steps/s"
                 f"{'' if steady else ' (estimated)'}, {run.overhead_s:.1f} s fixed cost")

    def main_chunk(self, run: Run, margin: float) -> None:
        left = self.deadline - time.time() - run.overhead_s - margin
        # runs sharing the device calibrate while the others are still starting: a wider margin
        # (on the H200, 2026-12-04, three of five runs at 0.9 were cut 14-16% short of their schedule)
        n = self.main_steps or steps_that_fit(left, run.rate, safety=0.9 if len(self.runs) == 1 else 0.8)
        if n < 1:
            run.reason = f"no time for a second chunk ({left:.0f} s left after the fixed cost)"
            return
        run.total = run.step + n
        every = max(1, min(n, int(run.rate * 20)))  # a checkpoint about every 20 s
        args = self.base_args(run) + self.schedule_args(run, run.total) + ["--resume", "auto",
                                                                           "--set", f"ckpt_every={every}"]
        t0 = time.monotonic()
        # time-boxed to the deadline; a fixed --main-steps chunk only against a hang
        rc = self.chunk(run, args, timeout=max(300.0 if self.main_steps else 10.0, self.deadline - time.time() + 5))
        run.wall_s += time.monotonic() - t0
        final = run.dir / f"{run.recipe}.safetensors"
        if rc == 0 and final.is_file():
            run.status, run.step = "done", run.total
        else:
            run.reason = f"second chunk exited {rc}: {_tail(run.dir / 'train.log')}"

    # ---------------------------------------------------------------- banks
    def make_banks(self) -> list[threading.Thread]:
        """One bank per bank key of the real-world runs, made side by side before ``bank_deadline``,
        the cores shared among them."""
        keys = {}
        for r in self.runs:
            if r.degraded:
                keys.setdefault(r.bank_key(), r)
        if not keys:
            return []
        procs = max(1, self.cores // len(keys))
        threads = []
        for i, (key, r) in enumerate(keys.items()):
            slot = self.banks[key] = {"event": threading.Event(), "path": None, "note": ""}
            t = threading.Thread(target=self._make_bank, args=(r, slot, self.data.parent / f"bank_{i}", procs),
                                 daemon=True)
            t.start()
            threads.append(t)
        return threads

    def _make_bank(self, run: Run, slot: dict, dest: Path, procs: int) -> None:
        from realtime_sr.train.bank import make_bank
        from realtime_sr.train.config import load_recipe, override, parse_set

        t0 = time.monotonic()
        try:  # the session's --set applies to the bank too (a dry run's small patches)
            cfg = override(load_recipe(run.recipe), **parse_set(self.extra_set))
            cfg = override(cfg, train_dirs=(str(self.data),), seed=cfg.seed + BANK_SEED_OFFSET)
            shutil.rmtree(dest, ignore_errors=True)
            path = make_bank(cfg, BANK_MAX, dest, procs=procs, deadline=self.bank_deadline,
                             log=lambda m: None)
            info = json.loads((path / "bank.json").read_text())
            slot["path"] = path
            slot["note"] = (f"bank of {info['count']} pairs (seed {info['seed']}) in {time.monotonic() - t0:.0f} s "
                            f"with {procs} processes")
        except Exception as exc:  # the runs fall back to degrading in their DataLoader workers
            slot["note"] = f"bank failed ({type(exc).__name__}: {exc}); degrading in the loader instead"
        self.log(f"{run.recipe} (and runs sharing its degradations): {slot['note']}")
        slot["event"].set()

    def one(self, run: Run, margin: float) -> None:
        try:
            slot = self.banks.get(run.bank_key()) if run.degraded else None
            if slot is not None:
                slot["event"].wait()
                run.bank, run.bank_note = slot["path"], slot["note"]
            self.calibrate(run)
            if run.status == "partial":
                self.main_chunk(run, margin)
        except Exception as exc:  # recorded in the summary; the other runs and the checks go on
            run.status, run.reason = "failed", f"{type(exc).__name__}: {exc}"
        self.pack(run)

    def train_all(self) -> None:
        margin = 8.0 + (20.0 if self.eval_on else 0.0)
        for t in self.make_banks():  # before any run: the banks have every core
            t.join()
        threads = [threading.Thread(target=self.one, args=(r, margin), daemon=True) for r in self.runs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    # ---------------------------------------------------------------- outputs
    def pack(self, run: Run) -> None:
        """OUT/train_<recipe>.tar: weights (final, else exported from the newest checkpoint), last.pt, logs."""
        with self.lock:
            try:
                self._pack(run)
            except Exception as exc:  # a failed pack must not stop the run
                self.log(f"{run.recipe}: packing failed ({type(exc).__name__}: {exc})")

    def _pack(self, run: Run) -> None:
        last, final = run.dir / "last.pt", run.dir / f"{run.recipe}.safetensors"
        members = []
        if final.is_file():
            members.append(final)
        elif last.is_file():
            import torch

            run.step = max(run.step, int(torch.load(last, map_location="cpu", weights_only=True)["step"]))
            members.append(export_weights(last, run.dir / f"{run.recipe}_partial.safetensors", run.recipe))
        (run.dir / "run.json").write_text(json.dumps(run.summary(), indent=1))
        members += [p for p in (run.dir / "log.csv", run.dir / "train.log", run.dir / "run.json") if p.is_file()]
        size = sum(p.stat().st_size for p in members)
        if last.is_file() and size + last.stat().st_size < MAX_TAR:
            members.append(last)
        elif last.is_file():
            run.reason = (run.reason + "; " if run.reason else "") + "last.pt left out of the tar (over 16 MiB)"
        dest = self.out / f"train_{run.recipe}.tar"
        tmp = dest.with_name(dest.name + ".tmp")
        with tarfile.open(tmp, "w") as tar:
            for p in members:
                tar.add(p, arcname=p.name)
        os.replace(tmp, dest)
        run.files = [p.name for p in members]


def worker_shares(runs: list[Run], cores: int) -> dict[str, int]:
    """Data workers per run: the cores left after one per training process and one worker per
    real-world run go to the clean runs; a real-world run reads its bank with one worker (and
    keeps it where its bank failed and it degrades as it goes). With no clean run, the cores left
    are shared equally, for the runs whose bank fails."""
    spare = max(0, cores - len(runs) - sum(r.degraded for r in runs))
    clean = [r.recipe for r in runs if not r.degraded]
    if not clean:
        return {r.recipe: max(1, spare // max(1, len(runs))) for r in runs}
    return {**{r.recipe: 1 for r in runs if r.degraded}, **{name: max(1, spare // len(clean)) for name in clean}}


def steps_that_fit(seconds: float, rate: float, safety: float = 0.9) -> int:
    """Training steps that fit in ``seconds`` at ``rate`` steps/s, with a safety factor for jitter."""
    return max(0, int(seconds * rate * safety))


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT to the run's process group, then SIGKILL if it is still there after 5 s."""
    for sig, wait in ((signal.SIGINT, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, n: int = 1) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip() and not ln.startswith("$ ")]
    except OSError:
        return ""
    return " | ".join(lines[-n:])[-300:]
