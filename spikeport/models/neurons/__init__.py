"""Spiking neurons: pure step functions, thin modules, surrogates and a factory."""

from spikeport.models.neurons.factory import NEURONS, create_neuron
from spikeport.models.neurons.modules import DALIF, IF, LIF, PLIF, CubaLIF, SpikingNeuron
from spikeport.models.neurons.surrogate import Surrogate, get_surrogate, heaviside

__all__ = ["NEURONS", "create_neuron", "SpikingNeuron", "IF", "LIF", "PLIF", "DALIF", "CubaLIF", "Surrogate",
           "get_surrogate", "heaviside"]
