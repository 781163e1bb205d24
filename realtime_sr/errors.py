"""The error tree. Each error is also a builtin exception, so callers may catch either.

The CLI turns any :class:`RealtimeSRError` into a one-line message and a non-zero exit.
"""

from __future__ import annotations


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
