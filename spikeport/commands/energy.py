"""`spikeport energy`: firing rates, exact synaptic op counts and energy of a model on real data."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from spikeport.commands._common import add_device_arg, add_model_args, add_out_args, load_cli_model

if TYPE_CHECKING:
    import numpy as np

    from spikeport.data import DatasetSplit

DEFAULT_TIMESTEPS = 4


def add_parser(sub) -> None:
    p = sub.add_parser(
        "energy", help="per-layer firing rates, synaptic ops and energy",
        description="Run MODEL on real data with streaming hooks and write per-layer firing rates, exact synaptic "
                    "op counts and energy estimates (CSV, JSON, Markdown, HTML with figures) to --out.")
    add_model_args(p)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", help="dataset test split (digits, cifar10, ...; default: the checkpoint's)")
    src.add_argument("--input", metavar="X.npy", help="numeric .npy of samples [N, ...] (or [N, T, ...] sequences)")
    p.add_argument("--data-dir", help="folder with the dataset's files (not needed for digits)")
    p.add_argument("--temporal", action="store_true", help="--input holds [N, T, ...] sequences (no encoding)")
    p.add_argument("--samples", type=int, help="use only the first N samples")
    p.add_argument("--hardware", default="horowitz45", metavar="NAME|FILE.toml",
                   help="energy model: horowitz45 (default), lemaire, loihi, or a TOML file")
    p.add_argument("--timesteps", "-T", type=int, help=f"T (default: the checkpoint's, else {DEFAULT_TIMESTEPS})")
    p.add_argument("--encoder", help="direct, rate or latency (default: the checkpoint's, else direct)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per forward (default 64)")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the encoder's generator and a zoo model's random init (default 0)")
    p.add_argument("--no-trace", action="store_true",
                   help="hook the torch modules directly instead of the traced IR graph (then element-wise ops "
                        "written inline in forward(), e.g. residual adds, are not counted)")
    p.add_argument("--allow-unmeasured", action="store_true",
                   help="report layers that have no energy rule (e.g. an unknown neuron class) as 'unmeasured' "
                        "instead of failing; totals then exclude them and say so")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_device_arg(p)
    add_out_args(p, "output directory for the report files")
    p.set_defaults(func=run)


def _timesteps(args: argparse.Namespace, loaded) -> tuple[int, str]:
    from spikeport.models.encoders import check_timesteps

    for value, origin in ((args.timesteps, "--timesteps"), (loaded.timesteps, "checkpoint"),
                          (getattr(loaded.model, "timesteps", None), "model attribute")):
        if value is not None:
            return check_timesteps(value), origin
    return DEFAULT_TIMESTEPS, "default"


def _precheck_out(out) -> None:
    """Fail before the (long) analysis when ``out`` cannot be written; creates nothing."""
    import os

    from spikeport.errors import ConfigError

    if out.exists():
        if not out.is_dir():
            raise ConfigError(f"{out}: exists and is not a directory; choose another --out")
        probe = out
    else:
        probe = next((p for p in out.parents if p.exists()), None)
    if probe is None or not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{out}: output directory is not writable; choose a writable --out")


def _add_nir_notes(report, loaded, timesteps: int) -> None:
    """A .nir model's reading (dt, integration, producer) and import warnings go into the report's assumptions."""
    graph = loaded.meta.get("graph") if loaded.kind == "nir" else None
    if graph is None:
        return
    from spikeport.converter.nir_io import import_notes

    assumptions, warnings = import_notes(graph, timesteps)
    report.assumptions[0:0] = [*assumptions, *(f"WARNING: {w}" for w in warnings)]
    report.meta["nir_import"] = dict(graph.meta["nir"]["semantics"])
    report.meta["warnings"] = [*report.meta.get("warnings", []), *warnings]


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from spikeport._io import check_overwrite
    from spikeport._memory import check_data_memory
    from spikeport.data import get_dataset
    from spikeport.energy import analyze, get_hardware, load_npy_input, recording_target, write_report
    from spikeport.energy.report import REPORT_FILES
    from spikeport.errors import ConfigError, DataError

    if args.samples is not None and args.samples <= 0:
        raise ConfigError(f"--samples must be positive, got {args.samples}")
    if args.batch_size <= 0:
        raise ConfigError(f"--batch-size must be positive, got {args.batch_size}")
    hw = get_hardware(args.hardware)  # fail fast on a bad name or TOML file
    out = Path(args.out)
    _precheck_out(out)
    for name in REPORT_FILES:
        check_overwrite(out / name, args.force)
    import torch

    torch.manual_seed(args.seed)  # zoo models start from a seeded random init: reruns are identical
    loaded = load_cli_model(args, device=args.device)
    in_shape = tuple(args.input_shape) if args.input_shape else loaded.input_shape
    t, t_origin = _timesteps(args, loaded)
    meta = {"model": args.model, "model_kind": loaded.kind}
    data: np.ndarray | DatasetSplit  # samples [N, ...] from --input, or the dataset's test split
    if args.input:
        arr = load_npy_input(args.input, temporal=bool(args.temporal))
        temporal = bool(args.temporal)
        if in_shape is not None:
            per = arr.shape[2:] if temporal else arr.shape[1:]
            if not temporal and arr.ndim == len(in_shape) + 2 and tuple(arr.shape[2:]) == tuple(in_shape):
                temporal, per = True, arr.shape[2:]
            if tuple(per) != tuple(in_shape):
                raise DataError(f"{args.input}: samples have shape {list(per)} but the model expects "
                                f"{list(in_shape)}; pass matching data or --input-shape")
        data, meta["data"] = arr, f"{args.input} {list(arr.shape)}"
        if in_shape is None:
            in_shape = tuple(arr.shape[2:] if temporal else arr.shape[1:])
    else:
        name = args.dataset or loaded.dataset
        if not name:
            raise DataError(f"{args.model}: no dataset recorded; pass --dataset NAME or --input x.npy")
        split = get_dataset(name, train=False, data_dir=args.data_dir, seed=args.seed)
        if in_shape is not None and tuple(split.input_shape) != tuple(in_shape):
            raise DataError(f"{args.model}: model expects input {list(in_shape)} but dataset '{name}' gives "
                            f"{list(split.input_shape)}; pick the matching dataset")
        data, temporal, meta["data"] = split, split.temporal, f"{name} (test split)"
        if in_shape is None:
            in_shape = tuple(split.input_shape)
    check_data_memory(loaded.model, data, timesteps=t, batch_size=args.batch_size, temporal=temporal,
                      samples=args.samples, input_shape=in_shape, mode="energy", what=str(args.model),
                      device=args.device)
    model, meta["recorded_on"] = recording_target(loaded.model, in_shape, no_trace=args.no_trace)
    enc = args.encoder or (loaded.encoder if loaded.encoder not in ("none", "") else "direct")
    meta["timesteps_from"] = "data" if temporal else t_origin
    report = analyze(model, data, timesteps=t, hardware=hw, encoder=enc, temporal=temporal,
                     batch_size=args.batch_size, samples=args.samples, device=args.device, seed=args.seed,
                     progress=not args.no_progress and sys.stderr.isatty(), meta=meta,
                     allow_unmeasured=args.allow_unmeasured)
    _add_nir_notes(report, loaded, t)
    files = write_report(report, out, force=args.force)
    print(report.summary())
    for w in report.meta.get("warnings", []):
        print(f"WARNING: {w}", file=sys.stderr)
    print(f"wrote {len(files)} files to {out}")
    return 0
