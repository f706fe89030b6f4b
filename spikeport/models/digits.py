"""Small spiking networks for sklearn's 8x8 digits (the demo and test models).

Both take ``[T, B, 1, 8, 8]`` and return per-step logits ``[T, B, 10]``; the
last layer is a plain linear readout (no neuron), logits are averaged over T.
``neuron='relu'`` gives the ANN of the same shape (use with T=1).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from spikeport.errors import ConfigError
from spikeport.models import layers as L
from spikeport.models._registry import register_model
from spikeport.models.neurons import create_neuron
from spikeport.models.neurons.factory import NeuronType

__all__ = ["SpikingMLP", "SpikingCNN"]


class SpikingMLP(nn.Module):
    """Flatten -> [Linear -> neuron] x len(hidden) -> Linear readout."""

    def __init__(self, in_features: int = 64, hidden: tuple[int, ...] = (128, 64), num_classes: int = 10,
                 neuron: NeuronType = "lif", neuron_kw: dict[str, Any] | None = None,
                 input_shape: tuple[int, ...] = (1, 8, 8)) -> None:
        super().__init__()
        nk = dict(neuron_kw or {})
        self.default_input_shape = tuple(input_shape)
        self.num_classes = num_classes
        mods: list[nn.Module] = [L.Flatten()]
        prev = in_features
        for h in hidden:
            mods += [L.Linear(prev, h), create_neuron(neuron, **nk)]
            prev = h
        self.features = nn.Sequential(*mods)
        self.head = L.Linear(prev, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


class SpikingCNN(nn.Module):
    """conv3x3(c1)-BN-neuron -> conv3x3(c2)-BN-neuron -> pool2 -> flatten -> Linear readout.

    ``pool='avg'`` (default) keeps the model exportable to every target: average
    pooling exists in NIR, and after the last neuron it is part of the host-side
    readout on Loihi. ``pool='max'`` is the classic choice; NIR has no max pooling.
    """

    def __init__(self, in_channels: int = 1, channels: tuple[int, int] = (16, 32), num_classes: int = 10,
                 neuron: NeuronType = "lif", neuron_kw: dict[str, Any] | None = None,
                 input_shape: tuple[int, ...] = (1, 8, 8), pool: str = "avg") -> None:
        super().__init__()
        if pool not in ("avg", "max"):
            raise ConfigError(f"spiking_cnn_digits: pool must be 'avg' or 'max', got {pool!r}")
        nk = dict(neuron_kw or {})
        c1, c2 = channels
        self.default_input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.features = nn.Sequential(
            L.Conv2d(in_channels, c1, 3, padding=1, bias=False), L.BatchNorm2d(c1), create_neuron(neuron, **nk),
            L.Conv2d(c1, c2, 3, padding=1, bias=False), L.BatchNorm2d(c2), create_neuron(neuron, **nk),
            L.AvgPool2d(2) if pool == "avg" else L.MaxPool2d(2), L.Flatten(),
        )
        h, w = input_shape[1] // 2, input_shape[2] // 2
        self.head = L.Linear(c2 * h * w, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


@register_model(tags=("digits",))
def spiking_mlp_digits(**kw: Any) -> SpikingMLP:
    """Spiking MLP 64-128-64-10 for 8x8 digits."""
    return SpikingMLP(**kw)


@register_model(tags=("digits",))
def spiking_cnn_digits(**kw: Any) -> SpikingCNN:
    """Spiking CNN (16, 32 channels) for 8x8 digits: the demo model."""
    return SpikingCNN(**kw)
