"""Shipped models and the loaded-model descriptor.

A model is named ``<role>-x<scale>[-<variant>]`` and lives in
``realtime_sr/weights/<role>_x<scale>[_<variant>].safetensors``. Three axes:

* role: ``coarse`` (fast, whole frames), ``fine`` (the SRGAN generator, PSNR-trained), ``gan``;
* scale: 2 or 4;
* variant: ``clean`` (no suffix: trained on clean PIL-bicubic downscales, the literature's
  protocol: ``coarse-x2``) or ``real`` (trained on real-world degradations: other kernels, blur,
  noise, JPEG and video codecs: ``fine-x2-real``), for the compressed video people have.

A real fine model may have a stronger sibling, ``fine-x2-real-strong``: the same real-world run
with more of it in the blend (docs/real.md), for heavily compressed input. It is of the ``real``
variant (a routed one brings ``coarse-x2-real``); ``realtime-sr video`` picks among clean, real and
real-strong by the input's own quantiser (:mod:`realtime_sr.pipeline.qp`).

``--model`` also takes a path to any realtime-sr weights file. An unknown name lists the valid ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ModelNotFoundError, UsageError

WEIGHTS_DIR = Path(__file__).parent / "weights"
ROLES = ("coarse", "fine", "gan")
SCALES = (2, 4)
VARIANTS = ("clean", "real")
DEFAULT_SCALE = 2
ROLE_OF_MODE = {"coarse": "coarse", "fine": "fine", "routed": "fine", "gan": "gan"}  # routed: named by its fine model


def model_name(role: str, scale: int, variant: str = "clean") -> str:
    """The registry name of a shipped model: ``fine-x2``, ``fine-x2-real`` ..."""
    if variant not in VARIANTS:
        raise UsageError(f"--variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    return f"{role}-x{scale}" + ("" if variant == "clean" else f"-{variant}")


def variant_of(name: str | Path) -> str:
    """The variant a model name or weights file name says (``clean`` without a suffix;
    ``fine-x2-real-strong`` is ``real``)."""
    parts = Path(name).stem.replace("_", "-").split("-")
    return next((v for v in VARIANTS[1:] if v in parts[1:]), "clean")


def strong_name(name: str) -> str | None:
    """The shipped stronger sibling of a shipped real model (``fine-x2-real`` -> ``fine-x2-real-strong``), or None."""
    strong = f"{name}-strong"
    return strong if variant_of(name) == "real" and strong in shipped_models() else None


def pick_scale(model: str | None, scale: int | None) -> int:
    """The scale a command works at: --scale if given, else the model's own, else 2."""
    if scale is not None:
        return scale
    if model is None:
        return DEFAULT_SCALE
    from .checkpoints import read_metadata

    return int(read_metadata(resolve(model))["scale"])


def shipped_models() -> dict[str, Path]:
    """Name -> path of every weights file shipped in the package."""
    out = {}
    for p in sorted(WEIGHTS_DIR.glob("*_x*.safetensors")):
        role, _, rest = p.stem.rpartition("_x")
        scale, _, variant = rest.partition("_")
        out[f"{role}-x{scale}" + (f"-{variant.replace('_', '-')}" if variant else "")] = p
    return out


def default_name(mode: str, scale: int | None = None, variant: str = "clean") -> str:
    """The shipped model for a role, scale and variant; where that variant is not shipped for the
    role (say, a GAN trained only on real-world degradations), the other one."""
    scale = DEFAULT_SCALE if scale is None else scale
    if scale not in SCALES:
        raise UsageError(f"--scale must be one of {', '.join(map(str, SCALES))}, not {scale}")
    name = model_name(mode, scale, variant)
    known = shipped_models()
    if name not in known:
        others = [model_name(mode, scale, v) for v in VARIANTS if v != variant]
        name = next((n for n in others if n in known), name)
    return name


def resolve(model: str | None = None, *, scale: int | None = None, mode: str = "fine",
            variant: str = "clean") -> Path:
    """The weights path for ``--model NAME|PATH`` or, without it, the shipped model for mode,
    scale and variant."""
    if model is None:
        model = default_name(mode, scale, variant)
    path = Path(model)
    if path.suffix == ".safetensors" or path.exists() or "/" in model:
        if not path.exists():
            raise ModelNotFoundError(f"{model}: no such weights file")
        return path
    known = shipped_models()
    if model not in known:
        raise ModelNotFoundError(f"unknown model {model!r}; shipped: {', '.join(known) or 'none'}")
    return known[model]


@dataclass
class Model:
    """A loaded network and what it knows about itself."""

    name: str
    path: Path
    meta: dict[str, Any]
    net: Any = field(repr=False)  # torch.nn.Module, eval mode, batch norm folded

    @property
    def scale(self) -> int:
        return int(self.meta["scale"])

    @property
    def colour(self) -> str:
        """'y' for a luma network (chroma resized bicubically), 'rgb' for an RGB network."""
        return self.meta["colour"]

    @property
    def in_channels(self) -> int:
        return 1 if self.colour == "y" else 3

    @property
    def context(self) -> int:
        """LR pixels of context a tile needs so that tiled output equals whole-image output."""
        return int(self.meta.get("context", 24))


def load_model(model: str | Path | None = None, *, scale: int | None = None, mode: str = "fine",
               variant: str = "clean") -> Model:
    """Load a shipped model by name (``'fine-x4'``), a weights path, or the default for mode,
    scale and variant."""
    from .archs.fuse import fuse_batchnorm
    from .checkpoints import build_network

    path = resolve(None if model is None else str(model), scale=scale, mode=mode, variant=variant)
    net, meta = build_network(path)
    if scale is not None and int(meta["scale"]) != scale:
        raise UsageError(f"{path.name} is a x{meta['scale']} model, but --scale {scale} was asked")
    net.eval()
    fuse_batchnorm(net)
    if hasattr(net, "fold_tail"):  # the fine network: its output conv before the last PixelShuffle
        net.fold_tail()
    for p in net.parameters():
        p.requires_grad_(False)
    name = meta.get("name") or path.stem
    return Model(name=name, path=path, meta=meta, net=net)
