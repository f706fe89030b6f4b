r"""Exchange with NIR (the Neuromorphic Intermediate Representation, ``nir`` package 1.0.x).

NIR describes neurons as continuous-time ODEs; spikeport neurons are discrete.
With step ``dt`` (default :data:`DEFAULT_DT` = 1e-4 s, the value SpikingJelly,
snnTorch and Norse use, so files interoperate) NIR's forward-Euler update is

.. math:: v \leftarrow v + \frac{dt}{\tau}\,(v_{leak} - v + R\,I)

and our neurons map onto it exactly as follows (SpikingJelly's convention):

============  =====================================================================================
spikeport     NIR
============  =====================================================================================
IF            ``IF(r = 1/dt, v_threshold, v_reset)``  (so :math:`v \leftarrow v + dt\,r\,x = v + x`)
LIF           ``LIF(tau = tau*dt, r = 1 (decay_input) or tau (not), v_leak = v_reset, v_threshold, v_reset)``
PLIF          as LIF with ``tau = 1/inv_tau`` (imports back as LIF)
DALIF         ``LIF(tau = dt/(1-beta), r = alpha/(1-beta), v_leak = 0, ...)`` (imports back as DALIF
              when ``v_reset != 0``)
CubaLIF       ``CubaLIF(tau_syn = dt/i_decay, tau_mem = dt/v_decay, w_in = 1/i_decay, r = 1/v_decay,
              v_leak = 0, ...)``
Threshold     ``Threshold(threshold)``
============  =====================================================================================

Parameters are written as float64 arrays of the neuron's shape. Import inverts
the table; any extra input gain (``r`` or ``w_in`` not as above) becomes a
:class:`~spikeport.converter.ir.Scale` node in front of the neuron. Time
constants are decoded to the shortest decimal float that re-encodes to the
stored value, so export -> import is exact for IF/LIF/CubaLIF (tested).

Not representable in NIR (export lists *every* blocking node in one
:class:`~spikeport.errors.UnsupportedNodeError`): soft reset (NIR neurons reset
to ``v_reset``), BatchNorm that cannot be folded into a conv/linear, MaxPool,
ConvTranspose2d, Reshape, Mul, Concat, ReLU, the paper-method modules, CubaLIF with a
zero decay (infinite time constant). Two semantic differences remain: NIR fires
on :math:`v > v_{th}`, spikeport on :math:`v \ge v_{th}` (they differ only at
exact equality), and NIR sums all edges into a node, so ``Add`` nodes are
exported as several edges into their consumers (and imported back as ``Add``).

Import supports Input, Output, Affine, Linear, Conv1d, Conv2d, SumPool2d,
AvgPool2d, Flatten, Scale, Threshold, IF, LIF, CubaLIF and nested NIRGraphs
(flattened; cycles become recurrent edges).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from spikeport._hdf5_guard import check_hdf5_readable
from spikeport._io import atomic_path
from spikeport.converter import ir
from spikeport.converter.graph import SpikeGraph
from spikeport.errors import ExportError, GraphError, UnsupportedNodeError
from spikeport.ops import NirContext, NirMapping, Refusal, Refused, _nir, all_specs, find_spec

__all__ = ["DEFAULT_DT", "to_nir", "write_nir", "from_nir", "read_nir", "load_nir_model", "importable_types"]

DEFAULT_DT = 1e-4


def _check_dt(dt: float) -> float:
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise GraphError(f"dt must be a positive number of seconds, got {dt!r}")
    return float(dt)


# ====================================================================== export
def _export_node(node: ir.IRNode, g: SpikeGraph, dt: float) -> tuple[Any, str | None]:
    """``(nir node, None)`` or ``(None, reason it is not representable)``, from the node's op spec."""
    spec = find_spec(type(node))
    if spec is None:
        return None, f"{node.op} has no op spec (register one with spikeport.ops.register_op)"
    mapping = spec.nir
    if isinstance(mapping, Refused):
        return None, mapping.why(node)
    if isinstance(mapping.export, Refused):
        return None, mapping.export.why(node)
    ctx = NirContext(dt, shape=g.shape(node.name), in_shapes=tuple(g.in_shapes(node.name)))
    try:
        return mapping.export(node, ctx), None
    except Refusal as e:
        return None, str(e)


def to_nir(graph: SpikeGraph, dt: float = DEFAULT_DT, *, fold: bool = True) -> Any:
    """Convert ``graph`` to a ``nir.NIRGraph`` (see the module docstring for the mapping).

    Args:
        graph: the IR graph (not modified).
        dt: timestep in seconds used to express time constants.
        fold: first fold BatchNorm and scalar multiplies into neighbouring synapses.

    Raises:
        UnsupportedNodeError: one message listing every node NIR cannot represent, with the reason.
    """
    from spikeport.converter.passes import fold_batchnorm, fold_constants, remove_dead_nodes

    nir = _nir.nir()
    dt = _check_dt(dt)
    g = graph.copy().validate()
    if fold:
        for p in (fold_batchnorm, fold_constants, remove_dead_nodes):
            g, _ = p(g)
        g.validate()
    nodes: dict[str, Any] = {}
    blocking: list[str] = []
    elided: set[str] = set()
    for name, node in g.nodes().items():
        if isinstance(node, ir.Add):
            elided.add(name)
            continue
        out, why = _export_node(node, g, dt)
        if out is None:
            blocking.append(f"'{name}' ({node.op}: {why})")
        else:
            nodes[name] = out

    def sources(name: str) -> list[str]:
        return [s for e in g.in_edges(name) for s in sources(e.src)] if name in elided else [name]

    edges: list[tuple[str, str]] = []
    for name in nodes:
        srcs = [s for e in g.in_edges(name) for s in sources(e.src)]
        if len(set(srcs)) != len(srcs):
            blocking.append(f"'{name}' ({g.node(name).op}: sums the same source twice, which NIR edges cannot express)")
        edges += [(s, name) for s in dict.fromkeys(srcs)]
    if blocking:
        raise UnsupportedNodeError(f"cannot export graph '{g.name}' to NIR: {len(blocking)} node(s) not representable: "
                                   f"{'; '.join(blocking)}. Replace or remove them, or export to another target")
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"source": "spikeport", "dt": dt}, type_check=True)
    except (ValueError, AssertionError, TypeError, KeyError) as e:
        raise ExportError(f"graph '{g.name}': NIR rejected the exported graph ({type(e).__name__}: {e})") from e


def write_nir(graph: SpikeGraph, path: str | os.PathLike, dt: float = DEFAULT_DT, *, fold: bool = True) -> Path:
    """Export ``graph`` with :func:`to_nir` and write it atomically to ``path`` (read back as a check)."""
    nir = _nir.nir()
    ng = to_nir(graph, dt, fold=fold)
    with atomic_path(path) as tmp:
        nir.write(tmp, ng)
        back = nir.read(tmp)
        if set(back.nodes) != set(ng.nodes):
            raise ExportError(f"{path}: NIR file read back with different nodes")
    return Path(path)


# ====================================================================== import
class _Flat:
    """A NIR graph flattened to one level: name -> node ('identity' for inner Input/Output), edge list."""

    def __init__(self, graph: Any) -> None:
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []
        self._walk(graph, "")
        self._contract()

    def _walk(self, g: Any, prefix: str) -> None:
        nir = _nir.nir()
        entry: dict[str, str] = {}
        exit_: dict[str, str] = {}
        for k, n in g.nodes.items():
            full = prefix + k
            if isinstance(n, nir.NIRGraph):
                self._walk(n, full + ".")
                ins = [a for a, b in n.nodes.items() if isinstance(b, nir.Input)]
                outs = [a for a, b in n.nodes.items() if isinstance(b, nir.Output)]
                if len(ins) != 1 or len(outs) != 1:
                    raise GraphError(f"NIR subgraph '{full}' must have exactly one Input and one Output node "
                                     f"(has {len(ins)} and {len(outs)})")
                entry[full], exit_[full] = f"{full}.{ins[0]}", f"{full}.{outs[0]}"
            elif prefix and isinstance(n, (nir.Input, nir.Output)):
                self.nodes[full] = "identity"
            else:
                self.nodes[full] = n
        for a, b in g.edges:
            src, dst = prefix + str(a), prefix + str(b)
            for x in (src, dst):
                if x not in self.nodes and x not in entry:
                    raise GraphError(f"NIR edge ({src} -> {dst}) references unknown node '{x}'")
            self.edges.append((exit_.get(src, src), entry.get(dst, dst)))

    def _contract(self) -> None:
        for name in [n for n, v in self.nodes.items() if isinstance(v, str)]:
            preds = [a for a, b in self.edges if b == name]
            succs = [b for a, b in self.edges if a == name]
            self.edges = [e for e in self.edges if name not in e] + [(p, s) for p in preds for s in succs]
            del self.nodes[name]


def _check_finite(name: str, node: Any) -> None:
    """Refuse NaN/Inf in any numeric parameter of a NIR node (weights, bias, tau, thresholds, ...)."""
    for key, value in vars(node).items():
        if key in ("metadata", "input_type", "output_type") or isinstance(value, (str, bytes, dict)):
            continue
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError):
            continue
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            raise GraphError(f"NIR node '{name}' ({type(node).__name__}): '{key}' has {bad} NaN/Inf value(s) "
                             f"of {arr.size}; re-export the model with finite parameters")


def _importers() -> dict[str, Any]:
    """``{NIR type name: importer}`` collected from every op spec's NIR mapping."""
    out: dict[str, Any] = {}
    for spec in all_specs():
        if isinstance(spec.nir, NirMapping):
            out.update(spec.nir.imports)
    return out


def importable_types() -> tuple[str, ...]:
    """NIR node types spikeport imports (from the op registry), plus nested ``NIRGraph``."""
    return (*sorted(_importers()), "NIRGraph")


def _import_node(name: str, node: Any, dt: float, n_inputs: int, outputs_seen: int) -> list[ir.IRNode]:
    """IR node(s) for one NIR node; a leading Scale node is named ``<name>.gain``."""
    t = type(node).__name__
    _check_finite(name, node)
    fn = _importers().get(t)
    if fn is None:
        raise GraphError(f"NIR node '{name}' has type '{t}', which spikeport cannot import "
                         f"(supported: {', '.join(importable_types())})")
    return fn(name, node, NirContext(dt, n_inputs=n_inputs, n_outputs=outputs_seen))


def from_nir(graph: Any, dt: float = DEFAULT_DT, name: str = "nir") -> SpikeGraph:
    """Convert a ``nir.NIRGraph`` to a validated :class:`SpikeGraph`.

    Nodes with several incoming edges get an ``Add`` node ``<name>.sum`` (NIR sums
    inputs); edges closing a cycle become recurrent (one-step delay).

    Raises:
        GraphError: unsupported node types (named), unrepresentable parameters or
            shape mismatches (``"a.out [..] -> b.in [..]"``).
    """
    dt = _check_dt(dt)
    flat = _Flat(graph)
    preds: dict[str, list[str]] = {n: [] for n in flat.nodes}
    for a, b in flat.edges:
        preds[b].append(a)
    recurrent = _back_edges(flat)
    g = SpikeGraph(name, {"source": "nir", "dt": dt})
    created: dict[str, list[ir.IRNode]] = {}
    n_in = n_out = 0
    for n, node in flat.nodes.items():
        try:
            nodes = _import_node(n, node, dt, n_in, n_out)
        except GraphError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, ZeroDivisionError) as e:
            raise GraphError(f"NIR node '{n}' ({type(node).__name__}): invalid parameters "
                             f"({type(e).__name__}: {e})") from None
        n_in += isinstance(nodes[0], ir.Input)
        n_out += isinstance(nodes[-1], ir.Output)
        created[n] = nodes
    # add in an order where feed-forward predecessors come first
    order = _ff_order(flat, recurrent)
    for n in order:
        srcs = preds[n]
        nodes = created[n]
        first_inputs: list[str]
        rec_flags: list[bool]
        if len(srcs) > 1:
            flags = [(s, n) in recurrent for s in srcs]
            g.add(ir.Add(f"{n}.sum"), [_exit(created, s) for s in srcs], recurrent=flags)
            first_inputs, rec_flags = [f"{n}.sum"], [False]
        else:
            first_inputs = [_exit(created, s) for s in srcs]
            rec_flags = [(s, n) in recurrent for s in srcs]
        prev, flags = first_inputs, rec_flags
        for node in nodes:
            g.add(node, prev, recurrent=flags)
            prev, flags = [node.name], [False]
    return g.validate()


def _exit(created: dict[str, list[ir.IRNode]], name: str) -> str:
    return created[name][-1].name


def _back_edges(flat: _Flat) -> set[tuple[str, str]]:
    """Edges closing a cycle (DFS from the inputs, in file order)."""
    succ: dict[str, list[str]] = {n: [] for n in flat.nodes}
    for a, b in flat.edges:
        succ[a].append(b)
    nir = _nir.nir()
    roots = [n for n, v in flat.nodes.items() if isinstance(v, nir.Input)] + list(flat.nodes)
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    for r in roots:
        if r in state:
            continue
        stack = [(r, iter(succ[r]))]
        state[r] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    return back


def _ff_order(flat: _Flat, recurrent: set[tuple[str, str]]) -> list[str]:
    indeg = dict.fromkeys(flat.nodes, 0)
    for a, b in flat.edges:
        if (a, b) not in recurrent:
            indeg[b] += 1
    ready = [n for n in flat.nodes if indeg[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for a, b in flat.edges:
            if a == n and (a, b) not in recurrent:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
    return order


def _scan_types(path: Path) -> None:
    """Name every node of an unknown type before nir.read fails on it."""
    import h5py

    known = set(importable_types()) | {"LI", "CubaLI", "I", "Delay"}
    bad: list[str] = []

    def walk(group: Any, prefix: str) -> None:
        for k in group:
            item = group[k]
            if not isinstance(item, h5py.Group) or "type" not in item:
                continue
            t = item["type"][()]
            t = t.decode() if isinstance(t, bytes) else str(t)
            if t not in known:
                bad.append(f"'{prefix}{k}' (type '{t}')")
            elif t == "NIRGraph" and "nodes" in item:
                walk(item["nodes"], f"{prefix}{k}.")

    try:
        with h5py.File(path, "r") as f:
            if "node" not in f:
                raise GraphError(f"{path}: HDF5 file is not a NIR graph (no 'node' group)")
            root = f["node"]
            if not isinstance(root, h5py.Group) or "nodes" not in root:
                raise GraphError(f"{path}: NIR file has no 'node/nodes' group")
            walk(root["nodes"], "")
    except GraphError:
        raise
    except Exception as e:  # h5py raises OSError/KeyError/RuntimeError/TypeError/... on corrupt files
        raise GraphError(f"{path}: corrupt or unreadable NIR file ({type(e).__name__}: {e})") from None
    if bad:
        raise GraphError(f"{path}: unknown NIR node type(s): {', '.join(bad)} "
                         f"(supported: {', '.join(importable_types())})")


def _read_nir_graph(p: Path) -> Any:
    """Every HDF5 access of :func:`read_nir`: the node-type scan and ``nir.read``."""
    _scan_types(p)
    try:
        return _nir.nir().read(p, type_check=False)
    except Exception as e:  # nir raises assorted errors (KeyError, AssertionError, ValueError) on malformed files
        raise GraphError(f"{p}: cannot read NIR graph ({type(e).__name__}: {e})") from None


def read_nir(path: str | os.PathLike, dt: float = DEFAULT_DT) -> SpikeGraph:
    """Read a ``.nir`` file (written by any framework) into a validated :class:`SpikeGraph`.

    The file is first probed in a forked child (:func:`spikeport._hdf5_guard.check_hdf5_readable`)
    because libhdf5 can segfault on corrupt files.

    Raises:
        GraphError: missing file, not HDF5/NIR, a file that crashes libhdf5, unknown node types
            (named), NaN/Inf parameters (node and field named) or an invalid graph.
    """
    import h5py

    _nir.nir()  # import before forking the probe
    p = Path(path)
    if not p.is_file():
        raise GraphError(f"{p}: no such NIR file")
    try:
        is_hdf5 = h5py.is_hdf5(p)
    except OSError as e:
        raise GraphError(f"{p}: cannot read NIR file ({e})") from None
    if not is_hdf5:
        raise GraphError(f"{p}: not a NIR file (not HDF5); expected a file written by nir.write")
    check_hdf5_readable(p, "NIR", _read_nir_graph, error=GraphError)  # libhdf5 can segfault on a corrupt file
    ng = _read_nir_graph(p)
    try:
        return from_nir(ng, dt, name=p.stem)
    except GraphError as e:
        raise GraphError(f"{p}: {e}") from None
    except Exception as e:  # a structurally odd graph that nir.read accepted
        raise GraphError(f"{p}: malformed NIR graph ({type(e).__name__}: {e})") from None


def load_nir_model(path: str | os.PathLike, device: str = "cpu", dt: float = DEFAULT_DT) -> Any:
    """Import a ``.nir`` file as a runnable model (``LoadedModel`` of :mod:`spikeport.models.loading`).

    The model is the reference executor (:class:`~spikeport.converter.lower.LoweredModule`);
    ``meta["graph"]`` holds the IR graph.
    """
    from spikeport.converter.lower import lower
    from spikeport.models.loading import LoadedModel

    graph = read_nir(path, dt)
    module = lower(graph, device)
    return LoadedModel(module, str(path), "nir", None, tuple(graph.input_nodes()[0].shape),
                       meta={"graph": graph, "dt": dt})
