"""Run the user's own module in its own framework, recording each neuron layer's spikes: :class:`OriginalRunner`.

This is the third party of a verification: beside the traced IR (spikeport's reference) and the
export, the model itself. Its spike layers are the framework neuron modules (and spikeport's own
neurons), named by their module path, which is the IR node name the adapters give them; their
outputs are brought to ``[T, B, ...]`` whatever layout the module is called in.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from spikeport.errors import DataError
from spikeport.frameworks.foreign import ForeignModel, adapt, first_tensor
from spikeport.frameworks.state import neuron_modules
from spikeport.runtime import resolve_device
from spikeport.targets.torch_runner import RunResult, float32_reference

__all__ = ["OriginalRunner", "spike_modules"]


def spike_modules(net: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """``(name, module, layout)`` of the spiking layers of ``net``: framework neurons and spikeport neurons."""
    from spikeport.models.neurons import SpikingNeuron

    out = list(neuron_modules(net))
    seen = {n for n, _, _ in out}
    for name, m in net.named_modules():
        if isinstance(m, SpikingNeuron) and name not in seen:
            out.append((name, m, "tb"))
    return out


def _to_tb(y: torch.Tensor, layout: str, t: int, b: int) -> torch.Tensor:
    if layout == "tb":
        return y
    if layout == "bt":
        return y.transpose(0, 1)
    if layout == "bt-flat":
        return y.reshape(b, t, *y.shape[1:]).transpose(0, 1)
    return y.movedim(-1, 0)  # time-last


class OriginalRunner:
    """The user's model run as it is (in its framework) on ``[T, B, ...]`` inputs, with per-layer spikes.

    Args:
        model: the user's module or a :class:`ForeignModel` (its time layout is used).
        time_layout: the model's layout when ``model`` is not a ForeignModel (default ``tb``).
        device: ``cpu`` or ``cuda``; the model is copied when it must move.
        input_shape: one step's input shape (checked on every run).

    Attributes:
        layers: spike-layer names in the order their modules are defined; ``runtime``.
    """

    def __init__(self, model: nn.Module, *, time_layout: str | None = None, device: str | torch.device = "cpu",
                 input_shape: Sequence[int] | None = None) -> None:
        self.device = resolve_device(device)
        wrapped = adapt(model, time_layout, input_shape)
        if not isinstance(wrapped, ForeignModel):
            wrapped = ForeignModel(wrapped, "tb", input_shape)
        if next((p.device for p in wrapped.parameters()), self.device) != self.device or wrapped.training:
            wrapped = copy.deepcopy(wrapped)
        self.model = wrapped.to(self.device).eval()
        self.input_shape = tuple(input_shape) if input_shape is not None else wrapped.default_input_shape
        self._layers = spike_modules(self.model.spikeport_inner)
        self.layers = [n for n, _, _ in self._layers]
        label = "+".join(self.model.frameworks) or "torch"
        self.runtime = f"original ({label}, {self.model.time_layout}, {self.device.type})"

    @torch.no_grad()
    def run(self, x: torch.Tensor, record: bool = True) -> RunResult:
        """Logits ``[T, B, K]`` and every spike layer's ``[T, B, ...]`` outputs (nonzero = spike) on CPU."""
        if not isinstance(x, torch.Tensor) or x.dim() < 3:
            raise DataError("original model input must be a tensor [T, B, ...]")
        if self.input_shape is not None and tuple(x.shape[2:]) != tuple(self.input_shape):
            raise DataError(f"original model: input per-step shape {list(x.shape[2:])}, expected "
                            f"{list(self.input_shape)}")
        t, b = int(x.shape[0]), int(x.shape[1])
        got: dict[str, list[torch.Tensor]] = {n: [] for n in self.layers}
        handles = []
        if record:
            for name, m, _ in self._layers:
                handles.append(m.register_forward_hook(
                    lambda _m, _a, out, name=name: got[name].append(first_tensor(out).detach())))
        try:
            with float32_reference(self.device):
                y = self.model(x.to(self.device, torch.float32))
        finally:
            for h in handles:
                h.remove()
        spikes: dict[str, torch.Tensor] = {}
        for name, _, layout in self._layers:
            calls = got[name]
            if not calls:
                continue
            seq = torch.stack(calls) if layout == "step" else _to_tb(calls[0], layout, t, b)
            spikes[name] = (seq != 0).to("cpu")
        return RunResult(first_tensor(y).detach().float().cpu(), spikes, self.runtime)

    def module_outputs(self, x: torch.Tensor) -> dict[str, Any]:
        """Raw ``[T, B, ...]`` outputs of every spike layer (counts and graded values kept), for tests."""
        t, b = int(x.shape[0]), int(x.shape[1])
        got: dict[str, list[torch.Tensor]] = {n: [] for n in self.layers}
        handles = [m.register_forward_hook(lambda _m, _a, out, name=name: got[name].append(first_tensor(out)))
                   for name, m, _ in self._layers]
        try:
            with torch.no_grad():
                self.model(x.to(self.device, torch.float32))
        finally:
            for h in handles:
                h.remove()
        return {name: (torch.stack(got[name]) if layout == "step" else _to_tb(got[name][0], layout, t, b)).cpu()
                for name, _, layout in self._layers if got[name]}
