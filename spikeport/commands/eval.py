"""`spikeport eval`: accuracy of a checkpoint on its dataset's test split."""

from __future__ import annotations

import argparse
import json

from spikeport.commands._common import add_device_arg


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint", description="Test accuracy of a checkpoint.")
    p.add_argument("checkpoint", metavar="CKPT", help="spikeport checkpoint (.pt)")
    p.add_argument("--dataset", help="dataset (default: the one it was trained on)")
    p.add_argument("--data-dir")
    p.add_argument("--timesteps", "-T", type=int, help="override T (default: the checkpoint's)")
    p.add_argument("--batch-size", type=int, default=256)
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate; refuses up front a T x batch whose activations cannot fit in memory."""
    from spikeport._memory import check_data_memory
    from spikeport.checkpoint import load_checkpoint
    from spikeport.data import get_dataset
    from spikeport.errors import ConfigError, DataError
    from spikeport.models.encoders import check_timesteps
    from spikeport.training import evaluate

    if args.batch_size <= 0:
        raise ConfigError(f"--batch-size must be positive, got {args.batch_size}")
    model, info = load_checkpoint(args.checkpoint)
    name = args.dataset or info.dataset
    if not name:
        raise DataError(f"{args.checkpoint}: no dataset recorded; pass --dataset")
    split = get_dataset(name, train=False, data_dir=args.data_dir)
    if tuple(split.input_shape) != tuple(info.input_shape):
        raise DataError(f"{args.checkpoint}: model expects input {tuple(info.input_shape)} but dataset '{name}' "
                        f"gives {tuple(split.input_shape)}")
    t = check_timesteps(args.timesteps if args.timesteps is not None else info.timesteps)
    enc = "direct" if info.encoder == "none" else info.encoder
    check_data_memory(model, split, timesteps=t, batch_size=args.batch_size, temporal=split.temporal,
                      input_shape=tuple(info.input_shape), what=str(args.checkpoint), device=args.device)
    m = evaluate(model, split, timesteps=t, encoder=enc, device=args.device, batch_size=args.batch_size)
    print(json.dumps({"checkpoint": args.checkpoint, "dataset": name, "timesteps": t, "accuracy": round(m["acc"], 6),
                      "loss": round(m["loss"], 6), "samples": int(m["n"])}))
    return 0
