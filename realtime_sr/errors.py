"""The error tree. Each error is also a builtin exception, so callers may catch either.

The CLI turns any :class:`RealtimeSRError` into a one-line message and a non-zero exit.
"""

from __future__ import annotations

from pathlib import Path


class RealtimeSRError(Exception):
    """Base class of every error realtime-sr reports to a user."""

    exit_code = 1


class UsageError(RealtimeSRError, ValueError):
    """A flag or argument that cannot work (bad scale, IN == OUT, ...)."""

    exit_code = 2


class InputError(RealtimeSRError, ValueError):
    """An input file that is missing, unreadable, empty, corrupt or of the wrong kind."""


class OutputError(RealtimeSRError, OSError):
    """An output that cannot be written (exists, disk full, unsupported codec, ...)."""


class WeightsError(RealtimeSRError, ValueError):
    """A weights file that is corrupt, truncated, or does not match its architecture."""


class ModelNotFoundError(RealtimeSRError, LookupError):
    """An unknown model name or a missing model path."""


class BackendError(RealtimeSRError, RuntimeError):
    """A backend that is not installed or cannot run the request."""


def short_message(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), or its type's name."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def require_file(path: str | Path, kind: str) -> Path:
    """``path`` as a Path if it is a non-empty file; else an InputError saying what is wrong."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not {kind}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    return path
