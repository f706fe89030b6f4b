"""The built-in op specs (imported once by the registry; each family file registers its ops)."""

from spikeport.ops import frameworks, layers, methods, neurons, synapses

__all__ = ["frameworks", "layers", "methods", "neurons", "synapses"]  # imported for their registrations
