"""The sidecar ``<file>.loihi.json`` of a netx export: host readout, input encoding, runtime contract (JSON).

:func:`write_deployment` writes the netx file and its sidecar (each atomically);
:func:`read_deployment` reads both back into a
:class:`~spikeport.targets.lava.deploy.LoihiDeployment`, checking that they belong together.

Version 2 (written since the runtime contract) adds the ``runtime`` section: T, per-layer latency, the
stream and reset schedule, the input encoding and the host readout, i.e. everything plain Lava needs to
reproduce the export (see :mod:`spikeport.targets.lava.contract`). Version-1 sidecars are still read; they
carry no T, so running them needs T from the caller (``spikeport run -T``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from spikeport._io import atomic_write_text
from spikeport.errors import DataError, ExportError, SpikeportError
from spikeport.targets.lava.deploy import LoihiDeployment
from spikeport.targets.lava.graph import LoihiGraph
from spikeport.targets.lava.network import LoihiNetwork

__all__ = ["READOUT_SUFFIX", "sidecar_document", "readout_path", "write_deployment", "read_deployment"]

READOUT_SUFFIX = ".loihi.json"
"""Sidecar of a netx file written by the Lava target: ``<file>.loihi.json``."""
_SIDECAR_FORMAT = "spikeport-loihi-deployment"
_SIDECAR_VERSION = 2
_READABLE_VERSIONS = (1, 2)


def sidecar_document(dep: LoihiDeployment) -> dict[str, Any]:
    """The JSON document of ``dep`` written as ``<file>.loihi.json`` (``dep.timesteps`` must be set)."""
    from spikeport.targets.lava.contract import runtime_contract

    if dep.timesteps is None:
        raise ExportError("the Loihi sidecar needs the deployment's T (LoihiDeployment.timesteps) for its runtime "
                          "contract")
    net = dep.network
    doc: dict[str, Any] = {
        "format": _SIDECAR_FORMAT, "version": _SIDECAR_VERSION, "source": dep.source,
        "network": "netx" if dep.is_chain else "spikeport-loihi-graph",
        "input": {"shape": list(net.input_shape), "encoding": "graded" if dep.input_scale else "binary",
                  "scale": dep.input_scale, "message_bits": dep.input_message_bits}}
    if isinstance(net, LoihiNetwork):
        doc["layers"] = [{"index": i, "kind": layer.kind, "name": layer.name, "synapse": syn,
                          "shape": list(layer.shape), "scale": layer.scale}
                         for i, (layer, syn) in enumerate(zip(net.layers, dep.synapses, strict=True))]
    else:
        doc["populations"] = [{"name": p.name, "role": p.role, "shape": list(p.shape), "level": net.level(p.name),
                               "scale": p.scale} for p in net.populations]
    return {**doc, "runtime": runtime_contract(dep, dep.timesteps), "readout": dep.readout.to_dict()}


def readout_path(path: str | os.PathLike) -> Path:
    """``<path>.loihi.json``: the host readout / input encoding written beside a netx file."""
    p = Path(path)
    return p.with_name(p.name + READOUT_SUFFIX)


def write_deployment(dep: LoihiDeployment, path: str | os.PathLike, timesteps: int | None = None
                     ) -> tuple[Path, Path]:
    """Write the network file ``path`` and its sidecar ``<path>.loihi.json``, each atomically.

    A chain is written as a lava-dl netx file, any other network in spikeport's graph layout
    (:mod:`spikeport.targets.lava.graph_io`).

    Args:
        dep: the deployment.
        path: the netx file.
        timesteps: T of the runtime contract (default ``dep.timesteps``, else 4, spikeport's default T).

    Returns:
        ``(netx path, sidecar path)``.

    Raises:
        ExportError: writing or read-back verification failed.
    """
    from spikeport.targets.lava.graph_io import write_graph
    from spikeport.targets.lava.netx import write_netx

    dest = Path(path)
    side = readout_path(dest)
    t = timesteps if timesteps is not None else (dep.timesteps if dep.timesteps is not None else 4)
    if isinstance(t, bool) or not isinstance(t, int) or t < 1:
        raise ExportError(f"{dest}: timesteps must be a positive int, got {t!r}")
    text = json.dumps(sidecar_document(dataclasses.replace(dep, timesteps=t)), indent=1) + "\n"
    if isinstance(dep.network, LoihiNetwork):
        write_netx(dep.network, dest)
    else:
        write_graph(dep.network, dest)
    try:
        atomic_write_text(side, text)
    except OSError as e:
        dest.unlink(missing_ok=True)
        raise ExportError(f"{side}: cannot write the Loihi readout ({e})") from e
    return dest, side


def read_deployment(path: str | os.PathLike) -> LoihiDeployment:
    """Read a network file (netx or graph) written by the Lava target together with its ``.loihi.json`` sidecar.

    Raises:
        DataError: missing/corrupt files, or a sidecar that does not match the netx file.
    """
    from spikeport.converter import SpikeGraph
    from spikeport.targets.lava.graph_io import is_graph_file, read_graph
    from spikeport.targets.lava.netx import read_netx

    p = Path(path)
    net: LoihiNetwork | LoihiGraph = read_graph(p) if p.is_file() and is_graph_file(p) else read_netx(p)
    side = readout_path(p)
    if not side.is_file():
        raise DataError(f"{p}: missing {side.name} (host readout and input encoding written by `spikeport export "
                        f"--target lava`); re-export the model")
    try:
        doc = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{side}: not a readable Loihi readout file ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != _SIDECAR_FORMAT:
        raise DataError(f"{side}: not a spikeport Loihi readout file (format '{_SIDECAR_FORMAT}' missing)")
    if doc.get("version") not in _READABLE_VERSIONS:
        raise DataError(f"{side}: version {doc.get('version')!r} is not supported (spikeport reads versions "
                        f"{', '.join(map(str, _READABLE_VERSIONS))}); re-export the model with this spikeport")
    try:
        enc = doc["input"]
        scale, bits = int(enc["scale"]), int(enc["message_bits"])
        units = doc["layers"] if isinstance(net, LoihiNetwork) else doc["populations"]
        synapses = tuple(str(u.get("synapse", "")) for u in units) if isinstance(net, LoihiNetwork) else ()
        names = [str(u["name"]) for u in units]
        readout = SpikeGraph.from_dict(doc["readout"], str(side))
        readout.validate()
    except SpikeportError as e:
        raise DataError(f"{side}: bad readout graph ({e})") from e
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"{side}: malformed Loihi readout file ({type(e).__name__}: {e})") from e
    want = [layer.name for layer in net.layers] if isinstance(net, LoihiNetwork) else \
        [q.name for q in net.populations]
    if tuple(enc.get("shape", ())) != tuple(net.input_shape) or len(names) != len(want) or \
            (isinstance(net, LoihiGraph) and names != want):
        raise DataError(f"{side}: does not belong to {p.name} (input {enc.get('shape')} vs {list(net.input_shape)}, "
                        f"{len(names)} vs {len(want)} layers or populations)")
    if scale < 0 or not 0 <= bits <= 24 or (scale > 0) != (bits > 0):
        raise DataError(f"{side}: bad input encoding scale={scale}, message_bits={bits}")
    rin = readout.input_nodes()
    out_shape = net.output_shape if isinstance(net, LoihiNetwork) else net.population(net.output).shape
    if len(rin) != 1 or tuple(rin[0].shape) != tuple(out_shape):
        raise DataError(f"{side}: readout input {list(rin[0].shape) if rin else None} does not match the last layer "
                        f"of {p.name} {list(out_shape)}")
    dep = LoihiDeployment(net, readout, scale, bits, synapses, str(doc.get("source", "")))
    if doc["version"] >= 2:
        from spikeport.targets.lava.contract import read_contract

        if "runtime" not in doc:
            raise DataError(f"{side}: version-2 sidecar without its 'runtime' section; re-export the model")
        contract = read_contract(doc["runtime"], dep, str(side))
        dep = dataclasses.replace(dep, timesteps=int(contract["timesteps"]))
    return dep
