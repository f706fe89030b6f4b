"""NIR import: a ``nir.NIRGraph`` (in memory or a ``.nir`` file) -> a validated :class:`SpikeGraph`.

The graph's time semantics (dt, integration rule, producer conventions) are resolved first
(:func:`spikeport.converter.nir_io.dialects.resolve`: the caller's options, the file's metadata, the
producer preset, the defaults); each NIR node is then imported by the op spec that declares an importer
for its type under that producer (:class:`~spikeport.ops.NirMapping` ``dialects``), else by the default
reading. What was assumed and every plausibility finding (:mod:`spikeport.converter.nir_io.checks`) go into
``graph.meta["nir"]``, from which reports print them (:func:`import_notes`).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from spikeport.converter import ir
from spikeport.converter.graph import SpikeGraph
from spikeport.converter.nir_io import checks
from spikeport.converter.nir_io.dialects import NirSemantics, resolve
from spikeport.errors import GraphError, SpikeportError
from spikeport.ops import NirContext, NirMapping, _nir, all_specs

__all__ = ["from_nir", "read_nir", "load_nir", "load_nir_model", "importable_types", "import_notes",
           "NIR_OPTIONS"]

_READ_ERRORS = (OSError, KeyError, RuntimeError, TypeError, ValueError, AttributeError, IndexError, AssertionError,
                UnicodeDecodeError, OverflowError, ZeroDivisionError, NotImplementedError)
"""What h5py and nir raise on malformed files (reported as one GraphError line)."""

NIR_OPTIONS = ("dt", "integration", "producer", "reset", "assume")
"""The keyword options of every NIR reading function (``--dt``, ``--integration``, ``--nir-from``,
``--nir-reset``, ``--nir-assume`` on the command line)."""


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


def _importers(producer: str) -> dict[str, tuple[Any, bool]]:
    """``{NIR type: (importer, is the producer's own)}`` from the op specs: the producer's dialect first."""
    base: dict[str, Any] = {}
    own: dict[str, Any] = {}
    for spec in all_specs():
        if not isinstance(spec.nir, NirMapping):
            continue
        for t, fn in spec.nir.imports.items():
            dialects = spec.nir.dialects_of(t)
            if not dialects:
                base[t] = fn
            elif producer in dialects:
                own[t] = fn
    out = {t: (fn, False) for t, fn in base.items()}
    out.update({t: (fn, True) for t, fn in own.items()})
    return out


def _op_importer(node: Any, nir_type: str) -> Any:
    """The importer of the op a spikeport file names in the node's metadata (``spikeport_op``), or None."""
    meta = getattr(node, "metadata", None)
    op = meta.get("spikeport_op") if isinstance(meta, Mapping) else None
    if isinstance(op, bytes):
        op = op.decode()
    if not isinstance(op, str):
        return None
    for spec in all_specs():
        if spec.name == op and isinstance(spec.nir, NirMapping):
            return spec.nir.imports.get(nir_type)
    return None


def importable_types() -> tuple[str, ...]:
    """NIR node types spikeport imports under some reading (from the op registry), plus nested ``NIRGraph``."""
    types: set[str] = set()
    for spec in all_specs():
        if isinstance(spec.nir, NirMapping):
            types |= set(spec.nir.imports)
    return (*sorted(types), "NIRGraph")


def _numpy_fields(name: str, node: Any) -> Any:
    """``node`` with torch tensors in its fields replaced by numpy arrays (a copy; exporters leave tensors)."""
    if node is None:
        raise GraphError(f"NIR node '{name}' is None: the exporter could not map that module (Norse's to_nir "
                         "leaves AvgPool2d/Flatten as None); put a NIR node there (see docs/nir.md)")
    fixed = {}
    for key, value in vars(node).items():
        if hasattr(value, "detach") and hasattr(value, "numpy"):
            fixed[key] = value.detach().cpu().numpy()
    if not fixed:
        return node
    out = copy.copy(node)
    for key, value in fixed.items():
        object.__setattr__(out, key, value)
    return out


def _import_node(name: str, node: Any, sem: NirSemantics, table: Mapping[str, tuple[Any, bool]], n_inputs: int,
                 n_outputs: int, notes: list[str]) -> tuple[list[ir.IRNode], bool]:
    """IR node(s) for one NIR node (a leading Scale node is named ``<name>.gain``), and whether the
    producer's own importer made them; the importer appends its warnings to ``notes``."""
    t = type(node).__name__
    _check_finite(name, node)
    entry = table.get(t)
    named = _op_importer(node, t) if sem.producer == "spikeport" else None
    if named is not None:  # spikeport wrote this node from one of its ops: read it back as that op
        entry = (named, True)
    if entry is None:
        raise GraphError(f"NIR node '{name}' has type '{t}', which spikeport cannot import under the "
                         f"{sem.producer} reading (supported: {', '.join(sorted(table))}, NIRGraph)")
    fn, own = entry
    ctx = NirContext(sem.dt, n_inputs=n_inputs, n_outputs=n_outputs, options={**sem.options(), "notes": notes})
    return fn(name, node, ctx), own


def from_nir(graph: Any, dt: float | None = None, name: str = "nir", *, producer: str | None = None,
             integration: str | None = None, reset: str | None = None,
             assume: Mapping[str, str] | None = None) -> SpikeGraph:
    """Convert a ``nir.NIRGraph`` (in memory, e.g. straight from an exporter) to a validated :class:`SpikeGraph`.

    Args:
        graph: the NIR graph (not modified; torch tensors in node fields are accepted).
        dt: seconds per step (default: the file's metadata, else the producer's preset).
        name: the IR graph's name.
        producer: the producer preset (``spikeport``, ``spikingjelly``, ``nirtorch``, ``snntorch``, ``norse``,
            ``sinabs``, ``lava-dl``; default: the metadata's ``source``, else ``spikingjelly``).
        integration: ``euler`` or ``exact`` (default: the metadata, else the producer's rule).
        reset: a reset mechanism the file cannot state (snnTorch: ``subtract`` (default) or ``zero``).
        assume: other properties the producer's files cannot state (sinabs: ``norm_input`` ``true``/``false``,
            ``min_v_mem`` ``none``/``-threshold``); see :attr:`~spikeport.converter.nir_io.dialects.Dialect.unstated`.

    Nodes with several incoming edges get an ``Add`` node ``<name>.sum`` (NIR sums inputs); edges closing a
    cycle become recurrent (one-step delay). ``graph.meta["nir"]`` holds the semantics used, the
    assumptions and the warnings (see :func:`import_notes`).

    Raises:
        GraphError: unsupported node types (named), unrepresentable parameters (node and field named) or
            shape mismatches (``"a.out [..] -> b.in [..]"``).
        ConfigError: an unknown or contradictory option.
    """
    nir = _nir.nir()
    if not isinstance(graph, nir.NIRGraph):
        raise GraphError(f"expected a nir.NIRGraph, got {type(graph).__name__}")
    sem, warnings = resolve(getattr(graph, "metadata", None), producer=producer, dt=dt, integration=integration,
                            reset=reset, assume=assume)
    flat = _Flat(graph)
    preds: dict[str, list[str]] = {n: [] for n in flat.nodes}
    for a, b in flat.edges:
        preds[b].append(a)
    recurrent = _back_edges(flat)
    g = SpikeGraph(name, {"source": "nir", "dt": sem.dt})
    created: dict[str, list[ir.IRNode]] = {}
    fallback: list[str] = []
    table = _importers(sem.producer)
    n_in = n_out = 0
    for n, raw in flat.nodes.items():
        node = _numpy_fields(n, raw)
        try:
            nodes, own = _import_node(n, node, sem, table, n_in, n_out, warnings)
        except GraphError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, ZeroDivisionError) as e:
            raise GraphError(f"NIR node '{n}' ({type(node).__name__}): invalid parameters "
                             f"({type(e).__name__}: {e})") from None
        n_in += isinstance(nodes[0], ir.Input)
        n_out += isinstance(nodes[-1], ir.Output)
        created[n] = nodes
        if not own and sem.dialect.spike != ">=" and getattr(nodes[-1], "family", "") == "neuron":
            fallback.append(f"'{n}' ({type(node).__name__} -> {nodes[-1].op})")
        flat.nodes[n] = node
    if fallback:
        warnings.append(f"{sem.producer} spikes on v > v_threshold, but spikeport has no {sem.producer} op for "
                        f"NIR node(s) {', '.join(fallback)}: they import with the default reading, which spikes on "
                        "v >= v_threshold (the two differ only when v equals the threshold exactly)")
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
    g.validate()
    warnings += checks.fingerprints(flat.nodes, sem)
    g.meta["nir"] = {"semantics": sem.to_dict(), "assumptions": checks.assumptions(sem), "warnings": warnings,
                     "reach": checks.earliest_spikes(g), "reach_horizon": checks.HORIZON,
                     "fields": {n: checks.field_summary(v) for n, v in flat.nodes.items()
                                if getattr(created[n][-1], "family", "") == "neuron"}}
    return g


def import_notes(graph: SpikeGraph, timesteps: int | None = None) -> tuple[list[str], list[str]]:
    """``(assumptions, warnings)`` of an imported NIR graph, the silent-layer check rendered for ``timesteps``
    (default: the check's horizon). Empty lists for a graph that did not come from NIR."""
    info = graph.meta.get("nir")
    if not isinstance(info, Mapping):
        return [], []
    return list(info.get("assumptions", [])), [*info.get("warnings", []), *checks.reach_warnings(info, timesteps)]


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
    except _READ_ERRORS as e:  # h5py raises OSError/KeyError/RuntimeError/TypeError/... on corrupt files
        raise GraphError(f"{path}: corrupt or unreadable NIR file ({type(e).__name__}: {e})") from None
    if bad:
        raise GraphError(f"{path}: unknown NIR node type(s): {', '.join(bad)} "
                         f"(supported: {', '.join(importable_types())})")


def _read_nir_graph(p: Path) -> Any:
    """Every HDF5 access of :func:`read_nir`: the node-type scan and ``nir.read``."""
    _scan_types(p)
    try:
        return _nir.nir().read(p, type_check=False)
    except _READ_ERRORS as e:  # nir raises assorted errors (KeyError, AssertionError, ValueError) on malformed files
        raise GraphError(f"{p}: cannot read NIR graph ({type(e).__name__}: {e})") from None


def read_nir(path: str | os.PathLike, dt: float | None = None, *, producer: str | None = None,
             integration: str | None = None, reset: str | None = None,
             assume: Mapping[str, str] | None = None) -> SpikeGraph:
    """Read a ``.nir`` file (written by any framework) into a validated :class:`SpikeGraph`.

    The options are those of :func:`from_nir`. The file is first probed in a forked child
    (:func:`spikeport._hdf5_guard.check_hdf5_readable`) because libhdf5 can segfault on corrupt files.

    Raises:
        GraphError: missing file, not HDF5/NIR, a file that crashes libhdf5, unknown node types
            (named), NaN/Inf parameters (node and field named) or an invalid graph.
    """
    import h5py

    from spikeport._hdf5_guard import check_hdf5_readable

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
        return from_nir(ng, dt, name=p.stem, producer=producer, integration=integration, reset=reset, assume=assume)
    except GraphError as e:
        raise GraphError(f"{p}: {e}") from None
    except SpikeportError:
        raise
    except _READ_ERRORS as e:  # a structurally odd graph that nir.read accepted
        raise GraphError(f"{p}: malformed NIR graph ({type(e).__name__}: {e})") from None


def load_nir(source: Any, *, dt: float | None = None, integration: str | None = None, producer: str | None = None,
             reset: str | None = None, assume: Mapping[str, str] | None = None, device: str = "cpu") -> Any:
    """A runnable model of a NIR graph: ``source`` is a ``.nir`` path or a ``nir.NIRGraph`` in memory.

    Returns the reference executor (:class:`~spikeport.converter.lower.LoweredModule`, input ``[T, B, ...]``);
    its ``graph.meta["nir"]`` holds the semantics used, the assumptions and the warnings
    (:func:`import_notes`). The options are those of :func:`from_nir`.
    """
    from spikeport.converter.lower import lower

    if isinstance(source, (str, os.PathLike)):
        graph = read_nir(source, dt=dt, integration=integration, producer=producer, reset=reset, assume=assume)
    else:
        graph = from_nir(source, dt=dt, integration=integration, producer=producer, reset=reset, assume=assume)
    return lower(graph, device)


def load_nir_model(path: Any, device: str = "cpu", **options: Any) -> Any:
    """Import a ``.nir`` file (or an in-memory ``nir.NIRGraph``) as a ``LoadedModel``
    (:mod:`spikeport.models.loading`) for the commands; ``options`` are those of :func:`from_nir`.

    ``meta["graph"]`` holds the IR graph, ``meta["nir"]`` its import notes.
    """
    from spikeport.models.loading import LoadedModel

    unknown = set(options) - set(NIR_OPTIONS)
    if unknown:
        raise TypeError(f"load_nir_model: unknown option(s) {sorted(unknown)}")
    module = load_nir(path, device=device, **options)
    graph = module.graph
    source = str(path) if isinstance(path, (str, os.PathLike)) else "nir.NIRGraph"
    return LoadedModel(module, source, "nir", None, tuple(graph.input_nodes()[0].shape),
                       meta={"graph": graph, "dt": graph.meta["dt"], "nir": graph.meta["nir"]})
