"""`spikeport eval`: accuracy of a checkpoint on its dataset's test split."""

from __future__ import annotations

import argparse
import json

from spikeport.commands._common import add_device_arg, check_predictions_path, write_predictions


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint or an exported file",
                       description="Test accuracy of a checkpoint, or of an exported file (.onnx, .nir, .net) run "
                                   "in its own runtime as `spikeport run` runs it (direct encoding; a .net "
                                   "follows its runtime contract).")
    p.add_argument("checkpoint", metavar="CKPT", help="spikeport checkpoint (.pt) or exported file (.onnx, .nir, .net)")
    p.add_argument("--dataset", help="dataset (default: the one it was trained on; required for exported files)")
    p.add_argument("--backend", choices=("reference", "lava"), default="reference",
                   help="exported .net only: Loihi-exact reference (default) or Lava fixed_pt simulation")
    p.add_argument("--data-dir")
    p.add_argument("--timesteps", "-T", type=int, help="override T (default: the checkpoint's)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--samples", type=int, help="evaluate only the first N samples of the test split (in order)")
    p.add_argument("--predictions", metavar="OUT", help="write the per-sample predictions (argmax of the mean over "
                                                        "T of the logits) as .json (with labels) or .npy")
    p.add_argument("--force", action="store_true", help="overwrite --predictions if it exists")
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
    if args.samples is not None and args.samples <= 0:
        raise ConfigError(f"--samples must be positive, got {args.samples}")
    if args.predictions:
        check_predictions_path(args.predictions, args.force)
    from spikeport.targets.run import EXPORT_SUFFIXES

    if str(args.checkpoint).lower().endswith(EXPORT_SUFFIXES):
        return _eval_exported(args)
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
    m = evaluate(model, split, timesteps=t, encoder=enc, device=args.device, batch_size=args.batch_size,
                 samples=args.samples, keep_predictions=bool(args.predictions))
    doc = {"checkpoint": args.checkpoint, "dataset": name, "timesteps": t, "accuracy": round(m["acc"], 6),
           "loss": round(m["loss"], 6), "samples": int(m["n"])}
    print(json.dumps(doc))
    if args.predictions:
        write_predictions(args.predictions, m["predictions"], {**doc, "labels": m["labels"].tolist()})
    return 0


def _eval_exported(args: argparse.Namespace) -> int:
    """Accuracy of an exported file in its runtime (direct encoding, first --samples of the test split)."""
    import torch
    from torch.utils.data import DataLoader, Subset

    from spikeport.data import get_dataset
    from spikeport.errors import ConfigError, DataError
    from spikeport.models.encoders import check_timesteps
    from spikeport.runtime import to_sequence
    from spikeport.targets.run import ExportedModel

    if not args.dataset:
        raise ConfigError(f"{args.checkpoint}: an exported file records no dataset; pass --dataset")
    model = ExportedModel(args.checkpoint, backend=args.backend, device=args.device)
    split = get_dataset(args.dataset, train=False, data_dir=args.data_dir)
    if tuple(split.input_shape) != model.input_shape:
        raise DataError(f"{args.checkpoint}: export expects input {list(model.input_shape)} but dataset "
                        f"'{args.dataset}' gives {list(split.input_shape)}")
    t = args.timesteps if args.timesteps is not None else model.timesteps
    if t is None:
        raise ConfigError(f"{args.checkpoint}: the export does not record T; pass -T/--timesteps")
    t = check_timesteps(t, "--timesteps")
    data = split.dataset if args.samples is None else Subset(split.dataset, range(min(args.samples,
                                                                                        len(split.dataset))))
    preds, labels = [], []
    for x, y in DataLoader(data, batch_size=args.batch_size, shuffle=False):
        preds.append(model.predict(to_sequence(x, split.temporal, t, "direct", None), args.batch_size).predictions)
        labels.append(y.to(torch.int64))
    if not preds:
        raise ConfigError(f"dataset '{args.dataset}' is empty")
    p, y = torch.cat(preds), torch.cat(labels)
    doc = {"exported": args.checkpoint, "runtime": model.runtime, "dataset": args.dataset, "timesteps": t,
           "accuracy": round(float((p == y).double().mean()), 6), "samples": int(y.numel())}
    print(json.dumps(doc))
    if args.predictions:
        write_predictions(args.predictions, p, {**doc, "labels": y.tolist()})
    return 0
