"""Atomic output: write to a temporary file beside the target, rename at the end."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_output(path: str | Path, suffix: str = ".part"):
    """Yield a temporary path beside ``path``; on success it becomes ``path`` (with the usual
    permissions, as if created directly), on any error or interrupt it is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is the file system saying it has no room (disk full or quota reached)."""
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
