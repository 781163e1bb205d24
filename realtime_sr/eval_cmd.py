"""``realtime-sr eval DIR --scale S``: bicubic next to models, by the literature's protocol."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .errors import ModelNotFoundError, UsageError


def _methods(a) -> list[tuple[str, object]]:
    from . import routing
    from .models import shipped_models
    from .upscale import upscale_array

    from .models import VARIANTS, default_name, model_name

    opts = routing.RouteOptions(fraction=a.fine_fraction)
    variants = [a.variant] if a.variant else list(VARIANTS)
    shipped = shipped_models()
    if a.model is not None:
        runs = [(a.model, "routed" if a.mode == "routed" else "fine")]
    elif a.mode == "all":
        runs = [(model_name(role, a.scale, v), m) for v in variants
                for role, m in (("coarse", "coarse"), ("fine", "fine"), ("fine", "routed"), ("gan", "gan"))]
        runs = [(n, m) for n, m in runs if n in shipped and (
            m != "routed" or n.replace("fine-", "coarse-", 1) in shipped)]
        if not runs:
            raise ModelNotFoundError(f"no shipped x{a.scale} models")
    else:
        runs = [(default_name("fine" if a.mode == "routed" else a.mode, a.scale, v), a.mode) for v in variants]
        runs = [r for r in runs if r[0] in shipped] or [(None, a.mode)]
        runs = list(dict.fromkeys(runs))  # a role shipped in one variant only resolves to it twice
    out = []
    for name, mode in runs:
        model, backend = routing.load(name, scale=a.scale, mode=mode, backend=a.backend, device=a.device,
                                      precision=a.precision, options=opts)
        label = f"{model.name} [{backend.name}]"
        out.append((label, lambda lr, m=model, b=backend: upscale_array(m, b, lr, tile=512)))
        if a.self_ensemble:
            out.append((f"{model.name}+ [{backend.name}, self-ensemble]",
                        lambda lr, m=model, b=backend: upscale_array(m, b, lr, tile=512, self_ensemble=True)))
    return out


def run_eval(a) -> int:
    from .evaluate import bicubic_method, evaluate, load_pairs

    from .models import pick_scale
    from .pipeline.sink import check_quality

    a.scale = pick_scale(a.model, a.scale)
    if a.lr_codec == "jpeg" and not 1 <= a.lr_quality <= 100:
        raise UsageError(f"--lr-quality {a.lr_quality}: JPEG takes 1-100")
    if a.lr_codec not in (None, "jpeg"):
        check_quality(a.lr_codec, a.lr_crf, "--lr-crf")
    pairs = load_pairs(a.folder, a.scale, lr_codec=a.lr_codec, lr_crf=a.lr_crf, lr_quality=a.lr_quality)
    results = [evaluate(pairs, bicubic_method(a.scale), a.scale, "bicubic")]
    for label, fn in _methods(a):
        results.append(evaluate(pairs, fn, a.scale, label))
    set_name = Path(a.folder).resolve().name
    if a.lr_codec:
        set_name += f" (LR {a.lr_codec} " + (f"q{a.lr_quality})" if a.lr_codec == "jpeg" else f"CRF {a.lr_crf})")
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
