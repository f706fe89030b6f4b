"""Deployability of a Loihi deployment: neurons, synapses, fan-in/fan-out, relays and Loihi 2 cores.

Works on the graph form of any deployment (a netx chain is a graph with one connection per population).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from spikeport.errors import GraphError
from spikeport.targets.lava.deploy import LoihiDeployment
from spikeport.targets.lava.graph import INPUT, Connection, LoihiGraph
from spikeport.targets.lava.sidecar import READOUT_SUFFIX

__all__ = ["LOIHI2_CORE_LIMITS", "loihi_summary", "connection_counts"]

LOIHI2_CORE_LIMITS = {"cores_per_chip": 128, "neurons_per_core": 8192, "synapses_per_core": 937_500}
"""Per-core budget assumed by :func:`loihi_summary`: Loihi 2's chip totals (1 M neurons, 120 M synapses,
128 neuro cores; Intel's Loihi 2 brief, as quoted by open-neuromorphic.org) divided evenly over the cores.
Real allocation (Lava-Loihi compiler, not public) depends on weight precision and sharing; treat the core
count as an estimate."""


def connection_counts(c: Connection, src_shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact synapse counts of a connection: per target neuron (fan-in map) and per source neuron (fan-out map).

    Conv: the (input, output) pairs a kernel links, zero padding excluded; dense: every weight.
    """
    w = np.asarray(c.weight)
    if c.kind == "dense":
        n_out, n_in = w.shape
        return torch.full((n_out,), float(n_in), dtype=torch.float64), \
            torch.full(src_shape, float(n_out), dtype=torch.float64)
    ones_w = torch.ones(w.shape, dtype=torch.float64)
    x = torch.ones(1, *src_shape, dtype=torch.float64, requires_grad=True)
    out = F.conv2d(x, ones_w, stride=c.stride, padding=c.padding, dilation=c.dilation, groups=c.groups)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach()[0], grad[0]


def _peak_current(c: Connection, in_max: int) -> np.ndarray:
    """Worst-case integer synaptic input per output channel/neuron of one step (same-sign weights all firing)."""
    from spikeport.targets.lava.network import netx_dense_weights

    w = np.asarray(c.weight)
    if c.kind == "dense":
        w_eff, _, exp, _ = netx_dense_weights(w)
        pos = np.clip(w_eff, 0, None).sum(1) * 2.0 ** exp
        neg = np.clip(w_eff, None, 0).sum(1) * 2.0 ** exp
    else:
        pos = np.clip(w, 0, None).reshape(w.shape[0], -1).sum(1)
        neg = np.clip(w, None, 0).reshape(w.shape[0], -1).sum(1)
    return np.maximum(pos, -neg) * in_max


def loihi_summary(dep: LoihiDeployment) -> dict[str, Any]:
    """Deployability of a lowered model: per population and in total.

    Per population: neurons, synapses into it (exact, see :func:`connection_counts`), weights stored, the
    largest fan-in of one of its neurons and fan-out of one of its source neurons, the worst-case synaptic
    input of one step (``max_input_current``; above ``2**17`` Lava's 24-bit current can wrap, which the
    reference reproduces but the float model does not) and an estimate of cores:
    ``max(ceil(neurons / 8192), ceil(synapses / 937 500))`` (see :data:`LOIHI2_CORE_LIMITS`; each population
    gets its own cores). Totals add the relay neurons that equalise path latencies and the OR neurons of
    max pooling.
    """
    lim = LOIHI2_CORE_LIMITS
    g: LoihiGraph = dep.graph
    in_max = (2 ** dep.input_message_bits - 1) if dep.input_scale else 1
    fan_out: dict[str, torch.Tensor] = {}
    rows: list[dict[str, Any]] = []
    for p in g.populations:
        conns = g.incoming(p.name)
        fan_in = torch.zeros(p.shape[0], dtype=torch.float64) if len(p.shape) == 1 else None
        synapses, peak = 0, np.zeros(p.shape[0])
        for c in conns:
            src_shape = g.src_shape(c)
            fin, fout = connection_counts(c, src_shape)
            synapses += int(fin.sum().item())
            fan_in = fin if fan_in is None else fan_in + fin
            fan_out[c.src] = fan_out.get(c.src, torch.zeros(src_shape, dtype=torch.float64)) + fout
            peak = peak + _peak_current(c, in_max if c.src == INPUT else 1)
        if fan_in is None:  # a LoihiGraph feeds every population by at least one connection
            raise GraphError(f"Loihi population {p.name!r}: no connection feeds it")
        n = p.size
        cores = max(math.ceil(n / lim["neurons_per_core"]), math.ceil(synapses / lim["synapses_per_core"]))
        top = float(peak.max()) if peak.size else 0.0
        rows.append({"name": p.name, "role": p.role, "kind": "+".join(sorted({c.kind for c in conns})),
                     "shape": list(p.shape), "level": g.level(p.name), "neurons": n, "synapses": synapses,
                     "connections": [c.synapse for c in conns],
                     "weights_stored": int(sum(c.weight.size for c in conns)),
                     "fan_in": int(fan_in.max().item()), "scale": p.scale, "v_th_mant": p.v_th_mant,
                     "i_decay": p.i_decay, "v_decay": p.v_decay, "max_input_current": int(top),
                     "current_may_wrap": top * 64 >= 2 ** 23, "est_cores": cores})
    for r in rows:
        fo = fan_out.get(r["name"])
        r["fan_out"] = int(fo.max().item()) if fo is not None else 0
    total_cores = sum(r["est_cores"] for r in rows)
    readout = dep.readout
    ops: dict[str, int] = {}
    for node in readout.nodes().values():
        if node.family != "io":
            ops[node.op] = ops.get(node.op, 0) + 1
    relays = [r for r in rows if r["role"] == "relay"]
    ors = [r for r in rows if r["role"] == "or"]
    return {
        "format": "netx" if dep.is_chain else "spikeport-loihi-graph",
        "neurons": sum(r["neurons"] for r in rows), "synapses": sum(r["synapses"] for r in rows),
        "weights_stored": sum(r["weights_stored"] for r in rows), "neuron_layers": len(g.neurons),
        "populations": len(rows), "connections": len(g.connections), "depth": g.depth,
        "relay_populations": len(relays), "relay_neurons": sum(r["neurons"] for r in relays),
        "relay_synapses": sum(r["synapses"] for r in relays),
        "or_populations": len(ors), "or_neurons": sum(r["neurons"] for r in ors),
        "max_fan_in": max(r["fan_in"] for r in rows), "max_fan_out": max(r["fan_out"] for r in rows),
        "est_cores": total_cores, "fits_one_chip": total_cores <= lim["cores_per_chip"],
        "core_limits": {**lim, "source": "Loihi 2 chip totals (1M neurons, 120M synapses, 128 cores; Intel's "
                                         "Loihi 2 brief) / 128; an estimate, not the Lava-Loihi compiler's "
                                         "allocation"},
        "input": {"shape": list(g.input_shape), "encoding": "graded" if dep.input_scale else "binary",
                  "scale": dep.input_scale, "message_bits": dep.input_message_bits},
        "layers": rows,
        "host_readout": {"ops": ops, "params": int(sum(n.num_params for n in readout.nodes().values())),
                         "file": READOUT_SUFFIX},
    }
