"""`spikeport run`: execute an exported file in its own runtime on a .npy input and print its predictions."""

from __future__ import annotations

import argparse
from typing import Any

from spikeport.commands._common import add_device_arg, check_predictions_path, write_predictions

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "run", help="run an exported file (.onnx, .nir, .net) on a .npy input and print its predictions",
        description="Execute EXPORTED in its own runtime: .onnx in onnxruntime, .nir imported by spikeport and run "
                    "by its executor, .net (Loihi) by spikeport's Loihi-exact integer reference (--backend "
                    "reference) or Lava's Loihi2SimCfg(fixed_pt) simulation (--backend lava), both following the "
                    "runtime contract in its .loihi.json sidecar (input encoding, latency, reset schedule, host "
                    "readout). The input is [*shape] (one frame), [B, *shape] (frames, the same frame at each of "
                    "the T steps) or [T, B, *shape] (an encoded sequence). Prints one JSON line with the "
                    "predictions (argmax over classes of the mean over T of the logits).")
    p.add_argument("exported", metavar="EXPORTED", help="exported file (.onnx, .nir or .net)")
    p.add_argument("--input", required=True, metavar="X.npy", help="input array (numpy .npy, never unpickled)")
    p.add_argument("--timesteps", "-T", type=int,
                   help="T (default: the export's: the ONNX sequence length or the Loihi runtime contract; "
                        "required for .nir unless the input is [T, B, ...])")
    p.add_argument("--backend", choices=("reference", "lava"), default="reference",
                   help=".net only: reference (Loihi-exact integer reference, fast) or lava (Lava fixed_pt "
                        "simulation, about 0.2 s per digits sample)")
    p.add_argument("--batch-size", type=int, default=256, help="samples per run (default 256)")
    p.add_argument("--out", metavar="PREDS", help="also write the predictions: .json (with the run's details) or "
                                                  ".npy (int64 array)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from spikeport.errors import ConfigError
    from spikeport.models.encoders import check_timesteps
    from spikeport.targets.run import load_input, run_exported

    if args.batch_size <= 0:
        raise ConfigError(f"--batch-size must be positive, got {args.batch_size}")
    t = check_timesteps(args.timesteps, "--timesteps") if args.timesteps is not None else None
    if args.out:
        check_predictions_path(args.out, args.force)
    arr = load_input(args.input)
    res = run_exported(args.exported, arr, timesteps=t, backend=args.backend, batch_size=args.batch_size,
                       device=args.device)
    doc = {"exported": args.exported, "input": args.input, "runtime": res.runtime, "timesteps": res.timesteps,
           "samples": int(res.predictions.numel())}
    print(json.dumps({**doc, "predictions": res.predictions.tolist()}))
    if args.out:
        write_predictions(args.out, res.predictions, doc)
    return 0
