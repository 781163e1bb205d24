"""Resume: the work folder beside OUT, its manifest, and the finished segments it lists.

Layout: ``.<OUT name>.rsr-work/`` next to OUT holds ``seg_00000.mp4``, ``seg_00001.mp4`` ... and
``manifest.json``. A segment is listed in the manifest only after its file is closed and synced,
and the manifest is replaced atomically, so after a crash or Ctrl-C every listed segment is whole.
The manifest also holds a key (input size and mtime, model, scale, encoder settings, part of the
input, segment length ...): ``--resume`` continues only when the key matches, from the frame after
the last listed segment's last pts; otherwise it says why and the user starts over. The folder is
removed once OUT is in place.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..errors import UsageError

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


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=str))


def input_key(path: Path) -> dict:
    st = Path(path).stat()
    return {"input": str(Path(path).resolve()), "input_size": st.st_size, "input_mtime_ns": st.st_mtime_ns}
