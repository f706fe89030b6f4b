"""Spiking VGG (multi-step ``[T, B, C, H, W]`` -> per-step logits ``[T, B, K]``).

Each conv is ``conv3x3 -> BN -> neuron``; ``'M'`` in the configuration is a 2x2
pool (average by default: an average of spikes keeps the rate code, a max of
spikes is an OR). The head is global average pool -> Linear (the CIFAR VGG of
the SNN literature; no 4096-wide FC layers). ``pre_conv(C)`` is inserted before
every conv but the first (whose input is the encoded image), ``act_layer(C)``
replaces every neuron. torch.fx traceable with neurons and layers as leaves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from spikeport.errors import ConfigError
from spikeport.models import layers as L
from spikeport.models._registry import register_model
from spikeport.models.backbones._common import ChannelFactory, check_input_shape, init_weights, neuron_factory
from spikeport.models.neurons.factory import NeuronType

__all__ = ["SpikingVGG", "VGG_CFGS"]

VGG_CFGS: dict[str, tuple[int | str, ...]] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    # digits-sized (1x8x8): pooling *between* spiking layers (8 -> 4 -> 2), then GAP + Linear on the host
    "vgg_digits": (16, "M", 32, 32, "M", 64),
}
_POOLS = {"avg": L.AvgPool2d, "max": L.MaxPool2d}


class SpikingVGG(nn.Module):
    """Configurable spiking VGG.

    Args:
        cfg: sequence of conv widths and ``'M'`` (2x2 pool).
        num_classes: K.
        input_shape: ``(C, H, W)`` of one timestep.
        neuron, neuron_kw: neuron spec and options (see :class:`~spikeport.models.backbones.SpikingResNet`).
        act_layer: factory replacing every neuron.
        pre_conv: factory inserted before every conv but the first.
        pool: ``'avg'`` (default) or ``'max'``.
        timesteps: T the model was built for (``None``: any T).
    """

    def __init__(self, cfg: Sequence[int | str] = VGG_CFGS["vgg11"], num_classes: int = 10,
                 input_shape: Sequence[int] = (3, 32, 32), neuron: NeuronType = "lif",
                 neuron_kw: dict[str, Any] | None = None, act_layer: ChannelFactory | None = None,
                 pre_conv: ChannelFactory | None = None, pool: str = "avg", timesteps: int | None = None) -> None:
        super().__init__()
        owner = type(self).__name__
        shape = check_input_shape(owner, input_shape)
        if pool not in _POOLS:
            raise ConfigError(f"{owner}: pool must be one of {sorted(_POOLS)}, got {pool!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
            raise ConfigError(f"{owner}: num_classes must be a positive integer, got {num_classes!r}")
        self.default_input_shape = shape
        self.num_classes = num_classes
        self.timesteps = timesteps
        act = act_layer if act_layer is not None else neuron_factory(neuron, neuron_kw)
        layers: list[nn.Module] = []
        prev, h = shape[0], min(shape[1:])
        first = True
        for v in cfg:
            if v == "M":
                if h < 2:
                    raise ConfigError(f"{owner}: input_shape {shape} is too small for {cfg.count('M')} 2x2 pools")
                layers.append(_POOLS[pool](2))
                h //= 2
            elif isinstance(v, int) and not isinstance(v, bool) and v > 0:
                if pre_conv is not None and not first:
                    layers.append(pre_conv(prev))
                layers += [L.Conv2d(prev, v, 3, padding=1, bias=False), L.BatchNorm2d(v), act(v)]
                prev, first = v, False
            else:
                raise ConfigError(f"{owner}: cfg entries must be positive ints or 'M', got {v!r}")
        if first:
            raise ConfigError(f"{owner}: cfg has no conv layer")
        self.features = nn.Sequential(*layers)
        self.global_pool = L.AdaptiveAvgPool2d(1)
        self.flatten = L.Flatten()
        self.num_features = prev
        self.fc = L.Linear(prev, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, H, W]`` -> last spike map."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Spike map -> per-step logits ``[T, B, K]``."""
        return self.fc(self.flatten(self.global_pool(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model(tags=("cifar",))
def vgg11(**kw: Any) -> SpikingVGG:
    """Spiking VGG-11 (BN, average pooling, GAP + Linear head), 3x32x32 input."""
    return SpikingVGG(VGG_CFGS["vgg11"], **kw)


@register_model(tags=("digits",))
def vgg_digits(**kw: Any) -> SpikingVGG:
    """VGG-style digits net: conv16, pool, conv32 x2, pool, conv64, GAP + Linear (pooling inside the network)."""
    kw.setdefault("input_shape", (1, 8, 8))
    return SpikingVGG(VGG_CFGS["vgg_digits"], **kw)
