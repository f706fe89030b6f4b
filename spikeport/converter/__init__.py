"""Graph IR of spiking networks: trace PyTorch models, transform, execute, and exchange via NIR.

* :mod:`spikeport.converter.ir`: frozen IR node types (one module per family).
* :class:`SpikeGraph`: the graph (networkx), validation, JSON/GraphML I/O.
* :func:`trace`: torch.fx tracing; modules are recognised by the op registry (:mod:`spikeport.ops`) and
  user handlers.
* :mod:`spikeport.converter.passes`: shape propagation, BN folding, dead-node removal, constant folding.
* :func:`lower`: the reference executor (``torch.nn.Module``).
* :mod:`spikeport.converter.nir_io`: NIR export/import (imported lazily; needs the ``nir`` package).
"""

from spikeport.converter.graph import Edge, SpikeGraph
from spikeport.converter.lower import LoweredModule, lower
from spikeport.converter.tracer import register_handler, resolve_handler, trace, unregister_handler

__all__ = ["SpikeGraph", "Edge", "trace", "register_handler", "unregister_handler", "resolve_handler",
           "lower", "LoweredModule"]
