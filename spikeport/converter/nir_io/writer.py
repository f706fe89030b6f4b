"""NIR export: a :class:`SpikeGraph` -> ``nir.NIRGraph`` (and a ``.nir`` file), with its time semantics recorded.

Each node is exported by its op spec (:class:`~spikeport.ops.NirMapping` ``export``) in NIR's forward-Euler
reading at step ``dt``; the graph's metadata records ``source = "spikeport"``, the spikeport version,
``dt``, ``integration = "euler"`` and ``written_for`` (the importer the file targets, ``--nir-for``), so
spikeport reads its own files back exactly whatever the step. For another tool's importer
(:mod:`spikeport.converter.nir_io.consumers`) the nodes are adapted or refused so that tool does not
misread the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from spikeport._io import atomic_path
from spikeport.converter import ir
from spikeport.converter.graph import SpikeGraph
from spikeport.converter.nir_io.consumers import consumer
from spikeport.converter.nir_io.dialects import DEFAULT_DT, check_dt
from spikeport.errors import ConfigError, ExportError, UnsupportedNodeError
from spikeport.ops import NirContext, Refusal, Refused, _nir, find_spec

__all__ = ["to_nir", "write_nir", "export_dt"]


def export_dt(dt: float | None, consumer_name: str = "spikeport") -> float:
    """The step a file for ``consumer_name`` is written with: ``dt``, else the consumer's, else 1e-4 s.

    Raises:
        ConfigError: a non-positive ``dt``, or one the consumer's importer cannot take.
    """
    c = consumer(consumer_name)
    if dt is None:
        return c.dt if c.dt is not None else DEFAULT_DT
    step = check_dt(dt)
    if c.dt_fixed and c.dt is not None and step != c.dt:
        raise ConfigError(f"dt = {step:g} s: {c.name}'s importer always uses dt = {c.dt:g} s; drop the dt option "
                          f"or write for another importer")
    return step


def _export_node(node: ir.IRNode, g: SpikeGraph, dt: float, consumer_name: str) -> tuple[Any, str | None]:
    """``(nir node, None)`` or ``(None, reason it is not representable)``, from the node's op spec."""
    spec = find_spec(type(node))
    if spec is None:
        return None, f"{node.op} has no op spec (register one with spikeport.ops.register_op)"
    mapping = spec.nir
    if isinstance(mapping, Refused):
        return None, mapping.why(node)
    if isinstance(mapping.export, Refused):
        return None, mapping.export.why(node)
    ctx = NirContext(dt, shape=g.shape(node.name), in_shapes=tuple(g.in_shapes(node.name)),
                     options={"consumer": consumer_name, "integration": "euler"})
    try:
        out = mapping.export(node, ctx)
        meta = getattr(out, "metadata", None) or {}
        readers = str(meta.get("readable_by", "")).split(",")
        if consumer_name != "spikeport" and not bool(meta.get("nir_faithful", True)) and consumer_name not in readers:
            return None, (f"{meta.get('nir_note', 'NIR cannot state its dynamics')}; {consumer_name}'s importer "
                          "would misread it (spikeport reads it back exactly from the node's metadata)")
        adapt = consumer(consumer_name).adapt
        return (adapt(node.name, out, dt) if adapt is not None else out), None
    except Refusal as e:
        return None, str(e)


def to_nir(graph: SpikeGraph, dt: float | None = None, *, fold: bool = True, consumer: str = "spikeport") -> Any:
    """Convert ``graph`` to a ``nir.NIRGraph`` (see :mod:`spikeport.converter.nir_io` for the mapping).

    Args:
        graph: the IR graph (not modified).
        dt: seconds per step used to express time constants (default: the consumer's, else 1e-4).
        fold: first fold BatchNorm and scalar multiplies into neighbouring synapses.
        consumer: the importer the file is written for (``spikeport``, ``spikingjelly``, ``nirtorch``,
            ``snntorch``, ``norse``, ``sinabs``); nodes it would misread are refused.

    Raises:
        UnsupportedNodeError: one message listing every node NIR (or the consumer) cannot represent, with the
            reason.
        ConfigError: a bad ``dt`` or consumer.
    """
    from spikeport import __version__
    from spikeport.converter.passes import fold_batchnorm, fold_constants, remove_dead_nodes

    nir = _nir.nir()
    step = export_dt(dt, consumer)
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
        out, why = _export_node(node, g, step, consumer)
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
        target = "NIR" if consumer == "spikeport" else f"NIR for {consumer}'s importer"
        raise UnsupportedNodeError(f"cannot export graph '{g.name}' to {target}: {len(blocking)} node(s) not "
                                   f"representable: {'; '.join(blocking)}. Replace or remove them, or export to "
                                   "another target")
    metadata = {"source": "spikeport", "spikeport_version": __version__, "dt": step, "integration": "euler",
                "written_for": consumer}
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=True)
    except (ValueError, AssertionError, TypeError, KeyError) as e:
        raise ExportError(f"graph '{g.name}': NIR rejected the exported graph ({type(e).__name__}: {e})") from e


def write_nir(graph: SpikeGraph, path: str | os.PathLike, dt: float | None = None, *, fold: bool = True,
              consumer: str = "spikeport") -> Path:
    """Export ``graph`` with :func:`to_nir` and write it atomically to ``path`` (read back as a check)."""
    nir = _nir.nir()
    ng = to_nir(graph, dt, fold=fold, consumer=consumer)
    with atomic_path(path) as tmp:
        nir.write(tmp, ng)
        back = nir.read(tmp)
        if set(back.nodes) != set(ng.nodes):
            raise ExportError(f"{path}: NIR file read back with different nodes")
    return Path(path)
