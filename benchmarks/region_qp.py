"""Does the codec treat a training region as it treats a real frame? Mean H.264 QP per frame of
5-frame clips (2 LR pixels a frame of motion) encoded at one CRF: whole 240x160 LR frames (BSD200
crops downscaled x2 with PIL bicubic) against 80x80 crops of the same clips, the size of region
the degradation pipeline encodes for a group of four 32-pixel x2 patches (docs/real.md).

    python benchmarks/region_qp.py [--images 40] [--crf 23,28]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BSD200 = ROOT.parent / "shared" / "data" / "images" / "BSD200"


def clip_qp(frames: list[np.ndarray], crf: int) -> list[float]:
    """Each frame's mean QP after a libx264 round trip (the training pipeline's options)."""
    import av

    from realtime_sr.pipeline.qp import frame_qp
    from realtime_sr.train.degrade import codec_options

    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    with av.open(buf, "w", format="h264") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = codec_options("libx264", crf)
        s.codec_context.thread_count = 1
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    buf.seek(0)
    with av.open(buf, format="h264") as c:
        st = c.streams.video[0]
        st.codec_context.options = {"export_side_data": "venc_params"}
        return [frame_qp(fr, "h264") for fr in c.decode(st)]


def main(argv=None) -> int:
    from PIL import Image

    from realtime_sr.imageops import resize_bicubic

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=40, help="BSD200 images to use (default 40)")
    ap.add_argument("--crf", default="23,28")
    a = ap.parse_args(argv)
    paths = sorted(BSD200.glob("*"))[: a.images]
    if not paths:
        print(f"region_qp.py: error: no images in {BSD200}", file=sys.stderr)
        return 2
    for crf in (int(c) for c in a.crf.split(",")):
        whole, crop = [], []
        for p in paths:
            im = np.asarray(Image.open(p).convert("RGB"))
            if im.shape[0] > im.shape[1]:
                im = im.transpose(1, 0, 2)
            if im.shape[0] < 320 or im.shape[1] < 480:
                continue
            lr = np.clip(resize_bicubic(im[:320, :480].astype(np.float32), (240, 160)), 0, 255).astype(np.uint8)
            clip = [np.ascontiguousarray(np.roll(lr, 2 * i, axis=1)) for i in range(5)]
            whole.append(clip_qp(clip, crf))
            crop.append(clip_qp([np.ascontiguousarray(f[40:120, 80:160]) for f in clip], crf))
        w, c = np.array(whole, float).mean(0), np.array(crop, float).mean(0)
        print(f"CRF {crf} ({len(whole)} clips), mean QP by frame: 240x160 {np.round(w, 1).tolist()}, "
              f"80x80 {np.round(c, 1).tolist()}; 80x80 minus 240x160: {np.mean(c - w):+.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
