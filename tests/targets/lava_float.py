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
