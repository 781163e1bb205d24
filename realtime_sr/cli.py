"""The ``realtime-sr`` command line.

Each handler turns flags into arguments and lazy-imports its module, so ``--help`` is fast.
Any :class:`~realtime_sr.errors.RealtimeSRError` becomes one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import RealtimeSRError


def _add_model_flags(p: argparse.ArgumentParser, *, modes=("coarse", "fine", "routed", "gan")) -> None:
    p.add_argument("--scale", type=int, choices=(2, 4),
                   help="upscaling factor (default: the model's own, else 2)")
    p.add_argument("--model", help="shipped model name (e.g. fine-x4) or a .safetensors path; "
                   "default: the shipped model for --mode and --scale (routed: the fine model)")
    p.add_argument("--mode", choices=modes, default="fine",
                   help="coarse (fast), fine (sharper), routed (coarse everywhere, fine on the tiles "
                        "with most detail), gan (perceptual); default fine")
    p.add_argument("--fine-fraction", type=float, default=0.25, metavar="F",
                   help="routed: share of tiles given to the fine network (default 0.25)")
    p.add_argument("--variant", choices=("auto", "real", "clean"),
                   help="real: models trained for compressed real-world input; clean: trained on clean bicubic "
                        "downscales, the literature's protocol (default for image, eval and bench); auto (default "
                        "for video and preview): by the input file's H.264 or VP9 quantiser, clean for "
                        "near-lossless input, real-strong fine models for heavily compressed input, real otherwise "
                        "(and for a live source)")
    from .runtime import BACKENDS, DEVICES, PRECISIONS

    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="inference backend (default auto: the fastest installed, and it says which)")
    p.add_argument("--device", default="auto", choices=DEVICES,
                   help="where to run (default auto: CUDA if present, else CPU)")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="numeric precision (default auto: bf16 on openvino where the CPU has bf16 units and the "
                        "model's bf16 gate did not fail, else fp32; in video and preview on a CPU without AMX, "
                        "int8 on openvino where the model's int8 graph passed its gate)")


def _cmd_image(a) -> int:
    from .image_cmd import run_image

    return run_image(a)


def _cmd_eval(a) -> int:
    from .eval_cmd import run_eval

    return run_eval(a)


def _cmd_train(a) -> int:
    from .train.config import load_recipe, override, parse_set
    from .train.loop import train

    cfg = load_recipe(a.recipe)
    changes = parse_set(a.set or [])
    if a.data:
        changes["train_dirs"] = tuple(a.data)
    for key in ("steps", "batch", "workers", "device", "val_dir", "precision"):
        val = getattr(a, key)
        if val is not None:
            changes[key] = val
    if changes:  # the weights' metadata keeps the recipe text: it must say what really ran
        lines = "".join(f"# {k} = {v!r}\n" for k, v in sorted(changes.items()))
        changes["recipe_text"] = cfg.recipe_text.rstrip("\n") + "\n# overridden on the command line:\n" + lines
    cfg = override(cfg, **changes)
    out = Path(a.out or f"runs/{cfg.name}")
    train(cfg, out_dir=out, resume=a.resume, weights_out=a.weights_out, progress=not a.no_progress, stop_after=a.stop_after,
          log=lambda m: print(m, file=sys.stderr))
    return 0


def _cmd_demo(a) -> int:
    """Upscale the packaged sample photo and a sample clip the package makes: nothing is downloaded."""
    import shutil

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    photo = out / "sample.png"
    shutil.copyfile(Path(__file__).parent / "assets" / "sample.png", photo)
    flags = ["--scale", str(a.scale), "--mode", a.mode, "-y"]
    rc = main(["image", str(photo), str(out / f"sample_x{a.scale}.png"), *flags])
    if rc:
        return rc
    from .pipeline.sample import make_sample_video

    clip = make_sample_video(out / "sample.mp4", seconds=a.seconds)
    rc = main(["video", str(clip), str(out / f"sample_x{a.scale}.mp4"), *flags])
    if rc == 0:
        print(f"demo written to {out}/: sample.png -> sample_x{a.scale}.png, sample.mp4 -> sample_x{a.scale}.mp4",
              file=sys.stderr)
    return rc


def _cmd_models(a) -> int:
    from .checkpoints import read_metadata
    from .models import shipped_models

    models = shipped_models()
    width = max(map(len, models), default=15)
    for name, path in models.items():
        meta = read_metadata(path)
        m = meta.get("metrics", {})
        scores = "  ".join(f"{k} {v['psnr']:.2f} dB" for k, v in m.items())
        print(f"{name:{width}s} {meta['arch']:16s} {meta.get('params', 0):>9,d} params  {scores}")
    print("-real: trained on real-world degradations (compressed video), the default of a live preview; -real-strong: "
          "more of that training, for heavily compressed input. video and preview pick by a file's H.264 or VP9 "
          "quantiser (near-lossless: clean; heavily compressed: -real-strong where shipped; else -real). The others: "
          "clean bicubic LR, the default of image, eval, bench", file=sys.stderr)
    return 0


# Commands whose default variant is ``auto``: their input is video, usually compressed, where the
# real models measured ahead (docs/real.md); on a file they read its quantiser and choose by it,
# on a live source (preview) they take the real models.
AUTO_BY_DEFAULT = ("video", "preview")


def _apply_variant(a) -> None:
    """Resolve ``--variant`` to the command's default, and for image/video/preview name the
    model it selects (so a routed fine-x2-real brings coarse-x2-real); eval and bench read it."""
    if not hasattr(a, "variant"):
        return
    if a.command == "eval":  # eval: None (or auto) means every shipped variant
        a.variant = None if a.variant == "auto" else a.variant
        return
    if a.variant is None or (a.variant == "auto" and a.command not in AUTO_BY_DEFAULT):
        a.variant = "auto" if a.command in AUTO_BY_DEFAULT else "clean"
    from .models import ROLE_OF_MODE, default_name

    if (a.command in ("image", "video", "preview") and a.model is None and a.variant == "real"
            and getattr(a, "mode", None) in ROLE_OF_MODE):
        a.model = default_name(ROLE_OF_MODE[a.mode], a.scale, a.variant)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="realtime-sr", description="Real-time video and image super-resolution.")
    parser.add_argument("--version", action="version", version=f"realtime-sr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("image", help="upscale an image, or a folder of images to a folder")
    p.add_argument("input", help="image file or folder")
    p.add_argument("output", help="output file or folder")
    _add_model_flags(p)
    p.add_argument("--tile", type=int, default=256, help="tile size in LR pixels (bounded memory; default 256)")
    p.add_argument("--self-ensemble", action="store_true",
                   help="average the network over the 8 flips and rotations of the input: 8x the time, "
                        "+0.06-0.10 dB on Set5/Set14 for the fine models (README)")
    p.add_argument("-y", "--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=_cmd_image)

    p = sub.add_parser("eval", help="PSNR/SSIM on Y of bicubic and models over a folder of HR images")
    p.add_argument("folder", help="folder of HR images (e.g. Set5)")
    _add_model_flags(p, modes=("coarse", "fine", "routed", "gan", "all"))
    p.add_argument("--lr-codec", choices=("libx264", "libx265", "libvpx-vp9", "jpeg"),
                   help="make the LR the way real video is made: bicubic downscale, then this codec "
                        "(one intra frame, yuv420p) or JPEG; default: the clean protocol")
    p.add_argument("--lr-crf", type=int, default=23, metavar="N", help="CRF for --lr-codec (default 23)")
    p.add_argument("--lr-quality", type=int, default=75, metavar="Q", help="JPEG quality for --lr-codec jpeg (default 75)")
    p.add_argument("--self-ensemble", action="store_true",
                   help="also measure each model averaged over the 8 flips and rotations of the input (8x the time)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("train", help="train a network from a recipe (also under torchrun)")
    p.add_argument("--recipe", required=True, help="recipe name (coarse_x2, fine_x4, gan_x4 ...) or TOML path")
    p.add_argument("--data", action="append", help="training image folder (repeatable; DIV2K layout recognised)")
    p.add_argument("--val-dir", dest="val_dir", help="validation folder (PSNR/SSIM each epoch)")
    p.add_argument("--out", help="run folder for checkpoints and logs (default runs/NAME)")
    p.add_argument("--weights-out", help="where to write the final weights (default OUT/NAME.safetensors)")
    p.add_argument("--resume", nargs="?", const="auto", help="resume from OUT/last.pt or a given checkpoint")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--workers", type=int)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"),
                   help="compute precision (default auto: AMP on CUDA; bf16 on a CPU with bf16 units "
                        "where a timed probe shows it pays; else fp32)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any recipe setting")
    p.add_argument("--stop-after", type=int, metavar="N", help="train N steps in this run, checkpoint, stop")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    # commands whose parsers live beside their handlers (each module keeps heavy imports lazy)
    for mod in ("video_cmd", "export_cmd", "bench_cmd", "preview"):
        try:
            module = __import__(f"realtime_sr.{mod}", fromlist=["add_parser"])
        except ImportError:
            continue
        module.add_parser(sub, _add_model_flags)

    p = sub.add_parser("demo", help="upscale a packaged sample photo and a generated sample clip")
    p.add_argument("out", nargs="?", default="realtime-sr-demo", help="output folder (default realtime-sr-demo)")
    p.add_argument("--scale", type=int, choices=(2, 4), default=2)
    p.add_argument("--mode", choices=("coarse", "fine", "gan"), default="fine")
    p.add_argument("--seconds", type=float, default=2.0, help="length of the sample clip")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("models", help="list the shipped models and their measured quality")
    p.set_defaults(func=_cmd_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.command != "train":
        # torch's OpenMP threads spin after each call by default, on the cores OpenVINO or
        # onnxruntime need next: routed x2 took 1.5-2.6x as long with spinning threads
        # (benchmarks/results/routed_omp_wait_*). Only takes effect before torch is imported.
        import os

        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        _apply_variant(args)
        return int(args.func(args) or 0)
    except RealtimeSRError as exc:
        print(f"realtime-sr: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("realtime-sr: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("realtime-sr: error: out of memory (try a smaller --tile)", file=sys.stderr)
        return 1
    except OSError as exc:  # a file-system refusal no command turned into its own message: one line still
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"realtime-sr: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
