"""Resolve a neuron given by name or class (timm-style layer injection)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from spikeport._registry import Registry
from spikeport.errors import ConfigError
from spikeport.models.neurons.modules import DALIF, IF, LIF, PLIF, CubaLIF

__all__ = ["NEURONS", "NeuronType", "create_neuron", "ANN_NEURONS"]

NeuronType = str | Callable[..., nn.Module]

NEURONS: Registry = Registry("neuron")
for _n, _c in (("if", IF), ("lif", LIF), ("plif", PLIF), ("dalif", DALIF), ("cuba_lif", CubaLIF)):
    NEURONS.register(_c, name=_n, tags=("spiking",))
NEURONS.register(nn.ReLU, name="relu", tags=("ann",))
ANN_NEURONS = frozenset({"relu"})


def create_neuron(spec: NeuronType, **kw: Any) -> nn.Module:
    """Instantiate a neuron layer.

    Args:
        spec: registry name (``if``, ``lif``, ``plif``, ``dalif``, ``cuba_lif``, ``relu``) or a class.
        **kw: neuron options (ignored for the ANN activation ``relu``).
    """
    if isinstance(spec, str):
        if spec in ANN_NEURONS:
            return NEURONS.get(spec)()
        cls = NEURONS.get(spec)
    elif callable(spec):
        cls = spec
    else:
        raise ConfigError(f"neuron must be a name ({', '.join(NEURONS.names())}) or a class, got {spec!r}")
    try:
        return cls(**kw)
    except TypeError as e:
        raise ConfigError(f"neuron {spec!r}: bad options {sorted(kw)} ({e})") from e
