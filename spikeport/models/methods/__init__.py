"""Modules of the 2025 paper methods: TS-SNN temporal shift, STAA-SNN attention, FSTA-SNN attention.

``METHOD_LEAF_MODULES`` lists the classes a torch.fx tracer must keep as leaves
(their forward inspects shapes or draws random numbers). :class:`FSTALIF` is a
traceable composition of the FSTA leaf and a neuron. Every module has an
``is_causal`` attribute: False when step t depends on later steps (exporters to
step-by-step hardware must refuse those).
"""

from spikeport.models.methods.fsta import FSTA, FSTA_LIF_KW, FSTALIF, dct_basis_2d, fsta_lif
from spikeport.models.methods.staa import (
                                         GCBlock,
                                         STAABlock,
                                         StepAttention,
                                         TemporalPositionEncoding,
                                         TimeStepRandomDropout,
)
from spikeport.models.methods.temporal_shift import TemporalShift

__all__ = ["TemporalShift", "TemporalPositionEncoding", "GCBlock", "StepAttention", "TimeStepRandomDropout",
           "STAABlock", "FSTA", "FSTALIF", "fsta_lif", "FSTA_LIF_KW", "dct_basis_2d", "METHOD_LEAF_MODULES"]

METHOD_LEAF_MODULES = (TemporalShift, TemporalPositionEncoding, GCBlock, StepAttention, TimeStepRandomDropout,
                     STAABlock, FSTA)
