"""Which model wins at which quantiser, per codec: the measurements behind ``--variant auto``.

``realtime-sr video`` reads the input's mean quantiser from its bitstream (realtime_sr/pipeline/qp.py)
and picks the clean, real or real-strong models by thresholds on it. The thresholds are on each
codec's own scale (H.264 QP 0-51, VP9 q-index 0-255), so each codec needs its own. This benchmark
makes them: for each clip in ../shared/data/videos, a run of 30 consecutive frames (centre-cropped
to 640x360 at most) is downscaled with PIL bicubic, encoded as one file (libx264 preset medium in
MP4; libvpx-vp9 ``deadline=good`` in WebM) at each CRF, and read back exactly as the video command
reads it (``qp.quantiser`` on the file, then its decoded Y planes). Every method runs on six of the
frames (every fifth); PSNR-Y against the original frames, gain over bicubic, per clip and condition.

    python benchmarks/qp_calibration.py --scale 2 --codecs libx264,libvpx-vp9 --out F.md
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from real_video import CLIPS, VIDEOS, load_method, read_run  # noqa: E402

from realtime_sr.colour import rgb_to_y  # noqa: E402
from realtime_sr.imageops import resize_bicubic  # noqa: E402
from realtime_sr.metrics import psnr_y  # noqa: E402
from realtime_sr.pipeline import qp  # noqa: E402
from realtime_sr.train.degrade import codec_options, rgb_to_yuv420p  # noqa: E402

CONTAINER = {"libx264": "mp4", "libvpx-vp9": "webm"}


def encoder_options(codec: str, crf: str) -> dict[str, str]:
    """x264 as the training codecs run it (CRF 0 for lossless); VP9 by its own CRF (degrade.py
    shifts VP9's CRF to sit beside x264's), ``lossless=1`` for lossless."""
    if codec == "libx264":
        return codec_options(codec, 0 if crf == "lossless" else int(crf))
    if crf == "lossless":
        return {"lossless": "1", "deadline": "good", "cpu-used": "4", "threads": "1"}
    return {"crf": crf, "b": "0", "deadline": "good", "cpu-used": "4", "threads": "1"}


def encode_file(lr_frames, codec: str, crf: str, path: Path) -> None:
    import av

    h, w = lr_frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        st = out.add_stream(codec, rate=25)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = encoder_options(codec, crf)
        for f in lr_frames:
            out.mux(st.encode(av.VideoFrame.from_ndarray(rgb_to_yuv420p(f), format="yuv420p")))
        out.mux(st.encode())


def decoded_y(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [np.frombuffer(f.planes[0], np.uint8).reshape(f.planes[0].height, f.planes[0].line_size)
                [:, :f.planes[0].width].astype(np.float32) for f in c.decode(video=0)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=int, default=2, choices=(2, 4))
    ap.add_argument("--codecs", default="libx264,libvpx-vp9")
    ap.add_argument("--crf", action="append", metavar="CODEC=LIST",
                    help="conditions of one codec (default libx264=lossless,12,18,23,28 and "
                         "libvpx-vp9=lossless,15,25,32,40,48)")
    ap.add_argument("--methods", default=None, help="default: bicubic, coarse and fine, clean, real and real-strong")
    ap.add_argument("--clips", default=",".join(CLIPS))
    ap.add_argument("--start", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)

    import torch

    torch.set_num_threads(a.threads)
    s = a.scale
    crfs = {"libx264": "lossless,12,18,23,28", "libvpx-vp9": "lossless,15,25,32,40,48"}
    for item in a.crf or []:
        k, v = item.split("=", 1)
        crfs[k] = v
    methods = (a.methods.split(",") if a.methods else
               ["bicubic", f"coarse-x{s}", f"coarse-x{s}-real", f"fine-x{s}", f"fine-x{s}-real",
                f"fine-x{s}-real-strong"])
    fns = {m: load_method(m, s) for m in methods}
    rows = []
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for clip in a.clips.split(","):
            hr = read_run(VIDEOS / clip, a.start, 30, scale=s)
            lr = [resize_bicubic(f, (f.shape[1] // s, f.shape[0] // s)) for f in hr]
            hr_y = [np.rint(rgb_to_y(f / 255.0)) for f in hr]
            for codec in a.codecs.split(","):
                for crf in crfs[codec].split(","):
                    path = Path(tmp) / f"lr.{CONTAINER[codec]}"
                    encode_file(lr, codec, crf, path)
                    q = qp.quantiser(path)
                    ys = decoded_y(path)
                    picks = range(0, len(ys), 5)
                    psnr = {}
                    for m, fn in fns.items():
                        psnr[m] = float(np.mean([psnr_y(np.clip(np.rint(fn(ys[i])), 0, 255), hr_y[i], s)
                                                 for i in picks]))
                    rows.append(dict(clip=clip, codec=codec, crf=crf, q=None if q is None else q[1], psnr=psnr))
                    gains = " ".join(f"{m} {psnr[m] - psnr['bicubic']:+.2f}" for m in methods[1:])
                    print(f"{clip} {codec} {crf}: q {rows[-1]['q']}, bicubic {psnr['bicubic']:.2f}, {gains}",
                          flush=True)
    took = time.time() - t0
    if a.out:
        write_table(a, rows, methods, took)
    return 0


def write_table(a, rows, methods, took: float) -> None:
    from realtime_sr.runtime import cpu

    lines = [f"# Model choice by quantiser, x{a.scale}", "",
             f"`python benchmarks/qp_calibration.py {' '.join(sys.argv[1:])}`", "",
             f"{datetime.date.today()}, {cpu.cpu_model()}, {cpu.cpu_features().describe()}, "
             f"{a.threads} torch thread(s), {took / 60:.1f} min. Clips: 30 frames from frame {a.start}, centre-cropped "
             f"to 640x360 at most, PIL bicubic /{a.scale}, encoded as one file per condition; the quantiser is "
             f"`qp.quantiser` of that file (H.264 QP or VP9 q-index, mean of its 30 frames); PSNR-Y over frames "
             f"0, 5, ..., 25 against the original frames, {a.scale} pixels of border cropped. Gain over bicubic "
             f"(dB); **bold**: the best coarse and the best fine model of each row.", ""]
    families = [[m for m in methods if m.startswith(f)] for f in ("coarse-", "fine-")]
    head = "| clip | codec | CRF | quantiser | bicubic | " + " | ".join(methods[1:]) + " |"
    lines += [head, "|" + "---|" * (5 + len(methods) - 1)]
    for r in rows:
        p = r["psnr"]
        best = {max(f, key=lambda m: p[m]) for f in families if f}
        cells = [(f"**{p[m] - p['bicubic']:+.2f}**" if m in best else f"{p[m] - p['bicubic']:+.2f}")
                 for m in methods[1:]]
        q = "-" if r["q"] is None else f"{r['q']:.1f}"
        lines.append(f"| {r['clip']} | {r['codec']} | {r['crf']} | {q} | {p['bicubic']:.2f} | "
                     + " | ".join(cells) + " |")
    lines += ["", *summary(rows, a.scale)]
    Path(a.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}")


def summary(rows, s: int) -> list[str]:
    """Per codec and CRF, the mean over clips of each mode's pick by ``qp.level`` (what ``video
    --variant auto`` would run), of each fixed model, and of the best one per clip."""
    out = ["Mean over clips, gain over bicubic (dB): what `--variant auto` picks by the quantiser "
           "(qp.THRESHOLDS), each model alone, and the best per clip.", "",
           "| codec | CRF | fine mode: auto | clean | real | real-strong | best "
           "| coarse mode: auto | clean | real | best |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    fam = {"fine": [f"fine-x{s}", f"fine-x{s}-real", f"fine-x{s}-real-strong"],
           "coarse": [f"coarse-x{s}", f"coarse-x{s}-real"]}
    keys = list(dict.fromkeys((r["codec"], r["crf"]) for r in rows))
    for codec, crf in keys:
        group = [r for r in rows if (r["codec"], r["crf"]) == (codec, crf)]
        if any(m not in group[0]["psnr"] for f in fam.values() for m in f):
            return []
        cells = []
        for role, models in fam.items():
            def gain(r, m):
                return r["psnr"][m] - r["psnr"]["bicubic"]
            picks = []
            for r in group:
                lvl = qp.level(r["q"], {"libx264": "h264", "libvpx-vp9": "vp9"}[codec], role, s)
                picks.append(models[{"clean": 0, "real": 1, "strong": 2}[lvl]] if role == "fine"
                             else models[int(lvl != "clean")])
            cells.append(f"**{np.mean([gain(r, m) for r, m in zip(group, picks)]):+.2f}**")
            cells += [f"{np.mean([gain(r, m) for r in group]):+.2f}" for m in models]
            cells.append(f"{np.mean([max(gain(r, m) for m in models) for r in group]):+.2f}")
        out.append(f"| {codec} | {crf} | " + " | ".join(cells) + " |")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
