#!/usr/bin/env bash
# GPU check, ready for a machine with an NVIDIA GPU (none was available where this was written).
#
#   OUT=/some/folder bash benchmarks/gpu_check.sh
#
# 1. the gpu- and tensorrt-marked tests (torch CUDA backend parity, TensorRT engines vs onnxruntime,
#    static fine tile batches on two streams);
# 2. a GPU speed benchmark: coarse and fine per 640x360 LR frame, torch CUDA fp32/fp16 and
#    TensorRT fp32/fp16/int8 (TensorRT rows only where it is installed), to $OUT as CSV and JSON;
# 3. engine build times and cache hits (the second bench run must load engines, not build them).
# Everything it writes goes under $OUT (default ./gpu_check_out). Exit status: the tests' status.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
export REALTIME_SR_CACHE="${REALTIME_SR_CACHE:-$OUT/cache}"

{
  echo "date: $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 || true
  "$PY" - <<'PY'
import importlib.util, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))
if importlib.util.find_spec("tensorrt"):
    import tensorrt; print("tensorrt", tensorrt.__version__)
else:
    print("tensorrt: not installed (pip install 'realtime-sr[tensorrt]')")
PY
} 2>&1 | tee "$OUT/env.txt"

"$PY" -m pytest -q -m "gpu or tensorrt" tests/test_runtime.py tests/test_trt.py \
  --junitxml="$OUT/gpu_tests.xml" 2>&1 | tee "$OUT/gpu_tests.txt"
status=${PIPESTATUS[0]}

# Weights: shipped if present, else recipe architectures with random weights (speed does not depend on them).
"$PY" - "$OUT/models" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
from cpu_backends import recipe_model
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
for scale in (2, 4):
    for role in ("coarse", "fine"):
        if not Path(f"realtime_sr/weights/{role}_x{scale}.safetensors").exists():
            recipe_model(role, scale, out)
PY
for scale in 2 4; do
  for role in coarse fine; do
    if [ -f "realtime_sr/weights/${role}_x${scale}.safetensors" ]; then M="$role-x$scale"; else M="$OUT/models/${role}_x${scale}.safetensors"; fi
    for cfg in "torch fp32" "torch fp16" "tensorrt fp32" "tensorrt fp16" "tensorrt int8"; do
      set -- $cfg
      if [ "$1" = tensorrt ] && ! "$PY" -c "import tensorrt" 2>/dev/null; then continue; fi
      for pass in build cached; do
        start=$(date +%s)
        "$PY" -m realtime_sr bench --model "$M" --backend "$1" --device cuda \
          --precision "$2" --frame 640x360 --runs 50 --warmup 10 --csv "$OUT/gpu_bench.csv" \
          >> "$OUT/gpu_bench.txt" 2>> "$OUT/gpu_bench.log" || echo "FAILED: $M $cfg ($pass)" | tee -a "$OUT/gpu_bench.txt"
        echo "$M $cfg $pass: $(( $(date +%s) - start )) s wall (build + bench)" >> "$OUT/build_times.txt"
        [ "$1" = tensorrt ] || break
      done
      if [ "$role" = fine ]; then  # the routed shape: a static batch of 16 tiles of 40x40 LR pixels
        "$PY" -m realtime_sr bench --model "$M" --backend "$1" --device cuda --precision "$2" --tiles 16x40 \
          --runs 50 --warmup 10 --csv "$OUT/gpu_bench.csv" >> "$OUT/gpu_bench.txt" 2>> "$OUT/gpu_bench.log" \
          || echo "FAILED: $M $cfg tiles 16x40" | tee -a "$OUT/gpu_bench.txt"
        # coarse + routed fine on a natural 1920x1080 frame (to 4K at x2), fine batches on 2 CUDA streams
        "$PY" -m realtime_sr bench --networks coarse,fine,routed --scale "$scale" --backend "$1" --device cuda \
          --precision "$2" --frame 1920x1080 --runs 30 --warmup 5 --csv "$OUT/gpu_bench.csv" \
          >> "$OUT/gpu_bench.txt" 2>> "$OUT/gpu_bench.log" || echo "FAILED: routed $scale $cfg" | tee -a "$OUT/gpu_bench.txt"
      fi
    done
  done
done
grep -h "built\|cached\|rebuild" "$OUT/gpu_bench.log" > "$OUT/engine_cache.txt" 2>/dev/null || true
cat "$OUT/gpu_bench.txt" 2>/dev/null
exit "$status"
