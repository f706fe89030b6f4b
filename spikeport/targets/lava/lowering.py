r"""IR graph -> Loihi populations and synapses: residual adds, SEW adds, pooling, relays, OR neurons.

Every spiking neuron node becomes a population. Its input current is a linear function of spike tensors
(populations, or the network input), built from the ops between them, which the lowering resolves by
their Loihi role (:mod:`spikeport.targets.lava.legality`): walking back from the neuron, ``merge`` (Add)
splits the current into one *term* per operand, ``synapse``/``pool``/``flatten`` extend a term, and a
population or the input ends it. Each term becomes one connection (:mod:`spikeport.targets.lava.fold`):

* ``out = LIF(BN(conv(s)) + shortcut(x))``: two terms, two connections fanning into one population, the
  BatchNorms folded into the weights and their biases summed into the neuron bias; an identity shortcut
  (a term without synapse) is a depthwise 1x1 identity convolution, never a dense diagonal;
* ``conv(s1 + s2)`` (SEW-style add of spikes before a synapse): two terms ``conv(s1)``, ``conv(s2)``
  with the same weights (linear, exact), the conv's bias counted once;
* pooling before a synapse folds into it (exact linear composition); max pooling of binary spikes becomes
  an *OR population* (depthwise all-ones convolution into threshold-0 neurons).

**Path latencies.** A population at level ``L`` (synapse hops from the input) fires at step ``t + L`` for
input step ``t``. A population's level is one more than its deepest source's; a shallower source is
delayed by a chain of *relay populations* (shared by all its consumers), so every connection goes from
level ``L - 1`` to ``L`` (a balanced :class:`~spikeport.targets.lava.graph.LoihiGraph`).

**Relays and OR neurons are exact for binary spikes.** Both are CUBA neurons with ``i_decay = 4096``
(no current state), no bias and ``v_th_mant = 0``, fed by weight-1 synapses. Let ``a[t] >= 0`` be their
synaptic input (the number of input spikes). Lava computes ``u[t] = 0 + 64 a[t]`` and
``v[t] = trunc(v[t-1] (4096 - v_{decay}) / 4096) + 64 a[t]``, spikes when ``v[t] > 0`` and then sets
``v[t] = 0``. By induction ``v[t-1] = 0`` after every step (a spike resets it; without a spike
``a[t] = 0`` and ``v[t] = 0``), so ``v[t] = 64 a[t]`` and the neuron spikes exactly when ``a[t] >= 1``.
A relay (one weight-1 synapse from a binary population) therefore emits ``s[t - 1]``: the source's
spikes one step later, for every state and every step. An OR neuron emits 1 when any spike of its window
arrived, which is the maximum of binary spikes (max pooling's padding never matters: every window holds at
least one real input, and spikes are >= 0). Graded input cannot be relayed this way (a copy of a graded
value would need graded output spikes); such a graph is refused with the reason.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np

from spikeport.errors import ExportError, GraphError
from spikeport.targets.lava.fold import (
    ConvSpec,
    channelwise_conv,
    compose_dense,
    fold_window_into_conv,
    identity_conv,
)
from spikeport.targets.lava.graph import INPUT, Connection, ConnectionFields, LoihiGraph, Population
from spikeport.targets.lava.legality import Classifier, float_neuron, loihi_window
from spikeport.targets.lava.quantize import FloatNeuron, quantize_population

__all__ = ["FloatConnection", "FloatPopulation", "FloatGraph", "lower_to_float", "quantize_graph",
           "RELAY_NEURON"]

class _NeuronInts(TypedDict):
    """Integer CUBA parameters of a population (keyword arguments of :class:`Population`)."""

    i_decay: int
    v_decay: int
    v_th_mant: int


RELAY_NEURON: _NeuronInts = {"i_decay": 4096, "v_decay": 0, "v_th_mant": 0}
"""Integer parameters of relay and OR neurons (see the module docstring)."""


@dataclass(frozen=True, eq=False)
class FloatConnection(ConnectionFields):
    """A float synapse of the lowered graph (conv: ``weight (out, in/groups, kH, kW)``, dense: ``(out, in)``)."""


@dataclass(frozen=True, eq=False)
class FloatPopulation:
    """A population before quantization: ``neuron`` is None for relays and OR neurons."""

    name: str
    shape: tuple[int, ...]
    role: str
    neuron: FloatNeuron | None = None
    bias: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class FloatGraph:
    """The lowered network in float (the exact linear rewrite of the IR graph on the chip side)."""

    input_shape: tuple[int, ...]
    populations: tuple[FloatPopulation, ...]
    connections: tuple[FloatConnection, ...]
    output: str
    levels: dict[str, int] = field(default_factory=dict)

    @property
    def relays(self) -> int:
        """Relay populations added to equalise path latencies."""
        return sum(1 for p in self.populations if p.role == "relay")

    @property
    def relay_neurons(self) -> int:
        return sum(int(np.prod(p.shape)) for p in self.populations if p.role == "relay")


@dataclass(frozen=True)
class _Term:
    source: str            # IR name of a population node or of the input
    ops: tuple[str, ...]   # IR nodes applied to it, in order


class _Skip(Exception):
    """A node downstream of a population that failed (its problem is reported once, at the population)."""


class _Problem(Exception):
    def __init__(self, node: str, why: str) -> None:
        super().__init__(why)
        self.node, self.why = node, why


class _Lowering:
    def __init__(self, g: Any, cls: Classifier, input_scale: int) -> None:
        self.g, self.cls = g, cls
        self.inp = g.input_nodes()[0].name
        self.binary_input = input_scale == 0
        self.pops: dict[str, FloatPopulation] = {}
        self.conns: list[FloatConnection] = []
        self.level: dict[str, int] = {INPUT: 0}
        self.relays: dict[tuple[str, int], str] = {}

    # ---------------------------------------------------------------- helpers
    def _src(self, name: str) -> str:
        return INPUT if name == self.inp else name

    def _shape(self, src: str) -> tuple[int, ...]:
        if src == INPUT:
            return tuple(self.g.shape(self.inp))
        return self.pops[src].shape if src in self.pops else tuple(self.g.shape(src))

    def _binary(self, src: str) -> bool:
        return src != INPUT or self.binary_input

    def _conn_name(self, src: str, dst: str, label: str) -> str:
        base = f"{src}->{dst}:{label}"
        names = {c.name for c in self.conns}
        name, k = base, 1
        while name in names:
            k += 1
            name = f"{base}#{k}"
        return name

    # ---------------------------------------------------------------- linear expansion
    def expand(self, name: str) -> tuple[list[_Term], list[tuple[str, tuple[str, ...]]]]:
        """Terms (source, ops) summing to ``name``'s value, and the synapse biases (synapse, ops after it)."""
        if name == self.inp or name in self.pops:
            return [_Term(self._src(name), ())], []
        role, srcs = self.cls.role(name), self.cls.srcs(name)
        if role in ("neuron", "or"):  # a population that could not be lowered: its problem is reported already
            raise _Skip(name)
        if role == "merge":
            terms: list[_Term] = []
            biases: list[tuple[str, tuple[str, ...]]] = []
            for s in srcs:
                t, b = self.expand(s)
                terms += t
                biases += b
            return terms, biases
        if role in ("synapse", "pool", "flatten"):
            t, b = self.expand(srcs[0])
            terms = [_Term(x.source, (*x.ops, name)) for x in t]
            biases = [(syn, (*after, name)) for syn, after in b]
            node = self.g.node(name)
            if role == "synapse" and node.bias is not None and np.any(np.asarray(node.bias) != 0):
                biases.append((name, ()))
            return terms, biases
        raise _Problem(name, f"{self.cls.op(name)} on the input path of a spiking neuron is not a linear op Loihi "
                             f"synapses can hold (role {role})")

    def _connection(self, t: _Term, dst: str) -> FloatConnection:
        g, cls = self.g, self.cls
        syns = [i for i, o in enumerate(t.ops) if cls.role(o) == "synapse"]
        if len(syns) > 1:
            a, b = t.ops[syns[0]], t.ops[syns[1]]
            raise _Problem(b, f"{cls.op(b)} reads the synapse '{a}' directly: two synapses in a row with no spiking "
                              "neuron between them (Loihi synapses connect neuron populations)")
        if syns and syns[0] != len(t.ops) - 1:
            after = t.ops[syns[0] + 1]
            raise _Problem(after, f"{cls.op(after)} between the synapse '{t.ops[syns[0]]}' and the neuron '{dst}': "
                                  "Loihi delivers a synapse's current straight into its neurons; move it before the "
                                  "synapse")
        pre = t.ops[:syns[0]] if syns else t.ops
        src_shape = self._shape(t.source)
        label = "+".join(t.ops) or "identity"
        geo: dict[str, Any] = {}
        if syns and len(np.shape(g.node(t.ops[-1]).weight)) == 2:  # dense synapse
            syn = t.ops[-1]
            if len(g.in_shapes(syn)[0]) != 1:
                raise _Problem(syn, f"Linear on a {list(g.in_shapes(syn)[0])} input acts on the last axis only; "
                                    "flatten the input first")
            w = np.asarray(g.node(syn).weight, dtype=np.float64)
            if pre:
                w = compose_dense(w, [g.node(o) for o in pre], [tuple(g.in_shapes(o)[0]) for o in pre], src_shape)
            kind = "dense"
        else:
            if len(src_shape) != 3 or any(cls.role(o) != "pool" for o in pre):
                what = f"'{t.ops[-1]}'" if syns else "an identity shortcut"
                raise _Problem(dst, f"{what} reads a {list(src_shape)} source through {', '.join(pre) or 'nothing'}: "
                                    "only pooling of a (C, H, W) map folds into a convolution (an identity on a "
                                    "1-D population would need a dense diagonal)")
            if syns:
                node = g.node(t.ops[-1])
                spec = ConvSpec(np.asarray(node.weight, dtype=np.float64), node.stride, node.padding, node.dilation,
                                node.groups)
            else:
                spec = identity_conv(src_shape[0])
            for o in reversed(pre):
                shape = tuple(g.in_shapes(o)[0])
                try:
                    spec = fold_window_into_conv(loihi_window(g.node(o), shape), spec, shape[1:],
                                                 f"'{o}' into '{t.ops[-1] if syns else dst}'")
                except ExportError as e:
                    raise _Problem(o, str(e)) from e
            w, kind = spec.weight, "conv"
            geo = {"stride": spec.stride, "padding": spec.padding, "dilation": spec.dilation, "groups": spec.groups}
        return FloatConnection(self._conn_name(t.source, dst, label), t.source, dst, kind, w, synapse=label, **geo)

    def _relay(self, src: str, d: int, consumer: str) -> str:
        """The population emitting ``src``'s spikes ``d`` steps later (a shared chain of relays)."""
        if not self._binary(src):
            raise _Problem(consumer, f"the graded input reaches '{consumer}' through paths of different lengths: "
                                     "relay neurons copy binary spikes only (export with binary input, input_scale=0, "
                                     "or give every input path the same number of synapses)")
        shape = self._shape(src)
        if len(shape) != 3:
            raise _Problem(consumer, f"'{src}' ({list(shape)}) reaches '{consumer}' through paths of different "
                                     "lengths; relays of 1-D populations are not supported (they would need a dense "
                                     "diagonal)")
        prev = src
        for k in range(1, d + 1):
            if (src, k) not in self.relays:
                name = f"{src}.relay{k}"
                spec = identity_conv(shape[0])
                self.conns.append(FloatConnection(self._conn_name(prev, name, "relay"), prev, name, "conv",
                                                  spec.weight, groups=spec.groups, synapse="relay"))
                self.pops[name] = FloatPopulation(name, shape, "relay")
                self.level[name] = self.level[src] + k
                self.relays[(src, k)] = name
            prev = self.relays[(src, k)]
        return prev

    # ---------------------------------------------------------------- populations
    def neuron(self, name: str) -> None:
        g = self.g
        terms, biases = self.expand(self.cls.srcs(name)[0])
        conns = [self._connection(t, name) for t in terms]
        shape = tuple(g.shape(name))
        bias = None
        for syn, after in biases:
            if after:
                raise _Problem(after[0], f"{self.cls.op(after[0])} after the synapse '{syn}' (with its bias) and "
                                         f"before the neuron '{name}'")
            b = np.asarray(g.node(syn).bias, dtype=np.float64).reshape(-1)
            bias = b if bias is None else bias + b
        self._add(FloatPopulation(name, shape, "neuron", float_neuron(g.node(name)), bias), conns)

    def or_pool(self, name: str) -> None:
        g, cls = self.g, self.cls
        terms, _ = self.expand(cls.srcs(name)[0])
        if len(terms) != 1 or terms[0].ops or not self._binary(terms[0].source):
            raise _Problem(name, "max pooling of a value that is not binary spikes (a sum, a synaptic current, a "
                                 "pooled or graded value): OR neurons compute the max of 0/1 spikes only")
        shape = tuple(g.in_shapes(name)[0])
        try:
            win = loihi_window(g.node(name), shape)
        except ExportError as e:
            raise _Problem(name, str(e)) from e
        src = terms[0].source
        spec = channelwise_conv(shape[0], np.ones(win.kernel))
        conn = FloatConnection(self._conn_name(src, name, "or"), src, name, "conv", spec.weight, win.stride,
                               win.padding, win.dilation, spec.groups, synapse=f"{name} (OR)")
        self._add(FloatPopulation(name, tuple(g.shape(name)), "or"), [conn])

    def _add(self, pop: FloatPopulation, conns: list[FloatConnection]) -> None:
        level = 1 + max(self.level[c.src] for c in conns)
        out = []
        for c in conns:
            d = level - 1 - self.level[c.src]
            if d > 0:
                src = self._relay(c.src, d, pop.name)
                c = dataclasses.replace(c, name=self._conn_name(src, c.dst, c.synapse), src=src)
            out.append(c)
        self.pops[pop.name] = pop
        self.level[pop.name] = level
        self.conns += out


def lower_to_float(g: Any, cls: Classifier, input_scale: int) -> FloatGraph:
    """The chip side of the prepared IR graph ``g`` as a :class:`FloatGraph` (problems go to ``cls.problems``)."""
    low = _Lowering(g, cls, input_scale)
    for name in cls.order:
        role = cls.role(name)
        if name not in cls.on_chip or role not in ("neuron", "or") or cls.blocked(name):
            continue
        try:
            if role == "neuron":
                low.neuron(name)
            else:
                low.or_pool(name)
        except _Problem as p:
            cls.problems.setdefault(p.node, p.why)
        except _Skip:
            continue
    return FloatGraph(tuple(g.shape(low.inp)), tuple(low.pops.values()), tuple(low.conns), cls.last or "",
                      dict(low.level))


def quantize_graph(fg: FloatGraph, *, scale: float | str, input_scale: int) -> LoihiGraph:
    """Quantize a :class:`FloatGraph` population by population (one scale per population).

    Connections reading the input are divided by ``input_scale`` first (graded input ``round(x * scale)``).

    Raises:
        ExportError: naming the population when it does not fit Loihi's fixed-point ranges.
    """
    incoming: dict[str, list[FloatConnection]] = {p.name: [] for p in fg.populations}
    for c in fg.connections:
        incoming[c.dst].append(c)
    pops, conns = [], []
    for p in fg.populations:
        cs = incoming[p.name]
        owner = f"population '{p.name}'"
        if p.neuron is None:  # relay / OR: weight-1 synapses into threshold-0 neurons
            ints = [np.asarray(c.weight).astype(np.int64) for c in cs]
            pops.append(Population(p.name, p.shape, role=p.role, **RELAY_NEURON))
        else:
            ws = [c.weight / input_scale if c.src == INPUT and input_scale else c.weight for c in cs]
            ints, b_int, vth, s = quantize_population(ws, p.bias, p.neuron, scale, owner)
            try:
                pops.append(Population(p.name, p.shape, _decay(p.neuron.i_decay), _decay(p.neuron.v_decay), vth,
                                       b_int, scale=s))
            except GraphError as e:
                raise ExportError(f"{owner}: {e}") from e
        for c, w in zip(cs, ints, strict=True):
            try:
                conns.append(Connection(c.name, c.src, c.dst, c.kind, w, c.stride, c.padding, c.dilation, c.groups,
                                        synapse=c.synapse))
            except GraphError as e:
                raise ExportError(f"{owner}: synapse {c.synapse!r}: {e}") from e
    try:
        return LoihiGraph(fg.input_shape, tuple(pops), tuple(conns), fg.output)
    except GraphError as e:
        raise ExportError(str(e)) from e


def _decay(fraction: float) -> int:
    from spikeport.targets.lava.quantize import quantize_decay

    return quantize_decay(fraction)
