"""Test helper: the float reference of a FloatLayer chain, run by the IR executor (the one float simulator)."""

from __future__ import annotations

import numpy as np
import torch

from spikeport.converter import lower
from spikeport.targets.lava.quantize import float_graph


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
