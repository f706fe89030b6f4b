"""Test helper: the float reference of a FloatLayer chain, run by the IR executor (the one float simulator)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from spikeport.converter import SpikeGraph, ir, lower
from spikeport.targets.lava.quantize import FloatLayer


def float_graph(layers: Sequence[FloatLayer], input_shape: Sequence[int], name: str = "float") -> SpikeGraph:
    """The float model a chain of :class:`FloatLayer` s stands for, as an IR graph (run it with the executor).

    Each dense/conv layer becomes ``Linear``/``Conv2d`` (input gain folded into weight and bias) followed by a
    ``CubaLIF`` (hard reset to 0) named ``L<index>``; a flatten layer becomes ``Flatten``. This is what
    :func:`quantize_network` approximates, so ``spikeport.converter.lower(float_graph(...))`` is the float
    reference of a quantized chain (float64 when the weights and input are float64).
    """
    g = SpikeGraph(name)
    prev = "input"
    g.add(ir.Input(prev, shape=tuple(int(d) for d in input_shape)))
    for i, layer in enumerate(layers):
        if layer.kind == "flatten":
            g.add(ir.Flatten(f"F{i}"), [prev])
            prev = f"F{i}"
            continue
        n = layer.neuron
        w = np.asarray(layer.weight, dtype=np.float64) * n.input_gain
        b = None if layer.bias is None else np.asarray(layer.bias, dtype=np.float64) * n.input_gain
        if layer.kind == "dense":
            syn: ir.IRNode = ir.Linear(f"W{i}", weight=w, bias=b)
        else:
            syn = ir.Conv2d(f"W{i}", weight=w, bias=b, stride=_pair(layer.stride), padding=_pair(layer.padding),
                            dilation=_pair(layer.dilation), groups=layer.groups)
        g.add(syn, [prev])
        g.add(ir.CubaLIF(f"L{i}", i_decay=n.i_decay, v_decay=n.v_decay, v_threshold=n.v_threshold, v_reset=0.0),
              [syn.name])
        prev = f"L{i}"
    g.add(ir.Output("output"), [prev])
    return g.validate()


def float_spikes(layers, x) -> dict[int, torch.Tensor]:
    """``{layer index: [T, B, ...] float spikes}`` of the float chain on ``x`` (float64 end to end)."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    lm = lower(float_graph(layers, tuple(x.shape[2:])))
    out: dict[int, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda _m, _a, o, i=int(n[1:]): out.__setitem__(i, o.detach()))
             for n, m in lm.named_node_modules() if n.startswith("L")]
    try:
        with torch.no_grad():
            lm(x)
    finally:
        for h in hooks:
            h.remove()
    return out


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


def lowered_float_graph(fg, name: str = "lowered") -> SpikeGraph:
    """The IR graph of a lowered :class:`~spikeport.targets.lava.lowering.FloatGraph` (float64, exact rewrite).

    Each population becomes its connections (``Conv2d`` / ``Linear``, a ``Flatten`` before a dense connection
    from a (C, H, W) source), summed by ``Add`` nodes, into a ``CubaLIF`` with the neuron's input gain folded
    into weights and bias (``IF`` at threshold 0.5 for relays and OR neurons: it copies or ORs 0/1 inputs);
    neuron populations keep their IR names, so their spikes compare with the original model's by name.
    """
    from spikeport.targets.lava.graph import INPUT

    g = SpikeGraph(name)
    g.add(ir.Input("input", shape=tuple(int(d) for d in fg.input_shape)))
    shapes = {INPUT: tuple(fg.input_shape), **{p.name: tuple(p.shape) for p in fg.populations}}
    incoming: dict[str, list] = {p.name: [] for p in fg.populations}
    for c in fg.connections:
        incoming[c.dst].append(c)
    for p in fg.populations:
        gain = p.neuron.input_gain if p.neuron is not None else 1.0
        bias = None if p.bias is None else np.asarray(p.bias, dtype=np.float64) * gain
        terms = []
        for j, c in enumerate(incoming[p.name]):
            src = "input" if c.src == INPUT else c.src
            w = np.asarray(c.weight, dtype=np.float64) * gain
            b = bias if j == 0 else None  # the summed bias of the population, once
            if c.kind == "dense":
                if len(shapes[c.src]) != 1:
                    g.add(ir.Flatten(f"{p.name}/flat{j}"), [src])
                    src = f"{p.name}/flat{j}"
                g.add(ir.Linear(f"{p.name}/w{j}", weight=w, bias=b), [src])
            else:
                g.add(ir.Conv2d(f"{p.name}/w{j}", weight=w, bias=b, stride=c.stride, padding=c.padding,
                                dilation=c.dilation, groups=c.groups), [src])
            terms.append(f"{p.name}/w{j}")
        cur = terms[0]
        if len(terms) > 1:
            g.add(ir.Add(f"{p.name}/sum"), terms)
            cur = f"{p.name}/sum"
        if p.neuron is None:
            g.add(ir.IF(p.name, v_threshold=0.5, v_reset=0.0), [cur])
        else:
            n = p.neuron
            g.add(ir.CubaLIF(p.name, i_decay=n.i_decay, v_decay=n.v_decay, v_threshold=n.v_threshold, v_reset=0.0),
                  [cur])
    g.add(ir.Output("output"), [fg.output])
    return g.validate()


def as_float64(g: SpikeGraph) -> SpikeGraph:
    """A copy of ``g`` whose float arrays are float64 (to compare rewrites without float32 rounding)."""
    out = g.copy()
    for node in g.nodes().values():
        arrays = {k: v.astype(np.float64) for k, v in node.arrays().items() if v.dtype.kind == "f"}
        if arrays:
            out.replace(node.replace(**arrays))
    return out


def graph_spikes(g: SpikeGraph, x) -> dict[str, torch.Tensor]:
    """``{neuron node: [T, B, ...] spikes}`` of IR graph ``g`` run by the executor on ``x`` (float64)."""
    lm = lower(g)
    out: dict[str, torch.Tensor] = {}
    neurons = {n for n, node in g.nodes().items() if node.family == "neuron"}
    hooks = [m.register_forward_hook(lambda _m, _a, o, n=n: out.__setitem__(n, o.detach()))
             for n, m in lm.named_node_modules() if n in neurons]
    try:
        with torch.no_grad():
            lm(torch.as_tensor(np.asarray(x), dtype=torch.float64))
    finally:
        for h in hooks:
            h.remove()
    return out
