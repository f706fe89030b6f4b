"""`spikeport export`: write MODEL to a deployment target (ONNX, streaming ONNX, NIR, Lava), checked and atomic."""

from __future__ import annotations

import argparse
from typing import Any

from spikeport.commands._common import ZOO_SEED, add_model_args, add_out_args, load_cli_model

__all__ = ["add_parser", "run", "TARGET_NAMES", "DEFAULT_TIMESTEPS"]

TARGET_NAMES = ("onnx", "onnx-stream", "lava", "nir")
DEFAULT_TIMESTEPS = 4
# the library's defaults (spikeport.targets.verify, not imported here: it loads torch; a test keeps them equal)
DEFAULT_CHECK_SAMPLES = 32
DEFAULT_MIN_SPIKES = 1
DEFAULT_MIN_PRED_AGREEMENT = 0.95
NIR_IMPORTERS = ("spikeport", "spikingjelly", "nirtorch", "snntorch", "norse", "sinabs")  # nir_io.CONSUMERS


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "export", help="export a model to onnx, onnx-stream, lava or nir",
        description="Export MODEL to a deployment target. onnx: the whole sequence [T, B, ...] -> logits [T, B, K] "
                    "with the time loop unrolled (T fixed); onnx-stream: one timestep with every neuron's state as "
                    "explicit inputs/outputs (any T; refuses sequence-level paper-method modules); nir: NIR graph "
                    "file (dt and integration rule in its metadata; --nir-for another importer); lava: lava-dl netx "
                    "HDF5. Every export is checked against the torch reference right after "
                    "writing (spikes identical up to threshold ties, logits within 1e-5; lava: fixed point, at "
                    "least --min-agreement of the predictions) on the model's own test split when its dataset is "
                    "known (else random inputs) and written atomically, with PATH.summary.json / PATH.summary.md "
                    "describing it, the data it was checked on, and where else the model can go. A check that "
                    "fails, or that is vacuous because a spike layer never fires on the check data, writes nothing "
                    "and exits non-zero unless --allow-mismatch / --allow-silent. The model itself also runs (in its "
                    "own framework) beside its traced IR and the file, and must agree with both.")
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
    p.add_argument("--dataset", help="labelled test split to check on (default: the checkpoint's; else random "
                                     "inputs)")
    p.add_argument("--data-dir", help="folder with the dataset's files (not needed for digits)")
    p.add_argument("--encoder", help="direct, rate or latency for the check data (default: the checkpoint's, else "
                                     "direct)")
    p.add_argument("--check-samples", type=int, default=DEFAULT_CHECK_SAMPLES,
                   help=f"samples of the test split the check runs (default {DEFAULT_CHECK_SAMPLES})")
    p.add_argument("--seed", type=int, default=0, help="seed of the check inputs / encoder (default 0)")
    p.add_argument("--min-spikes", type=int, default=DEFAULT_MIN_SPIKES,
                   help=f"reference spikes each spike layer needs on the check data for its agreement to count; a "
                        f"layer below it makes the check vacuous (default {DEFAULT_MIN_SPIKES})")
    p.add_argument("--allow-silent", action="store_true",
                   help="keep the export when the check is vacuous (silent layers); the verdict still says vacuous")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="keep the export when its check fails; the failed verdict goes into the summary and stderr")
    p.add_argument("--nir-for", metavar="IMPORTER",
                   choices=NIR_IMPORTERS,
                   help="nir target: write the file for this tool's importer (its dt and the node forms it reads "
                        "right; nodes it would misread are refused): spikeport (default), spikingjelly, nirtorch, "
                        "snntorch, norse, sinabs. See docs/nir.md")
    p.add_argument("--min-agreement", type=float, default=DEFAULT_MIN_PRED_AGREEMENT,
                   help="lava target (fixed point): share of predictions that must match the float model "
                        f"(default {DEFAULT_MIN_PRED_AGREEMENT})")
    p.set_defaults(func=run)


def _timesteps(args: argparse.Namespace, loaded: Any) -> int:
    from spikeport.models.encoders import check_timesteps

    for value in (args.timesteps, loaded.timesteps, getattr(loaded.model, "timesteps", None)):
        if value is not None:
            return check_timesteps(value, "--timesteps")
    return DEFAULT_TIMESTEPS


def _check_data(args: argparse.Namespace, loaded: Any, shape: Any, t: int) -> Any:
    """The model's own labelled test split when its dataset is known (else None: the target's random inputs)."""
    from spikeport.data import get_dataset
    from spikeport.errors import DataError
    from spikeport.targets.verify import dataset_check_data

    name = args.dataset or loaded.dataset
    if not name or args.no_check:
        return None
    split = get_dataset(name, train=False, data_dir=args.data_dir, seed=args.seed)
    if shape is not None and tuple(split.input_shape) != tuple(shape):
        raise DataError(f"{args.model}: model expects input {list(shape)} but dataset '{name}' gives "
                        f"{list(split.input_shape)}; pick the matching --dataset")
    enc = args.encoder or (loaded.encoder if loaded.encoder not in ("", "none") else "direct")
    return dataset_check_data(split, name, timesteps=t, encoder=enc, samples=args.check_samples, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    import math
    import sys
    from pathlib import Path

    import torch

    from spikeport._io import check_overwrite
    from spikeport.errors import ConfigError
    from spikeport.targets.export import export_model, summary_paths
    from spikeport.targets.verify import check_min_spikes

    out = Path(args.out)
    for p in (out, *summary_paths(out)):  # fail before loading/tracing the model
        check_overwrite(p, args.force)
    check_min_spikes(args.min_spikes)
    if args.check_samples <= 0:
        raise ConfigError(f"--check-samples must be positive, got {args.check_samples}")
    if not (math.isfinite(args.min_agreement) and 0.0 <= args.min_agreement <= 1.0):
        raise ConfigError(f"--min-agreement must be in [0, 1], got {args.min_agreement}")
    torch.manual_seed(ZOO_SEED)  # a zoo name gets the same fresh weights in export and verify
    if args.nir_for is not None and args.target != "nir":
        raise ConfigError(f"--nir-for {args.nir_for}: applies to --target nir only (got --target {args.target})")
    loaded = load_cli_model(args)
    shape = tuple(args.input_shape) if args.input_shape else loaded.input_shape
    t = _timesteps(args, loaded)
    opts: dict[str, Any] = {"check": not args.no_check, "min_spikes": args.min_spikes,
                            "allow_mismatch": args.allow_mismatch, "allow_silent": args.allow_silent,
                            "check_data": _check_data(args, loaded, shape, t)}
    if args.target.startswith("onnx"):
        opts.update(exporter=args.exporter, spikes=not args.no_spikes)
    if args.target == "lava":
        opts["min_agreement"] = args.min_agreement
    if args.target == "nir" and args.nir_for is not None:
        opts["consumer"] = args.nir_for
    result = export_model(loaded.model, args.target, out, timesteps=t, input_shape=shape, force=args.force,
                          source=args.model, **opts)
    print(result.describe())
    print(f"summary: {', '.join(str(f) for f in result.files[1:])}")
    for what, verdict in result.failed_checks():
        print(f"spikeport export: warning: {out}: {what}: {verdict}", file=sys.stderr)
    for w in result.summary.get("source_nir", {}).get("warnings", []):
        print(f"spikeport export: warning: {args.model}: {w}", file=sys.stderr)
    return 0
