"""Quality against speed: the Pareto front of (fps, PSNR) points, and a PNG plot of them drawn with PIL.

A point is on the front when no other point is at least as fast and at least as good and
strictly better in one of the two: the front is the set of choices worth making. The plot puts
frames per second on a log axis (bicubic and the networks differ by orders of magnitude), PSNR
on a linear one, fills and labels the points on the front, joins them with a line, and draws
the others hollow.
"""

from __future__ import annotations

import math
from pathlib import Path

FRONT = (200, 40, 40)  # points on the Pareto front, and the line through them
OTHER = (60, 90, 170)  # points off it
INK, GRID, PAPER, REF = (20, 20, 20), (225, 225, 225), (255, 255, 255), (150, 150, 150)
SIZE = (1000, 640)
MARGIN = (80, 30, 30, 60)  # left, top, right, bottom: room for the axes' numbers and names
RADIUS = 6


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points (fps, quality) that no other point dominates, fastest first."""
    front = []
    for i, (f, q) in enumerate(points):
        dominated = any((f2 >= f and q2 >= q) and (f2 > f or q2 > q) for j, (f2, q2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (-points[i][0], points[i][1]))


def _nice_step(span: float, count: int = 6) -> float:
    raw = span / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def _log_ticks(lo: float, hi: float) -> list[float]:
    ticks = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        ticks += [m * 10 ** e for m in (1, 2, 5) if lo <= m * 10 ** e <= hi]
    return ticks or [lo, hi]


def _fmt(v: float) -> str:
    return f"{v:g}" if v >= 1 else f"{v:.2g}"


def _label_spot(d, font, text: str, at: tuple[int, int], taken: list, frame: tuple[int, int, int, int]):
    """Where a point's label goes: the first of eight places around it that stays inside the plot
    and clear of the other points and labels (the least crowded one when none is clear)."""
    x, y = at
    g = RADIUS + 4
    spots = [((x + g, y - 2), "ld"), ((x + g, y + 2), "la"), ((x - g, y - 2), "rd"), ((x - g, y + 2), "ra"),
             ((x, y - g), "md"), ((x, y + g), "ma"), ((x + g, y), "lm"), ((x - g, y), "rm")]

    def cost(spot) -> int:
        b = d.textbbox(spot[0], text, font=font, anchor=spot[1])
        out = b[0] < frame[0] or b[1] < frame[1] or b[2] > frame[2] or b[3] > frame[3]
        hits = sum(1 for t in taken if b[0] < t[2] and t[0] < b[2] and b[1] < t[3] and t[1] < b[3])
        return 100 * out + hits

    return min(spots, key=cost)  # min keeps the first of equals: right of the point when it can


def _reference(d, font, ref, px, qrange, frame, taken) -> tuple[int, int]:
    f, q, label = ref
    x, y = px(max(f, 1e-3), min(max(q, qrange[0]), qrange[1]))
    if not qrange[0] <= q <= qrange[1]:
        y = frame[3] - RADIUS - 2 if q < qrange[0] else frame[1] + RADIUS + 2
        label = f"{label} {q:.2f} (off the scale)"
    d.polygon([(x, y - RADIUS), (x + RADIUS, y), (x, y + RADIUS), (x - RADIUS, y)], fill=REF, outline=INK)
    spot = _label_spot(d, font, label, (x, y), taken, frame)
    d.text(spot[0], label, fill=INK, font=font, anchor=spot[1])
    return x, y


def quality_speed_plot(points: list[tuple[float, float]], labels: list[str], path: str | Path, *,
                       title: str = "", quality: str = "PSNR (dB)",
                       reference: tuple[float, float, str] | None = None) -> dict[str, tuple[int, int]]:
    """Draw ``points`` (fps, quality) labelled ``labels`` as a PNG at ``path`` (written atomically).

    ``reference`` (fps, quality, label), e.g. bicubic, is drawn as a grey diamond and is no part of
    the front; the quality axis spans the points only, so when the reference lies below it (bicubic
    is dB below any network) it is pinned to the bottom edge, its value in its label. Returns each
    label's pixel (x, y) in the image, for checks and for callers that annotate.
    """
    from PIL import Image, ImageDraw, ImageFont

    from .fsutil import atomic_output

    if not points or len(points) != len(labels):
        raise ValueError("quality_speed_plot needs one label per point, and at least one point")
    fps = [max(p[0], 1e-3) for p in points]
    qs = [p[1] for p in points]
    all_f = fps + ([max(reference[0], 1e-3)] if reference else [])
    lo_f, hi_f = min(all_f) / 1.6, max(all_f) * 1.6
    step = _nice_step(max(max(qs) - min(qs), 0.5))
    lo_q, hi_q = math.floor(min(qs) / step - 0.5) * step, math.ceil(max(qs) / step + 0.5) * step
    (w, h), (ml, mt, mr, mb) = SIZE, MARGIN
    x0, x1, y0, y1 = ml, w - mr, mt, h - mb

    def px(f: float, q: float) -> tuple[int, int]:
        fx = (math.log10(f) - math.log10(lo_f)) / (math.log10(hi_f) - math.log10(lo_f))
        fy = (q - lo_q) / (hi_q - lo_q)
        return round(x0 + fx * (x1 - x0)), round(y1 - fy * (y1 - y0))

    img = Image.new("RGB", SIZE, PAPER)
    d = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=13)
    except TypeError:  # Pillow before 10.1: the small bitmap font
        font = ImageFont.load_default()
    for t in _log_ticks(lo_f, hi_f):
        x = px(t, lo_q)[0]
        d.line([(x, y0), (x, y1)], fill=GRID)
        d.text((x, y1 + 6), _fmt(t), fill=INK, font=font, anchor="ma")
    q = lo_q
    while q <= hi_q + 1e-9:
        y = px(lo_f, q)[1]
        d.line([(x0, y), (x1, y)], fill=GRID)
        d.text((x0 - 6, y), f"{q:.2f}".rstrip("0").rstrip("."), fill=INK, font=font, anchor="rm")
        q += step
    d.rectangle([x0, y0, x1, y1], outline=INK)
    d.text(((x0 + x1) // 2, h - 18), "frames per second (log scale)", fill=INK, font=font, anchor="mm")
    d.text((x0, y0 - 6), quality, fill=INK, font=font, anchor="ld")
    if title:
        d.text(((x0 + x1) // 2, 14), title, fill=INK, font=font, anchor="mm")

    where = {lab: px(f, q) for lab, f, q in zip(labels, fps, qs)}
    front = pareto_front(list(zip(fps, qs)))
    if len(front) > 1:
        d.line([where[labels[i]] for i in front], fill=FRONT, width=2)
    taken = [(x - RADIUS, y - RADIUS, x + RADIUS, y + RADIUS) for x, y in where.values()]
    for i, lab in enumerate(labels):
        x, y = where[lab]
        on = i in front
        d.ellipse(taken[i], fill=FRONT if on else PAPER, outline=FRONT if on else OTHER, width=2)
        spot = _label_spot(d, font, lab, (x, y), taken, (x0, y0, x1, y1))
        taken.append(d.textbbox(spot[0], lab, font=font, anchor=spot[1]))
        d.text(spot[0], lab, fill=FRONT if on else OTHER, font=font, anchor=spot[1])
    if reference:
        where[reference[2]] = _reference(d, font, reference, px, (lo_q, hi_q), (x0, y0, x1, y1), taken)
    d.text((x1 - 8, y0 + 8), "filled, joined: the Pareto front (nothing faster and better)", fill=FRONT,
           font=font, anchor="ra")
    with atomic_output(path) as tmp:
        img.save(tmp, format="PNG")
    return where
