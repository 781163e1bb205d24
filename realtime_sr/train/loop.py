"""The training loop, top to bottom: one function, no god-class.

Stages: ``coarse`` and ``fine`` minimise a pixel loss; ``gan`` alternates a discriminator step
(generator frozen) and a generator step (discriminator frozen) with content + adversarial +
feature-matching (+ optional VGG, + LDL artifact) losses, the adversarial one standard or
relativistic average (``gan_loss``). Adam with warm-up then cosine or step decay,
gradient clipping, an EMA of the generator, AMP on CUDA, DistributedDataParallel under
torchrun, checkpoints that resume exactly, validation PSNR/SSIM every ``val_every`` steps.
"""

from __future__ import annotations

import copy
import csv
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from ..archs import build
from ..checkpoints import load_weights, save_weights
from ..errors import UsageError
from . import compute as compute_mod
from .config import TrainConfig
from .data import PatchDataset, StepSampler, find_training_images, find_validation_dir
from .losses import (VGGLoss, discriminator_loss, feature_matching, gaussian_blur, generator_adv_loss, high_band,
                     ldl_loss, pixel_loss)


def receptive_context(arch: str, hparams: dict) -> int:
    """LR pixels of context that make tiled inference equal whole-image inference."""
    if arch == "srgan_generator":
        radius = 2 * hparams.get("num_blocks", 16) + 6
    elif arch == "coarse":
        radius = hparams.get("m", 4) + 6
    else:
        radius = 16
    return int(math.ceil(radius / 8) * 8)


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """Warm-up, then cosine (to min_lr_ratio) or step decay."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "step":
        return cfg.gamma ** sum(step >= m for m in cfg.milestones)
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def optimizer_step(opt, loss, params, scaler, clip: float) -> None:
    """Backward (scaled under fp16 AMP), clip the gradient norm, step."""
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(params, clip)
    scaler.step(opt)


class EMA:
    """Exponential moving average of a module's parameters; buffers (BN statistics) are copied."""

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(module).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        for e, p in zip(self.module.parameters(), module.parameters()):
            e.lerp_(p.detach(), 1 - self.decay)
        for e, b in zip(self.module.buffers(), module.buffers()):
            e.copy_(b)


def _init_from(net: torch.nn.Module, source: str, *, frames: str = "middle") -> str:
    """Copy every tensor of a weights file whose name and shape match (x2 -> x4 transfer too).

    ``source`` is a shipped name, a weights file, or a training checkpoint (``.pt``: its EMA)."""
    from ..models import resolve

    if source.endswith(".pt"):
        if not Path(source).exists():
            raise UsageError(f"{source}: no such checkpoint to initialise from")
        state = torch.load(source, map_location="cpu", weights_only=True)["ema"]
    else:
        state, meta = load_weights(resolve(source))
    copied, grown = copy_matching(net, state, frames=frames)
    extra = f"; {grown} new residual blocks start as the identity" if grown else ""
    return f"initialised {copied}/{len(net.state_dict())} tensors from {source}{extra}"


def copy_matching(net: torch.nn.Module, state: dict, *, frames: str = "middle") -> tuple[int, int]:
    """Copy into ``net`` every tensor of ``state`` whose name and shape match; the residual blocks
    ``state`` lacks (``net`` is deeper) start as the identity. A one-frame ``state`` into a
    multi-frame ``net``: ``frames='middle'`` gives its head weights to the middle frame and zero to
    the neighbours (exactly the source on any input); ``'spread'`` shares them equally among the
    frames (exactly the source on a still, the frames' average where they differ), a start that
    uses the neighbours from step 0. Returns (tensors copied, blocks grown)."""
    own = net.state_dict()
    hits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    nf = getattr(net, "frames", 1)
    head = state.get("head.0.weight")
    if nf > 1 and head is not None and "head.0.weight" not in hits \
            and own["head.0.weight"].shape == (head.shape[0], head.shape[1] * nf, *head.shape[2:]):
        # a single-frame network into a multi-frame one: its head on the middle frame or shared
        c = head.shape[1]
        if frames == "spread":
            w = head.repeat(1, nf, 1, 1) / nf
        else:
            w = torch.zeros_like(own["head.0.weight"])
            w[:, c * (nf // 2):c * (nf // 2 + 1)] = head
        hits["head.0.weight"] = w
    own.update(hits)
    net.load_state_dict(own)
    return len(hits), _grown_blocks_as_identity(net, hits)


@torch.no_grad()
def _grown_blocks_as_identity(net: torch.nn.Module, loaded: dict) -> int:
    """A deeper generator started from a shallower one: the residual blocks the source did not
    have get a zero last batch-norm scale and shift, so each adds nothing at first and the grown
    network computes exactly what the source did (its training starts from there, not from noise).
    Returns how many blocks were so set."""
    from ..archs.generator import ResidualBlock

    body = getattr(net, "body", None)
    if not isinstance(body, torch.nn.Sequential) or not any(k.startswith("body.") for k in loaded):
        return 0
    grown = 0
    for i, block in enumerate(body):
        if isinstance(block, ResidualBlock) and f"body.{i}.body.0.weight" not in loaded:
            block.body[-1].weight.zero_()
            block.body[-1].bias.zero_()
            grown += 1
    return grown


def _source_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _data_meta(cfg: TrainConfig, ds) -> dict:
    """The weights' metadata on the training data: the image folders, how many images, the
    degradations; for a bank, those it was made from and with, and the bank itself."""
    from .bank import BankDataset

    if not isinstance(ds, BankDataset):
        return {"data": [str(Path(p)) for p in cfg.train_dirs], "images": len(ds.files),
                "degradations": cfg.degrade or "none (clean PIL bicubic LR)"}
    info = ds.info
    try:
        images = len(find_training_images(list(info["data"])))
    except ValueError:  # InputError: the folders the pairs were cut from are not here
        images = None
    return {"data": list(info["data"]), "images": images, "degradations": info["degrade"],
            "bank": {"path": str(cfg.train_dirs[0]), **{k: info[k] for k in ("count", "recipe", "seed")}}}


def _hardware(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        return f"{world}x {torch.cuda.get_device_name(device)}"
    from ..runtime.cpu import cpu_model

    return f"{world}x CPU {cpu_model()} ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def validate_net(net: torch.nn.Module, cfg: TrainConfig, pairs, *, ssim: bool = True):
    """The protocol's PSNR/SSIM of ``net`` on preloaded (name, hr, lr) pairs."""
    from ..evaluate import evaluate
    from ..models import Model
    from ..runtime.torch_backend import TorchBackend
    from ..upscale import upscale_array

    device = next(net.parameters()).device
    model = Model(name=cfg.name, path=Path("."), meta={"scale": cfg.scale, "colour": cfg.colour,
                                                       "context": receptive_context(cfg.arch, cfg.hparams)}, net=net)
    backend = TorchBackend(net, device=device.type)
    return evaluate(pairs, lambda lr: upscale_array(model, backend, lr, tile=512), cfg.scale, cfg.name, with_ssim=ssim)


def train(cfg: TrainConfig, *, out_dir: str | Path, resume: str | None = None,
          weights_out: str | Path | None = None, progress: bool = True, log=print,
          stop_after: int | None = None) -> Path | None:
    """Run a training job; returns the weights file written (rank 0) or None.

    ``stop_after``: train at most this many steps in this run, checkpoint, and return None
    (for time-limited jobs; ``resume`` continues exactly where it stopped).
    """
    from ..evaluate import load_pairs

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda asked, but torch sees no CUDA device")
    device = torch.device(f"cuda:{local_rank}" if want_cuda else "cpu")
    if world > 1:
        dist.init_process_group(backend="nccl" if want_cuda else "gloo")
    if want_cuda:
        torch.cuda.set_device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    main = rank == 0
    out_dir = Path(out_dir)
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed + rank)

    # networks, optimisers, schedules
    g = build(cfg.arch, **cfg.hparams).to(device)
    ema = EMA(g, cfg.ema_decay)
    if cfg.freeze_bn if cfg.freeze_bn is not None else cfg.stage == "gan":
        # the generator's batch norm normalises with its running statistics, as at inference: in
        # train mode (batch statistics) adversarial fine-tuning learned outputs that held in
        # training but fell 4 dB, under bicubic, once run on the running statistics (docs/gan.md)
        for m in g.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.lr, betas=cfg.betas)
    sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, lambda s: lr_factor(cfg, s))
    gan = cfg.stage == "gan"
    in_ch = 1 if cfg.colour == "y" else 3
    d = opt_d = sched_d = None
    if gan:
        d = build("srgan_discriminator", in_channels=in_ch, **cfg.d_hparams).to(device)
        opt_d = torch.optim.Adam(d.parameters(), lr=cfg.d_lr, betas=cfg.betas)
        sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, lambda s: lr_factor(cfg, s))
    vgg = VGGLoss(cfg.vgg_weights).to(device) if (gan and cfg.vgg_weights) else None

    # resume: model, EMA, optimisers, schedulers, step, RNG
    start = 0
    elapsed_before = 0.0  # training wall time of earlier runs of this job
    resumed_compute = None
    ckpt_path = out_dir / "last.pt"
    if resume:
        src = ckpt_path if resume == "auto" else Path(resume)
        if not src.exists():
            if resume != "auto":
                raise UsageError(f"{src}: no checkpoint to resume from")
        else:
            ck = torch.load(src, map_location=device, weights_only=True)
            if ck["arch"] != cfg.arch or ck["hparams"] != cfg.hparams or ck["stage"] != cfg.stage:
                raise UsageError(f"{src}: checkpoint is a {ck['stage']} {ck['arch']} run, not this recipe")
            g.load_state_dict(ck["g"])
            ema.module.load_state_dict(ck["ema"])
            opt_g.load_state_dict(ck["opt_g"])
            sched_g.load_state_dict(ck["sched_g"])
            if gan:
                d.load_state_dict(ck["d"])
                opt_d.load_state_dict(ck["opt_d"])
                sched_d.load_state_dict(ck["sched_d"])
            torch.set_rng_state(ck["rng_cpu"].cpu())
            start = int(ck["step"])
            elapsed_before = float(ck.get("elapsed_s", 0.0))
            resumed_compute = ck.get("compute")
            log(f"resumed from {src} at step {start}")
    if cfg.init_from and start == 0:  # a fresh run (nothing to resume): start from the named weights
        log(_init_from(g, cfg.init_from, frames=cfg.init_frames))
        ema.module.load_state_dict(g.state_dict())
    if start >= cfg.steps:
        log(f"already at step {start} of {cfg.steps}")

    # compute precision and layout: resumed runs keep what they started with
    if resumed_compute and cfg.precision == "auto":
        comp = compute_mod.Compute(**resumed_compute)
    else:
        in_ch_g = cfg.hparams.get("in_channels", 1)
        probe = torch.Generator().manual_seed(0)  # the probe batch leaves the training RNG alone
        sample = (torch.rand(cfg.batch, in_ch_g, cfg.lr_patch, cfg.lr_patch, generator=probe).to(device),
                  torch.rand(cfg.batch, in_ch_g, cfg.lr_patch * cfg.scale, cfg.lr_patch * cfg.scale,
                             generator=probe).to(device))
        comp = compute_mod.resolve(cfg.precision, device, g, sample, channels_last=cfg.channels_last, log=log)
    log(f"compute: {comp.describe()}")
    if comp.channels_last:
        g.to(memory_format=torch.channels_last)
        ema.module.to(memory_format=torch.channels_last)
        if gan:
            d.to(memory_format=torch.channels_last)

    g_train = DDP(g, device_ids=[device.index] if want_cuda else None) if world > 1 else g
    d_train = (DDP(d, device_ids=[device.index] if want_cuda else None) if world > 1 else d) if gan else None

    # data
    from . import bank
    from .degrade import config_from

    net_frames = int(cfg.hparams.get("frames", 1))
    if len(cfg.train_dirs) == 1 and bank.is_bank(cfg.train_dirs[0]):
        ds = bank.BankDataset(cfg.train_dirs[0], seed=cfg.seed, rank=rank, frames=net_frames)
        if (ds.info["scale"], ds.info["lr_patch"]) != (cfg.scale, cfg.lr_patch) or cfg.colour != "y":
            raise UsageError(f"{cfg.train_dirs[0]}: a bank of x{ds.info['scale']} {ds.info['lr_patch']}px luma "
                             f"pairs, but the recipe is x{cfg.scale} {cfg.lr_patch}px {cfg.colour}")
        log(f"data: bank {cfg.train_dirs[0]} ({ds.info['count']} pairs made by {ds.info['recipe']}, "
            "the degradations of its bank.json)")
    else:
        frames = bank.sample_frames(cfg.degrade)
        if frames != net_frames:
            raise UsageError(f"the [degrade] table gives {frames}-frame samples, but the network takes "
                             f"{net_frames} (hparams.frames)")
        files = find_training_images(list(cfg.train_dirs))
        ds = PatchDataset(files, scale=cfg.scale, lr_patch=cfg.lr_patch, colour=cfg.colour,
                          scale_aug=tuple(cfg.scale_aug), seed=cfg.seed, rank=rank,
                          degrade=config_from(cfg.degrade))
    loader = torch.utils.data.DataLoader(
        ds, batch_size=cfg.batch, sampler=StepSampler(start, cfg.steps, cfg.batch),
        num_workers=cfg.workers, drop_last=True, pin_memory=want_cuda,
        persistent_workers=False, prefetch_factor=4 if cfg.workers else None,
    )
    val_dir = cfg.val_dir or find_validation_dir(list(cfg.train_dirs))
    val_pairs = load_pairs(val_dir, cfg.scale) if (main and val_dir) else None

    autocast = comp.autocast
    scaler = comp.scaler()
    d_view = (lambda x: high_band(x, cfg.fs_sigma)) if cfg.fs_sigma else (lambda x: x)
    pix = pixel_loss(cfg.loss)

    log_path = out_dir / "log.csv"
    log_file = writer = None
    if main:
        new = not log_path.exists() or start == 0
        log_file = open(log_path, "w" if new else "a", newline="")
        writer = csv.writer(log_file)
        if new:
            writer.writerow(["step", "loss_g", "loss_d", "lr", "it_s", "val_psnr", "val_ssim"])

    def save_checkpoint(step: int) -> None:
        state = {"arch": cfg.arch, "hparams": cfg.hparams, "stage": cfg.stage, "step": step,
                 "g": g.state_dict(), "ema": ema.module.state_dict(), "opt_g": opt_g.state_dict(),
                 "sched_g": sched_g.state_dict(), "rng_cpu": torch.get_rng_state(), "config": asdict(cfg),
                 "elapsed_s": elapsed_before + time.perf_counter() - t0,
                 "compute": {"device": comp.device, "precision": comp.precision,
                             "channels_last": comp.channels_last, "reason": comp.reason}}
        if gan:
            state.update(d=d.state_dict(), opt_d=opt_d.state_dict(), sched_d=sched_d.state_dict())
        tmp = ckpt_path.with_suffix(".pt.part")
        torch.save(state, tmp)
        os.replace(tmp, ckpt_path)

    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=start, disable=not (main and progress), dynamic_ncols=True,
               unit="it", file=sys.stderr)
    t0 = time.perf_counter()
    t_last, step_last = t0, start
    run_loss_g = run_loss_d = 0.0
    n_run = 0
    step = start
    for step, (lr_b, hr_b) in enumerate(loader, start):
        lr_b = comp.layout(lr_b.to(device, non_blocking=True))
        hr_b = comp.layout(hr_b.to(device, non_blocking=True))
        loss_d_val = 0.0
        d_only = gan and step < cfg.d_warmup_steps  # the discriminator learns alone; the generator waits
        if gan:
            hr_d = d_view(hr_b)  # what the discriminator sees of the real batch, in both steps
            # discriminator step, generator frozen
            g.requires_grad_(False)
            d.requires_grad_(True)
            with torch.no_grad(), autocast():
                fake = g(lr_b)
            with autocast():
                loss_d = discriminator_loss(cfg.gan_loss, d_train(hr_d), d_train(d_view(fake.detach())))
            optimizer_step(opt_d, loss_d, d.parameters(), scaler, cfg.grad_clip)
            sched_d.step()
            loss_d_val = loss_d.item()  # sync point (logging)
            # generator step, discriminator frozen (called unwrapped: it does not learn here)
            d.requires_grad_(False)
            g.requires_grad_(True)
        if not d_only:
            with autocast():
                sr = g_train(lr_b).float()
                loss_g = cfg.content_weight * pix(sr, hr_b) if gan else pix(sr, hr_b)
                if gan:
                    if cfg.lowpass_weight:
                        loss_g = loss_g + cfg.lowpass_weight * pix(gaussian_blur(sr, cfg.fs_sigma),
                                                                   gaussian_blur(hr_b, cfg.fs_sigma))
                    real_logit, real_feats = d(hr_d, return_features=True)
                    fake_logit, fake_feats = d(d_view(sr), return_features=True)
                    loss_g = loss_g + cfg.adv_weight * generator_adv_loss(cfg.gan_loss, real_logit, fake_logit)
                    loss_g = loss_g + cfg.fm_weight * feature_matching(real_feats, fake_feats)
                    if vgg is not None:
                        loss_g = loss_g + cfg.vgg_weight * vgg(sr.float(), hr_b)
                    if cfg.ldl_weight:  # artifacts: where the EMA generator does better than this one
                        with torch.no_grad():
                            ema_sr = ema.module(lr_b).float()
                        loss_g = loss_g + cfg.ldl_weight * ldl_loss(sr, ema_sr, hr_b)
            optimizer_step(opt_g, loss_g, g.parameters(), scaler, cfg.grad_clip)
        scaler.update()
        if not d_only:
            sched_g.step()
            ema.update(g)
            run_loss_g += loss_g.item()  # sync point (logging)

        run_loss_d += loss_d_val
        n_run += 1
        done = step + 1
        if main and progress:
            bar.update(1)
            if done % 10 == 0:
                bar.set_postfix_str(("" if d_only else f"loss {run_loss_g / n_run:.4f}")
                                    + (f" d {run_loss_d / n_run:.3f}" if gan else ""))
        last = done == cfg.steps
        val_row = ("", "")
        if main and val_pairs is not None and not d_only and (done % cfg.val_every == 0 or last):
            res = validate_net(ema.module, cfg, val_pairs)
            val_row = (f"{res.psnr:.4f}", f"{res.ssim:.5f}")
            bar.write(f"step {done}: validation {Path(val_dir).name} PSNR {res.psnr:.3f} dB SSIM {res.ssim:.4f}")
        if main and (done % 50 == 0 or last or val_row[0] or done == cfg.d_warmup_steps):
            now = time.perf_counter()
            its = (done - step_last) / max(now - t_last, 1e-9)
            t_last, step_last = now, done
            # rows of the discriminator's warm-up: no generator loss, generator learning rate 0
            g_loss, g_lr = ("", "0") if d_only else (f"{run_loss_g / n_run:.6f}", f"{sched_g.get_last_lr()[0]:.3e}")
            writer.writerow([done, g_loss, f"{run_loss_d / n_run:.6f}" if gan else "", g_lr, f"{its:.3f}", *val_row])
            log_file.flush()
            run_loss_g = run_loss_d = 0.0
            n_run = 0
        stopping = stop_after is not None and done - start >= stop_after and not last
        if main and (done % cfg.ckpt_every == 0 or last or stopping):
            save_checkpoint(done)
        if stopping:
            break
    bar.close()
    elapsed = time.perf_counter() - t0
    if log_file:
        log_file.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    if not main or step + 1 < cfg.steps:
        if main and step + 1 < cfg.steps:
            log(f"stopped at step {step + 1} of {cfg.steps}; continue with --resume")
        return None

    # final weights: EMA generator, with metrics measured by the protocol
    meta_path = Path(weights_out) if weights_out else out_dir / f"{cfg.name}.safetensors"
    metrics = {}
    for ed in cfg.eval_dirs:
        res = validate_net(ema.module, cfg, load_pairs(ed, cfg.scale))
        metrics[Path(ed).name] = {"psnr": round(res.psnr, 4), "ssim": round(res.ssim, 5)}
        log(f"{cfg.name} on {Path(ed).name}: PSNR {res.psnr:.3f} dB, SSIM {res.ssim:.4f}")
    meta = {
        "name": cfg.name.replace("_", "-"),
        "arch": cfg.arch, "hparams": cfg.hparams, "scale": cfg.scale, "colour": cfg.colour,
        "stage": cfg.stage, "context": receptive_context(cfg.arch, cfg.hparams),
        "params": sum(p.numel() for p in g.parameters()),
        "training": {
            **_data_meta(cfg, ds),
            "steps": cfg.steps, "batch": cfg.batch * world, "lr_patch": cfg.lr_patch,
            "world_size": world, "hardware": _hardware(device, world),
            "time_s": round(elapsed_before + elapsed, 3),
            "torch": torch.__version__, "init_from": cfg.init_from,
            **({"init_frames": cfg.init_frames} if net_frames > 1 else {}),
            "compute": comp.describe(),
        },
        "recipe": cfg.recipe_text,
        "source_commit": _source_commit(),
        "metrics": metrics,
    }
    path = save_weights(meta_path, ema.module.state_dict(), meta)
    log(f"wrote {path}")
    return path
