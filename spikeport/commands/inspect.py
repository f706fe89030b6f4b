"""`spikeport inspect`: trace a model into the IR, print its node table, optionally save/draw the graph."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from spikeport.commands._common import ZOO_SEED, add_model_args, load_cli_model, print_table

__all__ = ["add_parser", "run", "node_rows", "draw_graph", "nir_lines"]

_FAMILY_COLORS = {"io": "#d9d9d9", "synapse": "#8ecae6", "norm": "#ffd166", "neuron": "#ef476f", "pool": "#90be6d",
                  "shape": "#cdb4db", "arith": "#f8ad9d", "seed": "#06d6a0"}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("inspect", help="trace a model and show its graph IR",
                       description="Trace MODEL into spikeport's graph IR, print one row per node (op, shapes, "
                                   "parameters, fan-in) and optionally write the graph as GraphML/JSON/PNG.")
    add_model_args(p)
    p.add_argument("--graph", metavar="OUT.graphml", help="write the graph as GraphML")
    p.add_argument("--json", metavar="OUT.json", help="write the graph as spikeport IR JSON (exact, re-loadable)")
    p.add_argument("--png", metavar="OUT.png", help="draw the graph with matplotlib")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=run)


def _shape(s: Any) -> str:
    return "x".join(map(str, s)) if s else "-"


def node_rows(graph: Any) -> list[dict[str, Any]]:
    """One table row per node: name, op, inputs, in/out shape, params, fan-in."""
    rows = []
    for name, node in graph.nodes().items():
        ins = graph.in_shapes(name)
        fan = node.fan_in()
        rows.append({
            "name": name,
            "op": node.op,
            "inputs": ",".join(graph.inputs_of(name)) or "-",
            "in shape": " + ".join(_shape(s) for s in ins) if ins else "-",
            "out shape": _shape(graph.shape(name)),
            "params": f"{node.num_params:,}" if node.num_params else "-",
            "fan-in": str(fan) if fan is not None else "-",
        })
    return rows


def nir_lines(graph: Any, timesteps: int | None = None) -> list[str]:
    """How an imported NIR graph was read, and its warnings, as printable lines (none for other graphs)."""
    from spikeport.converter.nir_io import import_notes

    assumptions, warnings = import_notes(graph, timesteps)
    if not assumptions and not warnings:
        return []
    return ["", *assumptions, *(f"WARNING: {w}" for w in warnings)]


def draw_graph(graph: Any, path: str | Path) -> Path:
    """Draw ``graph`` top-down (layers = longest path from an input) and save a PNG atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    from spikeport._io import atomic_path

    order = graph.topological_order()
    depth: dict[str, int] = {}
    for n in order:
        depth[n] = max((depth[e.src] + 1 for e in graph.in_edges(n) if not e.recurrent and e.src in depth), default=0)
    g = nx.DiGraph()
    for n in order:
        g.add_node(n, layer=depth[n])
    for e in graph.edges():
        g.add_edge(e.src, e.dst)
    rows: dict[int, list[str]] = {}
    for n in order:
        rows.setdefault(depth[n], []).append(n)
    pos = {n: (i - (len(r) - 1) / 2.0, -float(d)) for d, r in rows.items() for i, n in enumerate(r)}
    width = max(6.0, 2.2 * max(len(r) for r in rows.values()))
    height = max(4.0, 0.8 * len(rows))
    fig, ax = plt.subplots(figsize=(min(width, 40.0), min(height, 80.0)))
    colors = [_FAMILY_COLORS.get(graph.node(n).family, "#ffffff") for n in g.nodes]
    labels = {n: f"{n}\n{graph.node(n).op} {_shape(graph.shape(n))}" for n in g.nodes}
    nx.draw_networkx(g, pos, ax=ax, node_color=colors, labels=labels, font_size=6, node_size=900,
                     node_shape="s", arrowsize=8, edge_color="#555555")
    ax.set_title(f"{graph.name}: {len(order)} nodes")
    ax.axis("off")
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    finally:
        plt.close(fig)
    return Path(path)


def run(args: argparse.Namespace) -> int:
    import torch

    from spikeport._io import check_overwrite
    from spikeport.converter import trace

    outs = [p for p in (args.graph, args.json, args.png) if p]
    for p in outs:
        check_overwrite(p, args.force)
    torch.manual_seed(ZOO_SEED)  # a zoo name gets the same fresh weights as in export and verify
    loaded = load_cli_model(args)
    graph = loaded.meta.get("graph") if loaded.kind == "nir" else None
    if graph is None:
        shape = args.input_shape or loaded.input_shape
        if shape is None:
            from spikeport.errors import ConfigError

            raise ConfigError(f"{args.model}: input shape unknown; pass --input-shape C,H,W (e.g. 1,8,8)")
        graph = trace(loaded.model, shape)
    rows = node_rows(graph)
    total = sum(n.num_params for n in graph.nodes().values())
    print(print_table(rows))
    print(f"\n{graph.name}: {len(rows)} nodes, {len(graph.edges())} edges, {total:,} parameters, "
          f"input {_shape(graph.input_nodes()[0].shape)} per timestep")
    for line in nir_lines(graph):
        print(line)
    if args.graph:
        print(f"wrote {graph.write_graphml(args.graph)}")
    if args.json:
        print(f"wrote {graph.write_json(args.json)}")
    if args.png:
        print(f"wrote {draw_graph(graph, args.png)}")
    return 0
