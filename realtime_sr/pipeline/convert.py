"""Colour: frames <-> planes, the colour policy, and the per-frame upscale.

The shipped networks are luma networks trained on BT.601 *studio-range* Y / 255, which is exactly
the Y plane of a limited-range YUV frame. So video stays in YUV end to end: the Y plane goes
through the network, Cb and Cr are resized bicubically, and the planes are encoded as they are.
There is no RGB round trip, hence no matrix (601/709) conversion error at all; the matrix only
matters for tagging the output, and for RGB networks (converted with the declared matrix).

* full-range input: Y is mapped to studio range before the network (16 + y*219/255) and back after;
* 10/12-bit input: Y is processed as float in 8-bit-equivalent units (y / 4 for 10-bit), so no
  precision is lost on the way in or out, and written back at the input's depth;
* undeclared colour: BT.709 for HD (height >= 720 or width >= 1280), BT.601 (SMPTE 170M) below,
  limited range unless the pixel format is a full-range ``yuvj`` one. The output is *tagged* with
  what was assumed: otherwise a player would read a 360p source as 601 but its 720p upscale as 709.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic / AVColorRange codes
CS_BT709, CS_UNSPEC, CS_BT470BG, CS_SMPTE170M, CS_BT2020NC, CS_BT2020C = 1, 2, 5, 6, 9, 10
RANGE_UNSPEC, RANGE_LIMITED, RANGE_FULL = 0, 1, 2
_KRKB = {CS_BT709: (0.2126, 0.0722), CS_BT470BG: (0.299, 0.114), CS_SMPTE170M: (0.299, 0.114),
         CS_BT2020NC: (0.2627, 0.0593), CS_BT2020C: (0.2627, 0.0593)}

# working layouts: name -> (chroma x-subsampling, y-subsampling, bit depth); gray has no chroma
_LAYOUTS = {"yuv420p": (2, 2, 8), "yuv422p": (2, 1, 8), "yuv444p": (1, 1, 8), "gray": (0, 0, 8)}
for _b in (10, 12):
    _LAYOUTS.update({f"yuv420p{_b}le": (2, 2, _b), f"yuv422p{_b}le": (2, 1, _b),
                     f"yuv444p{_b}le": (1, 1, _b), f"gray{_b}le": (0, 0, _b)})
_FULL_RANGE_ALIASES = {"yuvj420p": "yuv420p", "yuvj422p": "yuv422p", "yuvj444p": "yuv444p"}


@dataclass(frozen=True)
class ColourTags:
    colorspace: int
    primaries: int
    trc: int
    range: int
    assumed: bool  # True when the input declared nothing and the default by resolution was used

    @property
    def full(self) -> bool:
        return self.range == RANGE_FULL

    def describe(self) -> str:
        names = {1: "BT.709", 5: "BT.601 (625)", 6: "BT.601", 9: "BT.2020", 10: "BT.2020c"}
        m = names.get(self.colorspace, f"matrix {self.colorspace}")
        return f"{m}, {'full' if self.full else 'limited'} range" + (" (assumed: undeclared)" if self.assumed else "")


def working_format(pix_fmt: str) -> str:
    """The planar format frames are decoded to (the input's own when it is planar YUV or gray)."""
    pix_fmt = _FULL_RANGE_ALIASES.get(pix_fmt, pix_fmt)
    if pix_fmt in _LAYOUTS:
        return pix_fmt
    import av

    try:
        bits = max(c.bits for c in av.VideoFormat(pix_fmt).components)
    except (ValueError, KeyError):  # a format PyAV does not describe: treat as 8-bit
        bits = 8
    return "yuv420p10le" if bits > 8 else "yuv420p"


def bit_depth(fmt: str) -> int:
    return _LAYOUTS[fmt][2]


def resolve_colour(frame, width: int, height: int, pix_fmt: str) -> ColourTags:
    """The colour the stream declares, or the documented default by resolution where it declares none."""
    cs, prim, trc, rng = int(frame.colorspace or 0), int(frame.color_primaries or 0), \
        int(frame.color_trc or 0), int(frame.color_range or 0)
    assumed = False
    hd = height >= 720 or width >= 1280
    if cs in (0, CS_UNSPEC):  # undeclared: the default by resolution
        assumed = True
        cs = CS_BT709 if hd else CS_SMPTE170M
    if prim in (0, CS_UNSPEC):
        prim = {CS_BT709: 1, CS_SMPTE170M: 6, CS_BT470BG: 5}.get(cs, 9 if cs in (9, 10) else 1)
    if trc in (0, CS_UNSPEC):
        trc = {CS_BT709: 1, CS_SMPTE170M: 6, CS_BT470BG: 6}.get(cs, 14 if cs in (9, 10) else 1)
    if rng == RANGE_UNSPEC:
        rng = RANGE_FULL if pix_fmt.startswith("yuvj") else RANGE_LIMITED
        assumed = assumed or not pix_fmt.startswith("yuvj")
    return ColourTags(cs, prim, trc, rng, assumed)


def read_planes(frame, fmt: str) -> list[np.ndarray]:
    """The planes of ``frame`` (converted to ``fmt`` if needed) as uint8/uint16 arrays (copies)."""
    if frame.format.name != fmt and _FULL_RANGE_ALIASES.get(frame.format.name) != fmt:
        frame = frame.reformat(format=fmt)
    dtype = np.uint8 if bit_depth(fmt) == 8 else np.uint16
    out = []
    for p in frame.planes:
        a = np.frombuffer(p, dtype=dtype).reshape(p.height, p.line_size // dtype().itemsize)
        out.append(a[:, : p.width].copy())
    return out


def write_frame(planes: list[np.ndarray], fmt: str, width: int, height: int):
    """A new av.VideoFrame of ``fmt`` holding ``planes`` (uint8/uint16, already the right sizes)."""
    import av

    frame = av.VideoFrame(width, height, fmt)
    dtype = np.uint8 if bit_depth(fmt) == 8 else np.uint16
    for p, a in zip(frame.planes, planes):
        view = np.frombuffer(p, dtype=dtype).reshape(p.height, p.line_size // dtype().itemsize)
        view[:, : p.width] = a[: p.height, : p.width]
    return frame


def left_sited(fmt: str) -> bool:
    """Whether ``fmt``'s chroma is horizontally subsampled (then sited left, as MPEG video declares by default)."""
    return _LAYOUTS[fmt][0] == 2


def plane_size(fmt: str, width: int, height: int, plane: int) -> tuple[int, int]:
    """(height, width) of a plane of ``fmt`` for a width x height frame."""
    sx, sy, _ = _LAYOUTS[fmt]
    if plane == 0 or sx == 0:
        return height, width
    return -(-height // sy), -(-width // sx)


def resize_plane(a: np.ndarray, scale: int, size: tuple[int, int], *, left_sited: bool = False) -> np.ndarray:
    """Bicubic upscale of one chroma plane by exactly ``scale``, cropped to ``size`` (h, w).

    ``left_sited``: horizontally subsampled chroma sited on the left luma sample (the MPEG-2/H.264/HEVC
    default). The luma network is centre-aligned (HR pixel k <-> LR (k + 0.5) / s), so the chroma
    grid is shifted by (1 - 1/s) / 4 chroma samples to keep every chroma sample on its luma sample.
    """
    from PIL import Image

    h, w = a.shape
    x0 = (1.0 - 1.0 / scale) / 4.0 if left_sited else 0.0
    box = (x0, 0.0, w + x0, h)
    if x0:  # PIL wants the box inside the image: repeat the last column once
        a = np.concatenate([a, a[:, -1:]], axis=1)
    if a.dtype == np.uint8:
        out = np.asarray(Image.fromarray(a).resize((w * scale, h * scale), Image.BICUBIC, box=box))
    else:
        f = Image.fromarray(a.astype(np.float32), mode="F").resize((w * scale, h * scale), Image.BICUBIC, box=box)
        peak = 65535
        out = np.clip(np.rint(np.asarray(f)), 0, peak).astype(a.dtype)
    return out[: size[0], : size[1]]


def luma_in(y: np.ndarray, depth: int, full: bool) -> np.ndarray:
    """A Y plane as float32 in 8-bit studio-range units, the networks' input space (x 255)."""
    f = y.astype(np.float32)
    if depth != 8:
        f *= 1.0 / (1 << (depth - 8))
    if full:
        f = 16.0 + f * (219.0 / 255.0)
    return f


def luma_out(f: np.ndarray, depth: int, full: bool, *, overwrite: bool = False) -> np.ndarray:
    """Inverse of :func:`luma_in`: rounded and clipped to the code range of ``depth``.

    Computed in place in one scratch array (``f`` itself with ``overwrite``): at 720p that is 1 ms
    instead of 5 for the same values, the fresh full-frame temporaries being what cost.
    """
    g = f if overwrite else f.copy()
    if full:
        g -= 16.0
        g *= 255.0 / 219.0
    if depth != 8:
        g *= float(1 << (depth - 8))
    peak = (1 << depth) - 1
    np.rint(g, out=g)
    np.clip(g, 0, peak, out=g)
    return g.astype(np.uint8 if depth == 8 else np.uint16)


def _matrix(tags: ColourTags):
    kr, kb = _KRKB.get(tags.colorspace, (0.299, 0.114))
    return kr, 1.0 - kr - kb, kb


def yuv_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, depth: int, tags: ColourTags) -> np.ndarray:
    """Full-resolution planes -> RGB (3, H, W) float32 in [0, 1] with the declared matrix and range."""
    kr, kg, kb = _matrix(tags)
    peak = float((1 << depth) - 1)
    k = float(1 << (depth - 8))
    if tags.full:
        yf, u, v = y / peak, (cb - 128 * k) / peak, (cr - 128 * k) / peak
    else:
        yf, u, v = (y - 16 * k) / (219 * k), (cb - 128 * k) / (224 * k), (cr - 128 * k) / (224 * k)
    r = yf + 2 * (1 - kr) * v
    b = yf + 2 * (1 - kb) * u
    g = (yf - kr * r - kb * b) / kg
    return np.stack([r, g, b]).astype(np.float32)


def rgb_to_yuv(rgb: np.ndarray, depth: int, tags: ColourTags) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`yuv_to_rgb` (float planes in code units of ``depth``)."""
    kr, kg, kb = _matrix(tags)
    r, g, b = rgb
    yf = kr * r + kg * g + kb * b
    u = (b - yf) / (2 * (1 - kb))
    v = (r - yf) / (2 * (1 - kr))
    peak = float((1 << depth) - 1)
    k = float(1 << (depth - 8))
    if tags.full:
        return yf * peak, u * peak + 128 * k, v * peak + 128 * k
    return 16 * k + 219 * k * yf, 128 * k + 224 * k * u, 128 * k + 224 * k * v
