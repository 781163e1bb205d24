"""Training configuration: a TOML recipe, read into frozen dataclasses, with CLI overrides."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import UsageError

RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"
STAGES = ("coarse", "fine", "gan")


@dataclass(frozen=True)
class TrainConfig:
    name: str
    stage: str                      # coarse | fine | gan
    arch: str
    hparams: dict[str, Any]
    scale: int
    colour: str = "y"               # y | rgb
    # data
    train_dirs: tuple[str, ...] = ("../shared/data/images/T91", "../shared/data/images/BSD200")
    val_dir: str | None = "../shared/data/images/Set5"
    eval_dirs: tuple[str, ...] = ()  # measured once at the end, written into the metadata
    lr_patch: int = 32
    batch: int = 16
    workers: int = 2
    scale_aug: tuple[float, float] = (0.6, 1.0)
    degrade: dict[str, Any] = field(default_factory=dict)  # [degrade] table: real-world LR (train/degrade.py)
    # optimisation
    steps: int = 10000
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 200
    schedule: str = "cosine"        # cosine | step
    min_lr_ratio: float = 0.01
    milestones: tuple[int, ...] = ()
    gamma: float = 0.5
    grad_clip: float = 1.0
    loss: str = "l1"                # l1 | mse
    ema_decay: float = 0.999
    seed: int = 0
    init_from: str | None = None    # weights (name or path) to start the generator from
    init_frames: str = "middle"     # a one-frame init_from into a multi-frame network: middle | spread (loop.copy_matching)
    # bookkeeping
    val_every: int = 1000           # an "epoch": validation PSNR/SSIM on val_dir
    ckpt_every: int = 500
    threads: int = 0                # torch intra-op threads (0: torch's default)
    device: str = "auto"
    precision: str = "auto"         # auto | fp32 | bf16 | fp16 (train/compute.py: measured on CPU)
    channels_last: bool | None = None  # None: measured under auto precision
    # gan stage
    d_hparams: dict[str, Any] = field(default_factory=dict)
    d_lr: float = 1e-4
    content_weight: float = 1.0
    adv_weight: float = 5e-3
    fm_weight: float = 1e-2
    vgg_weights: str | None = None  # local VGG19 state_dict file; enables the perceptual loss
    vgg_weight: float = 1e-2
    gan_loss: str = "vanilla"       # vanilla (SRGAN) | ragan (ESRGAN's relativistic average)
    ldl_weight: float = 0.0         # LDL artifact penalty against the EMA generator (0: off)
    freeze_bn: bool | None = None   # generator batch norm on its running statistics (None: in the gan stage)
    d_warmup_steps: int = 0         # first steps train the discriminator alone (the generator waits)
    fs_sigma: float = 0.0           # frequency separation (>0): D judges x - blur(x), Gaussian sigma in HR px
    lowpass_weight: float = 0.0     # L1 between blur(SR) and blur(HR) (the low band the GAN must keep)
    recipe_text: str = ""


def load_recipe(name_or_path: str) -> TrainConfig:
    """A recipe by name (``fine_x4`` -> realtime_sr/recipes/fine_x4.toml) or path."""
    path = Path(name_or_path)
    if not path.exists():
        path = RECIPES_DIR / f"{name_or_path}.toml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.toml")))
        raise UsageError(f"unknown recipe {name_or_path!r}; shipped: {known}")
    text = path.read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML ({exc})") from None
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict) and key not in ("hparams", "d_hparams", "degrade"):
            flat.update(value)  # sections ([model], [data], [optim], ...) are only for reading
        else:
            flat[key] = value
    flat.setdefault("name", path.stem)
    return from_dict(flat, recipe_text=text)


def from_dict(values: dict[str, Any], **extra) -> TrainConfig:
    names = {f.name: f for f in fields(TrainConfig)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise UsageError(f"unknown training settings: {', '.join(unknown)}")
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    cfg = TrainConfig(**clean, **extra)
    validate(cfg)
    return cfg


def override(cfg: TrainConfig, **changes) -> TrainConfig:
    changes = {k: v for k, v in changes.items() if v is not None}
    cfg = replace(cfg, **changes)
    validate(cfg)
    return cfg


def parse_set(items: list[str]) -> dict[str, Any]:
    """``--set key=value`` pairs, values parsed as TOML (numbers, booleans, strings, lists)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set expects key=value, got {item!r}")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value
    names = {f.name for f in fields(TrainConfig)}
    bad = sorted(set(out) - names)
    if bad:
        raise UsageError(f"unknown training settings: {', '.join(bad)}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in out.items()}


def validate(cfg: TrainConfig) -> None:
    if cfg.stage not in STAGES:
        raise UsageError(f"stage must be one of {', '.join(STAGES)}, not {cfg.stage!r}")
    if cfg.scale not in (2, 3, 4):
        raise UsageError(f"scale must be 2, 3 or 4, not {cfg.scale}")
    if cfg.colour not in ("y", "rgb"):
        raise UsageError(f"colour must be y or rgb, not {cfg.colour!r}")
    if cfg.schedule not in ("cosine", "step"):
        raise UsageError(f"schedule must be cosine or step, not {cfg.schedule!r}")
    if cfg.init_frames not in ("middle", "spread"):
        raise UsageError(f"init_frames must be middle or spread, not {cfg.init_frames!r}")
    if cfg.gan_loss not in ("vanilla", "ragan"):
        raise UsageError(f"gan_loss must be vanilla or ragan, not {cfg.gan_loss!r}")
    if cfg.loss not in ("l1", "mse"):
        raise UsageError(f"loss must be l1 or mse, not {cfg.loss!r}")
    if cfg.d_warmup_steps < 0 or cfg.fs_sigma < 0 or cfg.lowpass_weight < 0:
        raise UsageError("d_warmup_steps, fs_sigma and lowpass_weight must not be negative")
    if cfg.d_warmup_steps and cfg.d_warmup_steps >= cfg.steps:
        raise UsageError(f"d_warmup_steps ({cfg.d_warmup_steps}) must be fewer than steps ({cfg.steps})")
    if cfg.lowpass_weight and not cfg.fs_sigma:
        raise UsageError("lowpass_weight needs fs_sigma (the blur that defines the low band)")
    if cfg.steps <= 0 or cfg.batch <= 0 or cfg.lr_patch <= 0:
        raise UsageError("steps, batch and lr_patch must be positive")
    from .compute import PRECISIONS
    from .degrade import config_from

    if cfg.precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, not {cfg.precision!r}")
    config_from(cfg.degrade)  # unknown or malformed degradation settings fail here, before training
