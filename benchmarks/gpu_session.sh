#!/usr/bin/env bash
# One prepared GPU session (docs/gpu.md): training first, then every GPU check, inside a wall-clock
# budget (default 9 minutes), everything written under $OUT (default ./gpu_session_out).
#
#   bash benchmarks/gpu_session.sh                     # on the GPU machine
#   bash benchmarks/gpu_session.sh --minutes 0.2       # CPU dry run, tiny budget
#
# Before it travels: python benchmarks/make_patches.py --out .gpu/patches.npy --pack .gpu/patches.tar
# and the PyAV wheel in .gpu/whl/ (docs/gpu.md). Flags go to benchmarks/gpu_session.py (--help).
set -u
export GPU_SESSION_T0="${GPU_SESSION_T0:-$(date +%s.%N)}"  # the budget counts from here, wheel install included
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_session_out}"
mkdir -p "$OUT"
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
# PyAV travels as a wheel where the machine lacks it (the GPU image has no av)
if ! "$PY" -c "import av" 2>/dev/null && compgen -G ".gpu/whl/*.whl" >/dev/null; then
  SITE="${TMPDIR:-/tmp}/gpu_session_site"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .gpu/whl/*.whl \
    && export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" \
    || echo "gpu_session.sh: the carried wheels did not install; the video check will be skipped" >&2
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$PY" benchmarks/gpu_session.py --out "$OUT" "$@"
