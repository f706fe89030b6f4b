"""Lower a :class:`SpikeGraph` to an executable ``torch.nn.Module`` (the reference executor).

``lower(graph)`` returns a :class:`LoweredModule` that runs on CPU or CUDA and:

* ``forward(x)`` takes ``[T, B, *input_shape]`` (one tensor per graph input) and
  returns the Output node values (a tensor, or a tuple for several outputs);
  for a graph traced from a model the result is bit-identical to the model's
  own forward (each op's executor module is declared in its op spec, :mod:`spikeport.ops`);
* has one registered submodule per IR node, so forward hooks can record by node
  name: :meth:`LoweredModule.node_module` / :meth:`LoweredModule.named_node_modules`
  (hooked modules see ``[T, B, ...]`` tensors in both execution modes);
* streams with :meth:`LoweredModule.step` (one timestep ``[B, ...]`` at a time,
  carrying neuron state and recurrent-edge values explicitly), unless the graph
  holds sequence-level (non-streamable) seed nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from spikeport.converter.graph import SpikeGraph
from spikeport.converter.ir import Input, IRNode
from spikeport.errors import DataError, GraphError, SpikeportError
from spikeport.ops._torch import StateSlot

__all__ = ["LoweredModule", "lower"]

State = dict[str, Any]


def lower(graph: SpikeGraph, device: str | torch.device | None = None) -> LoweredModule:
    """Validate ``graph`` and build its executor (in eval mode) on ``device``."""
    m = LoweredModule(graph)
    return m.to(device) if device is not None else m


def _execute(node: IRNode, in_shapes: list[tuple[int, ...]]) -> nn.Module:
    """The executor module of ``node``, built by its op spec."""
    from spikeport.ops import spec_of

    return spec_of(node).execute(node, in_shapes)


class LoweredModule(nn.Module):
    """Executor of a :class:`SpikeGraph` (see module docstring).

    Args:
        graph: the IR graph (validated here; not modified).

    Attributes:
        graph: a copy of the graph it executes (shapes inferred).
        default_input_shape: the per-timestep shape of the first input.
    """

    def __init__(self, graph: SpikeGraph) -> None:
        super().__init__()
        g = graph.copy().validate()
        self.graph = g
        self._order = g.topological_order()
        self._edges = {n: g.in_edges(n) for n in self._order}
        self._inputs = [n.name for n in g.input_nodes()]
        self._outputs = [n.name for n in g.output_nodes()]
        self._nodes: dict[str, IRNode] = {n: g.node(n) for n in self._order}
        self._shapes = {n: g.shape(n) for n in self._order}
        self.default_input_shape = self._shapes[self._inputs[0]]
        self.nodes = nn.ModuleDict()
        self._keys: dict[str, str] = {}
        used: set[str] = set()
        for name in self._order:
            node = self._nodes[name]
            mod = _execute(node, [self._shapes[e.src] for e in self._edges[name]])
            mod.ir_name, mod.ir_node = name, node  # type: ignore[assignment]  # torch types Module attributes as Tensor | Module; these are plain tags
            key = base = name.replace(".", "_") or "_"
            k = 1
            while key in used:
                key, k = f"{base}_{k}", k + 1
            used.add(key)
            self._keys[name] = key
            self.nodes[key] = mod
        self._remaining = dict.fromkeys(self._order, 0)
        for n in self._order:
            for e in self._edges[n]:
                if not e.recurrent:
                    self._remaining[e.src] += 1
        self._recurrent_src = sorted({e.src for es in self._edges.values() for e in es if e.recurrent})
        self.eval()

    # ------------------------------------------------------------ node access
    def node_module(self, name: str) -> nn.Module:
        """The submodule executing IR node ``name``."""
        if name not in self._keys:
            self.graph.node(name)  # raises with close matches
        return self.nodes[self._keys[name]]

    def named_node_modules(self) -> Iterator[tuple[str, nn.Module]]:
        """``(IR node name, module)`` in execution order."""
        for n in self._order:
            yield n, self.nodes[self._keys[n]]

    @property
    def sequence_nodes(self) -> list[str]:
        """Nodes that need the whole sequence (cannot stream)."""
        return [n for n in self._order if self._nodes[n].sequence]

    # ------------------------------------------------------------ execution
    def _check_inputs(self, xs: tuple[torch.Tensor, ...], step: bool) -> None:
        if len(xs) != len(self._inputs):
            raise DataError(f"graph '{self.graph.name}' takes {len(self._inputs)} input(s), got {len(xs)}")
        for name, x in zip(self._inputs, xs, strict=True):
            shape = self._shapes[name]
            want = ("B", *shape) if step else ("T", "B", *shape)
            if not isinstance(x, torch.Tensor) or x.dim() != len(want) or tuple(x.shape[-len(shape):]) != shape:
                got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                raise DataError(f"input '{name}': expected a tensor [{', '.join(map(str, want))}], got {got}")

    def _run(self, name: str, args: list[torch.Tensor], slot: StateSlot | None = None) -> torch.Tensor:
        mod = self.nodes[self._keys[name]]
        try:
            return mod(*args) if slot is None else mod(*args, state=slot)
        except SpikeportError as e:
            raise GraphError(f"node '{name}' ({self._nodes[name].op}): {e}") from e
        except (RuntimeError, ValueError, IndexError, TypeError) as e:
            shapes = [tuple(a.shape) for a in args]
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise GraphError(f"node '{name}' ({self._nodes[name].op}) failed on input shape(s) {shapes}: {msg}") from e

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Run the whole sequence ``[T, B, ...]`` from zero state."""
        self._check_inputs(inputs, step=False)
        if self._recurrent_src:
            return self._forward_stepwise(inputs)
        vals: dict[str, torch.Tensor] = {}
        left = dict(self._remaining)
        for name in self._order:
            node = self._nodes[name]
            if isinstance(node, Input):
                args = [inputs[node.index]]
            else:
                args = [vals[e.src] for e in self._edges[name]]
                for e in self._edges[name]:  # free values no later node reads
                    left[e.src] -= 1
                    if left[e.src] == 0:
                        vals.pop(e.src, None)
            vals[name] = self._run(name, args)
        outs = [vals[o] for o in self._outputs]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _forward_stepwise(self, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor | tuple[torch.Tensor, ...]:
        state: State | None = None
        steps: list[list[torch.Tensor]] = []
        for t in range(inputs[0].shape[0]):
            outs, state = self.step(*(x[t] for x in inputs), state=state)
            steps.append(list(outs) if isinstance(outs, tuple) else [outs])
        stacked = [torch.stack([s[i] for s in steps]) for i in range(len(self._outputs))]
        return stacked[0] if len(stacked) == 1 else tuple(stacked)

    def init_state(self) -> State:
        """Initial streaming state (empty: neurons start at zero, recurrent edges deliver zeros)."""
        return {}

    def step(self, *inputs_t: torch.Tensor, state: State | None = None
             ) -> tuple[torch.Tensor | tuple[torch.Tensor, ...], State]:
        """Advance one timestep.

        Args:
            *inputs_t: one ``[B, *input_shape]`` tensor per graph input.
            state: the state returned by the previous call (``None``/``{}`` at t = 0).

        Returns:
            ``(outputs_t, new_state)``; outputs are ``[B, ...]`` (tuple for several outputs).

        Raises:
            GraphError: the graph has sequence-level nodes (listed), which cannot stream.
        """
        seq = self.sequence_nodes
        if seq:
            raise GraphError(f"graph '{self.graph.name}' cannot run step by step: node(s) {', '.join(seq)} need the "
                             "whole sequence (seed attention/shift); use forward() on [T, B, ...]")
        self._check_inputs(inputs_t, step=True)
        prev = dict(state or {})
        new: State = {}
        vals: dict[str, torch.Tensor] = {}
        for name in self._order:
            node = self._nodes[name]
            if isinstance(node, Input):
                vals[name] = self._run(name, [inputs_t[node.index].unsqueeze(0)])
                continue
            args = []
            for e in self._edges[name]:
                if e.recurrent:
                    v = prev.get(f"{e.src}:out")
                    if v is None:
                        ref = next(iter(vals.values()))
                        v = ref.new_zeros((1, ref.shape[1], *self._shapes[e.src]))
                    args.append(v)
                else:
                    args.append(vals[e.src])
            if node.stateful:
                slot = StateSlot(prev.get(name))
                vals[name] = self._run(name, args, slot)
                new[name] = slot.value
            else:
                vals[name] = self._run(name, args)
        for src in self._recurrent_src:
            new[f"{src}:out"] = vals[src]
        outs = [vals[o][0] for o in self._outputs]
        return (outs[0] if len(outs) == 1 else tuple(outs)), new

    def extra_repr(self) -> str:
        return f"graph={self.graph.name!r}, nodes={len(self._order)}"
