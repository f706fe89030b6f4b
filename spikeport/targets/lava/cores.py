"""Deployability of a Loihi deployment: neurons, synapses and an estimate of Loihi 2 cores per layer."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from spikeport.targets.lava.deploy import LoihiDeployment
from spikeport.targets.lava.sidecar import READOUT_SUFFIX

__all__ = ["LOIHI2_CORE_LIMITS", "loihi_summary"]

LOIHI2_CORE_LIMITS = {"cores_per_chip": 128, "neurons_per_core": 8192, "synapses_per_core": 937_500}
"""Per-core budget assumed by :func:`loihi_summary`: Loihi 2's chip totals (1 M neurons, 120 M synapses,
128 neuro cores; Intel's Loihi 2 brief, as quoted by open-neuromorphic.org) divided evenly over the cores.
Real allocation (Lava-Loihi compiler, not public) depends on weight precision and sharing; treat the core
count as an estimate."""


def _connections(layer: Any, in_shape: tuple[int, ...]) -> int:
    """Exact number of (input, output) synapses of a layer (conv: zero padding excluded)."""
    w = np.asarray(layer.weight)
    if layer.kind == "dense":
        return int(w.size)
    ones = torch.ones(1, *in_shape, dtype=torch.float64)
    k = torch.ones(w.shape, dtype=torch.float64)
    out = torch.nn.functional.conv2d(ones, k, stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                                     groups=layer.groups)
    return int(out.sum().item())


def loihi_summary(dep: LoihiDeployment) -> dict[str, Any]:
    """Deployability of a lowered model: neurons, synapses and an estimate of Loihi 2 cores, per layer.

    Cores per layer = max(ceil(neurons / 8192), ceil(synapses / 937 500)) (see :data:`LOIHI2_CORE_LIMITS`;
    each netx layer gets its own cores). ``max_input_current`` is the worst-case integer synaptic input of one
    step (all inputs spiking at their largest value into the largest same-sign weights); above ``2**17`` Lava's
    24-bit current can wrap (the reference reproduces the wrap, but it departs from the float model).
    """
    from spikeport.targets.lava.network import netx_dense_weights

    lim = LOIHI2_CORE_LIMITS
    net = dep.network
    prev = tuple(net.input_shape)
    in_max = (2 ** dep.input_message_bits - 1) if dep.input_scale else 1
    rows, first = [], True
    for layer, syn in zip(net.layers, dep.synapses):
        if not layer.has_neurons:
            prev = layer.shape
            continue
        n = int(np.prod(layer.shape))
        conns = _connections(layer, prev)
        w = np.asarray(layer.weight)
        if layer.kind == "dense":
            w_eff, _, exp, _ = netx_dense_weights(w)
            pos = np.clip(w_eff, 0, None).sum(1) * 2.0 ** exp
            neg = np.clip(w_eff, None, 0).sum(1) * 2.0 ** exp
        else:
            pos = np.clip(w, 0, None).reshape(w.shape[0], -1).sum(1)
            neg = np.clip(w, None, 0).reshape(w.shape[0], -1).sum(1)
        peak = float(max(pos.max(), -neg.min())) * (in_max if first else 1)
        cores = max(math.ceil(n / lim["neurons_per_core"]), math.ceil(conns / lim["synapses_per_core"]))
        rows.append({"name": layer.name, "synapse": syn, "kind": layer.kind, "shape": list(layer.shape),
                     "neurons": n, "synapses": conns, "weights_stored": int(w.size), "scale": layer.scale,
                     "v_th_mant": layer.v_th_mant, "i_decay": layer.i_decay, "v_decay": layer.v_decay,
                     "max_input_current": int(peak), "current_may_wrap": peak * 64 >= 2 ** 23,
                     "est_cores": cores})
        prev, first = layer.shape, False
    total_cores = sum(r["est_cores"] for r in rows)
    readout = dep.readout
    ops: dict[str, int] = {}
    for node in readout.nodes().values():
        if node.family != "io":
            ops[node.op] = ops.get(node.op, 0) + 1
    return {
        "neurons": sum(r["neurons"] for r in rows), "synapses": sum(r["synapses"] for r in rows),
        "weights_stored": sum(r["weights_stored"] for r in rows), "neuron_layers": len(rows),
        "est_cores": total_cores, "fits_one_chip": total_cores <= lim["cores_per_chip"],
        "core_limits": {**lim, "source": "Loihi 2 chip totals (1M neurons, 120M synapses, 128 cores) / 128"},
        "input": {"shape": list(net.input_shape), "encoding": "graded" if dep.input_scale else "binary",
                  "scale": dep.input_scale, "message_bits": dep.input_message_bits},
        "layers": rows,
        "host_readout": {"ops": ops, "params": int(sum(n.num_params for n in readout.nodes().values())),
                         "file": READOUT_SUFFIX},
    }
