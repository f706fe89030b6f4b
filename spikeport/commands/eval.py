"""`spikeport eval`: accuracy of a model, or of an exported file in its own runtime, on a test split."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sized

from spikeport.commands._common import (
    add_device_arg,
    add_model_args,
    check_predictions_path,
    load_cli_model,
    write_predictions,
)

DEFAULT_TIMESTEPS = 4
EXPORTED_SUFFIXES = (".onnx", ".net", ".h5", ".hdf5")
"""Files evaluated in their own runtime as `spikeport run` runs them (a .nir file is a MODEL: read with its
dialect options and run by spikeport's executor)."""


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a model or an exported file on a test split",
                       description="Test accuracy of MODEL (a checkpoint, zoo name, .nir file, or file.py:factory "
                                   "--weights W.pt of any framework; --time-layout says how it takes time), or of "
                                   "an exported .onnx/.net file run in its own runtime as `spikeport run` runs it "
                                   "(direct encoding; a .net follows its runtime contract), on a dataset's test "
                                   "split.")
    add_model_args(p)
    p.add_argument("--dataset", help="dataset (default: the one a checkpoint was trained on; required for exported "
                                     "files)")
    p.add_argument("--backend", choices=("reference", "lava"), default="reference",
                   help="exported .net only: Loihi-exact reference (default) or Lava fixed_pt simulation")
    p.add_argument("--data-dir")
    p.add_argument("--timesteps", "-T", type=int,
                   help=f"override T (default: the checkpoint's or the export's, else {DEFAULT_TIMESTEPS})")
    p.add_argument("--encoder", help="direct, rate or latency (default: the checkpoint's, else direct)")
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
    if str(args.model).lower().endswith(EXPORTED_SUFFIXES):
        return _eval_exported(args)
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
    m = evaluate(loaded.model, split, timesteps=t, encoder=enc, device=args.device, batch_size=args.batch_size,
                 samples=args.samples, keep_predictions=bool(args.predictions))
    doc = {"model": args.model, "dataset": name, "timesteps": t, "accuracy": round(m["acc"], 6),
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
        raise ConfigError(f"{args.model}: an exported file records no dataset; pass --dataset")
    model = ExportedModel(args.model, backend=args.backend, device=args.device)
    split = get_dataset(args.dataset, train=False, data_dir=args.data_dir)
    if tuple(split.input_shape) != model.input_shape:
        raise DataError(f"{args.model}: export expects input {list(model.input_shape)} but dataset "
                        f"'{args.dataset}' gives {list(split.input_shape)}")
    t = args.timesteps if args.timesteps is not None else model.timesteps
    if t is None:
        raise ConfigError(f"{args.model}: the export does not record T; pass -T/--timesteps")
    t = check_timesteps(t, "--timesteps")
    data = split.dataset
    if args.samples is not None:
        if not isinstance(data, Sized):
            raise ConfigError(f"dataset '{args.dataset}' has no length to take the first {args.samples} samples of")
        data = Subset(data, range(min(args.samples, len(data))))
    preds, labels = [], []
    for x, y in DataLoader(data, batch_size=args.batch_size, shuffle=False):
        preds.append(model.predict(to_sequence(x, split.temporal, t, "direct", None), args.batch_size).predictions)
        labels.append(y.to(torch.int64))
    if not preds:
        raise ConfigError(f"dataset '{args.dataset}' is empty")
    p, y = torch.cat(preds), torch.cat(labels)
    doc = {"exported": args.model, "runtime": model.runtime, "dataset": args.dataset, "timesteps": t,
           "accuracy": round(float((p == y).double().mean()), 6), "samples": int(y.numel())}
    print(json.dumps(doc))
    if args.predictions:
        write_predictions(args.predictions, p, {**doc, "labels": y.tolist()})
    return 0
