"""``realtime-sr export``: ONNX (fp32, fp16, int8) with parity and the quality gate (bf16 too); TensorRT engines.

Heavy imports (torch, onnx, onnxruntime) happen in the handler, so ``realtime-sr --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add_parser(sub, add_model_flags=None) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "export", help="export models to ONNX (fp32/fp16/int8, quality-gated; bf16 gated) and optionally TensorRT engines",
        description="Export to ONNX with a parity check against torch. Reduced precision is written into the "
                    "graph (fp16 tensors, int8 Q/DQ) and must keep Set14 PSNR within 0.05 dB (fp16) / 0.15 dB "
                    "(int8) of fp32, or export refuses it (--force keeps it anyway). bf16 is OpenVINO's "
                    "compile-time hint on the fp32 graph: it is gated like fp16 (0.05 dB) and the result is "
                    "recorded beside the fp32 graph, where the openvino backend reads it.")
    p.add_argument("--scale", type=int, choices=(2, 4), default=2, help="upscaling factor (default 2)")
    p.add_argument("--model", action="append",
                   help="shipped model name or .safetensors path (repeatable); default: the shipped coarse and "
                        "fine models for --scale (and the router, once one is shipped)")
    p.add_argument("--precision", default=None,
                   help="comma-separated precisions from fp32, fp16, bf16, int8 (default fp32,fp16,int8, "
                        "and bf16 where the CPU has bf16 units and OpenVINO is installed)")
    p.add_argument("--out", help="output folder (default: the cache, $REALTIME_SR_CACHE or engines/ or "
                                 "~/.cache/realtime-sr, where the backends look)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (17 or later; default 17)")
    p.add_argument("--calib", action="append", metavar="DIR",
                   help="calibration image folder (repeatable; training images, never a test set); default: "
                        "$REALTIME_SR_CALIB, else the packaged sample image (the same on every machine, so a graph "
                        "made on the fly is the one a recorded gate measured)")
    p.add_argument("--calib-count", type=int, default=32, help="calibration crops (default 32, as a graph made on the "
                   "fly has: with the default calibration it is then the same graph)")
    p.add_argument("--gate-set", metavar="DIR", help="test set for the quality gate (default: Set14 under "
                   "../shared/data/images, or $REALTIME_SR_GATE_SET)")
    p.add_argument("--force", action="store_true", help="keep artifacts that fail the quality gate (or have no gate set)")
    p.add_argument("--tile-batch", type=int, default=16, help="fine network: tiles per batch K of the static "
                   "TensorRT shape (default 16, what --mode routed sends)")
    p.add_argument("--tile-size", type=int, default=40, help="fine network: tile side in LR pixels, context "
                   "included, of the static shape (default 40 = 32 + 2 x 4, what --mode routed sends)")
    p.add_argument("--engine", action="store_true", help="also build TensorRT engines (needs TensorRT and a GPU)")
    p.add_argument("--rebuild", action="store_true", help="re-export even when the cache has the file")
    p.add_argument("--record", metavar="FILE", help="also write each model's bf16 and int8 gate results to FILE (JSON, "
                   "merged, keyed by the weights' sha256); realtime_sr/weights/gates.json is the shipped models' "
                   "record, used where a machine has not gated them itself")
    p.set_defaults(func=run_export)
    return p


def _gate_set(arg: str | None) -> Path | None:
    from .export.artifacts import PACKAGE_ROOT

    cands = [arg] if arg else [os.environ.get("REALTIME_SR_GATE_SET"), "../shared/data/images/Set14",
                               str(PACKAGE_ROOT / ".." / "shared" / "data" / "images" / "Set14")]
    for c in cands:
        if c and Path(c).is_dir():
            return Path(c).resolve()
    if arg:
        from .errors import UsageError

        raise UsageError(f"--gate-set {arg}: not a folder")
    return None


def _models(a) -> list[str]:
    from .errors import ModelNotFoundError
    from .models import shipped_models

    if a.model:
        return a.model
    shipped = shipped_models()
    names = [f"{role}-x{a.scale}" for role in ("coarse", "fine", "router") if f"{role}-x{a.scale}" in shipped]
    if not names:
        raise ModelNotFoundError(f"no shipped x{a.scale} models yet (realtime_sr/weights/); pass --model PATH")
    return names


def run_export(a) -> int:
    from .errors import UsageError
    from .evaluate import load_pairs
    from .export.artifacts import ensure_onnx, write_sidecar
    from .export.cache import cache_dir
    from .export.gate import INT8_IDENTITY, judge, onnx_psnr
    from .export.quantize import PRECISIONS
    from .models import load_model
    from .runtime.cpu import openvino_available

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    allowed = (*PRECISIONS, "bf16")
    precisions = [p.strip() for p in (a.precision or default_precisions()).split(",") if p.strip()]
    bad = [p for p in precisions if p not in allowed]
    if bad or not precisions:
        raise UsageError(f"--precision takes a comma-separated list of {', '.join(allowed)}, not {a.precision!r}")
    out = Path(a.out) if a.out else cache_dir()
    gate_dir = _gate_set(a.gate_set) if any(p != "fp32" for p in precisions) else None
    refused = 0
    for name in _models(a):
        model = load_model(name, scale=None if a.model else a.scale)
        pairs = load_pairs(gate_dir, model.scale) if gate_dir else None
        fp32 = ensure_onnx(model, "fp32", out_dir=out, opset=a.opset, rebuild=a.rebuild, log=log)
        print(f"{model.name} fp32: {fp32.path}  (parity vs torch: max abs err {fp32.info['parity_max_abs']:.2e})")
        base = {}  # the fp32 PSNR, measured once per model when a gate runs

        def fp32_psnr() -> float:
            if not base:
                base["psnr"] = onnx_psnr(model, fp32.path, pairs, precision="fp32")
                fp32.info["gate"] = {"set": str(gate_dir), "psnr": round(base["psnr"], 4)}
                write_sidecar(fp32)
            return base["psnr"]

        for prec in precisions:
            art = fp32
            if prec == "bf16":
                refused += not gate_bf16(model, fp32, pairs, fp32_psnr, gate_dir, a.force)
                if a.record and fp32.info.get("gate_bf16", {}).get("measured", True):
                    record_gate(Path(a.record), model, fp32.info["weights_sha256"], "bf16", fp32.info["gate_bf16"])
                continue
            if prec != "fp32":
                for strict in (False, True):
                    art = ensure_onnx(model, prec, out_dir=out, opset=a.opset, calib=a.calib,
                                      calib_count=a.calib_count, rebuild=a.rebuild, strict=strict, log=log)
                    if pairs is None:
                        msg = f"{model.name} {prec}: no gate set (Set14) found to measure quality"
                        passed = False
                        art.info["gate"] = {"measured": False, "forced": a.force}
                        break
                    psnr = onnx_psnr(model, art.path, pairs, precision=prec, fp32_path=fp32.path,
                                     keep_fp32=art.info.get("kept_fp32", ()))
                    if prec == "int8" and openvino_available():  # the same graph on OpenVINO's int8 kernels
                        ov = onnx_psnr(model, art.path, pairs, precision=prec, runtime="openvino")
                        art.info["gate_openvino_psnr"] = round(ov, 4)
                        psnr = min(psnr, ov)
                    res = judge(prec, psnr, fp32_psnr())
                    msg = f"{model.name} {res.line()} on {gate_dir.name}"
                    if "gate_openvino_psnr" in art.info:
                        msg += f" (the lower of onnxruntime and OpenVINO {art.info['gate_openvino_psnr']:.3f} dB)"
                    passed = res.passed
                    art.info["gate"] = {"set": str(gate_dir), "psnr": round(res.psnr, 4),
                                        "fp32_psnr": round(res.fp32_psnr, 4), "drop_db": round(res.drop, 4),
                                        "tolerance_db": res.tolerance, "passed": res.passed,
                                        "forced": a.force and not res.passed}
                    if passed or art.info.get("strict"):
                        break
                    print(f"{msg}; retrying strict ("
                          + ("more of the most sensitive layers in float" if prec == "int8"
                             else "first and last layers in fp32") + ")")
                if not (passed or a.force):
                    print(f"{msg}: refused (use --force to keep it)")
                    for f in (art.path, art.sidecar):
                        f.unlink(missing_ok=True)
                    refused += 1
                    continue
                write_sidecar(art)
                if a.record and prec == "int8" and art.info["gate"].get("measured", True):
                    record_gate(Path(a.record), model, art.info["weights_sha256"], "int8", dict(
                        art.info["gate"], runtime="onnxruntime and openvino (the lower)"
                        if "gate_openvino_psnr" in art.info else "onnxruntime",
                        **{k: art.info.get(k) for k in INT8_IDENTITY}))
                print(f"{msg}\n{model.name} {prec}: {art.path}  (max abs err vs torch fp32 "
                      f"{art.info['max_abs_vs_torch_fp32']:.2e}, on calibration frames)")
            if _role(model) == "fine":
                from .export.onnx import fix_shape

                k, t = a.tile_batch, a.tile_size
                static = art.path.with_name(art.path.name.replace(".onnx", f".tiles{k}x{t}.onnx"))
                fix_shape(art.path, static, (k, model.in_channels, t, t), model.scale)
                print(f"{model.name} {prec}: static tile batch {k}x{model.in_channels}x{t}x{t}: {static}")
            if a.engine:
                from .runtime.trt_backend import TrtBackend

                TrtBackend.for_model(model, precision=prec,
                                     tile_batch=(a.tile_batch, a.tile_size) if _role(model) == "fine" else None,
                                     out_dir=out, log=log)
    return 1 if refused else 0


def record_gate(path: Path, model, weights_sha256: str, precision: str, result: dict) -> None:
    """Merge ``model``'s ``precision`` gate ``result`` (bf16: from its fp32 sidecar; int8: the int8
    graph's, with what identifies that graph) into the JSON record at ``path``, keyed by the
    weights' sha256; the other precisions' records for the same weights are kept."""
    import datetime
    import json
    import platform

    from .runtime.cpu import cpu_features, cpu_model

    try:
        rec = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError) as exc:
        from .errors import OutputError

        raise OutputError(f"--record {path}: not a readable JSON record ({exc})") from None
    try:
        import openvino

        ov = openvino.__version__.split("-")[0]
    except ImportError:  # pragma: no cover - gate_bf16 needs it
        ov = None
    gate = {k: v for k, v in result.items() if k != "set"}
    gate.update(set=Path(result["set"]).name, openvino=ov,
                cpu=f"{cpu_model()} ({cpu_features().describe()})",
                date=datetime.date.today().isoformat(), python=platform.python_version())
    if precision == "int8":
        import onnxruntime

        gate["onnxruntime"] = onnxruntime.__version__
    entry = rec.get(weights_sha256) if isinstance(rec.get(weights_sha256), dict) else {}
    rec[weights_sha256] = {**entry, "model": model.name, precision: gate}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dict(sorted(rec.items(), key=lambda kv: kv[1]["model"])), indent=1) + "\n")
    tmp.replace(path)


def default_precisions() -> str:
    from .runtime.cpu import cpu_features, openvino_available

    return "fp32,fp16,bf16,int8" if openvino_available() and cpu_features().bf16 else "fp32,fp16,int8"


def gate_bf16(model, fp32, pairs, fp32_psnr, gate_dir, force: bool) -> bool:
    """Gate bf16 (OpenVINO's hint on the fp32 graph) and record it in the fp32 graph's sidecar; True if kept."""
    from .errors import BackendError, UsageError
    from .export.artifacts import write_sidecar
    from .export.gate import judge, onnx_psnr
    from .runtime.ov_backend import check_precision, import_openvino

    try:
        import_openvino()
        check_precision("bf16")
    except (BackendError, UsageError) as exc:  # no OpenVINO, or no bf16 units
        print(f"{model.name} bf16: refused: {exc}")
        return False
    if pairs is None:
        fp32.info["gate_bf16"] = {"measured": False, "forced": force}
        write_sidecar(fp32)
        print(f"{model.name} bf16: no gate set (Set14) found to measure quality" + ("" if force else ": refused"))
        return force
    res = judge("bf16", onnx_psnr(model, fp32.path, pairs, precision="bf16"), fp32_psnr())
    fp32.info["gate_bf16"] = {"set": str(gate_dir), "psnr": round(res.psnr, 4), "fp32_psnr": round(res.fp32_psnr, 4),
                              "drop_db": round(res.drop, 4), "tolerance_db": res.tolerance, "passed": res.passed,
                              "forced": force and not res.passed, "runtime": "openvino"}
    write_sidecar(fp32)
    msg = f"{model.name} {res.line()} on {gate_dir.name} (OpenVINO bf16 hint on the fp32 graph)"
    if not (res.passed or force):
        print(f"{msg}: refused (recorded: the openvino backend will not run bf16 for it; --force keeps it)")
        return False
    print(msg)
    return True


def _role(model) -> str:
    from .runtime.trt_backend import model_role

    return model_role(model)
