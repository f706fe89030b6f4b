"""Shared pieces of the backbones: layer-injection types, neuron factories, checks, init."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from spikeport.errors import ConfigError
from spikeport.models import layers as L
from spikeport.models.neurons.factory import NeuronType, create_neuron

__all__ = ["ChannelFactory", "neuron_factory", "check_input_shape", "check_int_tuple", "conv_out", "init_weights",
           "num_params"]

# A factory called with a channel count that returns a multi-step module ([T, B, C, H, W] -> same shape).
ChannelFactory = Callable[[int], nn.Module]


def neuron_factory(neuron: NeuronType, neuron_kw: dict[str, Any] | None) -> ChannelFactory:
    """Factory building ``create_neuron(neuron, **neuron_kw)`` for a layer of C channels.

    ``neuron_kw={'per_channel': True}`` is replaced by the layer's channel count
    (DA-LIF's per-channel decays).
    """
    kw = dict(neuron_kw or {})
    per_channel = kw.get("per_channel") is True

    def make(channels: int) -> nn.Module:
        k = dict(kw)
        if per_channel:
            k["per_channel"] = channels
        return create_neuron(neuron, **k)

    return make


def check_input_shape(owner: str, input_shape: Sequence[int]) -> tuple[int, int, int]:
    """Validate a ``(C, H, W)`` input shape."""
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape):
        raise ConfigError(f"{owner}: input_shape must be three positive integers (C, H, W), got {input_shape!r}")
    return shape


def check_int_tuple(owner: str, name: str, values: Sequence[int], length: int | None = None) -> tuple[int, ...]:
    """Validate a non-empty tuple of positive integers (optionally of a given length)."""
    vals = tuple(values)
    if not vals or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in vals):
        raise ConfigError(f"{owner}: {name} must be a non-empty sequence of positive integers, got {values!r}")
    if length is not None and len(vals) != length:
        raise ConfigError(f"{owner}: {name} must have {length} entries (one per stage), got {len(vals)}")
    return vals


def conv_out(size: int, stride: int) -> int:
    """Spatial size after a 3x3 conv with padding 1 and ``stride``."""
    return (size - 1) // stride + 1


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal (fan_out) backbone convs as in the seed papers' code; BN weight 1, bias 0.

    Only the backbone's multi-step layers are touched; paper-method modules (GC, FSTA) keep
    their own (PyTorch default) initialisation, as upstream.
    """
    for m in model.modules():
        if isinstance(m, L.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, L.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def num_params(model: nn.Module) -> int:
    """Number of learnable parameters (what ``spikeport zoo`` lists)."""
    return sum(p.numel() for p in model.parameters())
