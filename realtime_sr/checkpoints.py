"""Self-describing weights files: safetensors tensors + JSON metadata in the same file.

The metadata (the ``realtime_sr`` key of the safetensors header) holds the architecture name,
its hyperparameters, scale, colour space, training data and recipe, source commit, training
time and hardware, and measured metrics. Loading never unpickles: a weights file cannot run
code. Every failure is a :class:`~realtime_sr.errors.WeightsError` with a one-line message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import WeightsError, short_message
from .fsutil import atomic_output

META_KEY = "realtime_sr"
REQUIRED = ("arch", "hparams", "scale", "colour")


def save_weights(path: str | Path, state_dict: dict, meta: dict[str, Any]) -> Path:
    """Write tensors + metadata atomically (temporary file, then rename)."""
    from safetensors.torch import save_file

    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise ValueError(f"weights metadata lacks {missing}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta, sort_keys=True)})
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of a weights file, without loading its tensors."""
    from safetensors import safe_open

    path = Path(path)
    _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except Exception as exc:  # safetensors raises its own SafetensorError and others
        raise WeightsError(f"{path}: not a valid safetensors file ({short_message(exc)})") from None
    if raw is None:
        raise WeightsError(f"{path}: safetensors file without realtime-sr metadata")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{path}: corrupt metadata ({exc})") from None
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise WeightsError(f"{path}: metadata lacks {', '.join(missing)}")
    return meta


def load_weights(path: str | Path) -> tuple[dict, dict[str, Any]]:
    """(state_dict, metadata) of a weights file."""
    from safetensors.torch import load_file

    meta = read_metadata(path)
    try:
        state = load_file(str(path))
    except Exception as exc:
        raise WeightsError(f"{path}: truncated or corrupt tensors ({short_message(exc)})") from None
    return state, meta


def build_network(path: str | Path):
    """Rebuild the network a weights file describes and load its tensors (strictly)."""
    from .archs import ARCHS

    state, meta = load_weights(path)
    cls = ARCHS.get(meta["arch"])
    if cls is None:
        raise WeightsError(f"{path}: unknown architecture {meta['arch']!r}; known: {', '.join(sorted(ARCHS))}")
    try:
        net = cls(**meta["hparams"])
    except TypeError as exc:
        raise WeightsError(f"{path}: hyperparameters do not fit {meta['arch']} ({exc})") from None
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise WeightsError(f"{path}: tensors do not match {meta['arch']} {meta['hparams']} ({detail})") from None
    return net, meta


def _check_file(path: Path) -> None:
    if not path.exists():
        raise WeightsError(f"{path}: no such weights file")
    if path.is_dir():
        raise WeightsError(f"{path}: is a folder, not a weights file")
    if path.stat().st_size < 8:
        raise WeightsError(f"{path}: truncated weights file ({path.stat().st_size} bytes)")
