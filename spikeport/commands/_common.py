"""Argument helpers shared by the CLI sub-commands."""

from __future__ import annotations

import argparse
from typing import Any

from spikeport.errors import ConfigError

#: Seed for the fresh random weights of a zoo name, so inspect, export and verify see the same model.
ZOO_SEED = 0

__all__ = [
    "ZOO_SEED", "parse_shape", "parse_kv", "parse_device", "add_model_args", "add_device_arg", "add_out_args",
    "print_table", "add_nir_args", "nir_options", "load_cli_model", "TIME_LAYOUT_HELP", "NIR_PRODUCERS",
    "NIR_INTEGRATIONS", "check_predictions_path", "write_predictions",
]

TIME_LAYOUT_HELP = ("how a file.py:factory model takes time: tb [T, B, ...] (default; SpikingJelly multi-step, Norse "
                    "LIF, forward loops over time), bt [B, T, ...] (sinabs), bt-flat [B*T, ...] (sinabs Squeeze), "
                    "time-last [B, ..., T] (lava-dl SLAYER), step: called once per step with [B, ...] (snnTorch, "
                    "Norse cells, SpikingJelly single-step)")


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1,8,8"`` -> ``(1, 8, 8)`` (positive ints)."""
    try:
        shape = tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad shape '{text}': expected comma-separated positive ints, "
                                         "e.g. 1,8,8") from None
    if not shape or any(s <= 0 for s in shape):
        raise argparse.ArgumentTypeError(f"bad shape '{text}': expected comma-separated positive ints, e.g. 1,8,8")
    return shape


def _literal(v: str) -> Any:
    import ast

    try:
        return ast.literal_eval(v)
    except (ValueError, SyntaxError):
        return v


def parse_kv(items: list[str] | None, what: str = "--model-arg") -> dict[str, Any]:
    """``["neuron=plif", "channels=(8,16)"]`` -> dict with Python literals parsed safely."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} '{item}': expected KEY=VALUE")
        out[key.strip()] = _literal(val.strip())
    return out


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="checkpoint .pt, zoo name, path/to/file.py:factory or .nir file")
    p.add_argument("--weights", help="weights for a file.py:factory model (checkpoint or state_dict)")
    p.add_argument("--input-shape", type=parse_shape, help="one sample's shape without T and B, e.g. 1,8,8")
    p.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="keyword for a zoo model factory")
    p.add_argument("--time-layout", choices=("tb", "bt", "bt-flat", "time-last", "step"), help=TIME_LAYOUT_HELP)
    add_nir_args(p)


def load_cli_model(args: argparse.Namespace, device: str = "cpu", *, nir: bool = True) -> Any:
    """``load_model`` from the MODEL options of ``args``; its notes go to stderr.

    ``nir``: pass the NIR reading options of ``args`` (``--nir-from``, ``--dt``, ...) for a ``.nir`` MODEL
    (``False`` when they belong to another file, e.g. ``verify``'s EXPORTED).
    """
    import sys

    from spikeport.models.loading import load_model

    loaded = load_model(args.model, weights=args.weights, device=device, time_layout=args.time_layout,
                        nir_options=nir_options(args) if nir else None, **parse_kv(args.model_arg))
    for note in loaded.notes:
        print(f"spikeport: note: {note}", file=sys.stderr)
    return loaded


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad number '{text}': expected seconds per step, e.g. 1e-3") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"bad dt '{text}': expected a positive number of seconds per step")
    return value


# spikeport.converter.nir_io.dialects' PRODUCERS and INTEGRATIONS, not imported here (the converter loads torch and
# every command builds this parser); tests/converter/test_nir_dialects.py keeps them equal
NIR_PRODUCERS = ("spikeport", "spikingjelly", "nirtorch", "snntorch", "norse", "sinabs", "lava-dl")
NIR_INTEGRATIONS = ("euler", "exact")


def add_nir_args(p: argparse.ArgumentParser) -> None:
    """How a .nir MODEL is read: ``--nir-from``, ``--dt``, ``--integration``, ``--nir-reset`` (docs/nir.md)."""
    g = p.add_argument_group("reading a .nir file", "NIR files do not say how their neurons are discretised; "
                             "spikeport's own files record it. See docs/nir.md")
    g.add_argument("--nir-from", choices=NIR_PRODUCERS, metavar="PRODUCER",
                   help=f"the tool that wrote the file: {', '.join(NIR_PRODUCERS)} (its dt, integration rule, spike "
                        "comparison and reset; default: the file's metadata, else spikingjelly)")
    g.add_argument("--dt", type=_positive_float, metavar="SECONDS",
                   help="seconds per step (default: the file's metadata, else the producer's)")
    g.add_argument("--integration", choices=NIR_INTEGRATIONS,
                   help="euler (forward Euler) or exact (exponential decay e^(-dt/tau)); default: the producer's")
    g.add_argument("--nir-reset", choices=("subtract", "zero"),
                   help="a reset the file cannot state (snnTorch: subtract, its default, or zero)")
    g.add_argument("--nir-assume", action="append", metavar="NAME=VALUE",
                   help="another property the producer's files cannot state (sinabs: norm_input=true|false, "
                        "min_v_mem=none|-threshold); repeatable")


def nir_options(args: argparse.Namespace) -> dict[str, Any]:
    """The NIR reading options given on the command line (``load_model(..., nir_options=)``)."""
    assume = {}
    for item in getattr(args, "nir_assume", None) or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--nir-assume '{item}': expected NAME=VALUE, e.g. norm_input=false")
        assume[key.strip()] = value.strip()
    return {"producer": getattr(args, "nir_from", None), "dt": getattr(args, "dt", None),
            "integration": getattr(args, "integration", None), "reset": getattr(args, "nir_reset", None),
            "assume": assume or None}


def parse_device(text: str) -> str:
    """``--device`` value: ``cpu``, ``cuda`` or ``cuda:N``, refused at parse time when unusable."""
    if text == "cpu":
        return text
    from spikeport.runtime import resolve_device

    try:
        resolve_device(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def add_device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", type=parse_device, help="cpu or cuda (default cpu)")


def add_out_args(p: argparse.ArgumentParser, help_text: str, required: bool = True) -> None:
    p.add_argument("--out", required=required, help=help_text)
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")


def print_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """Format ``rows`` as a fixed-width text table (returned, caller prints)."""
    if not rows:
        return "(empty)"
    cols = columns or list(rows[0])
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([line, sep, *body])


def check_predictions_path(path: str, force: bool) -> None:
    """Refuse a predictions output that is neither ``.json`` nor ``.npy``, or exists without ``force``."""
    from spikeport._io import check_overwrite

    if not str(path).lower().endswith((".json", ".npy")):
        raise ConfigError(f"{path}: predictions are written as .json or .npy; pick one of these suffixes")
    check_overwrite(path, force)


def write_predictions(path: str, predictions: Any, doc: dict[str, Any]) -> None:
    """Write ``predictions`` atomically: ``.npy`` (int64 array) or ``.json`` (``doc`` plus ``predictions``)."""
    import io
    import json

    import numpy as np

    from spikeport._io import atomic_write_bytes, atomic_write_text

    preds = np.asarray(predictions, dtype=np.int64)
    if str(path).lower().endswith(".npy"):
        buf = io.BytesIO()
        np.save(buf, preds, allow_pickle=False)
        atomic_write_bytes(path, buf.getvalue())
    else:
        atomic_write_text(path, json.dumps({**doc, "predictions": preds.tolist()}, indent=1) + "\n")
