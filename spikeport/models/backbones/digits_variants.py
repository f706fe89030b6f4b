"""Digits-sized (1x8x8) versions of each seed paper's model, for tests and the demo.

All share one tiny ResNet (``RESNET_CFGS['resnet_digits']``): conv3x3(16) stem,
a 16-channel block, a 32-channel block with stride 2 (8x8 -> 4x4), then
flatten -> Linear(512, 10). Each variant adds its paper's module exactly as the
CIFAR model does, so the same code paths are exercised at toy size.
"""

from __future__ import annotations

from typing import Any

from spikeport.models._registry import register_model
from spikeport.models.backbones.resnet import SpikingResNet, create_resnet, fsta_hooks, staa_hooks, ts_hooks
from spikeport.models.neurons.factory import NeuronType

__all__ = ["resnet_digits", "tssnn_digits", "dalif_digits", "staa_digits", "fsta_digits"]


@register_model(tags=("digits",))
def resnet_digits(**kw: Any) -> SpikingResNet:
    """Tiny spiking ResNet (16, 32 channels) for 8x8 digits: the seed variants' baseline."""
    return create_resnet("resnet_digits", **kw)


@register_model(tags=("digits", "paper:ts"))
def tssnn_digits(fold_div: int = 32, split_mode: str = "fixed", alpha_init: float = 0.3,
                 split: tuple[int, int] | None = None, **kw: Any) -> SpikingResNet:
    """TS-SNN on the tiny digits ResNet (temporal shift before every block conv; non-causal)."""
    return create_resnet("resnet_digits", **ts_hooks(fold_div, split_mode, alpha_init, split), **kw)


@register_model(tags=("digits", "paper:dalif"))
def dalif_digits(per_channel: bool = False, neuron: NeuronType = "dalif", neuron_kw: dict[str, Any] | None = None,
                 **kw: Any) -> SpikingResNet:
    """DA-LIF neurons on the tiny digits ResNet."""
    nk = dict(neuron_kw or {})
    if per_channel:
        nk["per_channel"] = True
    return create_resnet("resnet_digits", neuron=neuron, neuron_kw=nk, **kw)


@register_model(tags=("digits", "paper:staa"))
def staa_digits(timesteps: int = 2, neuron: NeuronType = "dalif", neuron_kw: dict[str, Any] | None = None,
                reduction: int = 4, tsrd_p: float = 0.1, **kw: Any) -> SpikingResNet:
    """STAA blocks on the tiny digits ResNet (built for T=timesteps, default 2)."""
    return create_resnet("resnet_digits", **staa_hooks(timesteps, neuron, neuron_kw, reduction, tsrd_p), **kw)


@register_model(tags=("digits", "paper:fsta"))
def fsta_digits(timesteps: int = 2, freq_num: int = 49, reduction: int = 1, neuron: NeuronType | None = None,
                neuron_kw: dict[str, Any] | None = None, **kw: Any) -> SpikingResNet:
    """FSTA+LIF replacing every neuron of the tiny digits ResNet (built for T=timesteps, default 2)."""
    return create_resnet("resnet_digits", **fsta_hooks(timesteps, freq_num, reduction, neuron, neuron_kw), **kw)
