"""Bicubic, fine, gan and Real-ESRGAN's animevideov3 side by side, on what goes wrong with GANs.

On Set14 (the protocol: PIL-bicubic LR) and on compressed video frames (HR = a 640x360 centre
crop of decoded frames of ../shared/data/videos; LR = its PIL-bicubic downscale, encoded with
libx264 at --crf, yuv420p, through PyAV, and decoded): PSNR-Y, SSIM-Y, the halo measure and
temporal PSNR on each clip (benchmarks/gan/measures.py defines both).

Usage: python benchmarks/gan/compare.py --scale 4 [--model LABEL=PATH ...] [--out FILE.md]
A --model may be a .safetensors weights file or a training checkpoint (runs/NAME/last.pt: its EMA).
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measures import detail, halo, temporal_psnr  # noqa: E402
from srvgg import animevideov3_method  # noqa: E402

from realtime_sr.evaluate import bicubic_method, load_pairs  # noqa: E402
from realtime_sr.imageops import resize_bicubic  # noqa: E402
from realtime_sr.metrics import psnr_y, ssim_y  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
# (file, first frame): a few frames from each of four real clips (film, camera, CG, phone)
CLIPS = (("chaplin.mp4", 60), ("slow_traffic_small.mp4", 100), ("bigbuckbunny.mp4", 40), ("fire2.mp4", 0))
CROP = (640, 360)


def read_frames(path: Path, start: int, n: int) -> list[np.ndarray]:
    """n decoded RGB frames from ``start`` (fewer when the clip is shorter), centre-cropped to CROP."""
    import av

    out = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i >= start:
                out.append(f.to_ndarray(format="rgb24"))
            if len(out) == n:
                break
    h, w = out[0].shape[:2]
    cw, ch = min(CROP[0], w), min(CROP[1], h)
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return [np.ascontiguousarray(f[y0:y0 + ch, x0:x0 + cw]) for f in out]


def compress(frames: list[np.ndarray], crf: int, fps: int = 25) -> list[np.ndarray]:
    """The frames through libx264 (yuv420p, --crf) and back, in memory."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        st = c.add_stream("libx264", rate=fps)
        st.height, st.width = frames[0].shape[:2]
        st.pix_fmt = "yuv420p"
        st.options = {"crf": str(crf), "preset": "medium", "threads": "1"}  # one thread: the same bits every run
        for f in frames:
            for p in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in st.encode():
            c.mux(p)
    buf.seek(0)
    with av.open(buf) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def video_clips(scale: int, frames: int, crf: int, offset: int = 0):
    """(clip name, HR frames, compressed LR frames) for every clip present; ``offset`` moves every
    clip's first frame (settings are chosen on other frames than those reported)."""
    for name, start in CLIPS:
        path = DATA / "videos" / name
        if not path.exists():
            continue
        hr = read_frames(path, start + offset, frames)
        hr = [f[: f.shape[0] - f.shape[0] % scale, : f.shape[1] - f.shape[1] % scale] for f in hr]
        lr = [resize_bicubic(f, (f.shape[1] // scale, f.shape[0] // scale)) for f in hr]
        yield Path(name).stem, hr, compress(lr, crf)


def project_method(model: str, scale: int):
    """A shipped name, a weights file or a training checkpoint's EMA, as uint8 RGB -> uint8 RGB."""
    from realtime_sr.upscale import Upscaler

    if model.endswith(".pt"):
        model = checkpoint_as_weights(model)
    up = Upscaler.load(model, backend="torch", device="cpu")
    if up.scale != scale:
        raise SystemExit(f"{model}: a x{up.scale} model, not x{scale}")
    return up


def checkpoint_as_weights(ckpt: str) -> str:
    """Write a training checkpoint's EMA generator as a weights file beside it; returns its path."""
    import torch

    from realtime_sr.checkpoints import save_weights
    from realtime_sr.train.loop import receptive_context

    ck = torch.load(ckpt, map_location="cpu", weights_only=True)
    cfg = ck["config"]
    out = Path(ckpt).with_name(f"ema_step{ck['step']}.safetensors")
    meta = {"name": cfg["name"], "arch": ck["arch"], "hparams": ck["hparams"], "scale": cfg["scale"],
            "colour": cfg["colour"], "stage": ck["stage"], "context": receptive_context(ck["arch"], ck["hparams"]),
            "training": {"steps": ck["step"]}}
    save_weights(out, ck["ema"], meta)
    return str(out)


def measure(methods: dict, scale: int, frames: int, crf: int, log=print, offset: int = 0,
            set14_too: bool = True) -> dict:
    res: dict = {m: {} for m in methods}
    set14 = DATA / "images" / "Set14"
    if set14_too and set14.is_dir():
        pairs = load_pairs(set14, scale)
        for m, fn in methods.items():
            t = time.perf_counter()
            rows = [(psnr_y(sr, hr, scale), ssim_y(sr, hr, scale), halo(sr, hr, scale), detail(sr, hr, scale))
                    for _, hr, lr in pairs for sr in [fn(lr)]]
            res[m]["Set14"] = dict(zip(("psnr", "ssim", "halo", "detail"), np.mean(rows, axis=0).round(4).tolist()))
            log(f"Set14 {m}: {res[m]['Set14']} ({time.perf_counter() - t:.1f} s)")
    for clip, hr, lr in video_clips(scale, frames, crf, offset):
        for m, fn in methods.items():
            sr = [fn(f) for f in lr]
            rows = [(psnr_y(s, h, scale), ssim_y(s, h, scale), halo(s, h, scale), detail(s, h, scale))
                    for s, h in zip(sr, hr)]
            row = dict(zip(("psnr", "ssim", "halo", "detail"), np.mean(rows, axis=0).round(4).tolist()))
            row["tpsnr"] = round(float(temporal_psnr(sr, hr, scale)), 4)
            res[m][clip] = row
            log(f"{clip} {m}: {row}")
    for m in res:
        clips = [v for k, v in res[m].items() if k != "Set14"]
        if clips:
            res[m]["clips"] = {k: round(float(np.mean([c[k] for c in clips])), 4) for k in clips[0]}
    return res


def table(res: dict, scale: int) -> str:
    cols = [("Set14 PSNR", "Set14", "psnr"), ("Set14 SSIM", "Set14", "ssim"), ("Set14 halo", "Set14", "halo"),
            ("Set14 detail", "Set14", "detail"),
            ("clips PSNR", "clips", "psnr"), ("clips SSIM", "clips", "ssim"), ("clips halo", "clips", "halo"),
            ("clips detail", "clips", "detail"), ("clips tPSNR", "clips", "tpsnr")]
    lines = [f"| x{scale} | " + " | ".join(c[0] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for m, r in res.items():
        vals = [r.get(s, {}).get(k) for _, s, k in cols]
        lines.append(f"| {m} | " + " | ".join("-" if v is None else (f"{v:.3f}" if k in ("halo", "detail") else f"{v:.4f}" if k == "ssim" else f"{v:.2f}")
                                           for v, (_, _, k) in zip(vals, cols)) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, choices=(2, 4), default=4)
    ap.add_argument("--frames", type=int, default=6, help="frames per clip")
    ap.add_argument("--crf", type=int, default=23)
    ap.add_argument("--offset", type=int, default=0, help="start every clip this many frames later")
    ap.add_argument("--no-set14", action="store_true", help="the clips only")
    ap.add_argument("--model", action="append", default=[], metavar="LABEL=PATH", help="another model to measure")
    ap.add_argument("--only", action="store_true", help="measure only the --model ones (baselines: the committed results)")
    ap.add_argument("--out", help="write the table (markdown, with the command and machine) and JSON here")
    a = ap.parse_args(argv)
    from realtime_sr.models import shipped_models

    s = a.scale
    methods = {} if a.only else {"bicubic": bicubic_method(s)}
    if not a.only:
        for role in ("fine", "gan"):
            if f"{role}-x{s}" in shipped_models():
                methods[f"{role}-x{s}"] = project_method(f"{role}-x{s}", s)
    for item in a.model:
        label, _, path = item.partition("=")
        methods[label] = project_method(path or label, s)
    if not a.only:
        methods["animevideov3"] = animevideov3_method(s)
    t0 = time.perf_counter()
    res = measure(methods, s, a.frames, a.crf, log=lambda m: print(m, file=sys.stderr), offset=a.offset,
                  set14_too=not a.no_set14)
    md = table(res, s)
    print(md)
    if a.out:
        cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
        head = (f"Command: `python benchmarks/gan/compare.py {' '.join(sys.argv[1:] if argv is None else argv)}`  \n"
                f"Machine: {cpu or platform.processor()} (AVX-512 VNNI, AMX bf16/int8), 2 cores; "
                f"{time.strftime('%Y-%m-%d')}; {time.perf_counter() - t0:.0f} s.  \n"
                f"Clips: {a.frames} frames each, LR through libx264 CRF {a.crf}; per-clip rows in the JSON.\n\n")
        Path(a.out).write_text(head + md + "\n")
        Path(a.out).with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
