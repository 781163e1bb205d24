"""The preview's OpenCV window: the picture at its own size, a movable labelled divider, an overlay.

The window opens at the upscaled picture's size (fitted to the screen when larger, aspect kept)
and stays resizable; OpenCV scales the picture to whatever size the user gives it. In the
comparison view a labelled divider (``bicubic | <model>``) separates the bicubic upscale (left)
from the model's (right); the mouse (click or drag) or the keys ``[``/``]`` and the arrow keys
move it. The overlay (mode, backend, fps, dropped frames, latency) is drawn at a size that stays
readable however the picture is scaled, and ``o`` toggles it. ``s`` saves a side-by-side PNG
(bicubic left, model right, both at full resolution) into the save folder.

OpenCV and numpy are imported when a window is made, so ``--help`` and ``--no-window`` need neither.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import BackendError, short_message

# what waitKeyEx returns for the arrow keys: X11 keysyms (GTK, Qt), Windows, macOS
_LEFT = {65361, 2424832, 63234}
_RIGHT = {65363, 2555904, 63235}
STEP = 0.05  # share of the width the divider moves per key press
KEYS = "q/Esc quit, c compare, mouse or [ ] and arrows move the divider, o overlay, s save PNG, space pause"


def screen_size() -> tuple[int, int] | None:
    """The screen's size in pixels where the platform says (X11, Windows); None when unknown."""
    import ctypes
    import ctypes.util
    import os

    try:
        if sys.platform.startswith("win"):
            u = ctypes.windll.user32  # type: ignore[attr-defined]
            return int(u.GetSystemMetrics(0)), int(u.GetSystemMetrics(1))
        lib = ctypes.util.find_library("X11") if os.environ.get("DISPLAY") else None
        if not lib:
            return None
        x11 = ctypes.CDLL(lib)
        x11.XOpenDisplay.restype = ctypes.c_void_p
        x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        for f in (x11.XDefaultScreen, x11.XCloseDisplay):
            f.argtypes = [ctypes.c_void_p]
        x11.XDisplayWidth.argtypes = x11.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
        d = x11.XOpenDisplay(None)
        if not d:
            return None
        try:
            s = x11.XDefaultScreen(d)
            return int(x11.XDisplayWidth(d, s)), int(x11.XDisplayHeight(d, s))
        finally:
            x11.XCloseDisplay(d)
    except (OSError, AttributeError, ValueError):
        return None


def fit(size: tuple[int, int], screen: tuple[int, int] | None, *, share: float = 0.9) -> tuple[int, int]:
    """``size`` (W, H), scaled down with its aspect kept to ``share`` of ``screen`` when larger."""
    w, h = size
    sw, sh = screen or (1600, 900)  # unknown screen: a size that fits most
    k = min(1.0, share * sw / w, share * sh / h)
    return max(1, round(w * k)), max(1, round(h * k))


def side_by_side(left, right):
    """Two pictures of one size, left | right, as one array (what ``s`` saves)."""
    import numpy as np

    return np.concatenate([left, right], axis=1)


class Window:
    """An OpenCV window. ``show`` draws a frame; ``poll`` handles keys and the mouse and returns
    'quit', 'compare', 'pause' or None (divider, overlay and saving are handled here)."""

    @staticmethod
    def check():
        try:
            import cv2
        except ImportError:
            raise BackendError("the preview window needs OpenCV: pip install 'realtime-sr[preview]' "
                               "(or run with --no-window)") from None
        return cv2

    def __init__(self, title: str, *, save_dir: str | Path = ".", log=None) -> None:
        cv2 = self.check()
        self.cv2, self.title, self.save_dir = cv2, title, Path(save_dir)
        self.log = log or (lambda m: print(m, file=sys.stderr))
        self.split, self.overlay, self.compare = 0.5, True, False
        self.names = ("bicubic", "model")
        self.status: dict = {}
        self._last = None  # (sr, lr) of the frame on screen, for redraws and saving
        self._size = None  # the picture size the window was fitted to
        self._saved = 0
        flags = cv2.WINDOW_NORMAL | getattr(cv2, "WINDOW_KEEPRATIO", 0) | getattr(cv2, "WINDOW_GUI_NORMAL", 0)
        try:
            cv2.namedWindow(title, flags)  # GUI_NORMAL: no Qt toolbar or status bar eating the picture
        except cv2.error as exc:
            why = ("this OpenCV has no GUI support, e.g. opencv-python-headless"
                   if "not implemented" in str(exc) else short_message(exc))
            raise BackendError(f"cannot open a window here ({why}); use --no-window") from None
        if hasattr(cv2, "setMouseCallback"):
            cv2.setMouseCallback(title, self._mouse)

    def describe(self, model_name: str, **status) -> None:
        """The model's name (the divider's right label) and the overlay's fixed fields."""
        self.names = ("bicubic", model_name)
        self.status.update(status)

    # drawing ----------------------------------------------------------------------------------------

    def show(self, sr, lr=None, **status) -> None:
        """Draw ``sr`` (RGB), or in the comparison view bicubic(``lr``) | ``sr`` split at the divider."""
        self.status.update(status)
        self._last = (sr, lr)
        h, w = sr.shape[:2]
        resize = self._size != (w, h)  # first frame, or the source changed size: fit the window to it
        self._size = (w, h)
        self._draw()
        if resize and hasattr(self.cv2, "resizeWindow"):
            self.cv2.resizeWindow(self.title, *fit((w, h), screen_size()))  # after a picture is in it
            self._draw()

    def _draw(self) -> None:
        import numpy as np

        from .preview import compare_view

        sr, lr = self._last
        comparing = self.compare and lr is not None
        view = compare_view(lr, sr, self.split) if comparing else sr
        bgr = np.ascontiguousarray(view[..., ::-1])
        k = self._text_scale(bgr.shape[1])
        if comparing:
            self._labels(bgr, k)
        if self.overlay:
            self._overlay(bgr, k)
        self.cv2.imshow(self.title, bgr)

    def _text_scale(self, width: int) -> float:
        """Picture pixels per screen pixel: text is drawn that much larger so it reads the same."""
        shown = 0
        if hasattr(self.cv2, "getWindowImageRect"):
            try:
                shown = self.cv2.getWindowImageRect(self.title)[2]
            except self.cv2.error:
                shown = 0
        if shown <= 0:
            shown = fit(self._size, screen_size())[0] if self._size else width
        return max(1.0, width / max(shown, 1))

    def _text(self, img, text: str, org: tuple[int, int], k: float) -> None:
        # white on a darkened box (see _box); no black outline: OpenCV 5 draws thick text wider
        cv2 = self.cv2
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * k, (255, 255, 255), max(1, round(k)), cv2.LINE_AA)

    def _box(self, img, x0: int, y0: int, x1: int, y1: int) -> None:
        """Darken a rectangle so the text on it reads over any picture."""
        h, w = img.shape[:2]
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 > x0 and y1 > y0:
            img[y0:y1, x0:x1] = img[y0:y1, x0:x1] // 3

    def _labels(self, img, k: float) -> None:
        cv2 = self.cv2
        h, w = img.shape[:2]
        x = int(round(w * self.split))
        pad, y = round(6 * k), h - round(12 * k)
        left, right = self.names
        (lw, th), _ = cv2.getTextSize(left, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * k, max(1, round(k)))
        (rw, _), _ = cv2.getTextSize(right, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * k, max(1, round(k)))
        self._box(img, x - lw - 3 * pad, y - th - pad, x - 1, y + pad)
        self._box(img, x + 1, y - th - pad, x + rw + 3 * pad, y + pad)
        self._text(img, left, (x - lw - 2 * pad, y), k)
        self._text(img, right, (x + 2 * pad, y), k)
        if hasattr(cv2, "circle"):  # a handle: the divider can be dragged
            cv2.circle(img, (x, h // 2), round(7 * k), (255, 255, 255), -1, cv2.LINE_AA)
            cv2.circle(img, (x, h // 2), round(7 * k), (0, 0, 0), max(1, round(k)), cv2.LINE_AA)

    def _overlay(self, img, k: float) -> None:
        st = self.status
        lines = [f"{self.names[1]}  mode {st.get('mode', '?')}  backend {st.get('backend', '?')}",
                 f"{st.get('fps', 0.0):.1f} fps  dropped {st.get('dropped', 0)}  "
                 f"latency {st.get('latency_ms', 0.0):.0f} ms" + ("  PAUSED" if st.get("paused") else ""),
                 "o overlay  s save  c compare  [ ] divider  q quit"]
        step = round(24 * k)
        widest = max(self.cv2.getTextSize(t, self.cv2.FONT_HERSHEY_SIMPLEX, 0.6 * k, max(1, round(k)))[0][0]
                     for t in lines)
        self._box(img, 0, 0, widest + round(20 * k), step * len(lines) + round(12 * k))
        for i, t in enumerate(lines):
            self._text(img, t, (round(10 * k), step * (i + 1)), k)

    # input ------------------------------------------------------------------------------------------

    def _mouse(self, event, x, y, flags, param=None) -> None:
        cv2 = self.cv2
        dragging = event == cv2.EVENT_MOUSEMOVE and flags & cv2.EVENT_FLAG_LBUTTON
        if self._size and self.compare and (event == cv2.EVENT_LBUTTONDOWN or dragging):
            self.move_divider(x / self._size[0], absolute=True)

    def move_divider(self, value: float, *, absolute: bool = False) -> None:
        self.split = min(0.98, max(0.02, value if absolute else self.split + value))
        self.redraw()

    def redraw(self) -> None:
        """Draw the frame on screen again (after a change of divider, view, overlay or status)."""
        if self._last is not None:
            self._draw()

    def poll(self):
        """Handle window events; 'quit', 'compare', 'pause' or None."""
        cv2 = self.cv2
        key = getattr(cv2, "waitKeyEx", cv2.waitKey)(1)
        if key in _LEFT or key == ord("["):
            self.move_divider(-STEP)
            return None
        if key in _RIGHT or key == ord("]"):
            self.move_divider(STEP)
            return None
        key = key & 0xFF if key != -1 else -1
        if key in (ord("q"), 27):
            return "quit"
        if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            return "quit"  # closed with the mouse
        if key == ord("o"):
            self.overlay = not self.overlay
            self.redraw()
        elif key == ord("s"):
            self.save()
        elif key == ord("c"):
            self.compare = not self.compare
            self.redraw()
            return "compare"
        return {ord(" "): "pause"}.get(key)

    def save(self) -> Path | None:
        """Write bicubic | model of the frame on screen, full resolution, as a PNG; returns its path."""
        from PIL import Image

        from .fsutil import atomic_output
        from .imageops import resize_bicubic

        if self._last is None or self._last[1] is None:
            self.log("nothing to save yet")
            return None
        sr, lr = self._last
        pair = side_by_side(resize_bicubic(lr, (sr.shape[1], sr.shape[0])), sr)
        while True:
            self._saved += 1
            path = self.save_dir / f"realtime-sr-{self._saved:03d}.png"
            if not path.exists():
                break
        try:
            with atomic_output(path) as tmp:
                Image.fromarray(pair).save(tmp, format="PNG")
        except OSError as exc:
            self.log(f"cannot save {path} ({short_message(exc)})")
            return None
        self.log(f"saved {path} ({self.names[0]} | {self.names[1]}, {pair.shape[1]}x{pair.shape[0]})")
        return path

    def close(self) -> None:
        self.cv2.destroyWindow(self.title)
