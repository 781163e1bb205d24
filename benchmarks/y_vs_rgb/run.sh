#!/usr/bin/env bash
# Luma (Y) network + bicubic chroma vs an RGB network: same architecture, same steps, same data.
# Usage (from the repo root): bash benchmarks/y_vs_rgb/run.sh   -> benchmarks/y_vs_rgb/results.md
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
for c in y rgb; do
  $PY -m realtime_sr train --recipe benchmarks/y_vs_rgb/coarse_${c}_x2.toml --out runs/y_vs_rgb_$c \
      --weights-out runs/y_vs_rgb_$c/coarse_${c}_x2.safetensors --resume --no-progress
done
$PY benchmarks/y_vs_rgb/compare.py runs/y_vs_rgb_y/coarse_y_x2.safetensors runs/y_vs_rgb_rgb/coarse_rgb_x2.safetensors \
    > benchmarks/y_vs_rgb/results.md
cat benchmarks/y_vs_rgb/results.md
