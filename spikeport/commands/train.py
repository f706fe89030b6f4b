"""`spikeport train`: BPTT training of a zoo model (optionally distilled from a teacher)."""

from __future__ import annotations

import argparse
import json

from spikeport.commands._common import add_device_arg, parse_kv


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a zoo model", description="Train a zoo model with BPTT and surrogate "
                       "gradients; saves a spikeport checkpoint.")
    p.add_argument("model", metavar="MODEL", help="zoo model name (see `spikeport zoo`)")
    p.add_argument("--dataset", default="digits", help="digits (embedded), cifar10, cifar100, cifar10dvs, dvs128gesture")
    p.add_argument("--data-dir", help="folder with the dataset's files (not needed for digits)")
    p.add_argument("--timesteps", "-T", type=int, default=4, help="simulation timesteps T (default 4)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--encoder", default="direct", help="direct, rate or latency (static datasets)")
    p.add_argument("--loss", default=None, help="ce (default), tet, or a distillation loss (kl, hta_kl, tser)")
    p.add_argument("--loss-arg", action="append", metavar="KEY=VALUE", help="loss option, e.g. tau=4")
    p.add_argument("--kd", help="distillation loss (kl, hta_kl, tser); needs --teacher")
    p.add_argument("--teacher", help="teacher checkpoint (e.g. one trained with --ann)")
    p.add_argument("--ann", action="store_true", help="train the ANN of the same shape (ReLU, T=1)")
    p.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="model option, e.g. neuron=plif")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-amp", action="store_true", help="disable autocast on cuda")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from spikeport._io import check_overwrite, ensure_writable_dir
    from spikeport.errors import ConfigError
    from spikeport.training import TrainConfig
    from spikeport.training.session import fit_zoo_model

    out = Path(args.out)
    check_overwrite(out, args.force)
    ensure_writable_dir(out.parent if str(out.parent) else ".")
    if args.kd and args.loss and args.kd != args.loss:
        raise ConfigError(f"--kd {args.kd} conflicts with --loss {args.loss}; give one")
    loss = args.kd or args.loss or "ce"
    if args.kd and not args.teacher:
        raise ConfigError(f"--kd {args.kd} needs --teacher CKPT (train one with --ann)")
    cfg = TrainConfig(epochs=args.epochs, timesteps=args.timesteps, batch_size=args.batch_size, lr=args.lr,
                      weight_decay=args.weight_decay, encoder=args.encoder, loss=loss,
                      loss_options=parse_kv(args.loss_arg, "--loss-arg"), seed=args.seed, device=args.device,
                      amp=not args.no_amp, progress=not args.no_progress)
    tm = fit_zoo_model(args.model, dataset=args.dataset, data_dir=args.data_dir, cfg=cfg,
                       model_kwargs=parse_kv(args.model_arg), ann=args.ann, teacher=args.teacher, out=out)
    print(json.dumps({"checkpoint": str(tm.path), "model": args.model, "timesteps": tm.info.timesteps,
                      **{k: round(v, 6) for k, v in tm.result.metrics.items()}}))
    return 0
