"""Run a model from another framework on spikeport's ``[T, B, ...]`` data: :class:`ForeignModel`.

``ForeignModel(net, time_layout)`` is an ``nn.Module`` taking ``[T, B, *input_shape]`` and
returning ``[T, B, ...]`` like every spikeport model. Each call:

1. resets the framework state of ``net`` (:func:`~spikeport.frameworks.state.reset_state`), so
   batches and samples never leak into each other (SpikingJelly and sinabs keep state across
   calls; sinabs even resamples it at random when the batch size changes);
2. feeds ``net`` in its own layout (:mod:`spikeport.converter.layout`): the whole sequence
   transposed/folded as needed, or (``step``) one ``x[t]`` per call, handing back a returned
   state when ``net.forward`` takes ``state`` (Norse ``SequentialState``);
3. keeps the first item of tuple outputs (``(spk, mem)``, ``(z, state)``) and converts the
   output back to ``[T, B, ...]``.

While it runs, every framework neuron module is checked to receive the tensor shape its class
takes in that layout (e.g. snnTorch ``[B, ...]`` per call, sinabs ``[B, T, ...]``); a model fed in
the wrong layout stops with an error naming the module and the ``--time-layout`` to pass,
instead of silently treating time as batch. ``spikeport.converter.trace`` traces a
``ForeignModel`` in its layout, and the energy recorder counts its modules per call.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from spikeport.converter.layout import check_layout, describe, from_layout, to_layout
from spikeport.errors import ConfigError, DataError
from spikeport.frameworks.state import frameworks_in, neuron_modules, reset_state

__all__ = ["ForeignModel", "adapt", "first_tensor"]


def first_tensor(out: Any) -> Any:
    """The first tensor of a (nested) tuple/list output, or ``out`` itself."""
    while isinstance(out, (tuple, list)) and out:
        out = out[0]
    return out


def _takes_state(net: nn.Module) -> bool:
    try:
        return "state" in inspect.signature(net.forward).parameters
    except (TypeError, ValueError):
        return False


class ForeignModel(nn.Module):
    """A model of another framework (or any model in another time layout) as a ``[T, B, ...]`` spikeport model.

    Args:
        net: the user's module (not copied; its framework state is reset before every call).
        time_layout: how ``net`` takes time (``tb``, ``bt``, ``bt-flat``, ``time-last``, ``step``).
        input_shape: one step's input shape (default: ``net.default_input_shape``).

    Attributes:
        spikeport_inner: ``net`` (the tracer and the energy recorder look inside).
        time_layout, frameworks, default_input_shape.
    """

    def __init__(self, net: nn.Module, time_layout: str = "tb", input_shape: Sequence[int] | None = None) -> None:
        super().__init__()
        if not isinstance(net, nn.Module):
            raise ConfigError(f"ForeignModel: expected a torch.nn.Module, got {type(net).__name__}")
        self.spikeport_inner = net
        self.time_layout = check_layout(time_layout)
        shape = input_shape if input_shape is not None else getattr(net, "default_input_shape", None)
        self.default_input_shape = tuple(int(d) for d in shape) if shape is not None else None
        self.frameworks = frameworks_in(net)
        self._with_state = time_layout == "step" and _takes_state(net)
        for attr in ("timesteps", "zoo_name"):
            if hasattr(net, attr):
                setattr(self, attr, getattr(net, attr))

    def extra_repr(self) -> str:
        return f"time_layout={self.time_layout!r} ({describe(self.time_layout)}), frameworks={self.frameworks}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 3:
            raise DataError(f"{type(self.spikeport_inner).__name__}: expected input [T, B, ...], got "
                            f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        t, b = int(x.shape[0]), int(x.shape[1])
        net = self.spikeport_inner
        reset_state(net)
        try:
            with self._guards(t, b):
                return self._run(net, x, t, b)
        except (RuntimeError, ValueError, TypeError, IndexError) as e:  # the user's forward failed on its input
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(f"{type(net).__name__} failed on spikeport's input [T={t}, B={b}, "
                            f"{', '.join(map(str, x.shape[2:]))}] fed as {describe(self.time_layout)} (time layout "
                            f"'{self.time_layout}'): {type(e).__name__}: {msg}; if the model takes time otherwise, "
                            "pass --time-layout tb, bt, bt-flat, time-last or step") from e

    def _run(self, net: nn.Module, x: torch.Tensor, t: int, b: int) -> torch.Tensor:
        if self.time_layout != "step":
            return from_layout(first_tensor(net(to_layout(x, self.time_layout))), self.time_layout, t, b)
        outs, state = [], None
        for i in range(t):
            if self._with_state:
                out = net(x[i], state)
                if isinstance(out, tuple) and len(out) == 2:
                    out, state = out
            else:
                out = net(x[i])
            outs.append(first_tensor(out))
        return torch.stack(outs)

    @contextlib.contextmanager
    def _guards(self, t: int, b: int) -> Iterator[None]:
        """Pre-hooks checking each framework neuron receives the shape its class takes."""
        handles = []
        for name, m, expect in neuron_modules(self.spikeport_inner):
            handles.append(m.register_forward_pre_hook(
                lambda mod, args, name=name, expect=expect: self._check_call(name, mod, args, expect, t, b)))
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def _check_call(self, name: str, m: nn.Module, args: tuple[Any, ...], expect: str, t: int, b: int) -> None:
        x = first_tensor(args)
        if not isinstance(x, torch.Tensor) or x.dim() < 1:
            return
        s = tuple(x.shape)
        ok = {"step": s[0] == b,
              "tb": len(s) >= 2 and s[:2] == (t, b),
              "bt": len(s) >= 2 and s[:2] == (b, t),
              "bt-flat": s[0] == b * t and getattr(m, "num_timesteps", -1) in (-1, t)
              and getattr(m, "batch_size", -1) in (-1, b),
              "time-last": len(s) >= 2 and s[0] == b and s[-1] == t}[expect]
        if ok:
            return
        if expect == "bt-flat" and s[0] == b * t:
            raise DataError(f"module '{name}' ({type(m).__qualname__}) is built for num_timesteps="
                            f"{getattr(m, 'num_timesteps', -1)}, batch_size={getattr(m, 'batch_size', -1)} but runs "
                            f"with T={t}, B={b}; pass --timesteps {getattr(m, 'num_timesteps', t)} or build it with "
                            "num_timesteps=T (batch_size free)")
        raise DataError(f"module '{name or '<root>'}' ({type(m).__module__}.{type(m).__qualname__}) takes "
                        f"{describe(expect)} but received {list(s)} while the model runs with time layout "
                        f"'{self.time_layout}' (T={t}, B={b}); pass --time-layout {expect} (time_layout='{expect}')")


def adapt(model: nn.Module, time_layout: str | None = None, input_shape: Sequence[int] | None = None) -> nn.Module:
    """``model`` ready for spikeport: a :class:`ForeignModel` when it holds framework modules or is not in ``tb``.

    A spikeport model (or any plain ``[T, B, ...]`` model) in layout ``tb`` is returned unchanged.
    """
    if isinstance(model, ForeignModel):
        return model
    layout = check_layout(time_layout or "tb")
    if layout == "tb" and not frameworks_in(model):
        return model
    return ForeignModel(model, layout, input_shape)
