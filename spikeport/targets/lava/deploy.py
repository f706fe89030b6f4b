r"""Deploy a spikeport IR graph onto Loihi 2: the on-chip network plus a host readout.

**What goes on the chip.** After BatchNorm folding (and constant folding), every spiking neuron and
everything upstream of it: one population of CUBA neurons per neuron node, fed by the synapses the
lowering derives from the ops in between (:mod:`spikeport.targets.lava.lowering`: residual adds fan
several synapses into one population, SEW adds of spikes split into one synapse per operand, pooling
folds into the next synapse, max pooling of spikes becomes OR neurons, relay populations equalise path
latencies). Neurons: IF, LIF, PLIF, DALIF (:math:`v_{decay} = 1 - \beta`, input gain :math:`\alpha`) and
CubaLIF, with hard reset to 0 and one parameter value per population (see
:mod:`spikeport.targets.lava.quantize`; ``decay_input`` LIF/PLIF fold :math:`1/\tau` into the weights and
bias). A network that is a plain chain is a :class:`LoihiNetwork` and is written as a lava-dl netx file;
any other is a :class:`~spikeport.targets.lava.graph.LoihiGraph`, written in spikeport's graph HDF5
layout (:mod:`spikeport.targets.lava.graph_io`) and loaded by
:func:`~spikeport.targets.lava.lava_graph.load_network`.

**Host readout.** The nodes after the last spiking layer (e.g. max pooling, flatten and the linear
classifier of the digits CNN, or the global pooling and classifier of a ResNet) are stateless; Loihi has
no float output layer, so they run on the host on the spikes the chip sends back. They are kept as a small
IR graph (:attr:`LoihiDeployment.readout`, executed with :func:`spikeport.converter.lower`) and written
next to the network file as ``<file>.loihi.json`` (JSON, arrays encoded exactly; no pickle).

**Input.** Real-valued input (direct encoding) is sent as *graded spikes*: the integer ``round(x *
input_scale)`` with ``input_message_bits`` bits, and the float weights of every synapse reading the input
are divided by ``input_scale`` before quantization, so the integer network computes the same current.
Inputs on the ``1/input_scale`` grid are exact: sklearn digits (pixels ``k/16``, ``k = 0..16``) with the
default ``input_scale=16`` (5-bit messages). Binary spike inputs are exact for any ``input_scale``. Lava's
Dense/Conv models pass graded input unchanged (``lava/proc/conv/models.py`` and ``dense/models.py`` only
cast to bool when ``num_message_bits == 0``), and the Loihi reference does the same, so the two agree bit
for bit. ``input_scale=0`` asks for unary (binary) spike input instead (e.g. rate encoding); real values
are then refused at run time.

**Refusals.** :func:`deploy_graph` raises one :class:`UnsupportedNodeError` listing every node that
blocks the mapping and why (see :mod:`spikeport.targets.lava.legality`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from spikeport.errors import DataError, ExportError, GraphError
from spikeport.targets.lava.graph import INPUT, LoihiGraph
from spikeport.targets.lava.legality import Classifier
from spikeport.targets.lava.lowering import FloatGraph, lower_to_float, quantize_graph
from spikeport.targets.lava.network import LoihiNetwork
from spikeport.targets.lava.quantize import FloatLayer

__all__ = ["LoihiDeployment", "deploy_graph", "deploy_network", "grid_inputs", "DEFAULT_INPUT_SCALE"]

_LOG = logging.getLogger(__name__)

DEFAULT_INPUT_SCALE = 16
"""Graded input levels per unit (sklearn digits: pixels are k/16, so 16 is exact)."""


@dataclass(frozen=True, eq=False)
class LoihiDeployment:
    """A lowered model: the on-chip :class:`LoihiNetwork`, the host readout and the input encoding.

    Attributes:
        network: the fixed-point network: a netx chain (:class:`LoihiNetwork`) or a
            :class:`~spikeport.targets.lava.graph.LoihiGraph`.
        readout: IR graph ``Input(last spiking layer's shape) -> ... -> Output`` run on the host.
        input_scale: graded input levels per unit (integer input = ``round(x * input_scale)``); 0 for
            binary spike input.
        input_message_bits: bits of a graded input spike (0: unary spikes).
        synapses: IR synapse node of every network layer (``""`` for flatten layers).
        source: the graph's name.
        float_layers: the float layers that were quantized (not written; ``()`` after reading back).
        float_graph: the lowered float network (``None`` after reading back).
        timesteps: T of the runtime contract (the steps per sample the export was checked with; ``None``
            for a deployment not yet exported, or read from a version-1 sidecar).
    """

    network: LoihiNetwork | LoihiGraph
    readout: Any
    input_scale: int = DEFAULT_INPUT_SCALE
    input_message_bits: int = 5
    synapses: tuple[str, ...] = ()
    source: str = ""
    float_layers: tuple[FloatLayer, ...] = field(default=(), repr=False)
    timesteps: int | None = None
    float_graph: FloatGraph | None = field(default=None, repr=False)

    @property
    def is_chain(self) -> bool:
        """True when the network is a netx chain (written as a lava-dl netx file)."""
        return isinstance(self.network, LoihiNetwork)

    @property
    def graph(self) -> LoihiGraph:
        """The network as a :class:`~spikeport.targets.lava.graph.LoihiGraph` (a chain converted)."""
        return LoihiGraph.from_chain(self.network) if isinstance(self.network, LoihiNetwork) else self.network

    @property
    def layer_names(self) -> list[str]:
        """IR neuron node name of every neuron population, in order (the spike layers a run reports)."""
        if isinstance(self.network, LoihiNetwork):
            return [self.network.layers[i].name for i in self.network.neuron_layers]
        return [p.name for p in self.network.neurons]

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



def deploy_graph(graph: Any, *, scale: float | str = "auto", input_scale: int = DEFAULT_INPUT_SCALE,
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
    cls = Classifier(g)
    cls.run()
    fg = lower_to_float(g, cls, input_scale)
    err = cls.error()
    if err is not None:
        raise err
    try:
        lg = quantize_graph(fg, scale=scale, input_scale=input_scale)
    except ExportError as e:
        raise ExportError(f"graph '{g.name}': {e}") from e
    chain = lg.as_chain()
    readout = _readout_graph(g, cls)
    if chain is None:
        return LoihiDeployment(lg, readout, input_scale, bits, (), g.name, (), float_graph=fg)
    synapses = tuple("" if layer.kind == "flatten" else _chain_synapse(lg, layer.name) for layer in chain.layers)
    return LoihiDeployment(chain, readout, input_scale, bits, synapses, g.name, _float_layers(fg, chain, input_scale),
                           float_graph=fg)


def _chain_synapse(lg: LoihiGraph, name: str) -> str:
    """The IR synapse node of the single connection into chain population ``name``."""
    return lg.incoming(name)[0].synapse.split("+")[-1]


def _float_layers(fg: FloatGraph, chain: LoihiNetwork, input_scale: int) -> tuple[FloatLayer, ...]:
    """The float chain the netx layers quantize (input weights divided by ``input_scale``), for checks."""
    conns = {c.dst: c for c in fg.connections}
    pops = {p.name: p for p in fg.populations}
    out = []
    for layer in chain.layers:
        if layer.kind == "flatten":
            out.append(FloatLayer("flatten", name=layer.name))
            continue
        c, p = conns[layer.name], pops[layer.name]
        w = c.weight / input_scale if c.src == INPUT and input_scale else c.weight
        if c.kind == "conv":
            out.append(FloatLayer(c.kind, w, p.bias, p.neuron, stride=c.stride, padding=c.padding,
                                  dilation=c.dilation, groups=c.groups, name=layer.name))
        else:
            out.append(FloatLayer(c.kind, w, p.bias, p.neuron, name=layer.name))
    return tuple(out)


def _readout_graph(g: Any, cls: Classifier) -> Any:
    from spikeport.converter import SpikeGraph, ir

    last = cls.last
    if last is None:  # Classifier.error() has reported why (no neuron, or several last layers)
        raise ExportError(f"graph '{g.name}': no single last spiking layer to read out")
    rg = SpikeGraph(f"{g.name}.readout", {"loihi_readout_of": g.name})
    rg.add(ir.Input(last, shape=g.shape(last)))
    for name in cls.order:
        if name in cls.on_chip:
            continue
        rg.add(cls.nodes[name], [e.src for e in sorted(g.in_edges(name), key=lambda e: e.port)])
    rg.validate()
    return rg


def deploy_network(graph: Any, *, scale: float | str = "auto", input_scale: int = DEFAULT_INPUT_SCALE,
                   input_bits: int | None = None) -> LoihiNetwork | LoihiGraph:
    """Lower an IR graph to the on-chip network: a netx chain or a :class:`LoihiGraph` (see :func:`deploy_graph`)."""
    return deploy_graph(graph, scale=scale, input_scale=input_scale, input_bits=input_bits).network


def grid_inputs(shape: Sequence[int], *, timesteps: int, samples: int, input_scale: int,
                seed: int = 0) -> torch.Tensor:
    """Seeded direct-encoded inputs on the ``1/input_scale`` grid in [0, 1] (binary spikes if ``input_scale=0``)."""
    gen = torch.Generator().manual_seed(seed)
    if not input_scale:
        return (torch.rand(timesteps, samples, *shape, generator=gen) < 0.3).float()
    img = torch.randint(0, input_scale + 1, (samples, *shape), generator=gen).float() / input_scale
    return img.unsqueeze(0).expand(timesteps, *img.shape).contiguous()
