"""Coarse/fine routing: the coarse network upscales the whole frame, the fine one only where it pays.

Per frame (Y plane, N=1):

1. **Coarse** on the whole frame.
2. **Error estimate** per LR tile (``tile`` x ``tile``): the energy of what the coarse network
   added to a bicubic upscale, ``mean((coarse - bicubic)^2)`` over the tile. Where the coarse
   network had to build edges and texture is where the fine network adds most; where the frame
   is flat both agree with bicubic. Measured on BSD200 (training images, x2, 16-pixel tiles):
   the top 25% of tiles by this score hold 68.5% of everything the fine network gains over the
   coarse one (squared error), against 70.7% for an oracle that ranks by ``(fine - coarse)^2``
   itself and 63.5% for LR gradient energy (``benchmarks/routing/estimators.py``).
3. **Selection**: the ``fraction`` of tiles with the highest scores (never tiles scoring below
   ``min_score``: flat areas cost time and gain nothing). In video, ``hold`` > 1 is hysteresis:
   the tiles the fine network had in the previous frame have their scores multiplied by it, so a
   tile changes network only when clearly outranked (fewer tiles flicker between the two).
4. **Fine** on the selected tiles, each cut from the LR frame with ``context`` pixels of its
   neighbours around it. On a GPU: P x P patches (P = tile + 2 * context, shifted inward at the
   frame's edges), batched ``batch`` at a time, every one the same shape, which is what a static
   TensorRT tile engine wants; batches go round-robin onto ``streams`` CUDA streams. On a CPU:
   adjacent selected tiles are merged into rectangles, one patch each, so the context shared by
   neighbours is computed once, and above ``whole_above`` of the tiles the fine network runs on
   the whole frame (cheaper than that many patches with their context).
5. **Blend without seams**: fine cores are pasted on the coarse frame, and an alpha mask that is
   1 inside the selected region and ramps to 0 over ``2 * feather`` HR pixels towards unselected
   neighbours mixes the two. Adjacent selected tiles join with no ramp between them (their
   context makes them agree), and the frame's own edges are not ramped.

The result is an ordinary backend (``backend(x) -> y``, float32 NCHW numpy), so images, video,
eval and bench take ``--mode routed`` without special cases. On CUDA (torch or TensorRT
backends) the whole path stays on the GPU: scores, gathers and the blend are torch ops.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np

from .errors import UsageError


# frame sequences (video, preview): a tile that had the fine network in the previous frame keeps it
# unless another outscores it by 1.5x; halves the tiles that switch network per frame (chaplin.mp4:
# 4.2 -> 1.9 of 60). Single images keep hold 1.0: their result must not depend on the image before.
VIDEO_HOLD = 1.5


@dataclass(frozen=True)
class RouteOptions:
    fraction: float = 0.25  # share of tiles sent to the fine network (0..1)
    tile: int = 32  # LR pixels per tile side (the core that is kept)
    context: int = 4  # LR pixels of neighbourhood around each core (computed, then dropped)
    feather: int = 4  # fine fades into coarse over 2 * feather HR pixels at a selection's border
    batch: int = 16  # tiles per fine-network call
    streams: int = 2  # CUDA streams for the fine batches (CUDA backends only)
    min_score: float = 2e-5  # tiles whose coarse-vs-bicubic energy is below this never go to fine
    merge: bool | None = None  # adjacent tiles as one patch; None: on a CPU yes, on a GPU no
    whole_above: float = 0.6  # merging: above this share of tiles, fine on the whole frame is cheaper
    hold: float = 1.0  # video: scores of the tiles fine had in the previous frame count this much more

    def check(self) -> "RouteOptions":
        if not 0.0 <= self.fraction <= 1.0:
            raise UsageError(f"--fine-fraction must be between 0 and 1, not {self.fraction}")
        if self.tile < 4 or self.context < 0 or self.feather < 0 or self.batch < 1 or self.streams < 1:
            raise UsageError("routing needs tile >= 4, context >= 0, feather >= 0, batch >= 1, streams >= 1")
        return self

    @property
    def patch(self) -> int:
        return self.tile + 2 * self.context


class RoutedModel:
    """What the rest of the package needs to know of a coarse + fine pair (scale, colour, name)."""

    def __init__(self, coarse, fine) -> None:
        if coarse.scale != fine.scale:
            raise UsageError(f"routing needs one scale: {coarse.name} is x{coarse.scale}, {fine.name} x{fine.scale}")
        if coarse.colour != fine.colour:
            raise UsageError(f"routing needs one colour handling: {coarse.name} {coarse.colour}, "
                             f"{fine.name} {fine.colour}")
        self.coarse, self.fine = coarse, fine
        from .models import model_name, shipped_models, variant_of

        v, known = variant_of(fine.path), shipped_models()
        shipped = (known.get(model_name("coarse", fine.scale, v)), known.get(model_name("fine", fine.scale, v))) == (
            coarse.path, fine.path)
        self.name = model_name("routed", fine.scale, v) if shipped else f"routed({coarse.name}+{fine.name})"
        self.path = fine.path
        self.meta = {"coarse": str(coarse.path), "fine": str(fine.path)}

    scale = property(lambda self: self.fine.scale)
    colour = property(lambda self: self.fine.colour)
    in_channels = property(lambda self: self.fine.in_channels)
    context = property(lambda self: self.fine.context)


class RoutedBackend:
    """coarse + routed fine as one backend; ``last`` holds the latest frame's routing facts."""

    whole_frame = True  # the caller must not tile the frame: routing tiles it itself

    def __init__(self, coarse, fine, scale: int, options: RouteOptions = RouteOptions()) -> None:
        self.coarse, self.fine, self.scale = coarse, fine, scale
        self.opt = options.check()
        names = coarse.name if coarse.name == fine.name else f"{coarse.name}+{fine.name}"
        self.name = f"routed-{self.opt.fraction:g}({names})"
        self.device = _device_of(coarse)
        # on a CPU, adjacent selected tiles run as one rectangle (their shared context is not
        # computed twice); on a GPU, same-shaped batches of tiles
        self.merge = (self.device.type == "cpu" and not getattr(fine, "static_shape", None)
                      if self.opt.merge is None else self.opt.merge)
        self._streams = None
        self.last: dict = {}
        self.fine_tiles = 0
        self.total_tiles = 0
        self.switches = 0  # tiles that changed network from one frame to the next
        self._prev: tuple | None = None  # (grid shape, selected tile indices) of the previous frame
        self._bic, self._bic_key = None, None  # the score's bicubic upsampler, for (channels, device, dtype)
        self._alphas = TileAlphas()

    # ------------------------------------------------------------------ running the two networks
    def _run(self, be, x):
        import torch

        if hasattr(be, "run_tensor") and x.device.type == "cuda":
            return be.run_tensor(x).float()
        return torch.from_numpy(np.ascontiguousarray(be(x.cpu().numpy())))

    def _run_fine_batches(self, batches):
        import torch

        if not (hasattr(self.fine, "run_tensor") and batches and batches[0].device.type == "cuda"):
            return [self._run(self.fine, b) for b in batches]
        if self._streams is None:
            self._streams = [torch.cuda.Stream() for _ in range(self.opt.streams)]
        cur = torch.cuda.current_stream()
        outs = []
        takes_stream = "stream" in inspect.signature(self.fine.run_tensor).parameters
        for i, b in enumerate(batches):
            st = self._streams[i % len(self._streams)]
            st.wait_stream(cur)
            if takes_stream:
                outs.append(self.fine.run_tensor(b, stream=st).float())  # TensorRT: a context per stream
            else:
                with torch.cuda.stream(st):
                    outs.append(self.fine.run_tensor(b).float())
                b.record_stream(st)
        for st in self._streams:
            cur.wait_stream(st)
        return outs

    def _bicubic(self, x):
        """torch's bicubic x s (align_corners=False) as the fixed sub-pixel convolution of
        archs/upsample.py: the same values (to 3e-7), 4.1 against 5.7-7.5 ms per 640x360 frame
        on this CPU, where F.interpolate was the largest of routing's own steps."""
        from .archs.upsample import BicubicUpsample

        key = (x.shape[1], x.device, x.dtype)
        if self._bic_key != key:
            self._bic = BicubicUpsample(scale=self.scale, channels=x.shape[1]).to(x.device, x.dtype)
            self._bic_key = key
        return self._bic(x)

    # ------------------------------------------------------------------ one frame
    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if self.device.type == "cuda":
            t = t.to(self.device)
        with torch.inference_mode():
            outs = [self.route(t[i:i + 1]) for i in range(t.shape[0])]
            return torch.cat(outs).cpu().numpy()

    def route(self, x):
        """(1, C, H, W) tensor -> (1, C, sH, sW) tensor on the same device (call under inference_mode)."""
        import torch
        import torch.nn.functional as F

        o, s = self.opt, self.scale
        _, c, h, w = x.shape
        coarse = self._run(self.coarse, x).to(x.device)
        gh, gw = math.ceil(h / o.tile), math.ceil(w / o.tile)
        self.total_tiles += gh * gw
        k = min(gh * gw, math.ceil(o.fraction * gh * gw)) if o.fraction > 0 else 0
        if k == 0:
            self.last = {"tiles": gh * gw, "fine": 0}
            return coarse
        if h < o.patch or w < o.patch:  # smaller than one patch: the fine network on the whole frame
            self.fine_tiles += gh * gw
            self.last = {"tiles": gh * gw, "fine": gh * gw}
            return self._run(self.fine, x).to(x.device)

        bic = self._bicubic(x)
        energy = ((coarse - bic) ** 2).mean(dim=1, keepdim=True)
        score = F.avg_pool2d(energy, o.tile * s, ceil_mode=True)[0, 0].flatten()
        prev = self._prev[1] if self._prev is not None and self._prev[0] == (gh, gw) else None
        ranked = score
        if o.hold != 1.0 and prev:  # hysteresis: a tile keeps its network unless clearly outranked
            ranked = score.clone()
            ranked[torch.tensor(sorted(prev), dtype=torch.long, device=score.device)] *= o.hold
        top = torch.topk(ranked, k).indices
        top = top[score[top] >= o.min_score].tolist()
        if prev is not None:
            self.switches += len(prev.symmetric_difference(top))
        self._prev = ((gh, gw), set(top))
        self.last = {"tiles": gh * gw, "fine": len(top)}
        self.fine_tiles += len(top)
        if not top:
            return coarse
        if self.merge and len(top) > o.whole_above * gh * gw:  # context overhead beats the savings
            self.fine_tiles += gh * gw - len(top)
            self.last["fine"] = gh * gw
            return self._run(self.fine, x).to(x.device)

        # CPU: adjacent tiles as one rectangle (less context computed twice); GPU: one tile each
        rects = (merge_tiles(top, gw) if self.merge
                 else [(i // gw, i // gw + 1, i % gw, i % gw + 1) for i in sorted(top)])
        cores, fine = self._fine(x, rects, o, h, w)

        # blend per selected tile: an unselected tile's alpha is 0 (the ramp lies inside the
        # selection), so only selected tiles change, and a tile's alpha depends only on the
        # selection within 2 * feather pixels of it, so it is computed once per neighbourhood
        # pattern and cached (feather_mask over the whole frame did the same work on every pixel
        # of the selection's bounding box: 8-10 ms of a 1280x720 frame)
        if x.device.type == "cuda":  # run_tensor may hand back an engine's own output buffer
            coarse = coarse.clone()
        sel = torch.zeros(gh * gw, dtype=torch.bool)
        sel[top] = True
        sel = sel.view(gh, gw)
        th, tw = o.tile * s, o.tile * s
        for (y0, y1, x0, x1, py0, px0), sr in zip(cores, fine):
            oy, ox = (y0 - py0) * s, (x0 - px0) * s
            gy0, gx0 = y0 // o.tile, x0 // o.tile
            gy1, gx1 = gy0 + math.ceil((y1 - y0) / o.tile), gx0 + math.ceil((x1 - x0) / o.tile)
            alphas = [[self._alphas.get(sel, gy, gx, th, tw, h * s, w * s, o.feather, coarse) for gx in range(gx0, gx1)]
                      for gy in range(gy0, gy1)]
            if all(a is None for row in alphas for a in row):  # wholly inside the selection: fine as it is
                coarse[:, :, y0 * s:y1 * s, x0 * s:x1 * s] = sr[:, :, oy:oy + (y1 - y0) * s, ox:ox + (x1 - x0) * s]
                continue
            for gy, row in zip(range(gy0, gy1), alphas):
                ty0, ty1 = gy * th, min((gy + 1) * th, h * s)
                for gx, a in zip(range(gx0, gx1), row):
                    tx0, tx1 = gx * tw, min((gx + 1) * tw, w * s)
                    f = sr[:, :, oy + ty0 - y0 * s:oy + ty1 - y0 * s, ox + tx0 - x0 * s:ox + tx1 - x0 * s]
                    region = coarse[:, :, ty0:ty1, tx0:tx1]
                    if a is None:
                        region.copy_(f)
                    else:
                        region += a * (f - region)
        return coarse


    def _fine(self, x, rects, o, h, w):
        """The fine network on each rectangle of tiles (gy0, gy1, gx0, gx1) with its context;
        returns (cores, outputs). Windows of one shape go ``batch`` at a time (on CUDA, round-robin
        on the streams). Merging: a window is its rectangle plus the context. Tiles: every window
        is P x P, the static shape a TensorRT tile engine is built for. Either way a window is
        shifted inward at the frame's edges rather than cut."""
        import torch

        cores, windows = [], []
        for gy0, gy1, gx0, gx1 in rects:
            y0, y1 = gy0 * o.tile, min(gy1 * o.tile, h)
            x0, x1 = gx0 * o.tile, min(gx1 * o.tile, w)
            ph, pw = ((y1 - y0) + 2 * o.context, (x1 - x0) + 2 * o.context) if self.merge else (o.patch, o.patch)
            py0 = min(max(y0 - o.context, 0), max(h - ph, 0))
            px0 = min(max(x0 - o.context, 0), max(w - pw, 0))
            cores.append((y0, y1, x0, x1, py0, px0))
            windows.append((py0, min(py0 + ph, h), px0, min(px0 + pw, w)))
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (py0, py1, px0, px1) in enumerate(windows):
            groups.setdefault((py1 - py0, px1 - px0), []).append(i)
        order, batches = [], []
        for idxs in groups.values():
            for j in range(0, len(idxs), o.batch):
                part = idxs[j:j + o.batch]
                order.append(part)
                batches.append(torch.cat([x[:, :, windows[i][0]:windows[i][1], windows[i][2]:windows[i][3]]
                                          for i in part]))
        outs: list = [None] * len(cores)
        for part, res in zip(order, self._run_fine_batches(batches)):
            res = res.to(x.device)
            for k, i in enumerate(part):
                outs[i] = res[k:k + 1]
        return cores, outs


class TileAlphas:
    """The blend's alpha on one selected tile, cached by what it depends on.

    :func:`feather_mask` of the whole frame's selection mask (1 on selected tiles, the frame's
    edges replicated), restricted to tile (gy, gx): the selection within ``2 * f`` pixels of the
    tile decides it, so the mask is built on that neighbourhood only, and the result is kept for
    the next tile with the same neighbourhood (most tiles of a frame share a handful). ``None``
    for a tile wholly inside the selection (alpha 1 everywhere: the fine output as it is).
    """

    def __init__(self, limit: int = 4096) -> None:
        self.limit, self.cache = limit, {}

    def get(self, sel, gy: int, gx: int, th: int, tw: int, height: int, width: int, f: int, like):
        """Alpha of tile (gy, gx) as a tensor of ``like``'s device and dtype (kept there), or None."""
        import torch

        if f <= 0:
            return None
        ty0, ty1 = gy * th, min((gy + 1) * th, height)
        tx0, tx1 = gx * tw, min((gx + 1) * tw, width)
        ry0, ry1 = max(ty0 - 2 * f, 0), min(ty1 + 2 * f, height)
        rx0, rx1 = max(tx0 - 2 * f, 0), min(tx1 + 2 * f, width)
        gy_a, gy_b, gx_a, gx_b = ry0 // th, (ry1 - 1) // th + 1, rx0 // tw, (rx1 - 1) // tw + 1
        block = sel[gy_a:gy_b, gx_a:gx_b]
        key = (ty0 - ry0, ty1 - ty0, ry1 - ty1, tx0 - rx0, tx1 - tx0, rx1 - tx1, ry0 - gy_a * th, rx0 - gx_a * tw,
               ry0 == 0, ry1 == height, rx0 == 0, rx1 == width, block.shape, bytes(block.flatten().tolist()),
               like.device, like.dtype)
        hit = self.cache.get(key, False)
        if hit is not False:
            return hit
        rows = torch.div(torch.arange(ry0, ry1), th, rounding_mode="floor") - gy_a
        cols = torch.div(torch.arange(rx0, rx1), tw, rounding_mode="floor") - gx_a
        mask = block[rows][:, cols].to(torch.float32)[None, None]
        a = feather_mask(mask, f, edges=(ry0 == 0, ry1 == height, rx0 == 0, rx1 == width))
        a = a[:, :, ty0 - ry0:ty1 - ry0, tx0 - rx0:tx1 - rx0].contiguous()
        a = None if bool((a >= 1).all()) else a.to(like.device, like.dtype)
        if len(self.cache) >= self.limit:
            self.cache.clear()
        self.cache[key] = a
        return a


def merge_tiles(tiles, gw: int) -> list[tuple[int, int, int, int]]:
    """Tile indices (row-major on a grid ``gw`` wide) -> rectangles (gy0, gy1, gx0, gx1) covering exactly them.

    Runs of consecutive tiles in a row become one rectangle, and a run with the same span in the
    next row extends it downwards.
    """
    rows: dict[int, list[int]] = {}
    for idx in sorted(tiles):
        gy, gx = divmod(idx, gw)
        rows.setdefault(gy, []).append(gx)
    open_: dict[tuple[int, int], list[int]] = {}  # span -> [gy0, gy1) still growing
    done = []
    for gy in sorted(rows):
        spans, cols = [], rows[gy]
        start = prev = cols[0]
        for c in cols[1:] + [None]:
            if c is not None and c == prev + 1:
                prev = c
                continue
            spans.append((start, prev + 1))
            if c is not None:
                start = prev = c
        grown = {}
        for span in spans:
            r = open_.pop(span, None)
            grown[span] = [r[0], gy + 1] if r is not None and r[1] == gy else [gy, gy + 1]
        done += [(r[0], r[1], sp[0], sp[1]) for sp, r in open_.items()]
        open_ = grown
    done += [(r[0], r[1], sp[0], sp[1]) for sp, r in open_.items()]
    return sorted(done)


def feather_mask(mask, f: int, edges=(True, True, True, True)):
    """A 0/1 (1, 1, H, W) mask -> alpha: 1 deep inside, ramping to 0 over ``2f`` pixels at its border.

    Erode by ``f`` then box-blur by ``2f + 1``: the ramp lies wholly inside the mask (alpha is 0
    wherever the mask is 0). Beyond the sides flagged in ``edges`` (top, bottom, left, right: the
    frame's own edges) counts as selected, so frame edges are not ramped; other sides as unselected.
    Both are box sums from cumulative sums (a binary mask's erosion is where the box sum is
    full), so the cost per pixel does not grow with ``f``.
    """
    if f <= 0:
        return mask
    k = 2 * f + 1
    eroded = (_box_sum(mask, f, edges) > k * k - 0.5).to(mask.dtype)
    return _box_sum(eroded, f, edges) / (k * k)


def _box_sum(m, f: int, edges):
    """Sum over the (2f+1)^2 window around each pixel of (1, 1, H, W) ``m``; beyond each side:
    the edge replicated where ``edges`` says so, else zeros."""
    import torch.nn.functional as F

    k = 2 * f + 1
    p = F.pad(m, (f, f, f, f), mode="replicate")  # 0/1 sums below 2^24: exact in float32
    top, bottom, left, right = edges
    if not top:
        p[:, :, :f] = 0
    if not bottom:
        p[:, :, p.shape[2] - f:] = 0
    if not left:
        p[:, :, :, :f] = 0
    if not right:
        p[:, :, :, p.shape[3] - f:] = 0
    c = F.pad(p.cumsum(2), (0, 0, 1, 0))
    rows = c[:, :, k:, :] - c[:, :, :-k, :]
    c = F.pad(rows.cumsum(3), (1, 0, 0, 0))
    return (c[:, :, :, k:] - c[:, :, :, :-k]).to(m.dtype)


def _device_of(backend):
    import torch

    dev = getattr(backend, "device", None)
    if isinstance(dev, torch.device):
        return dev
    if "cuda" in getattr(backend, "name", ""):
        return torch.device("cuda")
    return torch.device("cpu")


def load_for_mode(model=None, *, scale: int | None = None, mode: str = "fine", variant: str = "clean"):
    """The model for ``mode``: a Model, or for ``routed`` a RoutedModel of the shipped coarse model
    and the fine one (``model`` may name the fine model: a shipped name or a path; the coarse
    model is then of the fine one's variant)."""
    from .models import load_model, variant_of

    if mode != "routed":
        return load_model(model, scale=scale, mode=mode, variant=variant)
    fine = load_model(model, scale=scale, mode="fine", variant=variant)
    return RoutedModel(load_model(None, scale=fine.scale, mode="coarse", variant=variant_of(fine.path)), fine)


def backend_for(model, *, backend: str = "auto", device: str = "auto", precision: str = "fp32",
                options: RouteOptions | None = None, log=None, **backend_kwargs):
    """The backend for a model from :func:`load_for_mode` (for a RoutedModel, a RoutedBackend)."""
    from .runtime import _stderr, make_backend

    kw = dict(backend=backend, device=device, precision=precision, **backend_kwargs)
    if log is not None:
        kw["log"] = log
    if not isinstance(model, RoutedModel):
        return make_backend(model, **kw)
    opt = (options or RouteOptions()).check()
    kw["routed"] = True  # where auto's choice depends on it (runtime/cpu.py)
    cb = make_backend(model.coarse, **kw)
    # the same backend choice as for coarse (one line about it is enough), but the fine network's
    # own lines (its export or int8 conversion, which take seconds; its precision) are said too;
    # a TensorRT fine engine is static: ``batch`` patches of P x P, the only shape routing sends it
    say = kw.get("log", _stderr)
    fine_log = None if say is None else (lambda m: None if m.startswith("backend auto ->") else say(m))
    fb = make_backend(model.fine, **{**kw, "log": fine_log, "tile_batch": (opt.batch, opt.patch)})
    if say is not None and _device_of(fb).type == "cuda" and "tensorrt" not in getattr(fb, "name", ""):
        say(GPU_ROUTED_NOTICE)
    return RoutedBackend(cb, fb, model.scale, opt)


# measured on an NVIDIA H200, torch CUDA fp16, x2 at 1920x1080 LR (docs/routing.md)
GPU_ROUTED_NOTICE = ("notice: on a GPU routed mode is slower than fine on the whole frame (torch CUDA on an H200: "
                     "91 against 14 ms a 1080p frame at x2, docs/routing.md); --mode fine is faster and sharper")


def load(model=None, *, scale: int | None = None, mode: str = "fine", backend: str = "auto",
         device: str = "auto", precision: str = "fp32", options: RouteOptions | None = None, log=None,
         variant: str = "clean", **backend_kwargs):
    """(model, backend) for ``mode``: :func:`load_for_mode` then :func:`backend_for`."""
    m = load_for_mode(model, scale=scale, mode=mode, variant=variant)
    return m, backend_for(m, backend=backend, device=device, precision=precision, options=options, log=log,
                          **backend_kwargs)
