r"""Fold inference BatchNorm into the preceding synapse.

For a Conv1d/Conv2d/Linear (or ConvTranspose2d with ``groups=1``) whose only
consumer is a :class:`~spikeport.converter.ir.BatchNorm` over its output
channels, with :math:`a_c = \gamma_c / \sqrt{\sigma^2_c + \epsilon}`:

.. math:: W'_c = a_c W_c, \qquad b'_c = a_c (b_c - \mu_c) + \beta_c

computed in float64 and cast back to the weight dtype. The BatchNorm node is
removed and the synapse records ``meta["folded_bn"]``.
"""

from __future__ import annotations

from typing import TypeGuard

import numpy as np

from spikeport.converter import ir
from spikeport.converter.graph import SpikeGraph
from spikeport.converter.passes._util import bypass, sole_user

__all__ = ["fold_batchnorm"]


def _foldable(syn: ir.IRNode, g: SpikeGraph) -> TypeGuard[ir.Linear | ir.Conv1d | ir.Conv2d | ir.ConvTranspose2d]:
    if isinstance(syn, ir.Linear):
        return len(g.shape(syn.name)) == 1  # BN channel axis == features only for per-step shape (F,)
    if isinstance(syn, ir.ConvTranspose2d):
        return syn.groups == 1
    return isinstance(syn, (ir.Conv1d, ir.Conv2d))


def fold_batchnorm(graph: SpikeGraph) -> tuple[SpikeGraph, bool]:
    """Return ``(new_graph, modified)`` with every foldable BatchNorm merged into its synapse."""
    g = graph.copy()
    g.infer_shapes()
    modified = False
    for bn in g.nodes_of_type(ir.BatchNorm):
        edges = g.in_edges(bn.name)
        if len(edges) != 1 or edges[0].recurrent:
            continue
        syn = g.node(edges[0].src)
        if not _foldable(syn, g) or sole_user(g, syn.name) != bn.name:
            continue
        a, shift = bn.scale_shift()
        w = syn.weight.astype(np.float64)
        axis = 1 if isinstance(syn, ir.ConvTranspose2d) else 0
        bshape = [1] * w.ndim
        bshape[axis] = -1
        new_w = (w * a.reshape(bshape)).astype(syn.weight.dtype)
        b0 = np.zeros_like(a) if syn.bias is None else syn.bias.astype(np.float64)
        new_b = (a * b0 + shift).astype(syn.weight.dtype)
        g.replace(syn.replace(weight=new_w, bias=new_b))
        meta = g.node_meta(syn.name)
        meta["folded_bn"] = [*meta.get("folded_bn", []), bn.name]
        bypass(g, bn.name)
        modified = True
    return g, modified
