"""The op registry: each IR op type and what the toolchain can do with it, declared once.

See :mod:`spikeport.ops.spec` for the capabilities (trace, execute, energy, NIR,
ONNX, Loihi) and ``docs/extending.md`` for adding an op (e.g. a new neuron type)
end to end. The built-in specs live in one file per family: :mod:`.neurons`,
:mod:`.synapses`, :mod:`.layers` and :mod:`.methods`; other frameworks' neurons and layers in
:mod:`.frameworks`. :func:`spiking_neuron` (:mod:`.user`) declares a hand-written neuron module
in one decorator.
"""

from spikeport.ops.spec import (
    CAPABILITIES,
    LoihiMapping,
    ModuleAdapter,
    NeuronDynamics,
    NirContext,
    NirMapping,
    OnnxSupport,
    OpSpec,
    Refusal,
    Refused,
    all_specs,
    find_spec,
    iter_capabilities,
    module_adapter,
    refusal,
    register_adapter,
    register_op,
    spec_of,
    unregister_op,
)


def __getattr__(name: str) -> object:  # helpers that import torch-side modules, loaded on first use
    if name in ("execute_neuron", "neuron_rule"):
        from spikeport.ops import neurons

        return getattr(neurons, name)
    if name == "spiking_neuron":
        from spikeport.ops.user import spiking_neuron

        return spiking_neuron
    raise AttributeError(f"module 'spikeport.ops' has no attribute {name!r}")


__all__ = ["CAPABILITIES", "LoihiMapping", "ModuleAdapter", "NeuronDynamics", "NirContext", "NirMapping",
           "OnnxSupport", "OpSpec", "Refusal", "Refused", "all_specs", "find_spec", "iter_capabilities",
           "module_adapter", "refusal", "register_adapter", "register_op", "spec_of", "unregister_op",
           "execute_neuron", "neuron_rule", "spiking_neuron"]
