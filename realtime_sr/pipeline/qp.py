"""How compressed a video is, read from its own bitstream: the mean quantiser of its first frames.

FFmpeg's H.264 and VP9 decoders can export each frame's quantisers (``export_side_data=venc_params``:
the frame's base value and one delta per block, ``AVVideoEncParams`` in libavutil/video_enc_params.h).
Their mean over the blocks and over the first frames is the clip's compression level on the codec's
own scale: H.264 QP 0-51 (0 for lossless x264, about 21-28 for x264 CRF 18-23 on ordinary footage),
VP9 q-index 0-255 (0 lossless, about 110-145 for libvpx CRF 32-40). ``realtime-sr video`` picks its
model by it (:func:`level`, :func:`realtime_sr.pipeline.job.pick_model`). HEVC and AV1 decoders do
not export quantisers (MPEG-2's 1-31 scale is not calibrated), so for them, and for streams without
side data, the answer is None.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

VP9, H264 = 0, 1  # AV_VIDEO_ENC_PARAMS_VP9, AV_VIDEO_ENC_PARAMS_H264
_KIND = {"h264": H264, "vp9": VP9}
_HEAD = struct.Struct("<I4xQQii")  # nb_blocks, (pad), blocks_offset, block_size, type, qp
_BLOCK_DELTA = 16  # AVVideoBlockParams: src_x, src_y, w, h, delta_qp (int32 each): delta_qp's offset


def frame_qp(frame, codec: str = "h264") -> float | None:
    """A decoded frame's mean quantiser over its blocks (H.264 QP, 0-51, or VP9 q-index, 0-255: the
    frame's base value plus the mean block delta), or None without encoder params of that codec."""
    for sd in frame.side_data:
        if "VIDEO_ENC_PARAMS" not in str(getattr(sd, "type", "")):
            continue
        b = bytes(sd)
        if len(b) < _HEAD.size:
            return None
        nb, off, size, kind, qp = _HEAD.unpack_from(b, 0)
        if kind != _KIND[codec]:
            return None
        if nb == 0 or size < _BLOCK_DELTA + 4 or off + nb * size > len(b):
            return float(qp)
        rows = np.frombuffer(b, dtype=np.uint8, count=nb * size, offset=off).reshape(nb, size)
        deltas = rows[:, _BLOCK_DELTA:_BLOCK_DELTA + 4].copy().view("<i4")[:, 0]
        return float(qp + deltas.mean())
    return None


def quantiser(path: str | Path, *, frames: int = 30, start_s: float | None = None) -> tuple[str, float] | None:
    """(codec, mean quantiser of the first ``frames`` frames from ``start_s``) for H.264 ("h264", QP)
    and VP9 ("vp9", q-index); None for other codecs, streams without exported quantisers, and
    damaged or missing files (never raises)."""
    try:
        import av

        with av.open(str(path)) as c:
            if not c.streams.video:
                return None
            st = c.streams.video[0]
            codec = st.codec_context.name
            if codec not in _KIND:
                return None
            st.codec_context.options = {"export_side_data": "venc_params"}
            if start_s:
                c.seek(int(start_s / st.time_base), stream=st, backward=True)
            qps = []
            for f in c.decode(st):
                if start_s and f.pts is not None and f.time_base is not None and float(f.pts * f.time_base) < start_s:
                    continue
                q = frame_qp(f, codec)
                if q is None:
                    return None
                qps.append(q)
                if len(qps) >= frames:
                    break
            return (codec, float(np.mean(qps))) if qps else None
    except Exception:  # noqa: BLE001 - a probe: anything odd means "unknown", never an error
        return None


# Where the video command's default model changes with the input's mean quantiser, per codec (on
# its own scale), per scale and per network: (clean below, real-strong from). Measured by
# benchmarks/qp_calibration.py (PIL-bicubic-downscaled clips from ../shared/data/videos, 30 frames
# each; benchmarks/results/qp_calibration_*_2026-12-02_x{2,4}.md, docs/real.md): x264 medium CRF
# 0 -> QP 0, CRF 12 -> 15-18, CRF 18 -> 20-25, CRF 23 -> 24-30, CRF 28 -> 28-35; libvpx-vp9 CRF
# 15 / 25 / 32 / 40 / 48 -> q-index 48 / 83 / 112 / 146 / 179. At x2 the real fine model leads the
# clean one from the first step of compression (QP 15, q 48), at x4 only from about QP 21 / q 90
# (the clean x4 models are further ahead on clean detail); the real-strong blend leads from about
# QP 25 / q 140 at x2 and QP 31 / q 165 at x4. The coarse network's clean model keeps its lead
# longer (QP 20 / q 110 at x2, QP 28 / q 150 at x4), so coarse mode changes later.
THRESHOLDS: dict[str, dict[int, dict[str, tuple[float, float | None]]]] = {
    "h264": {2: {"fine": (10.0, 25.0), "coarse": (20.0, None)},
             4: {"fine": (21.0, 31.0), "coarse": (28.0, None)}},
    "vp9": {2: {"fine": (30.0, 140.0), "coarse": (110.0, None)},
            4: {"fine": (90.0, 165.0), "coarse": (150.0, None)}},
}
NAMES = {"h264": "H.264 QP", "vp9": "VP9 q-index"}


def level(qp: float | None, codec: str = "h264", role: str = "fine", scale: int = 2) -> str:
    """'clean', 'real' or 'strong' for an input's mean quantiser on ``codec``'s scale, for the
    ``role``'s network ('coarse' or 'fine'; coarse is never 'strong') at ``scale`` (x2's
    thresholds for scales not measured); None (unknown): 'real'."""
    if qp is None or codec not in THRESHOLDS:
        return "real"
    per_scale = THRESHOLDS[codec]
    clean_below, strong_from = per_scale.get(scale, per_scale[2])["coarse" if role == "coarse" else "fine"]
    if qp < clean_below:
        return "clean"
    return "strong" if strong_from is not None and qp >= strong_from else "real"
