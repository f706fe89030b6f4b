"""Building blocks of the reference executor's per-op modules (used by the op family files).

Every executor module takes and returns multi-step tensors ``[T, B, ...]``.
Per-timestep ops fold T into the batch exactly like :mod:`spikeport.models.layers`
(synapse and pooling ops are executed *by* those layer classes), and neurons
loop over T calling their op's :class:`~spikeport.ops.spec.NeuronDynamics`,
which call the same pure functions as :mod:`spikeport.models.neurons`, so a
traced model and its executor produce bit-identical outputs. Stateful modules
accept ``state=`` a :class:`StateSlot` to continue from (and update) a previous
state; this is how the executor streams step by step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, overload

import numpy as np
import torch
from torch import nn

from spikeport.errors import GraphError
from spikeport.models.neurons.surrogate import get_surrogate

__all__ = ["StateSlot", "NeuronModule", "Fn", "param", "buffer", "load_state", "full_axis"]


class StateSlot:
    """Mutable holder passed to a stateful module: read ``value`` (None = zero state), write the final state."""

    __slots__ = ("value",)

    def __init__(self, value: Any = None) -> None:
        self.value = value


@overload
def param(a: np.ndarray) -> nn.Parameter: ...
@overload
def param(a: None) -> None: ...
@overload
def param(a: np.ndarray | None) -> nn.Parameter | None: ...
def param(a: np.ndarray | None) -> nn.Parameter | None:
    """A numpy array as an ``nn.Parameter`` (``None`` passes through)."""
    return None if a is None else nn.Parameter(torch.tensor(np.asarray(a)))


def buffer(a: Any, rank: int) -> Any:
    """python float -> float; array -> float32 tensor reshaped leading-aligned to a per-step rank (0-dim kept)."""
    if a is None or isinstance(a, float):
        return a
    t = torch.tensor(np.asarray(a), dtype=torch.float32)
    if t.dim() == 0:
        return t
    return t.reshape(*t.shape, *([1] * (rank - t.dim())))


def full_axis(a: int) -> int:
    """A per-step axis as an axis of the ``[T, B, ...]`` tensor."""
    return a if a < 0 else a + 2


def load_state(m: nn.Module, state: dict[str, Any], node: Any) -> nn.Module:
    """Load numpy ``state`` into ``m`` strictly (GraphError naming the node on a mismatch)."""
    sd = {k: torch.tensor(np.asarray(v)) for k, v in state.items() if v is not None}
    try:
        m.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise GraphError(f"node '{node.name}' ({node.op}): parameters do not fit the module "
                         f"({str(e).splitlines()[0]})") from e
    return m


class Fn(nn.Module):
    """A parameter-free op on multi-step tensors."""

    def __init__(self, fn: Callable[..., torch.Tensor], desc: str) -> None:
        super().__init__()
        self.fn, self.desc = fn, desc

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.fn(*xs)

    def extra_repr(self) -> str:
        return self.desc


class NeuronModule(nn.Module):
    """Executor neuron over ``[T, B, ...]`` running its op's dynamics (zero initial state unless ``state=``).

    Scalar parameters stay python floats and array parameters become buffers, so
    the arithmetic matches :mod:`spikeport.models.neurons` exactly. ``surrogate`` is
    the Heaviside used for the forward spikes (replaceable to record margins).
    """

    def __init__(self, node: Any, in_shape: tuple[int, ...]) -> None:
        super().__init__()
        from spikeport.ops.spec import spec_of

        dyn = spec_of(node).dynamics
        if dyn is None:
            raise GraphError(f"node '{node.name}' ({node.op}): its op declares no neuron dynamics")
        self._dyn = dyn
        self.kind = type(node).__name__
        self.stateful = bool(node.stateful)
        self.surrogate = get_surrogate("sigmoid")
        self._floats: dict[str, Any] = {}
        for p in dyn.params:
            v = getattr(node, p)
            v = buffer(v, len(in_shape)) if not isinstance(v, (bool, str, int)) else v  # ints stay ints
            if isinstance(v, torch.Tensor):
                self.register_buffer(p, v)
            else:
                self._floats[p] = v
        if dyn.derived is not None:
            for k, v in dyn.derived(self._params()).items():
                if isinstance(v, torch.Tensor):
                    self.register_buffer(k, v)
                else:
                    self._floats[k] = v

    def _params(self) -> dict[str, Any]:
        p = dict(self._floats)
        p.update(dict(self.named_buffers(recurse=False)))
        p["surrogate"] = self.surrogate
        return p

    def init_state(self, x_t: torch.Tensor) -> Any:
        if self._dyn.init_state is None:
            return torch.zeros_like(x_t)
        return self._dyn.init_state(x_t, self._params())

    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One timestep: ``(spikes, new_state)``."""
        return self._dyn.step(x, state, self._params())

    def forward(self, x: torch.Tensor, state: StateSlot | None = None) -> torch.Tensor:
        p = self._params()
        if state is not None and state.value is not None:
            st = state.value
        else:
            st = self._dyn.init_state(x[0], p) if self._dyn.init_state is not None else torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            s, st = self._dyn.step(x[t], st, p)
            out.append(s)
        if state is not None:
            state.value = st
        return torch.stack(out)

    def extra_repr(self) -> str:
        ps = ", ".join(f"{k}={v}" for k, v in self._floats.items())
        return f"{self.kind}({ps})"
