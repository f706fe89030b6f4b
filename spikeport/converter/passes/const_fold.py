r"""Fold scalar multiplies (:class:`~spikeport.converter.ir.Scale` with a python-float factor).

Rules, applied until nothing changes:

1. ``Scale(1.0)`` is removed.
2. ``Scale(s1) -> Scale(s2)`` (first has a single consumer) becomes ``Scale(s1 * s2)``.
3. ``synapse -> Scale(s)`` (synapse has a single consumer): :math:`W' = sW`, :math:`b' = sb`.
4. ``Scale(s) -> synapse`` (scale has a single consumer): :math:`W' = sW` (bias unchanged).

Products are formed in float64 and cast back, so results match the unfolded graph
to floating-point rounding (not bit for bit).
"""

from __future__ import annotations

import numpy as np

from spikeport.converter import ir
from spikeport.converter.graph import SpikeGraph
from spikeport.converter.passes._util import bypass, sole_user

__all__ = ["fold_constants"]

_SYNAPSES = (ir.Linear, ir.Conv1d, ir.Conv2d, ir.ConvTranspose2d)


def _scaled(syn: ir.Linear | ir.Conv1d | ir.Conv2d | ir.ConvTranspose2d, s: float, bias: bool) -> ir.IRNode:
    w = (syn.weight.astype(np.float64) * s).astype(syn.weight.dtype)
    b = syn.bias
    if bias and b is not None:
        b = (b.astype(np.float64) * s).astype(b.dtype)
    return syn.replace(weight=w, bias=b)


def _note(g: SpikeGraph, name: str, scale: str) -> None:
    meta = g.node_meta(name)
    meta["folded_scale"] = [*meta.get("folded_scale", []), scale]


def _fold_one(g: SpikeGraph) -> bool:
    for sc in g.nodes_of_type(ir.Scale):
        if not isinstance(sc.scale, float):
            continue
        (edge,) = g.in_edges(sc.name)
        if sc.scale == 1.0:
            bypass(g, sc.name)
            return True
        src = g.node(edge.src)
        if not edge.recurrent and sole_user(g, src.name) == sc.name:
            if isinstance(src, ir.Scale) and isinstance(src.scale, float):
                g.replace(src.replace(scale=src.scale * sc.scale))
                bypass(g, sc.name)
                return True
            if isinstance(src, _SYNAPSES):
                g.replace(_scaled(src, sc.scale, bias=True))
                _note(g, src.name, sc.name)
                bypass(g, sc.name)
                return True
        dst = sole_user(g, sc.name)
        dst_node = g.node(dst) if dst is not None else None
        if dst is not None and isinstance(dst_node, _SYNAPSES) and not edge.recurrent:
            g.replace(_scaled(dst_node, sc.scale, bias=False))
            _note(g, dst, sc.name)
            bypass(g, sc.name)
            return True
    return False


def fold_constants(graph: SpikeGraph) -> tuple[SpikeGraph, bool]:
    """Return ``(new_graph, modified)`` with scalar multiplies folded."""
    g = graph.copy()
    modified = False
    while _fold_one(g):
        modified = True
    return g, modified
