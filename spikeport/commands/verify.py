"""`spikeport verify`: run MODEL's torch reference and an exported file on the same inputs and compare them."""

from __future__ import annotations

import argparse
from typing import Any

from spikeport.commands._common import ZOO_SEED, add_device_arg, add_model_args, load_cli_model, nir_options

__all__ = ["add_parser", "run", "DEFAULT_SAMPLES"]

DEFAULT_SAMPLES = 256


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "verify", help="compare an exported model with the torch reference",
        description="Run MODEL (torch reference, on --device) and EXPORTED (.onnx in onnxruntime, .nir imported "
                    "back, .net in spikeport's Loihi-exact fixed-point reference, with --lava also in Lava) on the "
                    "same inputs and print per-layer spike agreement, the max logit error and, on "
                    "labelled data, the accuracy of each. Spike mismatches are classified as threshold ties "
                    "(float rounding at |H - V_th| <= --tie-eps) or unexplained. With --device cuda the CUDA "
                    "reference is also compared with the CPU one. A spike layer whose reference emits fewer than "
                    "--min-spikes spikes makes the verdict 'vacuous' (agreement over silence shows nothing), never "
                    "'exact'. Exit status 1 when they disagree, or when the verdict is vacuous without "
                    "--allow-silent.")
    add_model_args(p)
    p.add_argument("exported", metavar="EXPORTED", help="exported file (.onnx, .nir or .net)")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                   help=f"number of samples (default {DEFAULT_SAMPLES})")
    p.add_argument("--dataset", help="labelled test split to use (default: the checkpoint's; else random inputs)")
    p.add_argument("--data-dir", help="folder with the dataset's files (not needed for digits)")
    p.add_argument("--timesteps", "-T", type=int, help="T (default: the export's, the checkpoint's, else 4)")
    p.add_argument("--encoder", help="direct, rate or latency (default: the checkpoint's, else direct)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per run (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the inputs / encoder (default 0)")
    p.add_argument("--atol", type=float, default=1e-5, help="max logit error for an exact match (default 1e-5)")
    p.add_argument("--tie-eps", type=float, default=1e-4, help="threshold-tie margin |H - V_th| (default 1e-4)")
    p.add_argument("--min-agreement", type=float, default=0.95,
                   help="Lava .net exports are fixed-point: pass when at least this share of predictions match the "
                        "float reference (default 0.95)")
    p.add_argument("--lava", action="store_true",
                   help="for a .net export, also run it in Lava's Loihi2SimCfg(fixed_pt) simulator and check it "
                        "against spikeport's Loihi-exact reference (slow: about 0.25 s per sample)")
    p.add_argument("--min-spikes", type=int, default=1,
                   help="reference spikes each spike layer needs on the inputs for its agreement to count; a layer "
                        "below it makes the verdict vacuous (default 1)")
    p.add_argument("--allow-silent", action="store_true",
                   help="exit 0 on a vacuous verdict (silent layers); the verdict still says vacuous")
    p.add_argument("--json", metavar="OUT.json", help="also write the comparison as JSON")
    p.add_argument("--force", action="store_true", help="overwrite --json if it exists")
    add_device_arg(p)
    p.set_defaults(func=run)


def _timesteps(args: argparse.Namespace, exported_t: int | None, loaded: Any) -> int:
    from spikeport.models.encoders import check_timesteps

    for value in (args.timesteps, exported_t, loaded.timesteps, getattr(loaded.model, "timesteps", None)):
        if value is not None:
            return check_timesteps(value, "--timesteps")
    return 4


def _nir_notes(loaded: Any, target: Any, timesteps: int) -> list[str]:
    """How a .nir MODEL or EXPORTED was read (dt, integration, producer) and its import warnings."""
    from spikeport.commands.inspect import nir_lines

    graphs = [loaded.meta.get("graph") if loaded.kind == "nir" else None,
              getattr(getattr(target, "module", None), "graph", None)]
    return [line for g in graphs if g is not None for line in nir_lines(g, timesteps) if line]


def run(args: argparse.Namespace) -> int:
    import json
    import math
    from pathlib import Path

    import torch

    from spikeport._io import atomic_write_text, check_overwrite
    from spikeport.data import get_dataset
    from spikeport.errors import ConfigError, DataError
    from spikeport.runtime import resolve_device
    from spikeport.targets.export import open_exported
    from spikeport.targets.verify import check_min_spikes, dataset_batches, random_batches, verify_export

    if args.samples <= 0 or args.batch_size <= 0:
        raise ConfigError(f"--samples and --batch-size must be positive, got {args.samples} and {args.batch_size}")
    for opt, v in (("--atol", args.atol), ("--tie-eps", args.tie_eps)):
        if not (math.isfinite(v) and v >= 0):
            raise ConfigError(f"{opt} must be a finite number >= 0, got {v}")
    check_min_spikes(args.min_spikes)
    if args.json:
        check_overwrite(args.json, args.force)
    resolve_device(args.device)
    if not 0.0 <= args.min_agreement <= 1.0:
        raise ConfigError(f"--min-agreement must be in [0, 1], got {args.min_agreement}")
    reading = nir_options(args)  # how a .nir file is read: MODEL's if it is one, else EXPORTED's
    model_is_nir = Path(args.model).suffix == ".nir"
    target = open_exported(args.exported, lava_backend="both" if args.lava else "reference",
                           nir_options=None if model_is_nir else reading)
    torch.manual_seed(ZOO_SEED)  # a zoo name gets the same fresh weights in export and verify
    loaded = load_cli_model(args, nir=model_is_nir)
    shape = tuple(args.input_shape) if args.input_shape else (loaded.input_shape
                                                              or getattr(target, "input_shape", None))
    if shape is None:
        raise ConfigError(f"{args.model}: unknown input shape; pass --input-shape")
    t = _timesteps(args, getattr(target, "timesteps", None), loaded)
    name = args.dataset or loaded.dataset
    if name:
        split = get_dataset(name, train=False, data_dir=args.data_dir, seed=args.seed)
        if tuple(split.input_shape) != tuple(shape):
            raise DataError(f"{args.model}: model expects input {list(shape)} but dataset '{name}' gives "
                            f"{list(split.input_shape)}; pick the matching --dataset")
        enc = args.encoder or (loaded.encoder if loaded.encoder not in ("", "none") else "direct")
        batches = dataset_batches(split, timesteps=t, encoder=enc, samples=args.samples, batch_size=args.batch_size,
                                  seed=args.seed)
        inputs = f"{name} test split, first {args.samples} samples, {enc} encoding, T={t}"
    else:
        batches = random_batches(shape, timesteps=t, samples=args.samples, batch_size=args.batch_size, seed=args.seed)
        inputs = f"{args.samples} random inputs U[0,1) (no labels: pass --dataset for accuracy), T={t}"
    comps = verify_export(loaded.model, target, batches, device=args.device, input_shape=shape, atol=args.atol,
                          tie_eps=args.tie_eps, min_pred_agreement=args.min_agreement, min_spikes=args.min_spikes,
                          allow_silent=args.allow_silent)
    print(f"inputs: {inputs}")
    notes = _nir_notes(loaded, target, t)
    for line in notes:
        print(line)
    for c in comps:
        print()
        print(c.format())
    if args.json:
        atomic_write_text(Path(args.json), json.dumps({"model": args.model, "exported": args.exported,
                                                       "inputs": inputs, "nir_import": notes,
                                                       "comparisons": [c.to_dict() for c in comps]},
                                                      indent=1) + "\n")
    return 0 if all(c.ok for c in comps) else 1
