"""The op registry: each IR op type and what the toolchain can do with it, declared once.

See :mod:`spikeport.ops.spec` for the capabilities (trace, execute, energy, NIR,
ONNX, Loihi) and ``docs/extending.md`` for adding an op (e.g. a new neuron type)
end to end. The built-in specs live in one file per family: :mod:`.neurons`,
:mod:`.synapses`, :mod:`.layers` and :mod:`.methods`.
"""

from spikeport.ops.spec import (CAPABILITIES, LoihiMapping, ModuleAdapter, NeuronDynamics, NirContext, NirMapping,
                                OnnxSupport, OpSpec, Refusal, Refused, all_specs, find_spec, iter_capabilities,
                                module_adapter, refusal, register_adapter, register_op, spec_of)

__all__ = ["CAPABILITIES", "LoihiMapping", "ModuleAdapter", "NeuronDynamics", "NirContext", "NirMapping",
           "OnnxSupport", "OpSpec", "Refusal", "Refused", "all_specs", "find_spec", "iter_capabilities",
           "module_adapter", "refusal", "register_adapter", "register_op", "spec_of"]
