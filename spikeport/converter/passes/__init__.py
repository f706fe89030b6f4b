"""Graph passes, one per module. Each is ``fn(graph, ...) -> (new_graph, modified)`` and never mutates its input.

* :func:`propagate_shapes` (``shapes.py``): run a sample through the executor, record ``meta["sample_shape"]``.
* :func:`fold_batchnorm` (``fold_bn.py``): fold BatchNorm into the preceding Conv/Linear.
* :func:`remove_dead_nodes` (``dead_nodes.py``): drop nodes that reach no output.
* :func:`fold_constants` (``const_fold.py``): fold scalar multiplies (Scale) into neighbours.
* :func:`run_passes`: apply a list of passes in order (default: fold_bn, const_fold, dead nodes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from spikeport.converter.graph import SpikeGraph
from spikeport.converter.passes.const_fold import fold_constants
from spikeport.converter.passes.dead_nodes import remove_dead_nodes
from spikeport.converter.passes.fold_bn import fold_batchnorm
from spikeport.converter.passes.shapes import propagate_shapes

__all__ = ["PassResult", "Pass", "propagate_shapes", "fold_batchnorm", "remove_dead_nodes", "fold_constants",
           "DEFAULT_PASSES", "run_passes"]

PassResult = tuple[SpikeGraph, bool]
Pass = Callable[[SpikeGraph], PassResult]

DEFAULT_PASSES: tuple[Pass, ...] = (fold_batchnorm, fold_constants, remove_dead_nodes)


def run_passes(graph: SpikeGraph, passes: Sequence[Pass] = DEFAULT_PASSES) -> PassResult:
    """Apply ``passes`` in order; returns the final graph and whether any pass changed it."""
    modified = False
    for p in passes:
        graph, m = p(graph)
        modified = modified or m
    return graph, modified
