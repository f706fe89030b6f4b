"""IR node types, one module per family (see :mod:`spikeport.converter.ir.node` for conventions)."""

from spikeport.converter.ir.arith import Add, Concat, Mul, ReLU, Scale
from spikeport.converter.ir.frameworks import (
    FRAMEWORK_NEURON_TYPES,
    Delay,
    NorseLIF,
    NorseLIFBox,
    Quantize,
    SinabsLIF,
    SlayerCUBA,
    SlayerDense,
    SlayerPool,
    SnnTorchLeaky,
    SnnTorchSynaptic,
)
from spikeport.converter.ir.io import Input, Output
from spikeport.converter.ir.methods import (
                                          FSTA,
                                          METHOD_TYPES,
                                          GCAttention,
                                          StepAttention,
                                          TemporalPositionEncoding,
                                          TemporalShift,
)
from spikeport.converter.ir.neuron import DALIF, IF, LIF, NEURON_TYPES, PLIF, CubaLIF, NeuronNode, Threshold
from spikeport.converter.ir.node import NODE_TYPES, InputShapeError, IRNode, Param, Shape
from spikeport.converter.ir.norm import BatchNorm
from spikeport.converter.ir.pool import AdaptiveAvgPool, AvgPool, MaxPool, SumPool
from spikeport.converter.ir.shape import Flatten, Reshape
from spikeport.converter.ir.synapse import Conv1d, Conv2d, ConvTranspose2d, Linear

SYNAPSE_TYPES = (Linear, Conv1d, Conv2d, ConvTranspose2d)
"""Node types with synaptic weights (synaptic operations are counted on these)."""

__all__ = [
    "IRNode", "NODE_TYPES", "InputShapeError", "Param", "Shape",
    "Linear", "Conv1d", "Conv2d", "ConvTranspose2d", "SYNAPSE_TYPES",
    "BatchNorm",
    "NeuronNode", "IF", "LIF", "PLIF", "DALIF", "CubaLIF", "Threshold", "NEURON_TYPES",
    "MaxPool", "AvgPool", "SumPool", "AdaptiveAvgPool",
    "Flatten", "Reshape",
    "Add", "Mul", "Concat", "Scale", "ReLU",
    "TemporalShift", "TemporalPositionEncoding", "GCAttention", "StepAttention", "FSTA", "METHOD_TYPES",
    "Input", "Output",
    "SnnTorchLeaky", "SnnTorchSynaptic", "NorseLIF", "NorseLIFBox", "SinabsLIF", "SlayerCUBA", "FRAMEWORK_NEURON_TYPES",
    "Delay", "Quantize", "SlayerDense", "SlayerPool",
]
