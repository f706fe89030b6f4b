"""`spikeport eval`: accuracy of a model on a dataset's test split."""

from __future__ import annotations

import argparse
import json

from spikeport.commands._common import add_device_arg, add_model_args, load_cli_model

DEFAULT_TIMESTEPS = 4


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a model on a test split",
                       description="Test accuracy of MODEL (a checkpoint, or file.py:factory --weights W.pt, any "
                                   "framework; --time-layout says how it takes time) on a dataset's test split.")
    add_model_args(p)
    p.add_argument("--dataset", help="dataset (default: the one a checkpoint was trained on)")
    p.add_argument("--data-dir")
    p.add_argument("--timesteps", "-T", type=int,
                   help=f"override T (default: the checkpoint's, else {DEFAULT_TIMESTEPS})")
    p.add_argument("--encoder", help="direct, rate or latency (default: the checkpoint's, else direct)")
    p.add_argument("--batch-size", type=int, default=256)
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate; refuses up front a T x batch whose activations cannot fit in memory."""
    from spikeport._memory import check_data_memory
    from spikeport.data import get_dataset
    from spikeport.errors import ConfigError, DataError
    from spikeport.models.encoders import check_timesteps
    from spikeport.training import evaluate

    if args.batch_size <= 0:
        raise ConfigError(f"--batch-size must be positive, got {args.batch_size}")
    loaded = load_cli_model(args)
    name = args.dataset or loaded.dataset
    if not name:
        raise DataError(f"{args.model}: no dataset recorded; pass --dataset")
    split = get_dataset(name, train=False, data_dir=args.data_dir)
    shape = tuple(args.input_shape) if args.input_shape else loaded.input_shape
    if shape is not None and tuple(split.input_shape) != tuple(shape):
        raise DataError(f"{args.model}: model expects input {tuple(shape)} but dataset '{name}' "
                        f"gives {tuple(split.input_shape)}")
    t_given = args.timesteps if args.timesteps is not None else loaded.timesteps
    t = check_timesteps(t_given if t_given is not None else DEFAULT_TIMESTEPS)
    enc = args.encoder or ("direct" if loaded.encoder in ("none", "") else loaded.encoder)
    check_data_memory(loaded.model, split, timesteps=t, batch_size=args.batch_size, temporal=split.temporal,
                      input_shape=tuple(split.input_shape), what=str(args.model), device=args.device)
    m = evaluate(loaded.model, split, timesteps=t, encoder=enc, device=args.device, batch_size=args.batch_size)
    print(json.dumps({"model": args.model, "dataset": name, "timesteps": t, "accuracy": round(m["acc"], 6),
                      "loss": round(m["loss"], 6), "samples": int(m["n"])}))
    return 0
