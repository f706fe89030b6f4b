r"""Which IR graphs can run on Loihi 2, node by node: the roles of the op registry and the refusals.

**What goes on the chip.** After BatchNorm folding (and constant folding), the
graph must be one chain ``Input -> [Flatten] -> (Conv2d | Linear) -> neuron ->
[Flatten] -> (Conv2d | Linear) -> neuron -> ...``: every synapse (with its
bias) is followed directly by a spiking neuron, which becomes one netx
``conv``/``dense`` block of CUBA neurons. Each op's role (synapse, neuron,
flatten, io) and its CUBA mapping come from its op spec
(:mod:`spikeport.ops`); the nodes after the last spiking layer run on the host
(see :mod:`spikeport.targets.lava.deploy`).

**Refusals.** :class:`Classifier` collects, for every node, why it blocks the
mapping: the op's own Loihi refusal (pooling or residual adds inside the
network, temporal-shift and attention modules, ...), neuron parameters Loihi
cannot hold (soft reset, ``v_reset != 0``, per-channel values), synapses
without a neuron after them, recurrence, and so on;
:func:`~spikeport.targets.lava.deploy.deploy_graph` raises them all in one
:class:`~spikeport.errors.UnsupportedNodeError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from spikeport.errors import ExportError, UnsupportedNodeError
from spikeport.targets.lava.quantize import FloatNeuron

__all__ = ["Classifier", "float_neuron", "loihi_role"]


def _loihi(node: Any) -> Any:
    """The node's Loihi capability from its op spec: a LoihiMapping or a Refused."""
    from spikeport.ops import Refused, find_spec

    spec = find_spec(type(node))
    if spec is None:
        return Refused(f"{node.op}: no op spec, so no Loihi mapping (register one with spikeport.ops.register_op)")
    return spec.loihi


def loihi_role(node: Any) -> str | None:
    """``synapse``, ``neuron``, ``flatten``, ``io`` (or None when the op refuses Loihi)."""
    from spikeport.ops import LoihiMapping

    m = _loihi(node)
    return m.role if isinstance(m, LoihiMapping) else None


def float_neuron(node: Any) -> FloatNeuron:
    """The :class:`FloatNeuron` of an IR neuron node (ExportError with the reason if it has none)."""
    from spikeport.ops import LoihiMapping

    m = _loihi(node)
    if not isinstance(m, LoihiMapping) or m.neuron is None:
        why = m.why(node) if not isinstance(m, LoihiMapping) else f"{node.op} is not a neuron"
        raise ExportError(f"no Loihi CUBA mapping for neuron type {node.op}: {why}")
    return m.neuron(node)


def _is_full_flatten(g: Any, name: str) -> bool:
    node = g.node(name)
    if node.op == "Reshape":
        return len(g.shape(name)) == 1
    s, e = node.axes(len(g.in_shapes(name)[0]))
    return s == 0 and e == len(g.in_shapes(name)[0]) - 1


class Classifier:
    """Collects, for every node of the graph, why it blocks the Loihi mapping."""

    def __init__(self, g: Any) -> None:
        import networkx as nx

        self.g = g
        self.nodes = g.nodes()
        self.order = g.topological_order()
        self.problems: dict[str, str] = {}
        self.graph_problems: list[str] = []
        gx = g.nx
        neurons = [n for n in self.order if self.nodes[n].family == "neuron"]
        self.on_chip: set[str] = set(neurons)
        for n in neurons:
            self.on_chip |= nx.ancestors(gx, n)
        sinks = [n for n in neurons if not any(self.nodes[d].family == "neuron" for d in nx.descendants(gx, n))]
        self.last = sinks[0] if len(sinks) == 1 else None
        if not neurons:
            self.graph_problems.append("no spiking neuron: nothing to run on Loihi")
        elif len(sinks) > 1:
            self.graph_problems.append(f"several spiking layers ({', '.join(sinks)}) feed the output; the host "
                                       f"readout takes the spikes of exactly one last layer")

    def users(self, name: str) -> list[str]:
        return [e.dst for e in self.g.users(name)]

    def srcs(self, name: str) -> list[str]:
        return [e.src for e in self.g.in_edges(name)]

    def op(self, name: str) -> str:
        return self.nodes[name].op

    def run(self) -> None:
        g = self.g
        if g.has_recurrence:
            rec = sorted({f"{e.src} -> {e.dst}" for e in g.edges() if e.recurrent})
            self.graph_problems.append(f"recurrent connection(s) {', '.join(rec)}: netx dense_rec layers are not "
                                       f"supported by spikeport's Lava target")
        ins, outs = g.input_nodes(), g.output_nodes()
        if len(ins) != 1 or len(outs) != 1:
            self.graph_problems.append(f"{len(ins)} inputs and {len(outs)} outputs: the Lava target needs exactly one "
                                       f"of each")
        merges = any(self.op(n) in ("Add", "Concat", "Mul") for n in self.order)
        # root causes first (unsupported op, neuron parameters); a node whose only fault is a blocked
        # neighbour (e.g. the conv feeding a residual Add) is not listed again
        self.roots = {n: why for n in self.order if n in self.on_chip and (why := self._root(n))}
        for name in self.order:
            if name in self.roots:
                why = self.roots[name]
            elif name in self.on_chip:
                why = self._on_chip(name)
                if why is None and not merges and self.nodes[name].family != "io" and len(self.users(name)) > 1:
                    why = f"its output feeds {len(self.users(name))} nodes; a netx network is a single chain"
            else:
                why = self._readout(name)
            if why:
                self.problems[name] = why

    def _root(self, name: str) -> str | None:
        from spikeport.ops import Refused

        node = self.nodes[name]
        m = _loihi(node)
        if isinstance(m, Refused):
            return m.why(node)
        if m.role == "neuron":
            try:
                float_neuron(node)
            except ExportError as e:
                return str(e)
        return None

    def role(self, name: str) -> str | None:
        return loihi_role(self.nodes[name])

    def _blocked(self, names: Sequence[str]) -> bool:
        return any(n in self.roots for n in names)

    def _readout(self, name: str) -> str | None:
        if self.last is None:
            return None
        bad = [s for s in self.srcs(name) if s in self.on_chip and s != self.last]
        if bad:
            return (f"host readout node reads '{bad[0]}', which is not the last spiking layer"
                    + (f" '{self.last}'" if self.last else ""))
        return None

    def _on_chip(self, name: str) -> str | None:
        node, op = self.nodes[name], self.op(name)
        g = self.g
        if op == "Input":
            if len(node.shape) not in (1, 3):
                return f"input shape {list(node.shape)}: Loihi layers take (N,) or (C, H, W) inputs"
            return None
        if self.role(name) == "synapse":
            users = self.users(name)
            if self._blocked(users) or self._blocked(self.srcs(name)):
                return None
            if len(users) != 1 or self.role(users[0]) != "neuron":
                got = ", ".join(f"{u} ({self.op(u)})" for u in users) or "nothing"
                return (f"{op} is not followed directly by a spiking neuron (feeds {got}); every netx layer is a "
                        f"synapse into neurons")
            src = self.srcs(name)[0]
            src_shape = g.shape(src)
            if op == "Linear" and len(src_shape) != 1:
                return f"Linear on a {list(src_shape)} input acts on the last axis only; flatten the input first"
            if op == "Conv2d" and self.op(src) != "Input" and self.role(src) != "neuron":
                return f"Conv2d reads '{src}' ({self.op(src)}), not the input or a spiking layer"
            if op == "Linear" and self.op(src) != "Input" and self.role(src) not in ("flatten", "neuron"):
                return f"Linear reads '{src}' ({self.op(src)}), not the input, a flatten or a spiking layer"
            return None
        if self.role(name) == "neuron":
            srcs = self.srcs(name)
            if self._blocked(srcs):
                return None
            if len(srcs) != 1 or self.role(srcs[0]) != "synapse":
                src = f"'{srcs[0]}' ({self.op(srcs[0])})" if srcs else "nothing"
                return (f"{op} neuron is fed by {src}, not by a Conv2d/Linear synapse; Loihi neurons receive input "
                        f"through synapses only")
            syn = self.nodes[srcs[0]]
            if syn.bias is not None and np.any(syn.bias != 0) and float_neuron(node).i_decay != 1.0:
                return (f"a bias into a {op} with current decay < 1 cannot be mapped (Lava adds the bias to the "
                        "voltage, not the current)")
            return None
        if self.role(name) == "flatten":
            if self._blocked(self.srcs(name)) or self._blocked(self.users(name)):
                return None
            if not _is_full_flatten(g, name):
                return f"{op} to {list(g.shape(name))}: only a full flatten to (N,) maps to a netx flatten layer"
            src = self.srcs(name)[0]
            if self.op(src) != "Input" and not (self.role(src) == "neuron" and len(g.shape(src)) == 3):
                return f"{op} reads '{src}' ({self.op(src)}); netx flattens the input or a conv layer's spikes only"
            if any(self.op(u) != "Linear" for u in self.users(name)):
                return f"{op} is not followed by a Linear layer (netx wiring: flatten -> dense)"
            return None
        return None

    def error(self) -> UnsupportedNodeError | None:
        if not self.problems and not self.graph_problems:
            return None
        grouped: dict[tuple[str, str], list[str]] = {}
        for n, why in self.problems.items():  # same op and reason: one entry naming every node
            grouped.setdefault((self.op(n), why), []).append(f"'{n}'")
        parts = self.graph_problems + [f"{', '.join(ns)} ({op}): {why}" for (op, why), ns in grouped.items()]
        count = [f"{len(self.problems)} blocking node(s)"] if self.problems else []
        count += [f"{len(self.graph_problems)} graph problem(s)"] if self.graph_problems else []
        return UnsupportedNodeError(f"graph '{self.g.name}' cannot be lowered to Loihi ({' and '.join(count)}): "
                                    + "; ".join(parts))
