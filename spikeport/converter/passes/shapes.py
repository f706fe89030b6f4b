"""Shape propagation on a sample input (fx ``ShapeProp`` style).

Runs the graph's reference executor on a sample ``[T, B, *input_shape]`` with
forward hooks on every node and records, per node, ``meta["sample_shape"]``
(per-timestep output shape observed) and ``meta["dtype"]``. A node whose
observed shape differs from the statically inferred ``meta["shape"]``, or that
fails to run, raises a GraphError naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from spikeport.converter.graph import SpikeGraph
from spikeport.errors import GraphError

__all__ = ["propagate_shapes"]


def propagate_shapes(graph: SpikeGraph, sample: torch.Tensor | Sequence[torch.Tensor] | None = None, *,
                     timesteps: int = 1, batch: int = 1, device: str | torch.device = "cpu"
                     ) -> tuple[SpikeGraph, bool]:
    """Return ``(new_graph, True)`` annotated with observed shapes.

    Args:
        graph: the graph (not modified).
        sample: input tensor(s) ``[T, B, *shape]``; default uniform noise with ``timesteps`` and ``batch``.
        timesteps, batch: sizes of the default sample.
        device: where to run.

    Raises:
        GraphError: a node fails on the sample or produces an unexpected shape (names the node).
    """
    from spikeport.converter.lower import LoweredModule

    g = graph.copy().validate()
    exe = LoweredModule(g).to(device)
    if sample is None:
        gen = torch.Generator().manual_seed(0)
        xs = [torch.rand(timesteps, batch, *n.shape, generator=gen) for n in g.input_nodes()]
    else:
        xs = [sample] if isinstance(sample, torch.Tensor) else list(sample)
    seen: dict[str, Any] = {}
    hooks = []
    for name, mod in exe.named_node_modules():
        hooks.append(mod.register_forward_hook(
            lambda m, args, out, name=name: seen.__setitem__(name, (tuple(out.shape[2:]), str(out.dtype)))))
    try:
        with torch.no_grad():
            exe(*[x.to(device) for x in xs])
    finally:
        for h in hooks:
            h.remove()
    for name in g.topological_order():
        if name not in seen:
            continue
        shape, dtype = seen[name]
        meta = g.node_meta(name)
        if tuple(meta["shape"]) != shape:
            raise GraphError(f"node '{name}' ({g.node(name).op}): sample output shape {list(shape)} differs from the "
                             f"inferred shape {list(meta['shape'])}")
        meta["sample_shape"], meta["dtype"] = shape, dtype
    return g, True
