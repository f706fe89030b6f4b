"""Helpers shared by the framework op files, and the generic :class:`Delay` and :class:`Quantize` op specs.

Nothing here imports a framework: adapters receive the framework's module
instance and read it; classes are named by qualified name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from spikeport.converter.ir import frameworks as fw
from spikeport.energy.rules import OpRule
from spikeport.errors import GraphError
from spikeport.ops import nir_frameworks as nf
from spikeport.ops._torch import StateSlot
from spikeport.ops.spec import (
    ModuleAdapter,
    NirMapping,
    OnnxSupport,
    OpSpec,
    Refused,
    qualified_name,
    register_op,
)

__all__ = ["f32", "scalar", "refuse", "framework_rule", "adapter", "require_layout", "DelayModule",
           "delay_nodes"]


def f32(t: Any) -> np.ndarray:
    """A tensor/number as a float32 numpy array (detached copy; size 1 becomes 0-d)."""
    if isinstance(t, torch.Tensor):
        a = t.detach().to("cpu", torch.float32).numpy().copy()
    else:
        a = np.asarray(t, dtype=np.float32).copy()
    return a.reshape(()) if a.size == 1 else a


def scalar(t: Any) -> float:
    """A one-element tensor/number as a python float."""
    return float(t.detach().reshape(-1)[0]) if isinstance(t, torch.Tensor) else float(t)


def refuse(module: Any, name: str, param: str, why: str) -> GraphError:
    """The GraphError for a module whose ``param`` has no exact IR form (module path, class, parameter, reason)."""
    return GraphError(f"module '{name or '<root>'}' ({qualified_name(type(module))}): {param} is not supported: {why}")


def framework_rule(muls: int, adds: int, what: str, binary: bool,
                   binary_if: Callable[[Any], bool] | None = None) -> OpRule:
    """Energy rule of a framework neuron (one membrane update per neuron and step).

    ``binary=False``: the op may emit spike counts or graded values, so the recorder checks every
    output (counts are summed as spikes; downstream synapses count value-weighted ops), unless
    ``binary_if(node)`` says this node emits 0/1.
    """
    out = "binary spikes" if binary else "spikes, or spike counts/graded values where the node says so"
    return OpRule("neuron", neuron_ops=(muls, adds), binary_output=binary, binary_if=binary_if,
                  note=f"{what} membrane update: {muls} multiplication(s) + {adds} addition(s) incl. the threshold "
                       f"compare (the default reset form); output: {out}")


def adapter(qualname: str, convert: Callable[[Any, str], Any], framework: str,
            methods: Sequence[str] = ("forward",), known: Iterable[str] = (),
            tuple_output: bool | Callable[[Any], bool] = False) -> ModuleAdapter:
    """A module adapter naming a framework class by its qualified name (the framework is not imported)."""
    return ModuleAdapter(qualname, convert, known=(qualname, *known), methods=tuple(methods), framework=framework,
                         tuple_output=tuple_output)


def require_layout(module: Any, name: str, allowed: Sequence[str], what: str) -> str:
    """The trace's time layout, or a GraphError when ``module`` is not called that way in the traced model."""
    from spikeport.converter.tracer import current_layout

    layout = current_layout()
    if layout not in allowed:
        want = " or ".join(f"'{a}'" for a in allowed)
        raise GraphError(f"module '{name or '<root>'}' ({qualified_name(type(module))}) {what}, but the model is "
                         f"traced with time layout '{layout}'; pass --time-layout {want} (time_layout={want})")
    return layout


# ---------------------------------------------------------------- Delay
class DelayModule(nn.Module):
    """Executor of :class:`~spikeport.converter.ir.frameworks.Delay` over ``[T, B, ...]`` (streams with ``state=``)."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = int(steps)

    def forward(self, x: torch.Tensor, state: StateSlot | None = None) -> torch.Tensor:
        prev = state.value if state is not None and state.value is not None else \
            x.new_zeros((self.steps, *x.shape[1:]))
        full = torch.cat([prev, x], 0)
        if state is not None:
            state.value = full[x.shape[0]:]
        return full[: x.shape[0]]

    def extra_repr(self) -> str:
        return f"steps={self.steps}"


def delay_nodes(name: str, steps: int) -> list[Any]:
    """``[Delay(name.delay, steps)]``, or ``[]`` for no delay."""
    return [fw.Delay(f"{name}.delay", steps=steps)] if steps else []


register_op(OpSpec(
    fw.Delay, "whole-step delay (SLAYER delay_shift, NIR Delay)", lambda n, _: DelayModule(n.steps),
    modules=Refused("created by framework adapters (SLAYER blocks' delay_shift), not from a module of its own"),
    energy=OpRule("free", note="Delay: a buffer of the last k steps, no arithmetic"),
    nir=NirMapping(nf.export_delay, {"Delay": nf.import_delay}),
    onnx=OnnxSupport(),
    loihi=Refused("a standalone delay: netx layers add a fixed one-step delay each and have no configurable "
                  "axonal delay; the Lava graph lowering decides how a SLAYER delay_shift maps")))


# ---------------------------------------------------------------- Quantize
class _QuantizeModule(nn.Module):
    def __init__(self, node: fw.Quantize) -> None:
        super().__init__()
        self.step, self.lo, self.hi = node.step, node.minimum, node.maximum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.round(x / self.step) * self.step
        if self.lo is not None or self.hi is not None:
            y = y.clamp(self.lo, self.hi)
        return y

    def extra_repr(self) -> str:
        return f"step={self.step}, min={self.lo}, max={self.hi}"


register_op(OpSpec(
    fw.Quantize, "rounding to a grid (SLAYER Input block quantisation)", lambda n, _: _QuantizeModule(n),
    modules=Refused("created by the SLAYER Input block adapter, not from a module of its own"),
    energy=OpRule("free", note="Quantize: rounding of the input data (host side), not counted"),
    nir=NirMapping(Refused("Quantize has no NIR primitive (SLAYER quantises the input on the host: quantise the "
                           "data before it enters the graph)")),
    loihi=Refused("input quantisation happens on the host; netx's input layer takes the quantized data")))
