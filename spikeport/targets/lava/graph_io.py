"""Write and read a :class:`~spikeport.targets.lava.graph.LoihiGraph` as one HDF5 file (no pickle).

lava-dl's netx format is a chain of layers; a graph-shaped network (residual fan-in, relays, OR neurons)
is written in this layout instead, integers only, and loaded into standard Lava processes by
:func:`spikeport.targets.lava.lava_graph.load_network` (or by any script that follows this layout)::

    /                 attrs: format = "spikeport-loihi-graph", version = 1, producer
    /input/shape      int64 (C, H, W) or (N,), torch order
    /output           str: the population the host readout reads
    /population/<i>/  i = 0..P-1 in topological order
        name, role    str (role: neuron | relay | or)
        shape         int64, torch order (Lava's process shape is its reverse)
        iDecay, vDecay, vThMant, level   int64 scalars (netx CUBA semantics: Lava LIF du = iDecay - 1,
                      dv = vDecay, vth = vThMant, bias_exp = 6; level = synapse hops from the input)
        bias          int32 (C,) per channel or (N,) per neuron, optional (the bias mantissa)
    /connection/<j>/  j = 0..K-1
        name, src, dst, type   str (src "input" for the network input; type conv | dense)
        weight        int32: dense (out, in), a (C, H, W) source read flattened in torch order;
                      conv (out, in/groups, kH, kW), cross-correlation in torch's (H, W) order
        stride, padding, dilation   int64 (2,) (H, W); groups int64 (conv only)

Group attributes ``spikeport_scale`` (populations) and ``spikeport_synapse`` (connections: the IR nodes
folded into it) are informational. :func:`write_graph` verifies every dataset after writing;
:func:`read_graph` rebuilds the graph, whose constructor re-checks shapes, ranges and path latencies.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from spikeport import __version__
from spikeport._hdf5_guard import read_hdf5_guarded
from spikeport._io import atomic_path
from spikeport.errors import DataError, ExportError, SpikeportError
from spikeport.targets.lava.graph import Connection, LoihiGraph, Population

__all__ = ["GRAPH_FORMAT", "GRAPH_VERSION", "write_graph", "read_graph", "is_graph_file"]

GRAPH_FORMAT = "spikeport-loihi-graph"
GRAPH_VERSION = 1
_H5_ERRORS = (OSError, KeyError, RuntimeError, TypeError, ValueError, AttributeError, IndexError, OverflowError,
              UnicodeError)


def _datasets(graph: LoihiGraph) -> dict[str, Any]:
    out: dict[str, Any] = {"input/shape": np.asarray(graph.input_shape, np.int64), "output": graph.output}
    for i, p in enumerate(graph.populations):
        g = f"population/{i}"
        out |= {f"{g}/name": p.name, f"{g}/role": p.role, f"{g}/shape": np.asarray(p.shape, np.int64),
                f"{g}/iDecay": np.int64(p.i_decay), f"{g}/vDecay": np.int64(p.v_decay),
                f"{g}/vThMant": np.int64(p.v_th_mant), f"{g}/level": np.int64(graph.level(p.name))}
        if p.bias is not None:
            out[f"{g}/bias"] = np.asarray(p.bias, np.int32)
    for j, c in enumerate(graph.connections):
        g = f"connection/{j}"
        out |= {f"{g}/name": c.name, f"{g}/src": c.src, f"{g}/dst": c.dst, f"{g}/type": c.kind,
                f"{g}/weight": np.asarray(c.weight, np.int32)}
        if c.kind == "conv":
            out |= {f"{g}/stride": np.asarray(c.stride, np.int64), f"{g}/padding": np.asarray(c.padding, np.int64),
                    f"{g}/dilation": np.asarray(c.dilation, np.int64), f"{g}/groups": np.int64(c.groups)}
    return out


def write_graph(graph: LoihiGraph, path: str | os.PathLike) -> Path:
    """Write ``graph`` to ``path`` atomically and verify it (every dataset read back and compared).

    Raises:
        ExportError: writing or the read-back check failed.
    """
    dest = Path(path)
    data = _datasets(graph)
    try:
        with atomic_path(dest) as tmp:
            with h5py.File(tmp, "w") as f:
                f.attrs["format"] = GRAPH_FORMAT
                f.attrs["version"] = GRAPH_VERSION
                f.attrs["producer"] = f"spikeport {__version__}"
                for key, value in data.items():
                    if isinstance(value, str):
                        f.create_dataset(key, data=value, dtype=h5py.string_dtype())
                    else:
                        f.create_dataset(key, data=value)
                for i, p in enumerate(graph.populations):
                    if p.scale is not None:
                        f[f"population/{i}"].attrs["spikeport_scale"] = float(p.scale)
                for j, c in enumerate(graph.connections):
                    f[f"connection/{j}"].attrs["spikeport_synapse"] = c.synapse
            with h5py.File(tmp, "r") as f:
                for key, want in data.items():
                    got = f[key][()]
                    got = got.decode("utf-8") if isinstance(got, bytes) else got
                    if not (got == want if isinstance(want, str) else np.array_equal(got, want)):
                        raise ExportError(f"{dest}: /{key} read back as {got!r}, expected {want!r}")
    except OSError as e:
        raise ExportError(f"{dest}: cannot write the Loihi graph file ({e})") from e
    return dest


def is_graph_file(path: str | os.PathLike) -> bool:
    """True when ``path`` is an HDF5 file in this layout (False for netx files and anything else)."""
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") in (GRAPH_FORMAT, GRAPH_FORMAT.encode())
    except (OSError, ValueError):
        return False


def read_graph(path: str | os.PathLike) -> LoihiGraph:
    """Read a graph file written by :func:`write_graph` (checked in a forked child first, as netx files).

    Raises:
        DataError: one line naming the file and the group when it is missing, corrupt or inconsistent.
    """
    return read_hdf5_guarded(path, "Loihi graph", _read)


def _text(ds: Any) -> str:
    v = ds[()]
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def _read(p: Path) -> LoihiGraph:
    where = "/"
    try:
        with h5py.File(p, "r") as f:
            fmt = f.attrs.get("format")
            fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
            if fmt != GRAPH_FORMAT:
                raise DataError(f"{p}: not a spikeport Loihi graph file (format {fmt!r})")
            if int(f.attrs.get("version", -1)) != GRAPH_VERSION:
                raise DataError(f"{p}: Loihi graph version {f.attrs.get('version')!r} is not supported (expected "
                                f"{GRAPH_VERSION}); re-export the model")
            shape = tuple(int(s) for s in f["input/shape"][()])
            pops, conns, levels = [], [], {}
            for i in range(len(f["population"])):
                where = f"/population/{i}"
                g = f[where]
                bias = np.asarray(g["bias"][()]) if "bias" in g else None
                scale = g.attrs.get("spikeport_scale")
                pop = Population(_text(g["name"]), tuple(int(s) for s in g["shape"][()]), int(g["iDecay"][()]),
                                 int(g["vDecay"][()]), int(g["vThMant"][()]), bias, _text(g["role"]),
                                 None if scale is None else float(scale))
                pops.append(pop)
                levels[pop.name] = int(g["level"][()])
            for j in range(len(f["connection"])):
                where = f"/connection/{j}"
                g = f[where]
                kw: dict[str, Any] = {}
                if _text(g["type"]) == "conv":
                    kw = {"stride": g["stride"][()], "padding": g["padding"][()], "dilation": g["dilation"][()],
                          "groups": int(g["groups"][()])}
                conns.append(Connection(_text(g["name"]), _text(g["src"]), _text(g["dst"]), _text(g["type"]),
                                        np.asarray(g["weight"][()]), synapse=str(g.attrs.get("spikeport_synapse", "")),
                                        **kw))
            where = "/output"
            graph = LoihiGraph(shape, tuple(pops), tuple(conns), _text(f["output"]))
    except SpikeportError as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{p}: {where}: {e}") from e
    except _H5_ERRORS as e:
        raise DataError(f"{p}: {where}: corrupt or unreadable Loihi graph file ({type(e).__name__}: {e})") from None
    bad = [n for n, lv in levels.items() if graph.level(n) != lv]
    if bad:
        raise DataError(f"{p}: stored levels of {', '.join(bad)} disagree with the connections; re-export the model")
    return graph
