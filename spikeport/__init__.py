"""spikeport: from trained spiking neural networks to neuromorphic deployment.

The flow is model (zoo, user module, checkpoint or NIR file) -> ``converter``
(fx trace -> networkx IR -> passes) -> ``energy`` (record on data -> ops ->
energy -> report) and ``targets`` (onnx | lava | nir | torch reference).
"""

from spikeport.errors import SpikeportError

__version__ = "0.1.0"

__all__ = ["SpikeportError", "__version__"]
