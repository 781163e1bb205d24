"""What ``realtime-sr bench`` puts beside its timings: PSNR on a folder, end-to-end video rows, the plot.

PSNR is the evaluation protocol's (:mod:`realtime_sr.evaluate`: mod-crop, PIL-bicubic LR, Y,
``scale`` pixels of border), measured through the backend that was timed. The end-to-end rows
run ``realtime-sr video``'s pipeline (decode, model, encode, mux) into a temporary folder and
count its frames against its wall time, model loading left out.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from .errors import UsageError

NO_DATA = ("no PSNR: Set14 was not found under ../shared/data/images; pass --data DIR (a folder of HR "
           "images) for the PSNR column, or --no-psnr")


def find_data(arg: str | None) -> Path | None:
    """The PSNR folder: ``--data DIR`` (which must exist), else Set14 where the project's data is."""
    if arg:
        if not Path(arg).is_dir():
            raise UsageError(f"--data {arg}: not a folder of images")
        return Path(arg).resolve()
    from .export_cmd import _gate_set  # the quality gate looks for Set14 in the same places

    return _gate_set(None)


class Quality:
    """PSNR on Y of a folder's images, by the protocol, for any (model, backend); bicubic's for reference."""

    def __init__(self, folder: Path, scale: int) -> None:
        from .evaluate import load_pairs

        self.folder, self.scale = folder, scale
        self.pairs = load_pairs(folder, scale)

    def __call__(self, model, backend) -> dict:
        from .evaluate import evaluate
        from .upscale import upscale_array

        if model.scale != self.scale:
            raise UsageError(f"{model.name} is x{model.scale}; the PSNR set was prepared at x{self.scale}")
        r = evaluate(self.pairs, lambda lr: upscale_array(model, backend, lr, tile=512), self.scale, model.name,
                     with_ssim=False)
        return {"psnr": r.psnr, "data": self.folder.name}

    def bicubic(self) -> float:
        from .evaluate import bicubic_method, evaluate

        return evaluate(self.pairs, bicubic_method(self.scale), self.scale, "bicubic", with_ssim=False).psnr


def clip_for(video: str, frame: tuple[int, int], seconds: float, folder: Path) -> Path:
    """``--video FILE`` as given (checked), or a generated clip of ``frame`` size, ``seconds`` long."""
    if video:
        from .errors import require_file

        return require_file(video, "a video file")
    from .pipeline.sample import make_sample_video


    return make_sample_video(folder / f"bench_{frame[0]}x{frame[1]}.mp4", width=frame[0], height=frame[1],
                             seconds=seconds, audio=False)


def bench_video(clip: Path, *, model_arg, scale, mode: str, backend: str, device: str, precision: str,
                seconds: float, fine_fraction: float = 0.25) -> dict:
    """One end-to-end row: ``clip``'s first ``seconds`` through decode, model, encode and mux."""
    from .pipeline.runner import VideoJob, run_video

    with tempfile.TemporaryDirectory(prefix="rsr-bench-") as d:
        job = VideoJob(input=Path(clip), output=Path(d) / "out.mp4", model=model_arg, scale=scale, mode=mode,
                       fine_fraction=fine_fraction, backend=backend, device=device, precision=precision,
                       duration=seconds, audio=False, subtitles=False, progress=False)
        res = run_video(job, log=lambda m: None)
    wall = max(res.pipeline_seconds, 1e-9)
    return {"kind": "video", "network": mode, "model": "-", "backend": backend, "precision": precision,
            "frame": f"{res.width // (scale or 1)}x{res.height // (scale or 1)}", "scale": scale, "runs": res.frames,
            "p50_ms": 1e3 * wall / max(res.frames, 1), "mean_ms": 1e3 * wall / max(res.frames, 1),
            "fps": res.frames / wall, "clip": Path(clip).name}


def row_label(r: dict) -> str:
    """A row's name on the plot: network, backend and precision as resolved (``routed openvino int8``)."""
    be = r["backend"]
    if "(" in be:  # routed-0.25(openvino-cpu-int8): routing's fraction is in the network's name already
        be = be[be.index("(") + 1:be.rindex(")")]
    real = " real" if r.get("model", "").endswith("-real") else ""
    return f"{r['network']}{real} {be.replace('-cpu', '').replace('-cuda', ' cuda').replace('-', ' ')}"


def plot_rows(rows: list[dict], path, *, bicubic: tuple[float, float] | None, frame: str) -> dict:
    """PSNR against fps of the rows that have both, bicubic's (fps, PSNR) for reference, as a PNG at ``path``."""
    from .plot import quality_speed_plot

    pts = [r for r in rows if r.get("kind", "model") == "model" and r.get("psnr") is not None]
    if not pts:
        raise UsageError("--plot: no row has a PSNR to plot (see the note above)")
    return quality_speed_plot([(r["fps"], r["psnr"]) for r in pts], [row_label(r) for r in pts], path,
                              reference=(*bicubic, "bicubic") if bicubic else None,
                              title=f"realtime-sr bench: PSNR on {pts[0].get('data', '')} x{pts[0]['scale']} "
                                    f"against fps ({frame} LR frames)")


def bicubic_fps(frame: tuple[int, int], scale: int, runs: int = 5) -> float:
    """Frames per second of PIL's bicubic upscale of a Y plane of ``frame`` size (the reference point)."""
    import numpy as np

    from .bench_cmd import time_backend
    from .imageops import resize_bicubic

    w, h = frame
    y = np.random.default_rng(0).random((h, w), dtype=np.float32)
    return time_backend(lambda x: resize_bicubic(x, (w * scale, h * scale)), y, runs=runs, warmup=1)["fps"]


def say(msg: str) -> None:
    print(f"realtime-sr: {msg}", file=sys.stderr)
