"""Resume: the work folder beside OUT, its manifest, and the finished segments it lists.

Layout: ``.<OUT name>.rsr-work/`` next to OUT holds ``seg_00000.mp4``, ``seg_00001.mp4`` ... and
``manifest.json``. A segment is listed in the manifest only after its file is closed and synced,
and the manifest is replaced atomically, so after a crash or Ctrl-C every listed segment is whole.
The manifest also holds a key (input size and mtime, model, scale, encoder settings, part of the
input, segment length ...): ``--resume`` continues only when the key matches, from the frame after
the last listed segment's last pts; otherwise it says why and the user starts over. The folder is
removed once OUT is in place. :class:`RunLock` keeps a second run off the same OUT meanwhile.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..errors import OutputError, UsageError

VERSION = 1


class WorkDir:
    def __init__(self, out_path: Path) -> None:
        out_path = Path(out_path)
        self.dir = out_path.parent / f".{out_path.name}.rsr-work"
        self.manifest = self.dir / "manifest.json"
        self.state: dict = {}

    def segment_path(self, k: int) -> Path:
        return self.dir / f"seg_{k:05d}.mp4"

    @property
    def segments(self) -> list[dict]:
        return self.state.get("segments", [])

    def begin(self, key: dict, *, resume: bool, log=print) -> dict:
        """Open the work folder: continue a matching earlier run (``resume``) or start a fresh one."""
        if resume and self.manifest.exists():
            try:
                state = json.loads(self.manifest.read_text())
            except (OSError, json.JSONDecodeError):
                state = None
            if state and state.get("version") == VERSION and state.get("key") == _jsonable(key):
                good = []
                for seg in state.get("segments", []):
                    p = self.dir / seg["file"]
                    if not p.exists() or p.stat().st_size != seg["bytes"]:
                        break
                    good.append(seg)
                state["segments"] = good
                self.state = state
                self._cleanup_unlisted()
                n = sum(s["frames"] for s in good)
                log(f"resuming: {len(good)} finished segment(s), {n} frames already done")
                return state
            if state:
                diff = sorted(k for k in set(key) | set(state.get("key", {}))
                              if _jsonable(key).get(k) != state.get("key", {}).get(k))
                raise UsageError(f"cannot resume: the input or options changed since the interrupted run "
                                 f"({', '.join(diff) or 'format version'}); run without --resume to start over")
        if resume:
            log("notice: nothing to resume; starting from the beginning")
        elif self.dir.exists():
            log(f"notice: discarding an earlier unfinished run in {self.dir.name} (use --resume to continue it)")
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.state = {"version": VERSION, "key": _jsonable(key), "segments": []}
        self._save()
        return self.state

    def set(self, **values) -> None:
        self.state.update(values)
        self._save()

    def add_segment(self, record: dict) -> None:
        self.state["segments"].append(record)
        self._save()

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def _save(self) -> None:
        tmp = self.manifest.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(self.state, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.manifest)

    def _cleanup_unlisted(self) -> None:
        listed = {s["file"] for s in self.segments} | {self.manifest.name}
        for p in self.dir.iterdir():
            if p.name not in listed:
                p.unlink(missing_ok=True)


class RunLock:
    """One run per OUT: an exclusive lock on ``.<OUT name>.rsr-lock`` beside OUT, held for the whole run.

    The kernel holds the lock (``flock``), not the file's existence, so a lock left by a process
    that was killed is free at once and never blocks ``--resume``; the file holds the owner's pid,
    which the refusal names. The file is removed when the run ends.
    """

    def __init__(self, out_path: Path) -> None:
        out_path = Path(out_path)
        self.out = out_path
        self.path = out_path.parent / f".{out_path.name}.rsr-lock"
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # no flock on this platform (Windows): runs are not serialised
            return self
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:  # a read-only or full folder: the same one-line error as any write
                from .sink import raise_write_error

                raise_write_error(exc, self.out)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise OutputError(f"{self.out}: another realtime-sr run (pid {owner}) is writing it; wait for it "
                                  f"to finish or stop it, then use --resume") from None
            try:  # the holder before us may have removed the file after we opened it: lock the current one
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=str))


def input_key(path: Path) -> dict:
    st = Path(path).stat()
    return {"input": str(Path(path).resolve()), "input_size": st.st_size, "input_mtime_ns": st.st_mtime_ns}
