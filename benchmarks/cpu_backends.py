"""CPU time per 640x360 LR frame of the coarse and fine networks: torch fp32, onnxruntime fp32, onnxruntime int8.

    .venv/bin/python benchmarks/cpu_backends.py --scale 2            # shipped weights
    .venv/bin/python benchmarks/cpu_backends.py --scale 2 --random   # recipe architectures, random weights

Speed does not depend on the weights' values, so ``--random`` (or missing shipped weights) builds
each network from its recipe's hyperparameters with random weights; int8 is then calibrated on
the training images as usual. Results go to benchmarks/results/cpu_<machine>_<date>.{csv,md}
with the command line, the load average and the library versions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CONFIGS = [("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")]


def machine() -> str:
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from realtime_sr.export.cache import slug

    return f"{slug(cpu)}-{os.cpu_count()}c"


def recipe_model(role: str, scale: int, folder: Path):
    import tomllib

    import torch

    from realtime_sr.archs import build
    from realtime_sr.checkpoints import save_weights
    from realtime_sr.models import load_model

    recipe = tomllib.loads((REPO / "realtime_sr" / "recipes" / f"{role}_x{scale}.toml").read_text())
    torch.manual_seed(0)
    net = build(recipe["arch"], **recipe["hparams"])
    path = folder / f"{role}_x{scale}.safetensors"
    save_weights(path, net.state_dict(), {
        "arch": recipe["arch"], "hparams": recipe["hparams"], "scale": scale, "colour": recipe.get("colour", "y"),
        "stage": recipe.get("stage", role), "name": f"{role}-x{scale}-random",
        "training": {"data": [str(REPO / d) for d in recipe.get("data", {}).get("train_dirs", [])]}})
    return load_model(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=2, choices=(2, 4))
    ap.add_argument("--frame", default="640x360")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--random", action="store_true", help="recipe architectures with random weights")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    a = ap.parse_args(argv)

    import numpy as np  # noqa: F401
    import onnxruntime
    import torch

    from realtime_sr.bench_cmd import FIELDS, bench_model, format_table, parse_frame, write_csv
    from realtime_sr.models import load_model, shipped_models

    frame = parse_frame(a.frame)
    tmp = Path(tempfile.mkdtemp(prefix="rsr-bench-"))
    os.environ.setdefault("REALTIME_SR_CACHE", str(tmp / "cache"))
    shipped = shipped_models()
    load_before = os.getloadavg()
    rows = []
    for role in ("coarse", "fine"):
        name = f"{role}-x{a.scale}"
        model = load_model(name) if (name in shipped and not a.random) else recipe_model(role, a.scale, tmp)
        for backend, precision in CONFIGS:
            r = bench_model(model, network=role, backend=backend, device="cpu", precision=precision, frame=frame,
                            runs=a.runs, warmup=a.warmup, log=lambda m: print(m, file=sys.stderr))
            print(format_table([r]).splitlines()[-1], flush=True)
            rows.append(r)
    load_after = os.getloadavg()
    table = format_table(rows)
    print(table)

    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    stem = Path(a.out) / f"cpu_{machine()}_{date}_x{a.scale}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv_path = stem.with_suffix(".csv")
    csv_path.unlink(missing_ok=True)
    write_csv(csv_path, rows)
    cmd = "python " + " ".join([str(Path(sys.argv[0]).relative_to(REPO)) if Path(sys.argv[0]).is_absolute()
                                else sys.argv[0], *sys.argv[1:]])
    md = [f"# CPU backends, {a.frame} LR frame, x{a.scale}", "",
          f"- command: `{cmd}`",
          f"- machine: {machine()} ({platform.machine()}), {os.cpu_count()} logical cores",
          f"- load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} "
          f"(other jobs running make these times pessimistic)",
          f"- torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__}",
          f"- weights: {'random, recipe architectures' if rows and 'random' in rows[0]['model'] else 'shipped'}",
          f"- {a.warmup} warm-up + {a.runs} timed runs per row; times per frame, numpy in/out", "",
          "| network | model | backend | p50 ms | p90 ms | fps | vs torch fp32 |", "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        base = next(x for x in rows if x["network"] == r["network"] and x["backend"].startswith("torch"))
        md.append(f"| {r['network']} | {r['model']} | {r['backend']} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | "
                  f"{r['fps']:.2f} | {base['p50_ms'] / r['p50_ms']:.2f}x |")
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    print(f"wrote {csv_path} and {stem.with_suffix('.md')}")
    assert FIELDS
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
