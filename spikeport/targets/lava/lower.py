r"""Lower a spikeport IR graph onto Loihi 2 (a :class:`LoihiNetwork` plus a host readout).

**What goes on the chip.** After BatchNorm folding (and constant folding), the
graph must be one chain ``Input -> [Flatten] -> (Conv2d | Linear) -> neuron ->
[Flatten] -> (Conv2d | Linear) -> neuron -> ...``: every synapse (with its
bias) is followed directly by a spiking neuron, which becomes one netx
``conv``/``dense`` block of CUBA neurons (see
:mod:`spikeport.targets.lava.quantize` for the neuron mapping; ``decay_input``
LIF/PLIF fold :math:`1/\tau` into the weights and bias). Neurons: IF, LIF, PLIF,
DALIF (:math:`v_{decay} = 1 - \beta`, input gain :math:`\alpha`) and CubaLIF,
with hard reset to 0 and one parameter value per layer.

**Host readout.** The nodes after the last spiking layer (e.g. max pooling,
flatten and the linear classifier of the digits CNN) are stateless; Loihi has
no float output layer, so they run on the host on the spikes the chip sends
back. They are kept as a small IR graph (:attr:`LoihiDeployment.readout`,
executed with :func:`spikeport.converter.lower`) and written next to the netx
file as ``<file>.loihi.json`` (JSON, arrays encoded exactly; no pickle).

**Input.** The first synapse reads the network input. Real-valued input
(direct encoding) is sent as *graded spikes*: the integer ``round(x *
input_scale)`` with ``input_message_bits`` bits, and the first layer's float
weights are divided by ``input_scale`` before quantization, so the integer
network computes the same current. Inputs on the ``1/input_scale`` grid are
exact: sklearn digits (pixels ``k/16``, ``k = 0..16``) with the default
``input_scale=16`` (5-bit messages). Binary spike inputs are exact for any
``input_scale``. Lava's netx ``Network(input_message_bits=...)`` passes graded
input to the first Dense/Conv synapse unchanged (``lava/proc/conv/models.py``
and ``dense/models.py`` only cast to bool when ``num_message_bits == 0``), and
:func:`~spikeport.targets.lava.reference.run_reference` does the same, so the
two agree bit for bit. ``input_scale=0`` asks for unary (binary) spike input
instead (e.g. rate encoding); real values are then refused at run time.

**Refusals.** :func:`lower_graph` raises one :class:`UnsupportedNodeError`
listing every node that blocks the mapping and why: pooling or residual adds
inside the network, temporal-shift and attention seed modules, soft reset or
``v_reset != 0``, per-channel neuron parameters, synapses without a neuron
after them, recurrence, and so on.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from spikeport._io import atomic_write_text
from spikeport.errors import DataError, ExportError, GraphError, SpikeportError, UnsupportedNodeError
from spikeport.targets.lava.network import LoihiNetwork
from spikeport.targets.lava.quantize import FloatLayer, FloatNeuron, quantize_network

__all__ = ["LoihiDeployment", "LoihiRunner", "lower_graph", "lower_deployment", "write_deployment",
           "read_deployment", "readout_path", "loihi_summary", "float_neuron", "lava_check", "grid_inputs",
           "READOUT_SUFFIX", "DEFAULT_INPUT_SCALE", "LOIHI2_CORE_LIMITS"]

_LOG = logging.getLogger(__name__)

READOUT_SUFFIX = ".loihi.json"
"""Sidecar of a netx file written by the Lava target: ``<file>.loihi.json``."""
DEFAULT_INPUT_SCALE = 16
"""Graded input levels per unit (sklearn digits: pixels are k/16, so 16 is exact)."""
_SIDECAR_FORMAT = "spikeport-loihi-deployment"
_SIDECAR_VERSION = 1

LOIHI2_CORE_LIMITS = {"cores_per_chip": 128, "neurons_per_core": 8192, "synapses_per_core": 937_500}
"""Per-core budget assumed by :func:`loihi_summary`: Loihi 2's chip totals (1 M neurons, 120 M synapses,
128 neuro cores; Intel's Loihi 2 brief, as quoted by open-neuromorphic.org) divided evenly over the cores.
Real allocation (Lava-Loihi compiler, not public) depends on weight precision and sharing; treat the core
count as an estimate."""


# ----------------------------------------------------------------------------- node classification
def _loihi(node: Any) -> Any:
    """The node's Loihi capability from its op spec: a LoihiMapping or a Refused."""
    from spikeport.ops import Refused, find_spec

    spec = find_spec(type(node))
    if spec is None:
        return Refused(f"{node.op}: no op spec, so no Loihi mapping (register one with spikeport.ops.register_op)")
    return spec.loihi


def _role(node: Any) -> str | None:
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


class _Classifier:
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
        return _role(self.nodes[name])

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


# ----------------------------------------------------------------------------- the deployment
@dataclass(frozen=True, eq=False)
class LoihiDeployment:
    """A lowered model: the on-chip :class:`LoihiNetwork`, the host readout and the input encoding.

    Attributes:
        network: the fixed-point network (written as the netx file).
        readout: IR graph ``Input(last spiking layer's shape) -> ... -> Output`` run on the host.
        input_scale: graded input levels per unit (integer input = ``round(x * input_scale)``); 0 for
            binary spike input.
        input_message_bits: bits of a graded input spike (0: unary spikes).
        synapses: IR synapse node of every network layer (``""`` for flatten layers).
        source: the graph's name.
        float_layers: the float layers that were quantized (not written; ``()`` after reading back).
    """

    network: LoihiNetwork
    readout: Any
    input_scale: int = DEFAULT_INPUT_SCALE
    input_message_bits: int = 5
    synapses: tuple[str, ...] = ()
    source: str = ""
    float_layers: tuple[FloatLayer, ...] = field(default=(), repr=False)

    @property
    def layer_names(self) -> list[str]:
        """IR neuron node name of every neuron layer, in order (the spike layers a run reports)."""
        return [self.network.layers[i].name for i in self.network.neuron_layers]

    @property
    def input_max(self) -> float:
        """Largest input value the graded encoding carries (``inf`` for binary input)."""
        return (2 ** self.input_message_bits - 1) / self.input_scale if self.input_scale else math.inf

    def encode_input(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Real-valued ``[T, B, ...]`` input -> the integer spikes the chip receives (int64).

        Raises:
            DataError: negative or too large graded input, or non-binary input to a binary-input export.
        """
        x = torch.as_tensor(x).detach().cpu().to(torch.float64)
        if not self.input_scale:
            if not torch.all((x == 0) | (x == 1)):
                raise DataError(f"this Loihi export takes binary spike input, got values in [{x.min().item():g}, "
                                f"{x.max().item():g}]; use a spike encoder (e.g. --encoder rate) or re-export with "
                                f"input_scale > 0 (graded input)")
            return x.to(torch.int64)
        y = x * self.input_scale
        k = torch.round(y)
        err = float((y - k).abs().max()) if y.numel() else 0.0
        if err > 1e-6:
            _LOG.warning("Loihi input: values are not on the 1/%d grid; rounded (max error %.3g of a level)",
                         self.input_scale, err)
        if k.numel() and (k.min() < 0 or k.max() > 2 ** self.input_message_bits - 1):
            raise DataError(f"Loihi input: graded spikes carry integers in [0, {2 ** self.input_message_bits - 1}] "
                            f"(x in [0, {self.input_max:g}] at input_scale {self.input_scale}), got x in "
                            f"[{x.min().item():g}, {x.max().item():g}]; normalise the input or re-export with a "
                            f"larger input_bits")
        return k.to(torch.int64)

    def readout_module(self) -> torch.nn.Module:
        """The host readout as a torch module (``[T, B, *last shape]`` spikes -> ``[T, B, K]``)."""
        from spikeport.converter import lower

        return lower(self.readout).eval()

    def to_sidecar(self) -> dict[str, Any]:
        """The JSON document written as ``<file>.loihi.json``."""
        net = self.network
        return {"format": _SIDECAR_FORMAT, "version": _SIDECAR_VERSION, "source": self.source,
                "input": {"shape": list(net.input_shape), "encoding": "graded" if self.input_scale else "binary",
                          "scale": self.input_scale, "message_bits": self.input_message_bits},
                "layers": [{"index": i, "kind": layer.kind, "name": layer.name, "synapse": syn,
                            "shape": list(layer.shape), "scale": layer.scale}
                           for i, (layer, syn) in enumerate(zip(net.layers, self.synapses))],
                "readout": self.readout.to_dict()}


def lower_deployment(graph: Any, *, scale: float | str = "auto", input_scale: int = DEFAULT_INPUT_SCALE,
                     input_bits: int | None = None) -> LoihiDeployment:
    """Lower an IR graph to a :class:`LoihiDeployment` (network + host readout + input encoding).

    Args:
        graph: a :class:`~spikeport.converter.SpikeGraph` (not modified).
        scale: per-layer quantization scale, as :func:`~spikeport.targets.lava.quantize.quantize_layer`.
        input_scale: graded input levels per unit (see module docstring); 0 for binary spike input.
        input_bits: graded message bits (default: enough for inputs in [0, 1], i.e. ``input_scale``).

    Raises:
        UnsupportedNodeError: listing every blocking node and why.
        ExportError: bad options, or a layer that does not fit Loihi's fixed-point ranges.
    """
    from spikeport.converter import ir
    from spikeport.converter.passes import fold_batchnorm, fold_constants, remove_dead_nodes, run_passes

    if isinstance(input_scale, bool) or not isinstance(input_scale, (int, np.integer)) or input_scale < 0:
        raise ExportError(f"input_scale must be an int >= 0 (0: binary spike input), got {input_scale!r}")
    input_scale = int(input_scale)
    if input_scale == 0:
        bits = 0
    elif input_bits is None:
        bits = max(1, int(input_scale).bit_length())
    elif isinstance(input_bits, bool) or not isinstance(input_bits, (int, np.integer)) or not 1 <= input_bits <= 24:
        raise ExportError(f"input_bits must be an int in [1, 24] (graded spike payload), got {input_bits!r}")
    else:
        bits = int(input_bits)
    try:
        g, _ = run_passes(graph, (fold_batchnorm, fold_constants, remove_dead_nodes))
        g.infer_shapes()
    except GraphError as e:
        raise ExportError(f"graph '{getattr(graph, 'name', '?')}': cannot prepare it for Loihi: {e}") from e
    cls = _Classifier(g)
    cls.run()
    err = cls.error()
    if err is not None:
        raise err
    nodes = cls.nodes
    chain = [n for n in cls.order if n in cls.on_chip]
    inp = g.input_nodes()[0]
    layers: list[FloatLayer] = []
    synapses: list[str] = []
    first = True
    for name in chain:
        node = nodes[name]
        if isinstance(node, (ir.Flatten, ir.Reshape)):
            layers.append(FloatLayer("flatten", name=name))
            synapses.append("")
        elif cls.role(name) == "neuron":
            syn = nodes[cls.srcs(name)[0]]
            w = syn.weight.astype(np.float64)
            if first and input_scale:
                w = w / input_scale
            first = False
            kw: dict[str, Any] = {}
            if isinstance(syn, ir.Conv2d):
                kw = {"stride": syn.stride, "padding": syn.padding, "dilation": syn.dilation, "groups": syn.groups}
            layers.append(FloatLayer("conv" if isinstance(syn, ir.Conv2d) else "dense", w,
                                     None if syn.bias is None else syn.bias.astype(np.float64),
                                     float_neuron(node), name=name, **kw))
            synapses.append(syn.name)
    try:
        net = quantize_network(layers, inp.shape, scale)
    except ExportError as e:
        raise ExportError(f"graph '{g.name}': {e}") from e
    readout = _readout_graph(g, cls)
    return LoihiDeployment(net, readout, input_scale, bits, tuple(synapses), g.name, tuple(layers))


def _readout_graph(g: Any, cls: _Classifier) -> Any:
    from spikeport.converter import SpikeGraph, ir

    last = cls.last
    rg = SpikeGraph(f"{g.name}.readout", {"loihi_readout_of": g.name})
    rg.add(ir.Input(last, shape=g.shape(last)))
    for name in cls.order:
        if name in cls.on_chip:
            continue
        rg.add(cls.nodes[name], [e.src for e in sorted(g.in_edges(name), key=lambda e: e.port)])
    rg.validate()
    return rg


def lower_graph(graph: Any, *, scale: float | str = "auto", input_scale: int = DEFAULT_INPUT_SCALE,
                input_bits: int | None = None) -> LoihiNetwork:
    """Lower an IR graph to the on-chip :class:`LoihiNetwork` (see :func:`lower_deployment`)."""
    return lower_deployment(graph, scale=scale, input_scale=input_scale, input_bits=input_bits).network


# ----------------------------------------------------------------------------- files
def readout_path(path: str | os.PathLike) -> Path:
    """``<path>.loihi.json``: the host readout / input encoding written beside a netx file."""
    p = Path(path)
    return p.with_name(p.name + READOUT_SUFFIX)


def write_deployment(dep: LoihiDeployment, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write the netx file ``path`` and its sidecar ``<path>.loihi.json``, each atomically.

    Returns:
        ``(netx path, sidecar path)``.

    Raises:
        ExportError: writing or read-back verification failed.
    """
    from spikeport.targets.lava.netx import write_netx

    dest = Path(path)
    side = readout_path(dest)
    text = json.dumps(dep.to_sidecar(), indent=1) + "\n"
    write_netx(dep.network, dest)
    try:
        atomic_write_text(side, text)
    except OSError as e:
        dest.unlink(missing_ok=True)
        raise ExportError(f"{side}: cannot write the Loihi readout ({e})") from e
    return dest, side


def read_deployment(path: str | os.PathLike) -> LoihiDeployment:
    """Read a netx file written by the Lava target together with its ``.loihi.json`` sidecar.

    Raises:
        DataError: missing/corrupt files, or a sidecar that does not match the netx file.
    """
    from spikeport.converter import SpikeGraph
    from spikeport.targets.lava.netx import read_netx

    p = Path(path)
    net = read_netx(p)
    side = readout_path(p)
    if not side.is_file():
        raise DataError(f"{p}: missing {side.name} (host readout and input encoding written by `spikeport export "
                        f"--target lava`); re-export the model")
    try:
        doc = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{side}: not a readable Loihi readout file ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != _SIDECAR_FORMAT:
        raise DataError(f"{side}: not a spikeport Loihi readout file (format '{_SIDECAR_FORMAT}' missing)")
    if doc.get("version") != _SIDECAR_VERSION:
        raise DataError(f"{side}: version {doc.get('version')!r} is not supported (expected {_SIDECAR_VERSION})")
    try:
        enc = doc["input"]
        scale, bits = int(enc["scale"]), int(enc["message_bits"])
        synapses = tuple(str(layer.get("synapse", "")) for layer in doc["layers"])
        readout = SpikeGraph.from_dict(doc["readout"], str(side))
        readout.validate()
    except SpikeportError as e:
        raise DataError(f"{side}: bad readout graph ({e})") from e
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"{side}: malformed Loihi readout file ({type(e).__name__}: {e})") from e
    if tuple(enc.get("shape", ())) != tuple(net.input_shape) or len(synapses) != len(net.layers):
        raise DataError(f"{side}: does not belong to {p.name} (input {enc.get('shape')} vs {list(net.input_shape)}, "
                        f"{len(synapses)} vs {len(net.layers)} layers)")
    if scale < 0 or not 0 <= bits <= 24 or (scale > 0) != (bits > 0):
        raise DataError(f"{side}: bad input encoding scale={scale}, message_bits={bits}")
    rin = readout.input_nodes()
    if len(rin) != 1 or tuple(rin[0].shape) != tuple(net.output_shape):
        raise DataError(f"{side}: readout input {list(rin[0].shape) if rin else None} does not match the last layer "
                        f"of {p.name} {list(net.output_shape)}")
    return LoihiDeployment(net, readout, scale, bits, synapses, str(doc.get("source", "")))


# ----------------------------------------------------------------------------- deployability summary
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


# ----------------------------------------------------------------------------- runner for verify
class LoihiRunner:
    """Run an exported ``.net`` (+ ``.loihi.json``): Loihi-exact integer reference or Lava, plus the host readout.

    ``run(x)`` takes the float model's ``[T, B, ...]`` input, encodes it (:meth:`LoihiDeployment.encode_input`),
    runs the chip part on the input-aligned timeline (``run_reference(..., lava_delay=False)`` or batched
    :func:`~spikeport.targets.lava.runner.run_lava`, which are equal) and the readout on the host, and returns
    a :class:`~spikeport.targets.reference.RunResult` with spikes keyed by IR neuron names.

    Args:
        path: the netx file.
        backend: ``'reference'`` (integer torch executor), ``'lava'`` (Lava ``fixed_pt`` simulation) or
            ``'both'`` (Lava, checked spike for spike against the reference; ExportError on any difference).
        device: torch device of the reference.

    Attributes:
        approximate: why this runtime is not expected to match the float model exactly (fixed point).
        lava_checked: samples on which Lava was compared with the reference (``'both'``).
    """

    BACKENDS = ("reference", "lava", "both")

    def __init__(self, path: str | os.PathLike, *, backend: str = "reference",
                 device: str | torch.device = "cpu") -> None:
        if backend not in self.BACKENDS:
            raise ExportError(f"Loihi backend must be one of {', '.join(self.BACKENDS)}, got {backend!r}")
        self.path = Path(path)
        self.deployment = read_deployment(self.path)
        self.backend = backend
        self.device = device
        self.input_shape = tuple(self.deployment.network.input_shape)
        self.layers = self.deployment.layer_names
        self.timesteps = None
        self.runtime = {"reference": "loihi-reference", "lava": "lava-fixed_pt", "both": "lava-fixed_pt"}[backend]
        self.approximate = ("8-bit fixed-point weights and integer neuron state (Loihi 2) vs the float model: "
                            "spikes differ by quantization, not by float rounding")
        self.lava_checked = 0
        self._readout = self.deployment.readout_module()

    def chip_spikes(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Integer spikes ``{layer index: [T, B, ...]}`` of the chip part for float input ``x``."""
        from spikeport.targets.lava.reference import run_reference

        dep = self.deployment
        k = dep.encode_input(x)
        if self.backend == "reference":
            return run_reference(dep.network, k, lava_delay=False, input_message_bits=dep.input_message_bits,
                                 device=self.device)
        from spikeport.targets.lava.runner import run_lava

        got = {i: torch.as_tensor(v) for i, v in run_lava(self.path, k.numpy(), net=dep.network,
                                                            input_message_bits=dep.input_message_bits).items()}
        if self.backend == "both":
            ref = run_reference(dep.network, k, lava_delay=False, input_message_bits=dep.input_message_bits)
            for i, r in ref.items():
                if not torch.equal(got[i].to(torch.int8), r.cpu()):
                    bad = int((got[i].to(torch.int8) != r.cpu()).sum())
                    raise ExportError(f"{self.path}: Lava and the Loihi reference differ in layer "
                                      f"{dep.network.layers[i].name!r} ({bad} of {r.numel()} spikes)")
            self.lava_checked += int(k.shape[1])
        return got

    @torch.no_grad()
    def run(self, x: torch.Tensor):
        """Logits ``[T, B, K]`` (host readout) and every Loihi layer's spikes for ``[T, B, ...]`` input."""
        from spikeport.targets.reference import RunResult

        x = torch.as_tensor(x)
        if tuple(x.shape[2:]) != self.input_shape or x.dim() != len(self.input_shape) + 2:
            raise DataError(f"{self.path}: input must be [T, B, {', '.join(map(str, self.input_shape))}], got "
                            f"{list(x.shape)}")
        spikes = self.chip_spikes(x)
        net = self.deployment.network
        named = {net.layers[i].name: s.cpu().bool() for i, s in spikes.items()}
        last = spikes[net.neuron_layers[-1]].cpu().to(torch.float32)
        logits = self._readout(last)
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        return RunResult(logits.detach().float().cpu(), named, self.runtime)


def lava_check(path: str | os.PathLike, x: torch.Tensor) -> dict[str, Any]:
    """Run Lava and the reference on ``x`` and report whether every spike is equal (ExportError if not)."""
    runner = LoihiRunner(path, backend="both")
    runner.chip_spikes(x)
    return {"samples": runner.lava_checked, "spikes_identical": True}


def grid_inputs(shape: Sequence[int], *, timesteps: int, samples: int, input_scale: int,
                seed: int = 0) -> torch.Tensor:
    """Seeded direct-encoded inputs on the ``1/input_scale`` grid in [0, 1] (binary spikes if ``input_scale=0``)."""
    gen = torch.Generator().manual_seed(seed)
    if not input_scale:
        return (torch.rand(timesteps, samples, *shape, generator=gen) < 0.3).float()
    img = torch.randint(0, input_scale + 1, (samples, *shape), generator=gen).float() / input_scale
    return img.unsqueeze(0).expand(timesteps, *img.shape).contiguous()
