"""``realtime-sr eval DIR --scale S``: bicubic next to models, by the literature's protocol."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .errors import ModelNotFoundError


def _methods(a) -> list[tuple[str, object]]:
    from . import routing
    from .models import shipped_models
    from .upscale import upscale_array

    opts = routing.RouteOptions(fraction=a.fine_fraction)
    if a.model is not None:
        runs = [(a.model, "routed" if a.mode == "routed" else "fine")]
    elif a.mode == "all":
        runs = [(n, m) for n, m in ((f"coarse-x{a.scale}", "coarse"), (f"fine-x{a.scale}", "fine"),
                                    (f"fine-x{a.scale}", "routed"), (f"gan-x{a.scale}", "gan"))
                if n in shipped_models() and (m != "routed" or f"coarse-x{a.scale}" in shipped_models())]
        if not runs:
            raise ModelNotFoundError(f"no shipped x{a.scale} models")
    else:
        runs = [(None, a.mode)]
    out = []
    for name, mode in runs:
        model, backend = routing.load(name, scale=a.scale, mode=mode, backend=a.backend, device=a.device,
                                      precision=a.precision, options=opts)
        label = f"{model.name} [{backend.name}]"
        out.append((label, lambda lr, m=model, b=backend: upscale_array(m, b, lr, tile=512)))
    return out


def run_eval(a) -> int:
    from .evaluate import bicubic_method, evaluate, load_pairs

    from .models import pick_scale

    a.scale = pick_scale(a.model, a.scale)
    pairs = load_pairs(a.folder, a.scale)
    results = [evaluate(pairs, bicubic_method(a.scale), a.scale, "bicubic")]
    for label, fn in _methods(a):
        results.append(evaluate(pairs, fn, a.scale, label))
    set_name = Path(a.folder).resolve().name
    if a.json:
        print(json.dumps({"set": set_name, "scale": a.scale, "images": len(pairs), "results": [
            {"method": r.method, "psnr": round(r.psnr, 4), "ssim": round(r.ssim, 5),
             "per_image": {k: {"psnr": round(v[0], 4), "ssim": round(v[1], 5)} for k, v in r.per_image.items()}}
            for r in results]}, indent=2))
        return 0
    width = max(len(r.method) for r in results)
    print(f"{set_name} x{a.scale} ({len(pairs)} images), PSNR/SSIM on Y, {a.scale}-pixel border", file=sys.stderr)
    print(f"{'method':<{width}}  {'PSNR (dB)':>9}  {'SSIM':>6}")
    for r in results:
        print(f"{r.method:<{width}}  {r.psnr:9.2f}  {r.ssim:6.4f}")
    return 0
