"""Torch reference runner: the float model every export is checked against, on CPU or CUDA.

The reference executes the model's IR lowering (:func:`spikeport.converter.lower`,
bit-identical to the model's own forward) when the model traces, so layer names
are IR node names, the same names the exporters use for their spike outputs.
A model that does not trace runs as it is (``use_ir="auto"``), with its
:class:`~spikeport.models.neurons.SpikingNeuron` modules as the spike layers.

The same code runs on ``cpu`` and ``cuda`` (TF32 disabled while the reference
runs so that CUDA computes in true float32). The user's model is never changed:
the executor is built from the IR (a new module), and a model that runs
as-is is deep-copied before being moved to another device. Hooks are removed
when each run ends.

Spike layers also give *threshold margins*: :meth:`TorchRunner.margins` replays
one layer's neurons on its recorded input current and returns
:math:`u = H[t] - V_{th}`, the value the Heaviside sees. Two runtimes whose
arithmetic differs by rounding (e.g. conv accumulation order) can disagree on
a spike only where :math:`|u|` is within that rounding.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from spikeport.errors import ConfigError, DataError, GraphError
from spikeport.runtime import resolve_device

__all__ = ["RunResult", "TorchRunner", "build_executor", "spike_layers", "float32_reference",
           "check_input_budget", "MAX_INPUT_ELEMENTS"]

MAX_INPUT_ELEMENTS = 2**31
"""Largest example/probe input ``[T, B, ...]`` (elements) built for an export check."""

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """Outputs of one run over a batch.

    Attributes:
        logits: ``[T, B, K]`` float32 on CPU.
        spikes: layer name -> ``[T, B, ...]`` bool spikes on CPU, in execution order.
        runtime: what produced them (``torch-cpu``, ``torch-cuda``, ``onnxruntime`` ...).
    """

    logits: torch.Tensor
    spikes: dict[str, torch.Tensor] = field(default_factory=dict)
    runtime: str = ""


def check_input_budget(timesteps: int, batch: int, input_shape: Sequence[int]) -> None:
    """Refuse an input ``[timesteps, batch, *input_shape]`` too large to build (ConfigError with its size)."""
    n = int(timesteps) * int(batch)
    for s in input_shape:
        n *= int(s)
    if n > MAX_INPUT_ELEMENTS:
        raise ConfigError(f"--timesteps {timesteps}: an input [T={timesteps}, B={batch}, "
                          f"{', '.join(map(str, input_shape))}] needs {n * 4 / 2**30:.1f} GiB; lower --timesteps")


@contextlib.contextmanager
def float32_reference(device: torch.device) -> Iterator[None]:
    """Disable TF32 matmul/conv on CUDA for the duration (restored after)."""
    if device.type != "cuda":
        yield
        return
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def build_executor(model: Any, input_shape: Sequence[int] | None = None, *, use_ir: bool | str = "auto"
                   ) -> tuple[nn.Module, bool]:
    """The module the reference (and the ONNX exporter) runs, and whether it is an IR lowering.

    Args:
        model: an ``nn.Module`` (traced), a :class:`~spikeport.converter.SpikeGraph` or a
            :class:`~spikeport.converter.LoweredModule` (used as is).
        input_shape: per-timestep input shape (default: the model's ``default_input_shape``).
        use_ir: ``True`` (trace or fail), ``False`` (run the module itself) or ``"auto"``
            (trace; fall back to the module itself when tracing fails, except for a
            :class:`~spikeport.frameworks.ForeignModel`, whose spike layers only the IR exposes).

    Raises:
        GraphError: ``use_ir=True`` and the model does not trace.
    """
    from spikeport.converter import LoweredModule, SpikeGraph, lower, trace

    if isinstance(model, LoweredModule):
        return model, True
    if isinstance(model, SpikeGraph):
        return lower(model), True
    if not isinstance(model, nn.Module):
        raise ConfigError(f"expected a torch.nn.Module or SpikeGraph, got {type(model).__name__}")
    if use_ir is False:
        return model, False
    if use_ir == "auto" and getattr(model, "spikeport_inner", None) is not None:
        use_ir = True  # a model of another framework: its spike layers and exports come from the IR only
    try:
        return lower(trace(model, input_shape)), True
    except GraphError as e:
        if use_ir is True:
            raise
        log.warning("%s does not trace to the IR (%s); running the module itself", type(model).__name__, e)
        return model, False


def spike_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every spiking layer, in execution order for IR lowerings."""
    from spikeport.converter import LoweredModule
    from spikeport.models.neurons import SpikingNeuron

    if isinstance(module, LoweredModule):
        return [(n, m) for n, m in module.named_node_modules()
                if getattr(getattr(m, "ir_node", None), "family", "") == "neuron"]
    out: list[tuple[str, nn.Module]] = []
    for name, m in module.named_modules():
        if isinstance(m, SpikingNeuron) and not any(name.startswith(p + ".") for p, _ in out):
            out.append((name, m))
    return out


@runtime_checkable
class _Replayable(Protocol):
    """A spiking layer that can be replayed step by step with a replaced surrogate (spikeport's neurons and the
    executor's neuron modules)."""

    surrogate: Callable[[torch.Tensor], torch.Tensor]

    def init_state(self, x_t: torch.Tensor) -> Any: ...

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]: ...


class _Recorder:
    """Stand-in surrogate: records ``u = H - V_th`` and fires exactly like the Heaviside."""

    def __init__(self) -> None:
        self.values: list[torch.Tensor] = []

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        self.values.append(u.detach())
        return (u >= 0).to(u.dtype)


class TorchRunner:
    """Run a model in torch on ``[T, B, ...]`` inputs, recording per-layer spikes.

    Args:
        model: see :func:`build_executor`.
        device: ``cpu`` or ``cuda[:i]`` (ConfigError if CUDA is absent).
        input_shape: per-timestep input shape (default: the model's).
        use_ir: see :func:`build_executor`.

    Attributes:
        module: the executed module; ``is_ir``: whether it is an IR lowering;
        layers: spike-layer names in execution order; ``input_shape``.
    """

    def __init__(self, model: Any, *, device: str | torch.device = "cpu", input_shape: Sequence[int] | None = None,
                 use_ir: bool | str = "auto") -> None:
        self.device = resolve_device(device)
        module, self.is_ir = build_executor(model, input_shape, use_ir=use_ir)
        if module is model and (_module_device(module) != self.device or module.training):
            module = copy.deepcopy(module)  # never move the caller's model or change its mode
        self.module = module.to(self.device).eval()
        shape = input_shape if input_shape is not None else getattr(self.module, "default_input_shape", None)
        if shape is None:
            shape = getattr(model, "default_input_shape", None)
        self.input_shape = tuple(shape) if shape is not None else None
        self._layers = spike_layers(self.module)
        self.layers = [n for n, _ in self._layers]
        self.runtime = f"torch-{self.device.type}"

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 3:
            raise DataError(f"reference input must be a tensor [T, B, ...], got "
                            f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        if self.input_shape is not None and tuple(x.shape[2:]) != self.input_shape:
            raise DataError(f"reference input has per-step shape {list(x.shape[2:])}, the model expects "
                            f"{list(self.input_shape)}")
        return x.to(self.device, torch.float32)

    @torch.no_grad()
    def run(self, x: torch.Tensor, record: bool = True) -> RunResult:
        """Logits ``[T, B, K]`` and (``record``) every spike layer's ``[T, B, ...]`` spikes, all on CPU."""
        x = self._prepare(x)
        rec: dict[str, list[torch.Tensor]] = {name: [] for name in self.layers}
        handles = []
        if record:  # one call per run, or one per step for graphs with recurrent edges
            for name, m in self._layers:
                handles.append(m.register_forward_hook(
                    lambda _m, _a, out, name=name: rec[name].append(out.detach().to("cpu") != 0)))
        try:
            with float32_reference(self.device):
                out = self.module(x)
        finally:
            for h in handles:
                h.remove()
        if isinstance(out, (tuple, list)):
            out = out[0]
        return RunResult(out.detach().float().cpu(), {n: torch.cat(v) for n, v in rec.items() if v}, self.runtime)

    @torch.no_grad()
    def margins(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        """``u = H - V_th`` of spike layer ``layer`` on input ``x``: ``[T, B, ...]`` float on CPU.

        The layer's neurons are replayed (on a copy) from the input current recorded
        in a reference run; the spikes of the replay equal ``u >= 0`` exactly.
        """
        mod = dict(self._layers).get(layer)
        if mod is None:
            raise ConfigError(f"no spike layer '{layer}' (layers: {', '.join(self.layers) or 'none'})")
        x = self._prepare(x)
        got: list[torch.Tensor] = []
        h = mod.register_forward_hook(lambda _m, args, _o: got.append(args[0].detach()))
        try:
            with float32_reference(self.device):
                self.module(x)
        finally:
            h.remove()
        current = torch.cat(got)
        probe = copy.deepcopy(mod)
        if not isinstance(probe, _Replayable):
            raise ConfigError(f"spike layer '{layer}' ({type(mod).__name__}) has no surrogate and step() to replay")
        rec = _Recorder()
        probe.surrogate = rec
        state = probe.init_state(current[0])
        with float32_reference(self.device):
            for t in range(current.shape[0]):
                _, state = probe.step(current[t], state)
        return torch.stack(rec.values).float().cpu()


def _module_device(m: nn.Module) -> torch.device:
    for t in list(m.parameters()) + list(m.buffers()):
        return t.device
    return torch.device("cpu")
