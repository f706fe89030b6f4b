"""`spikeport export`: write MODEL to a deployment target (ONNX, streaming ONNX, NIR, Lava), checked and atomic."""

from __future__ import annotations

import argparse
from typing import Any

from spikeport.commands._common import ZOO_SEED, add_model_args, add_out_args, parse_kv

__all__ = ["add_parser", "run", "TARGET_NAMES", "DEFAULT_TIMESTEPS"]

TARGET_NAMES = ("onnx", "onnx-stream", "lava", "nir")
DEFAULT_TIMESTEPS = 4


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "export", help="export a model to onnx, onnx-stream, lava or nir",
        description="Export MODEL to a deployment target. onnx: the whole sequence [T, B, ...] -> logits [T, B, K] "
                    "with the time loop unrolled (T fixed); onnx-stream: one timestep with every neuron's state as "
                    "explicit inputs/outputs (any T; refuses sequence-level paper-method modules); nir: NIR graph file; "
                    "lava: lava-dl netx HDF5. Every export is checked against the torch reference right after "
                    "writing (spikes identical up to threshold ties, logits within 1e-5) and written atomically, "
                    "with PATH.summary.json / PATH.summary.md describing it and where else the model can go.")
    add_model_args(p)
    p.add_argument("--target", required=True, choices=TARGET_NAMES, help="export target")
    add_out_args(p, "output file (e.g. model.onnx, model.nir, model.net)")
    p.add_argument("--timesteps", "-T", type=int,
                   help=f"T baked into --target onnx, or used by the check (default: the checkpoint's, the model's, "
                        f"else {DEFAULT_TIMESTEPS})")
    p.add_argument("--exporter", choices=("auto", "torchscript", "dynamo"), default="auto",
                   help="torch.onnx exporter for the onnx targets (default auto: TorchScript, several times faster, "
                        "then dynamo if it fails)")
    p.add_argument("--no-spikes", action="store_true", help="onnx targets: only logits (and states), no spike outputs")
    p.add_argument("--no-check", action="store_true", help="skip the runtime-vs-torch check after writing")
    p.set_defaults(func=run)


def _timesteps(args: argparse.Namespace, loaded: Any) -> int:
    from spikeport.models.encoders import check_timesteps

    for value in (args.timesteps, loaded.timesteps, getattr(loaded.model, "timesteps", None)):
        if value is not None:
            return check_timesteps(value, "--timesteps")
    return DEFAULT_TIMESTEPS


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from spikeport._io import check_overwrite
    from spikeport.models.loading import load_model
    from spikeport.targets.export import export_model, summary_paths

    out = Path(args.out)
    for p in (out, *summary_paths(out)):  # fail before loading/tracing the model
        check_overwrite(p, args.force)
    torch.manual_seed(ZOO_SEED)  # a zoo name gets the same fresh weights in export and verify
    loaded = load_model(args.model, weights=args.weights, device="cpu", **parse_kv(args.model_arg))
    shape = tuple(args.input_shape) if args.input_shape else loaded.input_shape
    opts: dict[str, Any] = {"check": not args.no_check}
    if args.target.startswith("onnx"):
        opts.update(exporter=args.exporter, spikes=not args.no_spikes)
    result = export_model(loaded.model, args.target, out, timesteps=_timesteps(args, loaded), input_shape=shape,
                          force=args.force, source=args.model, **opts)
    print(result.describe())
    print(f"summary: {', '.join(str(f) for f in result.files[1:])}")
    return 0
