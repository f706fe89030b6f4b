"""Remove nodes whose output reaches no Output node (Input nodes are kept: they define the signature)."""

from __future__ import annotations

import networkx as nx

from spikeport.converter import ir
from spikeport.converter.graph import SpikeGraph

__all__ = ["remove_dead_nodes"]


def remove_dead_nodes(graph: SpikeGraph) -> tuple[SpikeGraph, bool]:
    """Return ``(new_graph, modified)`` without dead nodes."""
    g = graph.copy()
    view = g.nx
    live: set[str] = set()
    for out in g.output_nodes():
        live.add(out.name)
        live |= nx.ancestors(view, out.name)
    dead = [n for n in g.topological_order() if n not in live and not isinstance(g.node(n), ir.Input)]
    for n in dead:
        g.remove(n)
    if dead:
        g.meta["removed_dead_nodes"] = [*g.meta.get("removed_dead_nodes", []), *dead]
    return g, bool(dead)
