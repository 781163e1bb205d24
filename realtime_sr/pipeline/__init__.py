"""The video pipeline: source (decode) -> stages (model) -> sink (encode) -> mux, run by the runner.

Importing this package is cheap; ``run_video`` and ``make_sample_video`` load PyAV and torch on use.
"""

from __future__ import annotations

__all__ = ["VideoJob", "make_sample_video", "probe", "run_video"]


def __getattr__(name: str):
    if name in ("VideoJob", "run_video"):
        from . import runner

        return getattr(runner, name)
    if name == "make_sample_video":
        from .sample import make_sample_video

        return make_sample_video
    if name == "probe":
        from .source import probe

        return probe
    raise AttributeError(f"module 'realtime_sr.pipeline' has no attribute {name!r}")
