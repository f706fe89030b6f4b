"""Op specs and module adapters for models built with other SNN frameworks (one file per framework).

* :mod:`.spikingjelly`: SpikingJelly 2.0 neurons (as the built-in IF/LIF/PLIF ops) and ``layer`` wrappers;
* :mod:`.snntorch`: ``SnnTorchLeaky``, ``SnnTorchSynaptic``;
* :mod:`.norse`: ``NorseLIF``, ``NorseLIFBox``, ``SequentialState``;
* :mod:`.sinabs`: ``SinabsLIF`` (IAF/LIF and their Squeeze forms), ``SumPool2d``;
* :mod:`.lava_dl`: ``SlayerCUBA`` and the SLAYER CUBA blocks;
* :mod:`._shared`: the generic ``Delay`` and ``Quantize`` ops.

The built-in families are imported first (these ops build on them). None of these files imports
its framework: adapters name the framework's classes by qualified name and read the module
instance they are given.
"""

from spikeport.ops import layers, methods, neurons, synapses
from spikeport.ops.frameworks import lava_dl, norse, sinabs, snntorch, spikingjelly

__all__ = ["layers", "methods", "neurons", "synapses", "lava_dl", "norse", "sinabs", "snntorch", "spikingjelly"]
