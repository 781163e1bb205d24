"""How compressed a video is, read from its own bitstream: the mean H.264 quantiser of its first frames.

FFmpeg's H.264 decoder can export each frame's quantisers (``export_side_data=venc_params``: the
frame's base QP and one delta per macroblock, ``AVVideoEncParams`` in libavutil/video_enc_params.h).
Their mean over the macroblocks and over the first frames is the clip's compression level on
H.264's own 0-51 scale: 0 for lossless x264, about 21-28 for x264 CRF 18-23 on ordinary footage.
``realtime-sr video`` picks its model by it (:func:`level`, :func:`realtime_sr.pipeline.job.pick_model`).
Other codecs' quantisers are on other scales (VP9 0-255, MPEG-2 1-31) or are not exported (HEVC,
AV1), so for them, and for streams without side data, the answer is None.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

H264 = 1  # AV_VIDEO_ENC_PARAMS_H264
_HEAD = struct.Struct("<I4xQQii")  # nb_blocks, (pad), blocks_offset, block_size, type, qp
_BLOCK_DELTA = 16  # AVVideoBlockParams: src_x, src_y, w, h, delta_qp (int32 each): delta_qp's offset


def frame_qp(frame) -> float | None:
    """A decoded frame's mean H.264 QP over its macroblocks, or None without H.264 encoder params."""
    for sd in frame.side_data:
        if "VIDEO_ENC_PARAMS" not in str(getattr(sd, "type", "")):
            continue
        b = bytes(sd)
        if len(b) < _HEAD.size:
            return None
        nb, off, size, kind, qp = _HEAD.unpack_from(b, 0)
        if kind != H264:
            return None
        if nb == 0 or size < _BLOCK_DELTA + 4 or off + nb * size > len(b):
            return float(qp)
        rows = np.frombuffer(b, dtype=np.uint8, count=nb * size, offset=off).reshape(nb, size)
        deltas = rows[:, _BLOCK_DELTA:_BLOCK_DELTA + 4].copy().view("<i4")[:, 0]
        return float(qp + deltas.mean())
    return None


def mean_qp(path: str | Path, *, frames: int = 30, start_s: float | None = None) -> float | None:
    """The mean H.264 QP of the first ``frames`` frames (from ``start_s``), or None where the file is
    not H.264 or its decoder exports no quantisers. Never raises on a damaged or odd file."""
    try:
        import av

        with av.open(str(path)) as c:
            if not c.streams.video:
                return None
            st = c.streams.video[0]
            if st.codec_context.name != "h264":
                return None
            st.codec_context.options = {"export_side_data": "venc_params"}
            if start_s:
                c.seek(int(start_s / st.time_base), stream=st, backward=True)
            qps = []
            for f in c.decode(st):
                if start_s and f.pts is not None and f.time_base is not None and float(f.pts * f.time_base) < start_s:
                    continue
                q = frame_qp(f)
                if q is None:
                    return None
                qps.append(q)
                if len(qps) >= frames:
                    break
            return float(np.mean(qps)) if qps else None
    except Exception:  # noqa: BLE001 - a probe: anything odd means "unknown", never an error
        return None


# Where the video command's default model changes with the input's mean H.264 QP (x264 medium,
# PIL-bicubic-downscaled clips from ../shared/data/videos, 30 frames each: CRF 0 -> QP 0, CRF 18 ->
# 21-23, CRF 23 -> 27-28, CRF 28 -> 31-34). Under LOSSLESS_QP the input is as clean as the clean
# models' training data; from STRONG_QP on, the stronger real blend measured ahead (docs/real.md).
LOSSLESS_QP = 10.0
STRONG_QP = 25.0


def level(qp: float | None) -> str:
    """'clean', 'real' or 'strong' for an input's mean QP (None, unknown: 'real', the default)."""
    if qp is None:
        return "real"
    if qp < LOSSLESS_QP:
        return "clean"
    return "strong" if qp >= STRONG_QP else "real"
