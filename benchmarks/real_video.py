"""PSNR-Y of models on compressed video made from real clips: the input people actually have.

For each clip in ../shared/data/videos: decode a run of consecutive frames (the HR, centre-cropped
to at most 640x360 so that the run stays short), downscale each by the scale with PIL bicubic,
encode the LR run as one clip with libx264 (preset medium, yuv420p) at each CRF, decode it, and run
every method on the decoded Y planes, exactly what ``realtime-sr video`` feeds its networks. PSNR-Y
against the HR frames' Y (scale pixels of border cropped), averaged over frames, then over clips.
"lossless" feeds the LR's own Y (no codec).

``--pan DIR`` (e.g. ../shared/data/images/Set14) makes the clips from stills instead: each image
seen through a window panning 2 HR pixels right and 1 down a frame, so that every frame is a
clean photograph and the codec still codes real motion. The web clips' originals carry their own
coding, which hides the detail a larger network recovers; a panned still does not, which makes it
closer to clean test sequences.

    python benchmarks/real_video.py --scale 2
    python benchmarks/real_video.py --scale 2 --methods bicubic,fine-x2,runs/fine_x2_real/last.pt

A method is ``bicubic``, a shipped model name (``fine-x2-real``), ``routed-x2[-real]``, either
with ``@PRECISION`` (``coarse-x2-real@int8``: on the backend ``realtime-sr video --precision``
picks for it, the same model files), a weights file, or a training checkpoint (``.pt``: its EMA
generator), so runs can be measured while they train. A multi-frame network (``frames`` > 1)
gets each frame with its neighbours from the same decoded clip, the run's first and last frames
repeated past its ends.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime_sr.colour import rgb_to_y  # noqa: E402
from realtime_sr.imageops import resize_bicubic  # noqa: E402
from realtime_sr.metrics import psnr_y  # noqa: E402
from realtime_sr.train.degrade import encode_clip  # noqa: E402

VIDEOS = ROOT.parent / "shared" / "data" / "videos"
CLIPS = ("chaplin.mp4", "slow_traffic_small.mp4", "bigbuckbunny.mp4", "fire2.mp4")


def read_run(path: Path, start: int, count: int, max_w: int = 640, max_h: int = 360, scale: int = 2):
    """``count`` consecutive RGB frames from ``start``, centre-cropped to max size, sides a multiple of 2*scale."""
    import av

    frames = []
    with av.open(str(path)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i < start:
                continue
            rgb = fr.to_ndarray(format="rgb24")
            h, w = rgb.shape[:2]
            m = 2 * scale
            ch, cw = min(h, max_h) // m * m, min(w, max_w) // m * m
            y0, x0 = (h - ch) // 2, (w - cw) // 2
            frames.append(np.ascontiguousarray(rgb[y0:y0 + ch, x0:x0 + cw]))
            if len(frames) == count:
                break
    if len(frames) < count and start > 0:  # a short clip: its first frames instead
        return read_run(path, 0, count, max_w, max_h, scale)
    return frames


def pan_run(path: Path, count: int, scale: int = 2, step: tuple[int, int] = (2, 1)):
    """``count`` frames of a still image seen through a window panning ``step`` HR pixels a frame
    (x, y): a clip with real motion whose every frame is a clean photograph, where the web clips'
    originals carry their own coding. The window is the image less the pan's reach, at most
    640x360, sides a multiple of 2 * scale."""
    from PIL import Image

    rgb = np.asarray(Image.open(path).convert("RGB"))
    h, w = rgb.shape[:2]
    m = 2 * scale
    reach = ((count - 1) * step[1], (count - 1) * step[0])
    ch, cw = min(h - reach[0], 360) // m * m, min(w - reach[1], 640) // m * m
    if ch < 4 * m or cw < 4 * m:
        raise SystemExit(f"{path}: too small for a {count}-frame pan")
    y0, x0 = (h - reach[0] - ch) // 2, (w - reach[1] - cw) // 2
    return [np.ascontiguousarray(rgb[y0 + t * step[1]:y0 + t * step[1] + ch, x0 + t * step[0]:x0 + t * step[0] + cw])
            for t in range(count)]


def lr_planes(hr_frames, scale: int, crf):
    """The LR Y planes (float, 0-255) for one condition: lossless, or a libx264 encode at ``crf``."""
    lr = [resize_bicubic(f, (f.shape[1] // scale, f.shape[0] // scale)) for f in hr_frames]
    if crf == "lossless":
        return [np.rint(rgb_to_y(x / 255.0)).astype(np.float32) for x in lr]
    return [yuv[..., 0].astype(np.float32) for yuv in encode_clip(lr, "libx264", int(crf), "medium")]


def load_method(name: str, scale: int):
    """A callable: Y plane (H, W) float 0-255 -> (sH, sW) float 0-255."""
    from realtime_sr import routing
    from realtime_sr.upscale import upscale_y

    if name == "bicubic":
        def bic(y):
            from PIL import Image

            return np.asarray(Image.fromarray(y.astype(np.float32), mode="F").resize(
                (y.shape[1] * scale, y.shape[0] * scale), Image.BICUBIC))
        return bic
    if name.endswith(".pt"):
        model = checkpoint_model(name)
        if getattr(model.net, "frames", 1) > 1:
            return frames_method(model.net)
        backend = routing.backend_for(model, backend="torch", device="cpu", precision="fp32")
    else:
        name, _, precision = name.partition("@")  # "fine-x2-real-strong@int8": that model as `video` runs it in int8
        mode = "routed" if name.startswith("routed-") else None
        if mode:
            name = name.replace("routed-", "fine-", 1)
        engine = "torch" if precision in ("", "fp32") else "auto"
        model, backend = routing.load(name, mode=mode or "fine", backend=engine, device="cpu",
                                      precision=precision or "fp32")
    return lambda y: upscale_y(backend, y, model.scale, tile=1024, context=model.context)


def frames_method(net):
    """A multi-frame network as a method: it takes (frames, H, W), the frame to upscale in the
    middle (the whole plane in one call: these clips are at most 320x180 LR at x2)."""
    import torch

    def run(stack):
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32) / 255.0)[None]
            return net(x)[0, 0].numpy() * 255.0
    run.frames = net.frames
    return run


def neighbours(planes, i: int, frames: int):
    """Frames i - r .. i + r of a run (r = frames // 2), the run's ends repeated, stacked."""
    r = frames // 2
    return np.stack([planes[min(max(j, 0), len(planes) - 1)] for j in range(i - r, i + r + 1)])


def apply(fn, planes, i: int):
    """A method's output for frame i of a run: a multi-frame one gets the frame's neighbours too."""
    frames = getattr(fn, "frames", 1)
    return fn(neighbours(planes, i, frames) if frames > 1 else planes[i])


def checkpoint_model(path: str):
    """A Model from a training checkpoint's EMA generator (batch norm folded, eval mode)."""
    import torch

    from realtime_sr.archs import build
    from realtime_sr.archs.fuse import fuse_batchnorm
    from realtime_sr.models import Model
    from realtime_sr.train.loop import receptive_context

    ck = torch.load(path, map_location="cpu", weights_only=True)
    net = build(ck["arch"], **ck["hparams"])
    net.load_state_dict({k: v.contiguous() for k, v in ck["ema"].items()})
    net.eval()
    fuse_batchnorm(net)
    meta = {"scale": ck["hparams"]["scale"], "colour": "y", "context": receptive_context(ck["arch"], ck["hparams"])}
    return Model(name=f"{Path(path).parent.name}@{ck['step']}", path=Path(path), meta=meta, net=net)


def crops(a, fns, s: int) -> int:
    """One compressed frame (the last of a short run), each method's Y output beside the original,
    cropped and shown at 2x (nearest), labelled."""
    from PIL import Image, ImageDraw

    hr = read_run(VIDEOS / a.crop_clip, a.start, 4, scale=s)
    planes = lr_planes(hr, s, a.crop_crf)
    x, y, w, h = (int(v) for v in a.crop_box.split(","))
    ref = np.rint(rgb_to_y(hr[-1] / 255.0))
    last = len(planes) - 1
    shots = [(m, np.clip(np.rint(apply(fn, planes, last)), 0, 255)) for m, fn in fns.items()] + [("original", ref)]
    zoom, pad, label = 2, 4, 14
    tw, th = w * s * zoom, h * s * zoom
    canvas = Image.new("L", (len(shots) * (tw + pad), th + label), 255)
    pen = ImageDraw.Draw(canvas)
    for i, (name, img) in enumerate(shots):
        tile = Image.fromarray(img[y * s:(y + h) * s, x * s:(x + w) * s].astype(np.uint8)).resize((tw, th), Image.NEAREST)
        canvas.paste(tile, (i * (tw + pad), label))
        psnr = "" if name == "original" else f" {psnr_y(img, ref, s):.2f} dB"
        pen.text((i * (tw + pad) + 2, 1), f"{name}{psnr}", fill=0)
    canvas.save(a.crops)
    print(f"wrote {a.crops} ({a.crop_clip}, frame {a.start + 3}, LR libx264 CRF {a.crop_crf})")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=int, choices=(2, 4), default=2)
    ap.add_argument("--methods", help="comma-separated (default: bicubic and every shipped model of the scale)")
    ap.add_argument("--crf", default="lossless,23,28", help="conditions (default lossless,23,28)")
    ap.add_argument("--frames", type=int, default=6, help="consecutive frames per clip (default 6)")
    ap.add_argument("--start", type=int, default=30, help="first frame of the run (default 30)")
    ap.add_argument("--pad", type=int, default=0,
                    help="frames decoded and encoded either side of the run but not scored, so that a "
                         "multi-frame network sees real neighbours at the run's ends (default 0)")
    ap.add_argument("--clips", default=",".join(CLIPS))
    ap.add_argument("--pan", metavar="DIR", help="instead of the clips: each image of DIR (e.g. Set14) as a "
                                                  "clip of --frames frames panning 2 px right and 1 down a frame")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="write a markdown table here")
    ap.add_argument("--crops", metavar="PNG", help="instead: crops of one compressed frame, side by side at 2x")
    ap.add_argument("--crop-clip", default="slow_traffic_small.mp4")
    ap.add_argument("--crop-box", default="200,60,120,90", help="x,y,w,h of the crop in LR pixels")
    ap.add_argument("--crop-crf", default="23")
    a = ap.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    from realtime_sr.models import shipped_models

    s = a.scale
    if a.methods:
        methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    else:
        shipped = [n for n in shipped_models() if f"-x{s}" in n]
        methods = ["bicubic"] + shipped + [n.replace("fine-", "routed-", 1) for n in shipped if n.startswith("fine-")
                                           and n.replace("fine-", "coarse-", 1) in shipped]
    conds = [c.strip() for c in a.crf.split(",")]
    if a.pan:
        from realtime_sr.imageops import list_images

        clips = sorted(list_images(a.pan))
        if not clips:
            sys.exit(f"no images in {a.pan}")
    else:
        clips = [VIDEOS / c.strip() for c in a.clips.split(",") if (VIDEOS / c.strip()).exists()]
    if not clips:
        sys.exit(f"no clips found in {VIDEOS}")
    fns = {m: load_method(m, s) for m in methods}
    if a.crops:
        return crops(a, fns, s)
    table = {(m, c): [] for m in methods for c in conds}
    t0 = time.perf_counter()
    for clip in clips:
        pad = min(a.pad, a.start)
        hr = (pan_run(clip, a.frames + 2 * pad, s) if a.pan
              else read_run(clip, a.start - pad, a.frames + 2 * pad, scale=s))
        hr_y = [np.rint(rgb_to_y(f / 255.0)) for f in hr]
        scored = range(pad, len(hr) - pad)
        for c in conds:
            planes = lr_planes(hr, s, c)
            for m in methods:
                vals = [psnr_y(np.clip(np.rint(apply(fns[m], planes, i)), 0, 255), hr_y[i], s) for i in scored]
                table[(m, c)].append(float(np.mean(vals)))
        print(f"{clip.name}: done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    head = "| method | " + " | ".join(f"{c if c == 'lossless' else 'CRF ' + c}" for c in conds) + " |"
    lines = [head, "|---|" + "---:|" * len(conds)]
    base = {c: np.mean(table[("bicubic", c)]) for c in conds} if "bicubic" in methods else None
    for m in methods:
        cells = []
        for c in conds:
            v = float(np.mean(table[(m, c)]))
            cells.append(f"{v:.2f}" + (f" ({v - base[c]:+.2f})" if base and m != "bicubic" else ""))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    per_clip = ["", "Per clip (" + ", ".join(c.name for c in clips) + "):", ""]
    for m in methods:
        per_clip.append(f"- {m}: " + "; ".join(f"{c}: " + "/".join(f"{v:.2f}" for v in table[(m, c)]) for c in conds))
    text = "\n".join(lines)
    print(text)
    if a.out:
        cmd = "python benchmarks/real_video.py " + " ".join(sys.argv[1:])
        pad_note = (f" (encoded with {a.pad} more frame{'s' * (a.pad > 1)} either side, not scored)"
                    if a.pad else "")
        hdr = (f"# PSNR-Y on compressed clips, x{s}\n\n`{cmd}`\n\n{datetime.date.today()}, "
               f"{platform.processor() or platform.machine()}, torch fp32 CPU. "
               + (f"{len(clips)} images of {a.pan}, each a clip of {a.frames} frames panning 2 px right and 1 "
                  f"down a frame (a window of at most 640x360){pad_note}; " if a.pan else
                  f"{len(clips)} clips x {a.frames} consecutive frames from frame {a.start}{pad_note}, HR "
                  f"centre-cropped to at most 640x360; ")
               + f"LR = PIL bicubic "
               f"/{s}, then libx264 preset medium yuv420p at each CRF (one clip per condition); PSNR-Y vs the HR "
               f"frames, {s}-pixel border; in brackets: gain over bicubic.\n\n")
        Path(a.out).write_text(hdr + text + "\n" + "\n".join(per_clip) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
