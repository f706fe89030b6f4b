"""`spikeport train`: BPTT training of a zoo model (optionally distilled from a teacher).

Options come from (highest first) the command line, a ``--config`` recipe
(:mod:`spikeport.training.recipe`) and the defaults in :data:`DEFAULTS`. Under
``torchrun --nproc_per_node N -m spikeport.cli train ...`` it trains with DDP
(:mod:`spikeport.training.distributed`); only rank 0 writes and prints.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from spikeport.commands._common import parse_kv

DEFAULTS: dict[str, Any] = {
    "dataset": "digits", "data_dir": None, "timesteps": 4, "epochs": 30, "batch_size": 64, "lr": 5e-3,
    "weight_decay": 1e-2, "optimizer": "adamw", "momentum": 0.9, "encoder": "direct", "loss": None, "kd": None,
    "teacher": None, "ann": False, "seed": 0, "amp": True, "device": "cpu",
}


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a zoo model", description="Train a zoo model with BPTT and surrogate "
                       "gradients; saves a spikeport checkpoint. Run under `torchrun --nproc_per_node N -m "
                       "spikeport.cli train ...` for data-parallel training.")
    p.add_argument("model", metavar="MODEL", nargs="?", help="zoo model name (see `spikeport zoo`); optional with "
                   "--config")
    p.add_argument("--config", metavar="FILE.toml", help="training recipe (see configs/); flags override it")
    p.add_argument("--dataset", help="digits (embedded, default), cifar10, cifar100, cifar10dvs, dvs128gesture")
    p.add_argument("--data-dir", help="folder with the dataset's files (not needed for digits)")
    p.add_argument("--timesteps", "-T", type=int, help="simulation timesteps T (default 4)")
    p.add_argument("--epochs", type=int, help="default 30")
    p.add_argument("--batch-size", type=int, help="per process (default 64)")
    p.add_argument("--lr", type=float, help="peak learning rate (default 5e-3)")
    p.add_argument("--weight-decay", type=float, help="default 1e-2")
    p.add_argument("--optimizer", help="adamw (default) or sgd")
    p.add_argument("--momentum", type=float, help="SGD momentum (default 0.9)")
    p.add_argument("--encoder", help="direct (default), rate or latency (static datasets)")
    p.add_argument("--loss", help="ce (default), tet, or a distillation loss (kl, hta_kl, tser)")
    p.add_argument("--loss-arg", action="append", metavar="KEY=VALUE", help="loss option, e.g. tau=4")
    p.add_argument("--kd", help="distillation loss (kl, hta_kl, tser); needs --teacher")
    p.add_argument("--teacher", help="teacher checkpoint (e.g. one trained with --ann)")
    p.add_argument("--ann", action="store_true", default=None, help="train the ANN of the same shape (ReLU, T=1)")
    p.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="model option, e.g. neuron=plif")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--no-amp", dest="amp", action="store_false", default=None, help="disable autocast on cuda")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--device", help="cpu (default) or cuda")
    p.set_defaults(func=run)


def resolve_options(args: argparse.Namespace) -> dict[str, Any]:
    """Merge command line > ``--config`` recipe > :data:`DEFAULTS` into one dict.

    The result also holds ``model``, ``model_options`` and ``loss_options``. A recipe's
    ``model_options.timesteps`` (models built for one T) follows ``-T`` unless
    ``--model-arg timesteps=N`` is given too.
    """
    from spikeport.errors import ConfigError
    from spikeport.training.recipe import load_recipe

    recipe = load_recipe(args.config).train if args.config else {}
    opts: dict[str, Any] = {**DEFAULTS, **{k: v for k, v in recipe.items() if k in DEFAULTS}}
    for key in DEFAULTS:
        value = getattr(args, key, None)
        if value is not None:
            opts[key] = value
    opts["model"] = args.model or recipe.get("model")
    if not opts["model"]:
        raise ConfigError("no model given: pass MODEL or a --config recipe with [train] model = \"...\"")
    model_args = parse_kv(args.model_arg)
    opts["model_options"] = {**recipe.get("model_options", {}), **model_args}
    # models built for a fixed T (STAA, FSTA) take `timesteps`: keep it in step with -T
    if "timesteps" in opts["model_options"] and "timesteps" not in model_args and args.timesteps is not None:
        opts["model_options"]["timesteps"] = args.timesteps
    opts["loss_options"] = {**recipe.get("loss_options", {}), **parse_kv(args.loss_arg, "--loss-arg")}
    return opts


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from spikeport._io import check_overwrite, ensure_writable_dir
    from spikeport.errors import ConfigError
    from spikeport.training import TrainConfig
    from spikeport.training.distributed import distributed_session, is_main_process
    from spikeport.training.losses import needs_teacher
    from spikeport.training.session import fit_zoo_model

    o = resolve_options(args)
    out = Path(args.out)
    check_overwrite(out, args.force)
    ensure_writable_dir(out.parent if str(out.parent) else ".")
    if o["kd"] and o["loss"] and o["kd"] != o["loss"]:
        raise ConfigError(f"--kd {o['kd']} conflicts with --loss {o['loss']}; give one")
    loss = o["kd"] or o["loss"] or "ce"
    is_kd = needs_teacher(loss)  # validates the name early (close matches listed)
    if o["kd"] and not is_kd:
        raise ConfigError(f"--kd {o['kd']} is not a distillation loss; use --loss {o['kd']} or one of "
                          "kl, hta_kl, tser")
    if is_kd and not o["teacher"]:
        raise ConfigError(f"loss '{loss}' needs --teacher CKPT (train one with --ann)")
    from spikeport._memory import check_train_memory  # refuse a T x batch that cannot fit, before any data loads
    check_train_memory(o["model"], o["model_options"], timesteps=o["timesteps"], batch_size=o["batch_size"],
                       ann=bool(o["ann"]), device=o["device"])
    with distributed_session(o["device"]) as dist_info:
        device = dist_info.device if dist_info is not None else o["device"]
        cfg = TrainConfig(epochs=o["epochs"], timesteps=o["timesteps"], batch_size=o["batch_size"], lr=o["lr"],
                          weight_decay=o["weight_decay"], optimizer=o["optimizer"], momentum=o["momentum"],
                          encoder=o["encoder"], loss=loss, loss_options=o["loss_options"], seed=o["seed"],
                          device=device, amp=o["amp"], progress=not args.no_progress)
        tm = fit_zoo_model(o["model"], dataset=o["dataset"], data_dir=o["data_dir"], cfg=cfg,
                           model_kwargs=o["model_options"], ann=bool(o["ann"]), teacher=o["teacher"], out=out)
        if is_main_process():
            world = dist_info.world_size if dist_info is not None else 1
            print(json.dumps({"checkpoint": str(tm.path), "model": o["model"], "timesteps": tm.info.timesteps,
                              "world_size": world, **{k: round(v, 6) for k, v in tm.result.metrics.items()}}))
    return 0
