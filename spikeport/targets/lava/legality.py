r"""Which IR graphs can run on Loihi 2, node by node: the roles of the op registry and the refusals.

**Roles.** Every op's Loihi capability is declared in its op spec (:mod:`spikeport.ops`): a
:class:`~spikeport.ops.spec.LoihiMapping` with a role (``synapse``, ``neuron``, ``flatten``, ``io``,
``merge``, ``pool``, ``or``) or a :class:`~spikeport.ops.spec.Refused` with the reason. This module only
looks roles up; the lowering (:mod:`spikeport.targets.lava.lowering`) dispatches on them.

**What goes on the chip.** Every spiking neuron and everything upstream of one (after BatchNorm and
constant folding). The nodes after the last spiking layer run on the host (the readout; see
:mod:`spikeport.targets.lava.deploy`), which must read exactly one spiking layer.

**Refusals.** :class:`Classifier` collects the root causes: the op's own Loihi refusal (temporal shift,
attention, element-wise products, ...), neuron parameters Loihi cannot hold (soft reset, ``v_reset != 0``,
per-channel values), recurrence, several inputs or outputs. The lowering adds the structural ones (two
synapses in a row, an op between a synapse and its neuron, relays of graded input, ...).
:meth:`Classifier.error` reports every problem in one :class:`~spikeport.errors.UnsupportedNodeError`;
for the paper-method modules (TS, STAA, FSTA) it also says which share of the synaptic operations could
run on the chip and which nodes would have to run on the host (:func:`host_split`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spikeport.errors import ExportError, UnsupportedNodeError
from spikeport.targets.lava.quantize import FloatNeuron

__all__ = ["Classifier", "float_neuron", "loihi_role", "loihi_window", "host_split"]


def _loihi(node: Any) -> Any:
    """The node's Loihi capability from its op spec: a LoihiMapping or a Refused."""
    from spikeport.ops import Refused, find_spec

    spec = find_spec(type(node))
    if spec is None:
        return Refused(f"{node.op}: no op spec, so no Loihi mapping (register one with spikeport.ops.register_op)")
    return spec.loihi


def loihi_role(node: Any) -> str | None:
    """The node's role in a Loihi deployment (see the module docstring), or None when the op refuses Loihi."""
    from spikeport.ops import LoihiMapping

    m = _loihi(node)
    return m.role if isinstance(m, LoihiMapping) else None


def loihi_window(node: Any, in_shape: tuple[int, ...]) -> Any:
    """The :class:`~spikeport.ops.spec.PoolWindow` of a ``pool`` / ``or`` node (ExportError with the reason)."""
    from spikeport.ops import Refusal

    m = _loihi(node)
    try:
        return m.window(node, tuple(in_shape))
    except Refusal as e:
        raise ExportError(str(e)) from e


def float_neuron(node: Any) -> FloatNeuron:
    """The :class:`FloatNeuron` of an IR neuron node (ExportError with the reason if it has none)."""
    from spikeport.ops import LoihiMapping

    m = _loihi(node)
    if not isinstance(m, LoihiMapping) or m.neuron is None:
        why = m.why(node) if not isinstance(m, LoihiMapping) else f"{node.op} is not a neuron"
        raise ExportError(f"no Loihi CUBA mapping for neuron type {node.op}: {why}")
    return m.neuron(node)


def _synaptic_ops(g: Any, name: str) -> int:
    """Dense synaptic operations of one step of a Conv2d/Linear node: outputs x fan-in (0 for other ops)."""
    node = g.node(name)
    if loihi_role(node) != "synapse":
        return 0
    w = np.shape(node.weight)
    return int(np.prod(g.shape(name))) * int(np.prod(w[1:]))


def host_split(g: Any, refused: list[str], on_chip: set[str] | None = None) -> dict[str, Any]:
    """What of a graph could run on Loihi if the ``refused`` nodes ran on the host.

    A spiking network cannot hand its state back and forth mid-step, so everything downstream of a refused
    node (its consumers' consumers, to the output) runs on the host too. Synaptic operations are the
    dense operations of one step (outputs x fan-in) of the Conv2d and Linear nodes of the chip side
    (``on_chip``: the spiking layers and everything upstream; the host readout after the last spiking
    layer is not counted); the refused modules' internal operations are not counted.

    Returns:
        ``{"fraction", "chip_ops", "total_ops", "refused": names, "downstream": names, "host_synapses": names}``.
    """
    import networkx as nx

    order = [n for n in g.topological_order() if on_chip is None or n in on_chip]
    downstream: set[str] = set()
    for n in refused:
        downstream |= nx.descendants(g.nx, n)
    downstream -= set(refused)
    total = sum(_synaptic_ops(g, n) for n in order)
    host = [n for n in order if n in downstream or n in refused]
    host_ops = sum(_synaptic_ops(g, n) for n in host)
    body = [n for n in g.topological_order() if n in downstream and g.node(n).family != "io"]
    return {"fraction": (total - host_ops) / total if total else 0.0, "chip_ops": total - host_ops,
            "total_ops": total, "refused": list(refused), "downstream": body,
            "host_synapses": [n for n in host if _synaptic_ops(g, n)]}


class Classifier:
    """Root causes, per node, of a graph's refusal on Loihi (registry lookups), and the on-chip region."""

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
        self.roots: dict[str, str] = {}

    def users(self, name: str) -> list[str]:
        return [e.dst for e in self.g.users(name)]

    def srcs(self, name: str) -> list[str]:
        return [e.src for e in sorted(self.g.in_edges(name), key=lambda e: e.port)]

    def op(self, name: str) -> str:
        return self.nodes[name].op

    def role(self, name: str) -> str | None:
        return loihi_role(self.nodes[name])

    def run(self) -> None:
        """Collect the root causes (op refusals, neuron parameters) and the graph-level problems."""
        g = self.g
        if g.has_recurrence:
            rec = sorted({f"{e.src} -> {e.dst}" for e in g.edges() if e.recurrent})
            self.graph_problems.append(f"recurrent connection(s) {', '.join(rec)}: recurrent Loihi synapses are not "
                                       f"supported by spikeport's Lava target")
        ins, outs = g.input_nodes(), g.output_nodes()
        if len(ins) != 1 or len(outs) != 1:
            self.graph_problems.append(f"{len(ins)} inputs and {len(outs)} outputs: the Lava target needs exactly one "
                                       f"of each")
        elif len(ins[0].shape) not in (1, 3):
            self.problems[ins[0].name] = f"input shape {list(ins[0].shape)}: Loihi takes (N,) or (C, H, W) inputs"
        self.roots = {n: why for n in self.order if n in self.on_chip and (why := self._root(n))}
        self.problems.update(self.roots)
        for name in self.order:
            if name not in self.on_chip and (why := self._readout(name)):
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

    def _readout(self, name: str) -> str | None:
        if self.last is None:
            return None
        bad = [s for s in self.srcs(name) if s in self.on_chip and s != self.last]
        if bad:
            return f"host readout node reads '{bad[0]}', which is not the last spiking layer '{self.last}'"
        return None

    def blocked(self, name: str) -> bool:
        """True when ``name`` or a node upstream of it already has a root cause (no follow-up errors)."""
        import networkx as nx

        return name in self.roots or any(a in self.roots for a in nx.ancestors(self.g.nx, name))

    def error(self) -> UnsupportedNodeError | None:
        """All problems in one error (``None`` when there are none)."""
        if not self.problems and not self.graph_problems:
            return None
        grouped: dict[tuple[str, str], list[str]] = {}
        for n, why in self.problems.items():  # same op and reason: one entry naming every node
            grouped.setdefault((self.op(n), why), []).append(f"'{n}'")
        parts = self.graph_problems + [f"{', '.join(ns)} ({op}): {why}" for (op, why), ns in grouped.items()]
        count = [f"{len(self.problems)} blocking node(s)"] if self.problems else []
        count += [f"{len(self.graph_problems)} graph problem(s)"] if self.graph_problems else []
        msg = f"graph '{self.g.name}' cannot be lowered to Loihi ({' and '.join(count)}): " + "; ".join(parts)
        from spikeport.ops import Refused

        refused = [n for n in self.roots if isinstance(_loihi(self.nodes[n]), Refused)]
        if refused:
            split = host_split(self.g, refused, self.on_chip)
            msg += (f". With them on the host, {100 * split['fraction']:.1f}% of the synaptic operations "
                    f"({split['chip_ops']:,} of {split['total_ops']:,} per step, Conv2d/Linear before the readout) "
                    f"could run on Loihi; the host would run {', '.join(split['refused'])} and the "
                    f"{len(split['downstream'])} node(s) after them, among them the synapses "
                    f"{', '.join(split['host_synapses']) or 'none'}")
        return UnsupportedNodeError(msg)
