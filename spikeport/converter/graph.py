"""The IR graph: :class:`SpikeGraph`, a thin typed wrapper over ``networkx.DiGraph``.

Nodes are keyed by name and carry the frozen IR node (``data["node"]``), a
``meta`` dict of annotations (documented keys below) and the insertion index
(``data["idx"]``, which makes the topological order stable). Edges carry the
destination input ``ports`` (a tuple: the same source may feed several ports,
as in ``x + x``) and a ``recurrent`` flag: a recurrent edge delivers the
source's output of the *previous* timestep (zeros at t = 0) and is the only
way a cycle is allowed.

Node ``meta`` keys:

* ``"shape"``: per-timestep output shape (tuple), kept in sync by
  :meth:`SpikeGraph.infer_shapes` (run by :meth:`SpikeGraph.validate`).
* ``"sample_shape"``: output shape observed on a sample input
  (:func:`spikeport.converter.passes.propagate_shapes`).
* ``"module"``: qualified name of the torch module it was traced from.
* ``"module_type"``: that module's class (``package.Class``).

Graph ``meta`` holds free-form provenance (e.g. ``"source"``, ``"input_shape"``).
Serialisation: :meth:`SpikeGraph.to_json` (exact, primary) and GraphML
(:meth:`SpikeGraph.write_graphml`, node parameters embedded as JSON text, for
graph viewers); both round-trip every node type.
"""

from __future__ import annotations

import difflib
import heapq
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, overload
from xml.etree import ElementTree

import networkx as nx

from spikeport._io import atomic_path, atomic_write_text
from spikeport.converter.ir import Input, InputShapeError, IRNode, Output, Shape
from spikeport.converter.ir.node import decode_value, encode_value
from spikeport.errors import GraphError

__all__ = ["SpikeGraph", "Edge", "IR_FORMAT", "IR_VERSION"]

log = logging.getLogger(__name__)

_Node = TypeVar("_Node", bound=IRNode)

IR_FORMAT = "spikeport.ir"
IR_VERSION = 1


class Edge(NamedTuple):
    """One connection: ``src``'s output feeds input ``port`` of ``dst``."""

    src: str
    dst: str
    port: int
    recurrent: bool = False


class SpikeGraph:
    """A graph of IR nodes (see module docstring).

    Args:
        name: graph name (e.g. the model name).
        meta: graph-level annotations.
    """

    def __init__(self, name: str = "graph", meta: dict[str, Any] | None = None) -> None:
        self.name = name
        self.meta: dict[str, Any] = dict(meta or {})
        self._g = nx.DiGraph()
        self._next_idx = 0
        self._pending: list[tuple[str, str, int]] = []  # recurrent edges whose source is not added yet

    # ------------------------------------------------------------ building
    def add(self, node: IRNode, inputs: Sequence[str] = (), *, recurrent: Sequence[bool] | None = None,
            meta: dict[str, Any] | None = None) -> IRNode:
        """Add ``node`` fed by ``inputs`` (one source name per input port, in port order).

        Raises:
            GraphError: duplicate name or unknown input.
        """
        if not isinstance(node, IRNode):
            raise GraphError(f"cannot add {node!r} to graph '{self.name}': not an IR node")
        if node.name in self._g:
            raise GraphError(f"graph '{self.name}' already has a node named '{node.name}'; node names must be unique")
        rec = list(recurrent) if recurrent is not None else [False] * len(inputs)
        if len(rec) != len(inputs):
            raise GraphError(f"node '{node.name}': 'recurrent' needs one flag per input")
        for src, r in zip(inputs, rec, strict=True):
            if src not in self._g and not (r or src == node.name):
                raise GraphError(f"node '{node.name}': input '{src}' is not in graph '{self.name}'{self._close(src)}")
        self._g.add_node(node.name, node=node, meta=dict(meta or {}), idx=self._next_idx)
        self._next_idx += 1
        for port, (src, r) in enumerate(zip(inputs, rec, strict=True)):
            if r and src not in self._g:
                self._pending.append((src, node.name, port))
            else:
                self.add_edge(src, node.name, port, recurrent=r)
        for src, dst, port in [p for p in self._pending if p[0] == node.name]:
            self._pending.remove((src, dst, port))
            if dst in self._g:
                self.add_edge(src, dst, port, recurrent=True)
        return node

    def add_edge(self, src: str, dst: str, port: int, *, recurrent: bool = False) -> None:
        """Connect ``src`` to input ``port`` of ``dst`` (both must exist unless ``recurrent``)."""
        for n in (src, dst):
            if n not in self._g:
                raise GraphError(f"edge {src} -> {dst}: node '{n}' is not in graph '{self.name}'{self._close(n)}")
        if self._g.has_edge(src, dst):
            data = self._g.edges[src, dst]
            if port in data["ports"]:
                raise GraphError(f"edge {src} -> {dst}: port {port} is already connected")
            if bool(data["recurrent"]) != bool(recurrent):
                raise GraphError(f"edge {src} -> {dst}: mixes recurrent and feed-forward connections")
            data["ports"] = tuple(sorted((*data["ports"], int(port))))
        else:
            self._g.add_edge(src, dst, ports=(int(port),), recurrent=bool(recurrent))

    def replace(self, node: IRNode) -> None:
        """Swap in ``node`` for the node of the same name (edges and meta kept; use on copies)."""
        self._require(node.name)
        self._g.nodes[node.name]["node"] = node

    def remove(self, name: str) -> None:
        """Remove node ``name`` and its edges."""
        self._require(name)
        self._g.remove_node(name)

    def rewire(self, old: str, new: str) -> None:
        """Make every consumer of ``old`` read ``new`` instead (same ports)."""
        self._require(old)
        self._require(new)
        for _, dst, data in list(self._g.out_edges(old, data=True)):
            self._g.remove_edge(old, dst)
            for p in data["ports"]:
                self.add_edge(new, dst, p, recurrent=data["recurrent"])

    def copy(self) -> SpikeGraph:
        """Independent copy (IR nodes are frozen and shared; meta dicts are copied)."""
        g = SpikeGraph(self.name, _deepish(self.meta))
        g._g = nx.DiGraph()
        for n, d in self._g.nodes(data=True):
            g._g.add_node(n, node=d["node"], meta=_deepish(d["meta"]), idx=d["idx"])
        for a, b, d in self._g.edges(data=True):
            g._g.add_edge(a, b, ports=tuple(d["ports"]), recurrent=d["recurrent"])
        g._next_idx = self._next_idx
        g._pending = list(self._pending)
        return g

    # ------------------------------------------------------------ access
    @property
    def nx(self) -> nx.DiGraph:
        """Read-only view of the underlying ``networkx.DiGraph``."""
        return self._g.copy(as_view=True)

    def __contains__(self, name: object) -> bool:
        return name in self._g

    def __len__(self) -> int:
        return self._g.number_of_nodes()

    def __iter__(self) -> Iterator[str]:
        return iter(self.topological_order())

    def __repr__(self) -> str:
        return f"SpikeGraph(name={self.name!r}, nodes={len(self)}, edges={self._g.number_of_edges()})"

    def node(self, name: str) -> IRNode:
        """The IR node called ``name`` (GraphError with close matches if missing)."""
        self._require(name)
        return self._g.nodes[name]["node"]

    def nodes(self) -> dict[str, IRNode]:
        """All nodes by name, in topological order."""
        return {n: self._g.nodes[n]["node"] for n in self.topological_order()}

    @overload
    def nodes_of_type(self, node_type: type[_Node], /) -> list[_Node]: ...
    @overload
    def nodes_of_type(self, *types: type) -> list[IRNode]: ...
    def nodes_of_type(self, *types: type) -> list[Any]:
        """Nodes that are instances of any of ``types``, in topological order."""
        return [n for n in self.nodes().values() if isinstance(n, types)]

    def node_meta(self, name: str) -> dict[str, Any]:
        """The (mutable) annotation dict of node ``name``."""
        self._require(name)
        return self._g.nodes[name]["meta"]

    def in_edges(self, name: str) -> list[Edge]:
        """Incoming edges of ``name`` sorted by port."""
        self._require(name)
        out = [Edge(src, name, p, d["recurrent"])
               for src, _, d in self._g.in_edges(name, data=True) for p in d["ports"]]
        return sorted(out, key=lambda e: e.port)

    def inputs_of(self, name: str) -> list[str]:
        """Source names feeding ``name``, one per input port, in port order."""
        return [e.src for e in self.in_edges(name)]

    def users(self, name: str) -> list[Edge]:
        """Outgoing edges of ``name`` (consumers and their ports)."""
        self._require(name)
        out = [Edge(name, dst, p, d["recurrent"])
               for _, dst, d in self._g.out_edges(name, data=True) for p in d["ports"]]
        return sorted(out, key=lambda e: (self._g.nodes[e.dst]["idx"], e.port))

    def edges(self) -> list[Edge]:
        """Every edge, grouped by destination in topological order."""
        return [e for n in self.topological_order() for e in self.in_edges(n)]

    def input_nodes(self) -> list[Input]:
        """The Input nodes sorted by ``index``."""
        return sorted((n for n in self.nodes().values() if isinstance(n, Input)), key=lambda n: n.index)

    def output_nodes(self) -> list[Output]:
        """The Output nodes sorted by ``index``."""
        return sorted((n for n in self.nodes().values() if isinstance(n, Output)), key=lambda n: n.index)

    @property
    def has_recurrence(self) -> bool:
        return any(d["recurrent"] for _, _, d in self._g.edges(data=True))

    def topological_order(self) -> list[str]:
        """Node names in a stable topological order (insertion order breaks ties; recurrent edges ignored).

        Raises:
            GraphError: a cycle made of non-recurrent edges (names its nodes).
        """
        if self._pending:
            src, dst, port = self._pending[0]
            raise GraphError(f"graph '{self.name}': recurrent input '{src}' of node '{dst}' (port {port}) "
                             "was never added")
        g = self._g
        indeg = dict.fromkeys(g, 0)
        for _, b, d in g.edges(data=True):
            if not d["recurrent"]:
                indeg[b] += 1
        heap = [(g.nodes[n]["idx"], n) for n, k in indeg.items() if k == 0]
        heapq.heapify(heap)
        order: list[str] = []
        while heap:
            _, n = heapq.heappop(heap)
            order.append(n)
            for _, m, d in g.out_edges(n, data=True):
                if d["recurrent"]:
                    continue
                indeg[m] -= 1
                if indeg[m] == 0:
                    heapq.heappush(heap, (g.nodes[m]["idx"], m))
        if len(order) != len(g):
            ff = nx.DiGraph((a, b) for a, b, d in g.edges(data=True) if not d["recurrent"])
            cycle = nx.find_cycle(ff)
            path = " -> ".join([e[0] for e in cycle] + [cycle[0][0]])
            raise GraphError(f"graph '{self.name}' has a cycle {path}; mark the back edge as recurrent "
                             "(recurrent=True) if it is meant as a one-step delay")
        return order

    # ------------------------------------------------------------ shapes
    def shape(self, name: str) -> Shape:
        """Per-timestep output shape of ``name`` (inferred on demand)."""
        meta = self.node_meta(name)
        if "shape" not in meta:
            self.infer_shapes()
        return tuple(meta["shape"])

    def in_shapes(self, name: str) -> list[Shape]:
        """Per-timestep input shapes of ``name`` in port order."""
        return [self.shape(src) for src in self.inputs_of(name)]

    def infer_shapes(self) -> dict[str, Shape]:
        """Infer every node's output shape from the Input shapes; stores ``meta["shape"]``.

        Raises:
            GraphError: an edge whose shapes do not fit, reported as
                ``"a.out [..] -> b.in [..]"``, or a node with the wrong input count.
        """
        shapes: dict[str, Shape] = {}
        order = self.topological_order()
        pending_rec: list[str] = []
        for name in order:
            node = self.node(name)
            edges = self.in_edges(name)
            self._check_ports(node, edges)
            ins: list[Shape] = []
            for e in edges:
                if e.src in shapes:
                    ins.append(shapes[e.src])
                else:  # recurrent source not computed yet: assume the first known input's shape, check later
                    known = [shapes[x.src] for x in edges if x.src in shapes]
                    ins.append(known[0] if known else ())
                    pending_rec.append(name)
            shapes[name] = self._apply(node, edges, ins, shapes)
        for name in pending_rec:
            edges = self.in_edges(name)
            self._apply(self.node(name), edges, [shapes[e.src] for e in edges], shapes)
        for name, s in shapes.items():
            self._g.nodes[name]["meta"]["shape"] = s
        return shapes

    def _apply(self, node: IRNode, edges: list[Edge], ins: list[Shape], shapes: dict[str, Shape]) -> Shape:
        try:
            return node.out_shape(ins)
        except InputShapeError as e:
            src = edges[e.port].src if e.port < len(edges) else "?"
            port = f"[{e.port}]" if len(edges) > 1 else ""
            raise GraphError(f"shape mismatch on edge {src}.out {list(e.got)} -> {node.name}.in{port} {e.expected} "
                             f"({node.op}: {e.reason})") from None

    @staticmethod
    def _check_ports(node: IRNode, edges: list[Edge]) -> None:
        ports = [e.port for e in edges]
        if ports != list(range(len(ports))):
            raise GraphError(f"node '{node.name}' ({node.op}): input ports {ports} are not 0..{len(ports) - 1}")
        n = node.n_inputs
        if (n is None and len(ports) < 2) or (n is not None and len(ports) != n):
            want = "at least 2" if n is None else str(n)
            raise GraphError(f"node '{node.name}' ({node.op}) takes {want} input(s), has {len(ports)} incoming edge(s)")

    # ------------------------------------------------------------ validation
    def validate(self) -> SpikeGraph:
        """Check the graph (lint) and infer shapes; returns ``self``.

        Checks: node keys equal node names; at least one Input and one Output;
        no cycle except through recurrent edges; every node reachable from an
        input; input ports complete; every edge shape-consistent.

        Raises:
            GraphError: the first problem found, naming the node(s)/edge.
        """
        for n, d in self._g.nodes(data=True):
            node = d.get("node")
            if not isinstance(node, IRNode):
                raise GraphError(f"graph '{self.name}': node '{n}' holds no IR node")
            if node.name != n:
                raise GraphError(f"graph '{self.name}': node stored under '{n}' is named '{node.name}'")
        inputs = [n for n, d in self._g.nodes(data=True) if isinstance(d["node"], Input)]
        if not inputs:
            raise GraphError(f"graph '{self.name}' has no Input node")
        if not any(isinstance(d["node"], Output) for _, d in self._g.nodes(data=True)):
            raise GraphError(f"graph '{self.name}' has no Output node")
        for kind in (Input, Output):
            idx = sorted(d["node"].index for _, d in self._g.nodes(data=True) if isinstance(d["node"], kind))
            if idx != list(range(len(idx))):
                raise GraphError(f"graph '{self.name}': {kind.__name__} indices {idx} are not 0..{len(idx) - 1}")
        self.topological_order()  # raises on illegal cycles
        reach = set(inputs)
        for i in inputs:
            reach |= nx.descendants(self._g, i)
        orphans = [n for n in self._g if n not in reach]
        if orphans:
            raise GraphError(f"graph '{self.name}': node(s) {', '.join(sorted(orphans))} are not reachable from any "
                             "input; connect them or remove them (passes.remove_dead_nodes)")
        self.infer_shapes()
        return self

    # ------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (arrays encoded exactly; see :func:`ir.node.encode_value`)."""
        nodes = []
        for n in self.topological_order():
            d = self._g.nodes[n]
            nodes.append({"node": d["node"].to_jsonable(), "meta": _json_meta(d["meta"], n)})
        edges = [{"src": e.src, "dst": e.dst, "port": e.port, **({"recurrent": True} if e.recurrent else {})}
                 for e in self.edges()]
        return {"format": IR_FORMAT, "version": IR_VERSION, "name": self.name, "meta": _json_meta(self.meta, "graph"),
                "nodes": nodes, "edges": edges}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "data") -> SpikeGraph:
        """Inverse of :meth:`to_dict` (``source`` names the file in errors)."""
        if not isinstance(data, dict) or data.get("format") != IR_FORMAT:
            raise GraphError(f"{source}: not a spikeport IR graph (missing format '{IR_FORMAT}')")
        if data.get("version") != IR_VERSION:
            raise GraphError(f"{source}: IR version {data.get('version')!r} is not supported (expected {IR_VERSION})")
        g = cls(str(data.get("name", "graph")), _unjson_meta(data.get("meta", {})))
        for entry in data.get("nodes", []):
            try:
                node = IRNode.from_jsonable(entry["node"])
            except GraphError as e:
                raise GraphError(f"{source}: {e}") from None
            except (KeyError, TypeError) as e:
                raise GraphError(f"{source}: malformed node entry {str(entry)[:80]!r} ({e})") from None
            g._g.add_node(node.name, node=node, meta=_unjson_meta(entry.get("meta", {})), idx=g._next_idx)
            g._next_idx += 1
        for edge in data.get("edges", []):
            try:
                g.add_edge(edge["src"], edge["dst"], int(edge["port"]), recurrent=bool(edge.get("recurrent", False)))
            except (KeyError, TypeError, ValueError) as err:
                raise GraphError(f"{source}: malformed edge {edge!r} ({err})") from None
            except GraphError as err:
                raise GraphError(f"{source}: {err}") from None
        return g

    def to_json(self, indent: int | None = 1) -> str:
        """The graph as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str, source: str = "json") -> SpikeGraph:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise GraphError(f"{source}: not valid JSON ({e.msg} at line {e.lineno})") from None
        return cls.from_dict(data, source)

    def write_json(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_json` to ``path`` atomically."""
        return atomic_write_text(path, self.to_json())

    @classmethod
    def read_json(cls, path: str | os.PathLike) -> SpikeGraph:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise GraphError(f"{p}: no such IR file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise GraphError(f"{p}: cannot read IR JSON ({e})") from None
        return cls.from_json(text, str(p))

    def write_graphml(self, path: str | os.PathLike) -> Path:
        """Write GraphML atomically (node attrs: ``op``, ``shape``, ``ir`` = node JSON, ``meta`` = JSON)."""
        g = nx.DiGraph(name=self.name, format=IR_FORMAT, version=IR_VERSION,
                       meta=json.dumps(_json_meta(self.meta, "graph")))
        for n in self.topological_order():
            d = self._g.nodes[n]
            shape = d["meta"].get("shape")
            g.add_node(n, op=d["node"].op, idx=int(d["idx"]), ir=json.dumps(d["node"].to_jsonable()),
                       meta=json.dumps(_json_meta(d["meta"], n)),
                       shape="x".join(map(str, shape)) if shape is not None else "")
        for a, b, d in self._g.edges(data=True):
            g.add_edge(a, b, ports=",".join(map(str, d["ports"])), recurrent=bool(d["recurrent"]))
        with atomic_path(path) as tmp:
            nx.write_graphml(g, tmp)
        return Path(path)

    @classmethod
    def read_graphml(cls, path: str | os.PathLike) -> SpikeGraph:
        p = Path(path)
        if not p.is_file():
            raise GraphError(f"{p}: no such GraphML file")
        try:
            g = nx.read_graphml(p)
        except (ElementTree.ParseError, nx.NetworkXException, KeyError, ValueError, OSError) as e:
            raise GraphError(f"{p}: not a readable GraphML file ({type(e).__name__}: {e})") from None
        if g.graph.get("format") != IR_FORMAT:
            raise GraphError(f"{p}: GraphML was not written by spikeport (missing format '{IR_FORMAT}')")
        out = cls(str(g.graph.get("name", "graph")), _unjson_meta(json.loads(g.graph.get("meta", "{}"))))
        for n in sorted(g.nodes, key=lambda n: int(g.nodes[n].get("idx", 0))):
            d = g.nodes[n]
            try:
                node = IRNode.from_jsonable(json.loads(d["ir"]))
            except (KeyError, json.JSONDecodeError) as e:
                raise GraphError(f"{p}: node '{n}' has no valid 'ir' attribute ({e})") from None
            out._g.add_node(node.name, node=node, meta=_unjson_meta(json.loads(d.get("meta", "{}"))),
                            idx=out._next_idx)
            out._next_idx += 1
        for a, b, d in g.edges(data=True):
            for port in str(d.get("ports", "0")).split(","):
                out.add_edge(a, b, int(port), recurrent=bool(d.get("recurrent", False)))
        return out

    # ------------------------------------------------------------ helpers
    def _require(self, name: str) -> None:
        if name not in self._g:
            raise GraphError(f"graph '{self.name}' has no node '{name}'{self._close(name)}")

    def _close(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), [str(n) for n in self._g], n=3, cutoff=0.6)
        return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def _deepish(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in d.items()}


def _json_meta(meta: dict[str, Any], owner: str) -> dict[str, Any]:
    out = {}
    for k, v in meta.items():
        enc = encode_value(v)
        try:
            json.dumps(enc)
        except (TypeError, ValueError):
            log.debug("meta key %r of %s is not JSON-serialisable; not saved", k, owner)
            continue
        out[k] = enc
    return out


def _unjson_meta(meta: dict[str, Any]) -> dict[str, Any]:
    out = {k: decode_value(v) for k, v in dict(meta).items()}
    for k in ("shape", "sample_shape", "input_shape"):
        if isinstance(out.get(k), list):
            out[k] = tuple(out[k])
    return out
