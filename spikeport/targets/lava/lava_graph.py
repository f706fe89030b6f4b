r"""Load an exported Loihi network into standard Lava processes, with the runtime contract's adapters.

:func:`load_network` reads a ``.net`` file (netx chain or spikeport graph, :mod:`.graph_io`) and its
``.loihi.json`` sidecar and returns a :class:`LavaNetwork`:

* one ``lava.proc.lif.process.LIFReset`` per population (netx's CUBA mapping: ``du = iDecay - 1``,
  ``dv = vDecay``, ``vth = vThMant``, ``bias_mant = bias``, ``bias_exp = 6``), reset every ``T`` steps
  at phase ``1 + level`` (Lava's time starts at 1), i.e. when a sample's first input reaches it;
* one ``lava.proc.dense.process.Dense`` (weights through netx's ``optimize_weight_bits``, as netx loads
  them) or ``lava.proc.conv.process.Conv`` (kernel flipped and transposed to Lava's ``(out, W, H, in)``,
  geometry in ``(W, H)`` order, as netx does) per connection, its ``a_out`` into the destination
  population's ``a_in`` (Lava sums every connection into a port); a dense connection from a ``(C, H, W)``
  source reads ``s_out.transpose([2, 1, 0]).flatten()`` (torch order);
* :class:`InputAdapter`: the contract's encoding (``round(x * scale)`` graded spikes, torch ``(C, H, W)``
  frames transposed to ``(W, H, C)``, the same frame every step, samples back to back plus ``depth`` zero
  frames) and a ``lava.proc.io.source.RingBuffer`` wired to every connection that reads the input;
* :class:`OutputAdapter`: ``lava.proc.io.sink.RingBuffer`` s on the populations, the decoding (drop each
  population's latency, back to ``[T, B, *shape]`` torch order) and the host readout.

:meth:`LavaNetwork.run` runs it under ``Loihi2SimCfg(select_tag='fixed_pt')``; the result equals the
Loihi-exact reference (:func:`~spikeport.targets.lava.graph_reference.run_graph_reference`) spike for spike.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from spikeport.errors import DataError, ExportError
from spikeport.targets.lava.graph import INPUT, LoihiGraph
from spikeport.targets.lava.network import _netx_pipeline

__all__ = ["LavaNetwork", "LavaRun", "InputAdapter", "OutputAdapter", "load_network", "run_lava_graph"]


def _lava(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(shape[::-1]) if len(shape) == 3 else tuple(shape)


@dataclass
class LavaRun:
    """Result of :meth:`LavaNetwork.run`: spikes ``{population: [T, B, *shape] int8}``, logits, wall time."""

    spikes: dict[str, np.ndarray]
    logits: torch.Tensor | None
    seconds: float
    steps: int

    @property
    def predictions(self) -> torch.Tensor | None:
        return None if self.logits is None else self.logits.float().mean(0).argmax(-1)


class InputAdapter:
    """The contract's input side: encoding, the back-to-back stream, and the source wired to the network."""

    def __init__(self, graph: LoihiGraph, encode: Any, message_bits: int) -> None:
        self.graph, self.encode, self.message_bits = graph, encode, message_bits

    def stream(self, k: np.ndarray) -> np.ndarray:
        """Integer input ``[T, B, *shape]`` -> the source buffer ``(*lava_shape, B*T + depth)`` int32."""
        steps, batch = k.shape[:2]
        frames = [k[t, b] for b in range(batch) for t in range(steps)]
        frames += [np.zeros_like(k[0, 0])] * self.graph.depth
        data = np.stack([f.transpose(2, 1, 0) if f.ndim == 3 else f for f in frames], axis=-1)
        return np.ascontiguousarray(data).astype(np.int32)

    def connect(self, data: np.ndarray, synapses: dict[str, Any]) -> Any:
        """A ``RingBuffer`` source playing ``data``, wired to every connection reading the input."""
        from lava.proc.io.source import RingBuffer as Source

        src = Source(data=data)
        for c in self.graph.connections:
            if c.src != INPUT:
                continue
            port = src.s_out
            if c.kind == "dense" and len(self.graph.input_shape) == 3:
                port = port.transpose([2, 1, 0]).flatten()
            port.connect(synapses[c.name].s_in)
        return src


class OutputAdapter:
    """The contract's output side: sinks, decoding to the input-aligned timeline, and the host readout."""

    def __init__(self, graph: LoihiGraph, readout: Any) -> None:
        self.graph, self.readout = graph, readout

    def sinks(self, pops: dict[str, Any], names: list[str], steps: int) -> dict[str, Any]:
        from lava.proc.io.sink import RingBuffer as Sink

        out = {}
        for n in names:
            sink = Sink(shape=tuple(pops[n].s_out.shape), buffer=steps)
            pops[n].s_out.connect(sink.a_in)
            out[n] = sink
        return out

    def decode(self, name: str, rec: np.ndarray, steps: int, batch: int) -> np.ndarray:
        """Recorded ``(*lava_shape, stream steps)`` -> ``[T, B, *shape]`` int8 of sample steps."""
        lv = self.graph.level(name)
        r = np.moveaxis(rec, -1, 0)[lv:lv + batch * steps]
        if r.ndim == 4:
            r = r.transpose(0, 3, 2, 1)
        r = r.reshape(batch, steps, *r.shape[1:]).swapaxes(0, 1)
        return (r != 0).astype(np.int8)

    def logits(self, spikes: np.ndarray) -> torch.Tensor:
        """The host readout on the output population's ``[T, B, ...]`` spikes."""
        out = self.readout(torch.as_tensor(spikes, dtype=torch.float32))
        return (out[0] if isinstance(out, (tuple, list)) else out).detach().float()


class LavaNetwork:
    """An exported Loihi network as standard Lava processes plus its contract's adapters.

    Args:
        deployment: a :class:`~spikeport.targets.lava.deploy.LoihiDeployment` (e.g. from
            :func:`~spikeport.targets.lava.sidecar.read_deployment`).
    """

    def __init__(self, deployment: Any) -> None:
        self.deployment = deployment
        self.graph: LoihiGraph = deployment.graph
        self.timesteps: int | None = deployment.timesteps
        self.input = InputAdapter(self.graph, deployment.encode_input, deployment.input_message_bits)
        self.output = OutputAdapter(self.graph, deployment.readout_module())

    def build(self, reset_interval: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Fresh Lava processes ``({population: LIFReset}, {connection: Dense | Conv})``, wired."""
        from spikeport.targets.lava._compat import enable_lava

        enable_lava()
        from lava.proc.conv.process import Conv
        from lava.proc.dense.process import Dense
        from lava.proc.lif.process import LIFReset

        g = self.graph
        pops: dict[str, Any] = {}
        for p in g.populations:
            shape = _lava(p.shape)
            bias: Any = 0
            if p.bias is not None:
                bias = np.broadcast_to(np.asarray(p.bias, np.int32), shape).copy() if len(shape) == 3 else \
                    np.asarray(p.bias, np.int32)
            pops[p.name] = LIFReset(shape=shape, du=p.i_decay - 1, dv=p.v_decay, vth=p.v_th_mant, bias_mant=bias,
                                    bias_exp=6, reset_interval=reset_interval, reset_offset=1 + g.level(p.name))
        syns: dict[str, Any] = {}
        bits = self.deployment.input_message_bits
        for c in g.connections:
            msg = bits if c.src == INPUT else 0
            if c.kind == "dense":
                w_netx, nbits, exp = _dense_params(c.weight)
                syn = Dense(weights=w_netx, weight_exp=exp, num_weight_bits=nbits, num_message_bits=msg)
            else:
                w = np.asarray(c.weight)[:, :, ::-1, ::-1].transpose(0, 3, 2, 1).astype(np.int32)
                syn = Conv(weight=w, input_shape=_lava(g.src_shape(c)), stride=c.stride[::-1],
                           padding=c.padding[::-1], dilation=c.dilation[::-1], groups=c.groups,
                           num_message_bits=msg)
            syns[c.name] = syn
            if c.src != INPUT:
                port = pops[c.src].s_out
                if c.kind == "dense" and len(g.population(c.src).shape) == 3:
                    port = port.transpose([2, 1, 0]).flatten()
                port.connect(syn.s_in)
            syn.a_out.connect(pops[c.dst].a_in)
        return pops, syns

    def run_integer(self, k: np.ndarray, record: list[str] | None = None) -> tuple[dict[str, np.ndarray], float]:
        """Run integer input ``k`` ``[T, B, *input_shape]``; ``({population: [T, B, *shape] int8}, seconds)``."""
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg

        from spikeport.targets.lava.lava_sim import _abort

        k = np.asarray(k)
        steps, batch = k.shape[:2]
        names = record if record is not None else [p.name for p in self.graph.neurons]
        pops, syns = self.build(reset_interval=steps)
        data = self.input.stream(k)
        self.input.connect(data, syns)
        total = data.shape[-1]
        sinks = self.output.sinks(pops, names, total)
        anchor = pops[self.graph.populations[0].name]
        t0 = time.perf_counter()
        try:
            anchor.run(condition=RunSteps(num_steps=total), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
            recorded = {n: np.asarray(s.data.get()) for n, s in sinks.items()}
        except Exception as e:  # Lava raises plain Exceptions from its runtime; re-raised below
            detail = _abort(anchor) or f"{type(e).__name__}: {e}"
            raise ExportError(f"Lava run of '{self.deployment.source}' failed: {detail}") from e
        seconds = time.perf_counter() - t0
        try:
            anchor.stop()
        except Exception as e:
            _abort(anchor)
            raise ExportError(f"stopping the Lava runtime failed ({type(e).__name__}: {e})") from e
        return {n: self.output.decode(n, r, steps, batch) for n, r in recorded.items()}, seconds

    def run(self, x: Any, record: list[str] | None = None) -> LavaRun:
        """Run real-valued input ``x`` (``[B, *shape]`` frames repeated over the contract's T, or ``[T, B, ...]``).

        Returns:
            :class:`LavaRun`: every recorded population's spikes and the host readout's logits.
        """
        x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        shape = self.graph.input_shape
        if x.dim() == len(shape) + 1:
            if self.timesteps is None:
                raise DataError("the export records no T; pass [T, B, ...] input")
            x = x.unsqueeze(0).expand(self.timesteps, *x.shape)
        k = self.deployment.encode_input(x).numpy()
        names = list(dict.fromkeys([*(record or [p.name for p in self.graph.neurons]), self.graph.output]))
        spikes, seconds = self.run_integer(k, names)
        logits = self.output.logits(spikes[self.graph.output])
        return LavaRun(spikes, logits, seconds, k.shape[0] * k.shape[1] + self.graph.depth)


def _dense_params(weight: np.ndarray) -> tuple[np.ndarray, int, int]:
    """What netx passes to Lava's Dense for these stored weights: ``(weights << shift, num_weight_bits, exp)``."""
    w = np.asarray(weight, dtype=np.int64)
    _, nbits, exp, _, shift = _netx_pipeline(w)
    return (w << shift).astype(np.int32), nbits, exp


def load_network(path: str | os.PathLike) -> LavaNetwork:
    """Load an exported ``.net`` (netx chain or spikeport graph) and its ``.loihi.json`` as Lava processes.

    Example::

        net = load_network("resnet.net")
        run = net.run(frames)            # [B, C, H, W] real-valued, the contract's encoding applied
        run.predictions, run.spikes["stages.1.0.act2"]

    Raises:
        DataError: missing or inconsistent files.
    """
    from spikeport.targets.lava.sidecar import read_deployment

    return LavaNetwork(read_deployment(path))


def run_lava_graph(deployment: Any, k: np.ndarray, record: list[str] | None = None) -> dict[str, np.ndarray]:
    """Lava ``fixed_pt`` spikes ``{population: [T, B, *shape] int8}`` of integer input ``k`` (input-aligned)."""
    return LavaNetwork(deployment).run_integer(np.asarray(k), record)[0]
