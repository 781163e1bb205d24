"""`realtime-sr video` end to end on LR clips made as the issue's protocol makes them, with the
model chosen by the input's quantiser (``--variant auto``, the default) against ``--variant real``.

HR: frames 30.. of a clip in ../shared/data/videos, centre-cropped to at most 640x360; LR: PIL
bicubic /2, encoded by libx264 (preset medium, yuv420p) at each CRF; then ``realtime-sr video LR
OUT --crf 0 --pix-fmt yuv444p`` (so that its own encode adds nothing) and PSNR-Y of OUT against HR.

    python benchmarks/video_variant_choice.py --clips slow_traffic_small.mp4,bigbuckbunny.mp4 --out F.md
"""

from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_video import VIDEOS, read_run  # noqa: E402 - the clips' frames, cropped as that benchmark does

from realtime_sr.imageops import resize_bicubic  # noqa: E402
from realtime_sr.metrics import psnr_y  # noqa: E402
from realtime_sr.runtime.cpu import cpu_model  # noqa: E402
from realtime_sr.train.degrade import codec_options  # noqa: E402


def frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def encode(lr: list[np.ndarray], path: Path, crf: int) -> None:
    with av.open(str(path), "w") as o:
        s = o.add_stream("libx264", rate=25)
        s.height, s.width = lr[0].shape[:2]
        s.pix_fmt = "yuv420p"
        s.options = codec_options("libx264", crf)
        for a in lr:
            for pk in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                o.mux(pk)
        for pk in s.encode():
            o.mux(pk)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", default="slow_traffic_small.mp4,bigbuckbunny.mp4")
    ap.add_argument("--crf", default="0,23,28")
    ap.add_argument("--start", type=int, default=30)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--out", help="markdown file for the table")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for clip in a.clips.split(","):
            hr = read_run(VIDEOS / clip, a.start, a.frames)
            lr = [resize_bicubic(x, (x.shape[1] // 2, x.shape[0] // 2)) for x in hr]
            for crf in map(int, a.crf.split(",")):
                src = tmp / f"lr_{crf}.mp4"
                encode(lr, src, crf)
                bic = float(np.mean([psnr_y(resize_bicubic(d, (h.shape[1], h.shape[0])), h, 2)
                                     for d, h in zip(frames(src), hr)]))
                row = [clip, f"CRF {crf}", f"{bic:.2f}"]
                for extra in ([], ["--variant", "real"]):
                    dst = tmp / "sr.mp4"
                    r = subprocess.run(["realtime-sr", "video", str(src), str(dst), "-y", "--no-progress", "--crf", "0",
                                        "--pix-fmt", "yuv444p", *extra], capture_output=True, text=True, check=True)
                    said = next((ln for ln in r.stderr.splitlines() if ln.startswith("input:")), "")
                    v = float(np.mean([psnr_y(s, h, 2) for s, h in zip(frames(dst), hr)]))
                    pick = said.split("->")[1].split("(")[0].strip() if said else "fine-x2-real"
                    row.append(f"{v:.2f} ({v - bic:+.2f}) {pick}")
                print(" | ".join(row), flush=True)
                rows.append(row)
    text = ["# `realtime-sr video`: the model chosen by the input's quantiser against --variant real", "",
            f"- command: `python benchmarks/video_variant_choice.py --clips {a.clips} --crf {a.crf} --frames {a.frames}`",
            (f"- machine: {cpu_model()}, {platform.machine()}; date {datetime.date.today()}; default backend "
             "and precision (OpenVINO bf16 here)"), "",
            "| clip | LR | bicubic (PSNR-Y) | --variant auto (default) | --variant real |", "|---|---|---:|---|---|"]
    text += [f"| {' | '.join(r)} |" for r in rows]
    if a.out:
        Path(a.out).write_text("\n".join(text) + "\n")
        print(f"written: {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
