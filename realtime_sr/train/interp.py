"""Network interpolation (ESRGAN's): the weights ``alpha * b + (1 - alpha) * a`` of two networks of
one architecture where ``b`` was fine-tuned from ``a``, so that they share a basin.

The shipped ``fine-x*-real`` models are such blends of the clean fine model and its fine-tuning on
real-world degradations: the blend keeps most of the gain on compressed input and gives back most
of what the fine-tuning cost on clean input (docs/real.md has the measured trade-off).

    python -m realtime_sr.train.interp A.safetensors B.safetensors --alpha 0.6 --out C.safetensors \
        [--eval ../shared/data/images/Set5 --eval ../shared/data/images/Set14]

The result's metadata is B's, with ``training.interpolation`` saying what was blended and the
``metrics`` measured again on the ``--eval`` folders by the literature's protocol.

When ``b`` is a deeper network grown from ``a`` (``init_from`` a generator with fewer residual blocks),
``a`` is taken as ``b``'s training started from it: the same tensors, and the blocks ``a`` lacks as
the identity, so the blend runs at ``b``'s depth. Likewise a multi-frame ``b`` grown from a one-frame
``a``: ``a``'s head is set out over the frames as ``b``'s training did (its ``init_frames``).

When ``a`` has itself been trained further since ``b`` was fine-tuned from it, ``--base`` names the
network ``b`` started from and the blend carries ``b``'s change onto the newer ``a``:
``a + alpha * (b - base)`` (a task vector, as in model-merging work); this is how a real-world
model follows a clean one that kept training, without fine-tuning it again.

    python -m realtime_sr.train.interp NEW_A.safetensors B.safetensors --base OLD_A.safetensors \
        --alpha 0.45 --out C.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import RealtimeSRError, UsageError


def _same_architecture(x, mx, sx, y, my, sy) -> None:
    if (mx["arch"], mx["hparams"]) != (my["arch"], my["hparams"]) or sx.keys() != sy.keys():
        raise UsageError(f"{x} and {y} are not the same architecture")


def _grown(sa: dict, ma: dict, mb: dict) -> tuple[dict, dict, str]:
    """``a`` as the deeper (or multi-frame) network ``b`` grew from it (``realtime-sr train`` with
    init_from a shallower or one-frame generator): ``b``'s architecture, ``a``'s tensors, the blocks
    ``a`` lacks as the identity and its head over ``b``'s frames as ``b``'s ``init_frames`` set it,
    which is what ``b``'s training started from; and a line saying how ``a`` was grown.
    Anything else is returned unchanged (and an empty line)."""
    ha, hb = ma.get("hparams", {}), mb.get("hparams", {})
    others = lambda h: {k: v for k, v in h.items() if k not in ("num_blocks", "frames")}  # noqa: E731
    fa, fb = ha.get("frames", 1), hb.get("frames", 1)
    if (ma.get("arch") != mb.get("arch") or "num_blocks" not in ha or "num_blocks" not in hb
            or ha["num_blocks"] > hb["num_blocks"] or fa > fb or (ha["num_blocks"], fa) == (hb["num_blocks"], fb)
            or others(ha) != others(hb)):
        return sa, ma, ""
    from ..archs import build
    from .loop import copy_matching

    net = build(mb["arch"], **hb)
    spread = mb.get("training", {}).get("init_frames", "middle")  # as b's training started
    copied, added = copy_matching(net, sa, frames=spread)
    if copied != len(sa):
        return sa, ma, ""
    how = []
    if added:
        how.append(f"{ha['num_blocks']} residual blocks, the {added} more of b's as the identity")
    if fb > fa:
        how.append(f"one frame in, b's {fb - 1} neighbour frames at zero weight" if spread == "middle"
                   else f"one frame in, its head shared equally among b's {fb} frames")
    return net.state_dict(), {**ma, "hparams": dict(hb)}, "; ".join(how)


def interpolate(a: str | Path, b: str | Path, alpha: float, out: str | Path, *, base=None, eval_dirs=(),
                name: str | None = None, log=print) -> Path:
    from ..checkpoints import build_network, load_weights, save_weights

    if not 0.0 <= alpha <= 1.0:
        raise UsageError(f"--alpha must be in [0, 1], not {alpha}")
    sa, ma = load_weights(a)
    sb, mb = load_weights(b)
    sa, ma, grown = _grown(sa, ma, mb)  # a shallower (or one-frame) a that b grew from, at b's architecture
    _same_architecture(a, ma, sa, b, mb, sb)
    if base is None:  # alpha * b + (1 - alpha) * a is a + alpha * (b - a)
        s0, m0 = sa, ma
        rule = "alpha * b + (1 - alpha) * a, every float tensor (batch-norm statistics too)"
    else:
        s0, m0 = load_weights(base)
        _same_architecture(base, m0, s0, b, mb, sb)
        rule = "a + alpha * (b - base), every float tensor (batch-norm statistics too)"
    state = {k: (sa[k].double() + alpha * (sb[k].double() - s0[k].double())).to(sb[k].dtype)
             if sb[k].is_floating_point() else sb[k] for k in sb}
    meta = dict(mb)
    record = {"alpha": alpha, "a": {"file": Path(a).name, "name": ma.get("name")},
              "b": {"file": Path(b).name, "name": mb.get("name")}, "rule": rule}
    if grown:
        record["a"]["grown"] = grown
    if base is not None:
        record["base"] = {"file": Path(base).name, "name": m0.get("name")}
    meta["training"] = {**mb["training"], "interpolation": record}
    if name:
        meta["name"] = name
    path = save_weights(out, state, meta)
    if eval_dirs:
        from ..evaluate import evaluate, load_pairs
        from ..models import Model
        from ..archs.fuse import fuse_batchnorm
        from ..runtime.torch_backend import TorchBackend
        from ..upscale import upscale_array

        net, meta2 = build_network(path)
        net.eval()
        fuse_batchnorm(net)
        model = Model(name=meta.get("name", Path(out).stem), path=Path(out), meta=meta2, net=net)
        backend = TorchBackend(net)
        metrics = {}
        for d in eval_dirs:
            res = evaluate(load_pairs(d, meta["scale"]), lambda lr: upscale_array(model, backend, lr, tile=512),
                           meta["scale"], model.name)
            metrics[Path(d).name] = {"psnr": round(res.psnr, 4), "ssim": round(res.ssim, 5)}
            log(f"{model.name} on {Path(d).name}: PSNR {res.psnr:.3f} dB, SSIM {res.ssim:.4f}")
        meta["metrics"] = metrics
        path = save_weights(out, state, meta)
    log(f"wrote {path}")
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m realtime_sr.train.interp", description=__doc__.split("\n\n")[0])
    ap.add_argument("a", help="the network fine-tuned from (weights file)")
    ap.add_argument("b", help="its fine-tuned version (weights file)")
    ap.add_argument("--alpha", type=float, required=True, help="share of b (0: a, 1: b)")
    ap.add_argument("--base", help="the network b was fine-tuned from, when a has trained further since: "
                                   "the result is a + alpha * (b - base)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", help="the result's model name (default: b's)")
    ap.add_argument("--eval", action="append", default=[], help="folder to measure the result on (repeatable)")
    a = ap.parse_args(argv)
    try:
        interpolate(a.a, a.b, a.alpha, a.out, base=a.base, eval_dirs=a.eval, name=a.name, log=lambda m: print(m, file=sys.stderr))
    except RealtimeSRError as exc:
        print(f"realtime-sr: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
