"""Real-world degradations for training: how the LR video people have is made.

A clean model learns one thing: undo a PIL-bicubic downscale. Real input was scaled by some
other filter, maybe blurred, maybe noisy, and then compressed by a video codec at a web bit rate,
with motion-compensated artifacts from neighbouring frames. :func:`degrade` makes such LR from HR:

1. an optional mild Gaussian blur of the HR (camera / scaler softness);
2. a downscale by one of several kernels (bicubic, bilinear, area, Lanczos) with scale jitter
   (down to a slightly different size with the chosen kernel, then bicubic to the exact size);
3. optionally a second, lighter pass of blur and noise at the LR size (Real-ESRGAN's
   second-order idea, kept mild);
4. optional Gaussian noise;
5. compression: none, JPEG, or a real video codec through PyAV (libx264, libx265, libvpx-vp9)
   at a CRF drawn from the configured range, either intra (one frame) or as a short inter-coded
   clip with small random motion, returning a non-intra frame of it;
6. optionally (``temporal``) the frames either side of that one too, degraded alike (each its own
   noise), for a network that sees neighbouring frames.

A share of samples stays clean (the evaluation protocol's PIL bicubic), so quality on clean
input is kept. Everything is drawn from the caller's ``numpy`` generator, which the dataset
seeds from (seed, rank, index): a sample is a pure function of its index. Codecs run with one
thread so that their output is deterministic too.

The codec is given a region a little larger than the patch (its 16-pixel macroblock grid at a
random offset to the patch, as in a real frame), and the patch is cut from the decoded region.
"""

from __future__ import annotations

import fractions
import io
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ..errors import UsageError

KERNELS = ("bicubic", "bilinear", "area", "lanczos")
CODECS = ("none", "jpeg", "libx264", "libx265", "libvpx-vp9")
_DECODER = {"libx264": "h264", "libx265": "hevc", "libvpx-vp9": "vp9"}


@dataclass(frozen=True)
class DegradeConfig:
    """Probabilities and ranges of each degradation (the recipe's ``[degrade]`` table)."""

    clean_prob: float = 0.15                 # plain PIL bicubic, nothing else
    blur_prob: float = 0.3
    blur_sigma: tuple[float, float] = (0.2, 1.0)   # HR pixels
    kernel_probs: tuple[float, float, float, float] = (0.5, 0.15, 0.15, 0.2)  # KERNELS order
    scale_jitter: float = 0.15               # downscale to p * (1 +- j), then bicubic to p
    noise_prob: float = 0.2
    noise_sigma: tuple[float, float] = (0.5, 3.0)  # code values
    second_prob: float = 0.1                 # a second, lighter blur + noise pass at LR size
    codec_probs: tuple[float, float, float, float, float] = (0.1, 0.15, 0.55, 0.05, 0.15)  # CODECS order
    crf: tuple[int, int] = (18, 32)          # x264 / x265 CRF range (VP9 gets the same, +8)
    jpeg_quality: tuple[int, int] = (40, 95)
    inter_prob: float = 0.6                  # short inter-coded clip instead of one intra frame
    clip_frames: tuple[int, int] = (3, 5)
    max_motion: float = 3.0                  # LR pixels per frame, random walk
    preset: str = "medium"                   # x264 / x265 preset (the common default)
    temporal: int = 0                        # neighbour frames each side given with the sample (0: one frame)
    static_prob: float = 0.0                 # temporal: share of clips without motion (a still camera)


def config_from(table: dict[str, Any] | None) -> DegradeConfig | None:
    """A recipe's ``degrade`` table (or None: clean bicubic only) as a DegradeConfig."""
    if not table:
        return None
    names = {f.name for f in fields(DegradeConfig)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise UsageError(f"unknown degradation settings: {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    cfg = DegradeConfig(**clean)
    for name, probs, n in (("kernel_probs", cfg.kernel_probs, len(KERNELS)), ("codec_probs", cfg.codec_probs, len(CODECS))):
        if len(probs) != n or min(probs) < 0 or sum(probs) <= 0:
            raise UsageError(f"degrade.{name} needs {n} non-negative weights")
    return cfg


def _resample(name: str):
    from PIL import Image

    return {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "area": Image.BOX,
            "lanczos": Image.LANCZOS}[name]


def _resize(rgb: np.ndarray, size: int, kernel: str = "bicubic") -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize((size, size), _resample(kernel)))


def _blur(rgb: np.ndarray, sigma: float) -> np.ndarray:
    from PIL import Image, ImageFilter

    return np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(sigma)))


def _noise(rgb: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    out = rgb.astype(np.float32) + rng.normal(0.0, sigma, rgb.shape).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _pick(rng: np.random.Generator, options, weights) -> str:
    w = np.asarray(weights, dtype=np.float64)
    return options[int(rng.choice(len(options), p=w / w.sum()))]


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """RGB uint8 through a JPEG encode/decode at ``quality`` (PIL, 4:2:0)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def codec_options(codec: str, crf: int, preset: str = "medium") -> dict[str, str]:
    """Encoder options for a CRF encode, single-threaded (deterministic)."""
    if codec == "libx264":
        return {"crf": str(crf), "preset": preset, "threads": "1"}
    if codec == "libx265":
        return {"crf": str(crf), "preset": preset, "x265-params": "log-level=none:pools=none:frame-threads=1"}
    if codec == "libvpx-vp9":
        return {"crf": str(min(63, crf + 8)), "b": "0", "deadline": "good", "cpu-used": "5", "threads": "1"}
    raise UsageError(f"unknown codec {codec!r}; known: {', '.join(CODECS[2:])}")


def encode_clip(frames: list[np.ndarray], codec: str, crf: int, preset: str = "medium") -> list[np.ndarray]:
    """Encode RGB uint8 frames (even sizes) as one yuv420p clip and decode it again.

    Returns the decoded frames as (H, W, 3) uint8 YUV planes: Y at full size and Cb, Cr
    upsampled by pixel repetition (callers that train on luma read channel 0 only). libx264 and
    VP9 run as bare codec contexts; libx265 goes through an in-memory raw HEVC stream (its bare
    context is not reliable on multi-frame clips).
    """
    import av

    h, w = frames[0].shape[:2]
    if codec == "libx265":
        buf = io.BytesIO()
        with av.open(buf, "w", format="hevc") as out:
            st = out.add_stream(codec, rate=25)
            st.width, st.height, st.pix_fmt = w, h, "yuv420p"
            st.options = codec_options(codec, crf, preset)
            for f in frames:
                out.mux(st.encode(av.VideoFrame.from_ndarray(rgb_to_yuv420p(f), format="yuv420p")))
            out.mux(st.encode())
        buf.seek(0)
        with av.open(buf, format="hevc") as inp:
            decoded = list(inp.decode(video=0))
    else:
        enc = av.CodecContext.create(codec, "w")
        enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
        enc.time_base = fractions.Fraction(1, 25)
        enc.framerate = 25
        enc.options = codec_options(codec, crf, preset)
        packets = []
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(rgb_to_yuv420p(f), format="yuv420p")
            vf.pts = i
            packets += enc.encode(vf)
        packets += enc.encode(None)
        dec = av.CodecContext.create(_DECODER[codec], "r")
        decoded = []
        for p in packets:
            decoded += dec.decode(p)
        decoded += dec.decode(None)
    out_frames = []
    for fr in decoded:
        y, u, v = (np.frombuffer(pl, np.uint8).reshape(pl.height, pl.line_size)[:, :pl.width] for pl in fr.planes)
        up = lambda c: c.repeat(2, 0).repeat(2, 1)[:h, :w]  # noqa: E731
        out_frames.append(np.stack([y, up(u), up(v)], axis=-1))
    if len(out_frames) != len(frames):
        raise RuntimeError(f"{codec}: {len(frames)} frames in, {len(out_frames)} out")
    return out_frames


def rgb_to_yuv420p(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (even sizes) to a planar yuv420p array ((3H/2, W), BT.601 studio range, chroma
    averaged over 2x2), as an encoder takes it: swscale's per-frame set-up costs more than this."""
    from ..colour import rgb_to_ycbcr

    h, w = rgb.shape[:2]
    ycc = rgb_to_ycbcr(rgb / 255.0)
    sub = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # noqa: E731
    planes = [ycc[..., 0].reshape(-1), sub(ycc[..., 1]).reshape(-1), sub(ycc[..., 2]).reshape(-1)]
    return np.clip(np.rint(np.concatenate(planes)), 0, 255).astype(np.uint8).reshape(h * 3 // 2, w)


def yuv_to_rgb(yuv: np.ndarray) -> np.ndarray:
    """Decoded (H, W, 3) Y'CbCr uint8 (studio range) back to RGB uint8."""
    from ..colour import ycbcr_to_rgb

    return np.clip(np.rint(ycbcr_to_rgb(yuv) * 255.0), 0, 255).astype(np.uint8)


@dataclass
class Degraded:
    """One training pair: the HR patch (RGB uint8) and its LR. ``lr_y`` is set when the LR went
    through a video codec: the decoded Y plane, exactly what the video pipeline feeds the
    network; ``lr_rgb`` is set otherwise. With ``temporal`` neighbours the LR has a leading axis
    of 2 * temporal + 1 frames in time order, the target (the HR's frame) in the middle."""

    hr: np.ndarray
    lr_rgb: np.ndarray | None
    lr_y: np.ndarray | None
    kind: str


def degrade(region_fn, *, scale: int, lr_patch: int, cfg: DegradeConfig, rng: np.random.Generator,
            count: int = 1) -> list[Degraded]:
    """Make ``count`` (HR, LR) pairs that share one degraded region (one codec call for all).

    ``region_fn(size, dx, dy)`` returns an augmented HR RGB uint8 square region of side ``size``,
    displaced by (dx, dy) HR pixels from the sample's chosen position (so a short clip with
    motion can be cut from the source image). The pairs are cut from a k x k grid of cells of
    the region (k = ceil(sqrt(count))), each at a random offset within its cell.
    """
    s, p = scale, lr_patch
    k = int(np.ceil(np.sqrt(count)))
    clean = rng.random() < cfg.clean_prob
    codec = "none" if clean else _pick(rng, CODECS, cfg.codec_probs)
    video = codec not in ("none", "jpeg")
    inter = video and rng.random() < cfg.inter_prob
    # the region: k x k patches, plus (for a codec) a margin, in whole macroblocks
    e = k * p + (16 if video else 0)
    if video:
        e = (e + 15) // 16 * 16
    if codec == "libx265":
        e = max(e, 64)  # libx265 is unreliable on smaller multi-frame clips
    cell = e // k
    offsets = [(c * cell + int(rng.integers(0, cell - p + 1)), r * cell + int(rng.integers(0, cell - p + 1)))
               for r, c in (divmod(j, k) for j in range(count))]
    tn = cfg.temporal
    if tn:  # every sample is a clip: the target frame with tn neighbours each side, none intra-only
        inter = video
        lo, hi = max(2 * tn + 1, cfg.clip_frames[0]), max(2 * tn + 1, cfg.clip_frames[1])
        n = int(rng.integers(lo, hi + 1)) if video else 2 * tn + 1
        target = int(rng.integers(tn, n - tn))
    else:
        n = int(rng.integers(cfg.clip_frames[0], cfg.clip_frames[1] + 1)) if inter else 1
        target = int(rng.integers(1, n)) if n > 1 else 0  # a non-intra frame of the clip

    if clean:
        sigma = noise = 0.0
        kernel, mid, second = "bicubic", e, False
    else:
        sigma = rng.uniform(*cfg.blur_sigma) if rng.random() < cfg.blur_prob else 0.0
        kernel = _pick(rng, KERNELS, cfg.kernel_probs)
        mid = max(4, int(round(e * (1.0 + rng.uniform(-cfg.scale_jitter, cfg.scale_jitter)))))
        noise = rng.uniform(*cfg.noise_sigma) if rng.random() < cfg.noise_prob else 0.0
        second = rng.random() < cfg.second_prob
    sigma2 = rng.uniform(0.2, 0.6) if second else 0.0
    noise2 = rng.uniform(0.5, 1.5) if second else 0.0

    # a random walk of motion, in LR pixels, at HR precision
    steps = rng.uniform(-cfg.max_motion, cfg.max_motion, size=(n, 2)) if n > 1 else np.zeros((1, 2))
    steps[0] = 0.0
    if tn and rng.random() < cfg.static_prob:
        steps[:] = 0.0
    path = np.rint(np.cumsum(steps, axis=0) * s).astype(int)

    keep = range(target - tn, target + tn + 1)  # the frames returned (the target alone unless temporal)
    lr_frames, hr_target = [], None
    for t in range(n):
        hr_region = region_fn(e * s, int(path[t, 0]), int(path[t, 1]))
        if t == target:
            hr_target = hr_region
        x = _blur(hr_region, sigma) if sigma > 0 else hr_region
        x = _resize(x, mid, kernel)
        if mid != e:
            x = _resize(x, e)
        if second:
            x = _noise(_blur(x, sigma2), noise2, rng)
        if noise > 0:
            x = _noise(x, noise, rng)
        lr_frames.append(x)

    lr_y = lr_rgb = None
    kind = "clean" if clean else codec
    if video:
        crf = int(rng.integers(cfg.crf[0], cfg.crf[1] + 1))
        decoded = encode_clip(lr_frames, codec, crf, cfg.preset)
        lr_y = np.stack([decoded[t][..., 0] for t in keep]) if tn else decoded[target][..., 0]
        kind = f"{codec}-crf{crf}{'-inter' if inter else ''}"
    else:
        frames = [lr_frames[t] for t in keep]
        if codec == "jpeg":
            q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
            frames = [jpeg(f, q) for f in frames]
            kind = f"jpeg-q{q}"
        lr_rgb = np.stack(frames) if tn else frames[0]
    out = []
    for ox, oy in offsets:
        hr = np.ascontiguousarray(hr_target[oy * s:(oy + p) * s, ox * s:(ox + p) * s])
        win = (slice(None),) * bool(tn) + (slice(oy, oy + p), slice(ox, ox + p))  # frames first if temporal
        cut = lambda a: None if a is None else np.ascontiguousarray(a[win])  # noqa: E731
        out.append(Degraded(hr, cut(lr_rgb), cut(lr_y), kind))
    return out
