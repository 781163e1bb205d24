"""Real windows under Xvfb for the preview tests: start a virtual screen, find a window, capture it.

Needs Debian's ``xvfb`` (Xvfb) and ``x11-utils`` + ``x11-apps`` (xwininfo, xwd); callers skip
with a reason when they are absent. The XWD capture is decoded here (a plain header and pixel
rows), so no image tool beyond xwd is needed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time

import numpy as np

TOOLS = ("Xvfb", "xwininfo", "xwd")


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


@contextlib.contextmanager
def xvfb(width: int = 1920, height: int = 1080):
    """A virtual X screen; yields its DISPLAY string (``:N``)."""
    for n in range(91, 120):
        if os.path.exists(f"/tmp/.X11-unix/X{n}") or os.path.exists(f"/tmp/.X{n}-lock"):
            continue
        proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):
            if os.path.exists(f"/tmp/.X11-unix/X{n}") or proc.poll() is not None:
                break
            time.sleep(0.1)
        if proc.poll() is not None:
            continue  # the number was taken after all
        try:
            yield f":{n}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        return
    raise RuntimeError("no free X display number")


def find_window(display: str, title_part: str) -> tuple[str, int, int] | None:
    """(id, width, height) of the mapped window whose title contains ``title_part``, if any."""
    out = subprocess.run(["xwininfo", "-root", "-tree"], check=False, env={**os.environ, "DISPLAY": display},
                         capture_output=True, text=True, timeout=10).stdout
    for line in out.splitlines():
        if title_part in line:
            m = re.search(r"(0x[0-9a-f]+) .*\)\s+(\d+)x(\d+)\+", line)
            if m:
                return m.group(1), int(m.group(2)), int(m.group(3))
    return None


def capture(display: str, window_id: str) -> np.ndarray:
    """The window's pixels (``window_id`` 'root': the screen's) as RGB uint8 (H, W, 3), through ``xwd``
    (24-bit TrueColor)."""
    raw = subprocess.run(["xwd", "-root", "-silent"] if window_id == "root" else ["xwd", "-id", window_id, "-silent"], env={**os.environ, "DISPLAY": display},
                         capture_output=True, timeout=10, check=True).stdout
    h = np.frombuffer(raw[:100], ">u4")
    header_size, width, height, byte_order, bpp, bpl, ncolors = h[0], h[4], h[5], h[7], h[11], h[12], h[19]
    masks = h[14:17]
    shifts = [int(m).bit_length() - 8 for m in masks]  # red, green, blue
    start = int(header_size) + 12 * int(ncolors)
    data = np.frombuffer(raw[start:start + int(height) * int(bpl)], np.uint8).reshape(int(height), int(bpl))
    if bpp == 24:  # packed 3 bytes a pixel (the root window's visual on some servers)
        px = data[:, :int(width) * 3].reshape(int(height), int(width), 3)
        idx = [s // 8 if byte_order == 0 else 2 - s // 8 for s in shifts]
        return np.ascontiguousarray(px[..., idx])
    if bpp != 32:
        raise ValueError(f"xwd gave {bpp} bits per pixel; expected a 24-bit screen")
    px = data[:, :int(width) * 4].copy().view("<u4" if byte_order == 0 else ">u4")
    return np.stack([(px >> s) & 0xFF for s in shifts], axis=-1).astype(np.uint8)
