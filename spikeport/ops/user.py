"""Declare a hand-written neuron (plain PyTorch) as an op in one decorator: :func:`spiking_neuron`.

The full route (an IR node dataclass plus an :class:`~spikeport.ops.spec.OpSpec`, see
``docs/extending.md``) gives control over every capability. Most hand-written neurons only need
to be traced, executed, counted and exported to ONNX exactly, which the decorator sets up from the
module class itself::

    @spiking_neuron(params=("beta", "threshold"), ops=(1, 2))
    class MyLIF(nn.Module):
        def __init__(self, beta=0.9, threshold=1.0):
            super().__init__()
            self.beta, self.threshold = beta, threshold

        @staticmethod
        def step(x, v, *, beta, threshold, spike):
            h = beta * v + x
            s = spike(h - threshold)          # Heaviside: 1[h - threshold >= 0]
            return s, h * (1.0 - s)

        def forward(self, x):                 # [T, B, ...], zero initial state
            v, out = torch.zeros_like(x[0]), []
            for t in range(x.shape[0]):
                s, v = self.step(x[t], v, beta=self.beta, threshold=self.threshold, spike=heaviside)
                out.append(s)
            return torch.stack(out)

The executor runs the same ``step`` with spikeport's Heaviside, so the traced model is
bit-identical to the module as long as ``forward`` is this loop (from the state
``init_state(x_t, **params)`` if the class defines it, else zeros). Parameters are read from the
module's attributes of the same names (numbers, or tensors that broadcast as they are).
NIR and Loihi are refused until declared the full way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import torch

from spikeport.converter.ir.neuron import NeuronNode
from spikeport.converter.ir.node import Param, param_field
from spikeport.errors import GraphError
from spikeport.ops.spec import ModuleAdapter, NeuronDynamics, NirMapping, OpSpec, Refused, register_op

_Class = TypeVar("_Class", bound=type[Any])

__all__ = ["spiking_neuron"]


def _value(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        a = v.detach().to("cpu").numpy().copy()
        return a.astype(np.float32) if a.dtype.kind == "f" else a
    if isinstance(v, (bool, np.bool_)):
        raise GraphError(f"a neuron parameter must be a number or a tensor, got {v!r}")
    return float(v)


def spiking_neuron(*, params: Sequence[str], ops: tuple[int, int] = (1, 2), binary: bool = True,
                   name: str | None = None, summary: str = "", replace: bool = False
                   ) -> Callable[[_Class], _Class]:
    """Class decorator registering a hand-written neuron module as an IR op (see the module docstring).

    Args:
        params: attribute names of the module that the step reads (keyword arguments of ``step``).
        ops: ``(multiplications, additions)`` of one membrane update, for the energy model.
        binary: the neuron emits 0/1 only (``False``: counts or graded values, checked on every call).
        name: the IR op name (default: the class name).
        summary: one line for ``spikeport ops``.
        replace: replace an earlier registration of the same op (notebooks).

    Returns:
        The class, unchanged but for ``cls.spikeport_op`` (the IR node type).
    """
    names = tuple(params)
    if not names or not all(isinstance(p, str) and p.isidentifier() for p in names):
        raise GraphError(f"spiking_neuron: params must be attribute names, got {params!r}")

    def deco(cls: _Class) -> _Class:
        step = getattr(cls, "step", None)
        if not callable(step):
            raise GraphError(f"spiking_neuron: {cls.__name__} needs a static method step(x, state, *, "
                             f"{', '.join(names)}, spike) -> (spikes, new_state)")
        op = name or cls.__name__
        fields = [(p, Param, param_field()) for p in names]
        node_cls = dataclasses.make_dataclass(op, fields, bases=(NeuronNode,), frozen=True, eq=False, repr=False,
                                              namespace={"__doc__": f"IR op of the hand-written neuron "
                                                                    f"{cls.__module__}.{cls.__qualname__}.",
                                                         "__module__": cls.__module__})
        init = getattr(cls, "init_state", None)

        def run(x: Any, state: Any, p: Any) -> Any:
            return step(x, state, spike=p["surrogate"], **{k: p[k] for k in names})

        def start(x: Any, p: Any) -> Any:
            return init(x, **{k: p[k] for k in names}) if callable(init) else torch.zeros_like(x)

        def convert(m: Any, node_name: str) -> Any:
            return node_cls(node_name, **{k: _value(getattr(m, k)) for k in names})

        from spikeport.ops.frameworks._shared import framework_rule
        from spikeport.ops.neurons import execute_neuron

        register_op(OpSpec(
            node_cls, summary or f"hand-written neuron {cls.__qualname__}", execute_neuron,
            modules=(ModuleAdapter(cls, convert, framework="user"),),
            dynamics=NeuronDynamics(names, run, init_state=start),
            energy=framework_rule(ops[0], ops[1], cls.__qualname__, binary=binary),
            nir=NirMapping(Refused(f"no NIR mapping declared for {op}; declare its OpSpec (docs/extending.md)")),
            loihi=Refused(f"no Loihi mapping declared for {op}; declare its OpSpec (docs/extending.md)")),
            replace=replace)
        cls.spikeport_op = node_cls
        return cls

    return deco
