r"""A graph-shaped fixed-point Loihi network: neuron populations and the synapses between them.

:class:`LoihiGraph` generalises the netx chain (:class:`~spikeport.targets.lava.network.LoihiNetwork`):
populations of CUBA neurons (:class:`Population`) and synapses (:class:`Connection`, dense or conv) from
the input or a population into a population. A population sums the input of every connection into it,
as Lava's neuron ``a_in`` port sums every connected synapse. Shapes are in torch order; a dense
connection from a ``(C, H, W)`` source reads it flattened in torch order.

**Levels.** Every Lava synapse delays by one step, so a population at *level* ``L`` (synapse hops from
the input) fires at step ``t + L`` for input step ``t``. A graph is *balanced* when every connection goes
from level ``L - 1`` to level ``L``; the lowering makes it so with relay populations
(:mod:`spikeport.targets.lava.lowering`), and :class:`LoihiGraph` refuses an unbalanced graph, because
a population would then sum inputs that belong to different input steps.

Population roles: ``neuron`` (an IR spiking neuron), ``relay`` (copies a binary population one step later)
and ``or`` (a max pooling of binary spikes: fires when any spike of its window arrived); relays and OR
neurons have ``i_decay = 4096``, no bias and ``v_th_mant = 0`` and their connections weight 1 (see the
proof in :mod:`spikeport.targets.lava.lowering`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikeport.errors import GraphError
from spikeport.targets.lava.network import (
    BIAS_MAX,
    BIAS_MIN,
    DECAY_UNITY,
    VTH_MAX,
    LoihiLayer,
    LoihiNetwork,
    _dense_weight_problem,
    conv_output_hw,
)

__all__ = ["INPUT", "POPULATION_ROLES", "Population", "ConnectionFields", "Connection", "LoihiGraph"]

INPUT = "input"
"""Source name of connections that read the network input."""
POPULATION_ROLES = ("neuron", "relay", "or")


def _ints(owner: str, name: str, value: Any, n: int = 2) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError) as e:
        raise GraphError(f"{owner}: {name} must be {n} ints, got {value!r}") from e
    if len(out) != n:
        raise GraphError(f"{owner}: {name} must be {n} ints, got {value!r}")
    return out


def _int_array(owner: str, name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.size == 0:
        raise GraphError(f"{owner}: {name} must be a non-empty numeric array")
    if arr.dtype.kind == "f" and not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
        raise GraphError(f"{owner}: {name} must hold integers (quantize it first)")
    out = np.array(arr, dtype=np.int64)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Population:
    """CUBA neurons of one shape and one parameter set (see :class:`~spikeport.targets.lava.network.LoihiLayer`).

    Attributes:
        name: unique name (the IR neuron node, ``<source>.relay<k>`` for relays, the MaxPool node for OR).
        shape: ``(C, H, W)`` or ``(N,)``, torch order.
        i_decay, v_decay, v_th_mant: as in a netx CUBA neuron (fractions of 4096; threshold mantissa).
        bias: integer bias mantissa per channel ``(C,)`` (3-D) or per neuron ``(N,)``, or None.
        role: ``neuron``, ``relay`` or ``or``.
        scale: the float-to-integer factor of the population (informational).
    """

    name: str
    shape: tuple[int, ...]
    i_decay: int = DECAY_UNITY
    v_decay: int = 0
    v_th_mant: int = 0
    bias: np.ndarray | None = None
    role: str = "neuron"
    scale: float | None = None

    def __post_init__(self) -> None:
        owner = f"Loihi population {self.name!r}"
        if not isinstance(self.name, str) or not self.name or self.name == INPUT:
            raise GraphError(f"{owner}: needs a non-empty name other than {INPUT!r}")
        shape = tuple(int(s) for s in self.shape)
        if len(shape) not in (1, 3) or min(shape) <= 0:
            raise GraphError(f"{owner}: shape must be (N,) or (C, H, W), got {shape}")
        object.__setattr__(self, "shape", shape)
        if self.role not in POPULATION_ROLES:
            raise GraphError(f"{owner}: role must be one of {POPULATION_ROLES}, got {self.role!r}")
        for pname in ("i_decay", "v_decay", "v_th_mant"):
            object.__setattr__(self, pname, int(getattr(self, pname)))
        if not 0 <= self.i_decay <= DECAY_UNITY or not 0 <= self.v_decay <= DECAY_UNITY:
            raise GraphError(f"{owner}: decays must lie in [0, 4096]")
        if not 0 <= self.v_th_mant <= VTH_MAX:
            raise GraphError(f"{owner}: v_th_mant must lie in [0, {VTH_MAX}], got {self.v_th_mant}")
        if self.bias is not None:
            b = _int_array(owner, "bias", self.bias)
            if b.shape != (shape[0],):
                raise GraphError(f"{owner}: bias must have shape ({shape[0]},), got {b.shape}")
            if b.min() < BIAS_MIN or b.max() > BIAS_MAX:
                raise GraphError(f"{owner}: bias mantissa must lie in [{BIAS_MIN}, {BIAS_MAX}]")
            object.__setattr__(self, "bias", b)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True, eq=False)
class ConnectionFields:
    """Synapses from ``src`` (a population or :data:`INPUT`) into population ``dst``, unchecked: the fields shared
    by Loihi's integer :class:`Connection` and the float connections of the lowering
    (:class:`~spikeport.targets.lava.lowering.FloatConnection`).

    Attributes:
        name: unique name.
        src, dst: population names (``src`` may be :data:`INPUT`).
        kind: ``dense`` (weight ``(out, in)``; a 3-D source is read flattened, torch order) or ``conv``
            (weight ``(out, in/groups, kH, kW)``, cross-correlation as torch).
        weight: integer weights (dense: reproduced exactly by netx's weight pipeline; conv: [-256, 255]).
        stride, padding, dilation, groups: conv geometry ``(H, W)``.
        synapse: the IR nodes this connection stands for (e.g. ``stem.avgpool+conv1``), for reports.
    """

    name: str
    src: str
    dst: str
    kind: str
    weight: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    synapse: str = field(default="", compare=False)


@dataclass(frozen=True, eq=False)
class Connection(ConnectionFields):
    """A Loihi connection: integer weights Lava can hold (checked on construction; fields as
    :class:`ConnectionFields`)."""

    def __post_init__(self) -> None:
        owner = f"Loihi connection {self.name!r}"
        if self.kind not in ("dense", "conv"):
            raise GraphError(f"{owner}: kind must be dense or conv, got {self.kind!r}")
        w = _int_array(owner, "weight", self.weight)
        object.__setattr__(self, "weight", w)
        for pname in ("stride", "padding", "dilation"):
            object.__setattr__(self, pname, _ints(owner, pname, getattr(self, pname)))
        object.__setattr__(self, "groups", int(self.groups))
        if self.kind == "dense":
            if w.ndim != 2:
                raise GraphError(f"{owner}: dense weight must be (out, in), got {w.shape}")
            problem = _dense_weight_problem(w)
            if problem:
                raise GraphError(f"{owner}: {problem}")
        else:
            if w.ndim != 4 or self.groups < 1 or w.shape[0] % self.groups:
                raise GraphError(f"{owner}: conv weight must be (out, in/groups, kH, kW) with groups dividing out, "
                                 f"got {w.shape}, groups={self.groups}")
            if w.min() < -256 or w.max() > 255:
                raise GraphError(f"{owner}: conv weights must lie in [-256, 255], got [{w.min()}, {w.max()}]")
            geo = (*self.stride, *self.padding, *self.dilation, *w.shape[2:4], self.groups)
            if max(geo) > 127:
                raise GraphError(f"{owner}: Lava's Conv model holds kernel size, stride, padding, dilation and groups "
                                 f"in int8 (at most 127), got {geo}")

    def out_shape(self, src_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of the current this connection delivers for a source of ``src_shape``."""
        if self.kind == "dense":
            if int(np.prod(src_shape)) != self.weight.shape[1]:
                raise GraphError(f"Loihi connection {self.name!r}: weight expects {self.weight.shape[1]} inputs, its "
                                 f"source {self.src!r} has {int(np.prod(src_shape))}")
            return (int(self.weight.shape[0]),)
        if len(src_shape) != 3 or self.weight.shape[1] * self.groups != src_shape[0]:
            raise GraphError(f"Loihi connection {self.name!r}: conv weight {self.weight.shape} (groups {self.groups}) "
                             f"does not fit its source {self.src!r} of shape {src_shape}")
        hw = conv_output_hw(src_shape[1:], self.weight.shape[2:4], self.stride, self.padding, self.dilation)
        return (int(self.weight.shape[0]), *hw)

    @property
    def synapse_count(self) -> int:
        """Stored weights (conv: shared kernel entries; see :mod:`spikeport.targets.lava.cores` for connections)."""
        return int(self.weight.size)


@dataclass(frozen=True, eq=False)
class LoihiGraph:
    """Populations and connections of a balanced Loihi network (see the module docstring).

    Attributes:
        input_shape: one input step, ``(N,)`` or ``(C, H, W)``.
        populations: in topological order.
        connections: in any order.
        output: the population whose spikes the host readout reads.
    """

    input_shape: tuple[int, ...]
    populations: tuple[Population, ...]
    connections: tuple[Connection, ...]
    output: str
    _levels: dict[str, int] = field(init=False, repr=False, default_factory=dict)
    _incoming: dict[str, tuple[Connection, ...]] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.input_shape)
        if len(shape) not in (1, 3) or min(shape) <= 0:
            raise GraphError(f"Loihi graph: input_shape must be (N,) or (C, H, W), got {shape}")
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "populations", tuple(self.populations))
        object.__setattr__(self, "connections", tuple(self.connections))
        pops = {p.name: p for p in self.populations}
        if len(pops) != len(self.populations):
            raise GraphError("Loihi graph: population names must be unique")
        if len({c.name for c in self.connections}) != len(self.connections):
            raise GraphError("Loihi graph: connection names must be unique")
        if self.output not in pops:
            raise GraphError(f"Loihi graph: output {self.output!r} is not a population")
        order = {p.name: i for i, p in enumerate(self.populations)}
        levels: dict[str, int] = {INPUT: 0}
        incoming: dict[str, list[Connection]] = {p: [] for p in pops}
        for c in self.connections:
            if c.dst not in pops or (c.src != INPUT and c.src not in pops):
                raise GraphError(f"Loihi connection {c.name!r}: unknown population {c.src!r} or {c.dst!r}")
            if c.src != INPUT and order[c.src] >= order[c.dst]:
                raise GraphError(f"Loihi connection {c.name!r}: {c.src!r} must come before {c.dst!r} (no recurrence)")
            incoming[c.dst].append(c)
        for p in self.populations:
            conns = incoming[p.name]
            if not conns:
                raise GraphError(f"Loihi population {p.name!r}: no connection feeds it")
            lv = {levels[c.src] + 1 for c in conns}
            if len(lv) != 1:
                detail = ", ".join(f"{c.src} (level {levels[c.src]})" for c in conns)
                raise GraphError(f"Loihi population {p.name!r}: its inputs arrive at different steps ({detail}); "
                                 "equalise the paths with relay populations")
            levels[p.name] = lv.pop()
            for c in conns:
                got = c.out_shape(self.input_shape if c.src == INPUT else pops[c.src].shape)
                if got != p.shape:
                    raise GraphError(f"Loihi connection {c.name!r}: delivers {got} into {p.name!r} of shape "
                                     f"{p.shape}")
        object.__setattr__(self, "_levels", levels)
        object.__setattr__(self, "_incoming", {k: tuple(v) for k, v in incoming.items()})

    # ------------------------------------------------------------ queries
    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise GraphError(f"Loihi graph: no population {name!r}")

    def level(self, name: str) -> int:
        """Synapse hops from the input to population ``name`` (its Lava latency in steps)."""
        return int(self._levels[name])

    def incoming(self, name: str) -> tuple[Connection, ...]:
        return self._incoming[name]

    @property
    def depth(self) -> int:
        """The largest level (trailing zero steps of a Lava stream)."""
        return max(self.level(p.name) for p in self.populations)

    @property
    def neurons(self) -> tuple[Population, ...]:
        """The populations of IR spiking neurons (reported layers)."""
        return tuple(p for p in self.populations if p.role == "neuron")

    def src_shape(self, c: Connection) -> tuple[int, ...]:
        return self.input_shape if c.src == INPUT else self.population(c.src).shape

    # ------------------------------------------------------------ chains
    @classmethod
    def from_chain(cls, net: LoihiNetwork) -> LoihiGraph:
        """The graph form of a netx chain (one population per dense/conv layer)."""
        pops, conns = [], []
        prev = INPUT
        for i, layer in enumerate(net.layers):
            if not layer.has_neurons:
                continue
            name = layer.name or f"layer{i}"
            pops.append(Population(name, layer.shape, layer.i_decay, layer.v_decay, layer.v_th_mant, layer.bias,
                                   scale=layer.scale))
            conns.append(Connection(f"{prev}->{name}", prev, name, layer.kind, layer.synapse_weight, layer.stride,
                                    layer.padding, layer.dilation, layer.groups, synapse=name))
            prev = name
        return cls(net.input_shape, tuple(pops), tuple(conns), prev)

    def as_chain(self) -> LoihiNetwork | None:
        """The netx chain this graph is, or ``None`` (relays, OR neurons, fan-in or fan-out)."""
        layers: list[LoihiLayer] = []
        prev, prev_shape = INPUT, self.input_shape
        for p in self.populations:
            conns = self.incoming(p.name)
            if p.role != "neuron" or len(conns) != 1 or conns[0].src != prev:
                return None
            c = conns[0]
            if c.kind == "dense" and len(prev_shape) == 3:
                layers.append(LoihiLayer("flatten", (int(np.prod(prev_shape)),), name=f"{p.name}.flatten"))
            layers.append(LoihiLayer(c.kind, p.shape, c.weight, p.bias, p.i_decay, p.v_decay, p.v_th_mant,
                                     stride=c.stride, padding=c.padding, dilation=c.dilation, groups=c.groups,
                                     scale=p.scale, name=p.name))
            prev, prev_shape = p.name, p.shape
        if prev != self.output or len(self.connections) != len(self.populations):
            return None
        try:
            return LoihiNetwork(self.input_shape, tuple(layers))
        except GraphError:
            return None
