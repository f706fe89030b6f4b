r"""Loihi-exact integer executor for a :class:`~spikeport.targets.lava.graph.LoihiGraph`, in torch.

The per-population dynamics and the synapse arithmetic are those of
:mod:`spikeport.targets.lava.loihi_reference` (Lava 0.10 ``PyLifModelBitAcc`` / ``PyLifResetModelBitAcc``,
``Dense`` and ``Conv`` fixed-point models); what is new is the wiring. A population's synaptic input is
the sum of its connections' accumulations (Lava's ``a_in`` port adds every connected ``a_out``; each
connection is clamped or shifted on its own first: conv ``signed_clamp_24``, dense ``>> -weight_exp``).

**Timelines.** ``lava_delay=True`` reproduces Lava index for index: at step ``t`` every population
integrates what its connections accumulated at step ``t - 1`` (Lava's ``a_buff``), then every connection
accumulates the spikes of step ``t``. With ``reset_interval=T`` a population at level ``L`` zeroes its
``u`` and ``v`` at the steps ``t`` with ``t mod T = L mod T`` (Lava ``LIFReset`` with phase ``1 + L`` in
its 1-based time), which is when the first step of each sample reaches it on a back-to-back stream.
``lava_delay=False`` evaluates the populations in topological order with no buffers (relays become
copies of the same step): the float model's timeline, one sample at a time.

**Why the two agree** (for a balanced graph: every connection goes from level ``L - 1`` to ``L``).
Induction over the levels: if every population of level ``L - 1`` emits at Lava step ``t + L - 1`` the
spikes the zero-latency run emits at step ``t``, then every population of level ``L`` receives at step
``t + L`` exactly the zero-latency input of step ``t`` (one step of synapse delay), and, its state having
been zeroed at step ``j T + L`` (the first step of sample ``j`` on the stream), it computes the same
integers. The input is level 0. Hence population ``P`` at stream step ``j T + t + level(P)`` equals the
zero-latency run of sample ``j`` at step ``t``; :func:`run_graph_reference` with ``stream=True`` plays
that stream and decodes it, and the tests check both timelines against each other and against Lava.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from spikeport.errors import DataError
from spikeport.targets.lava.graph import INPUT, LoihiGraph
from spikeport.targets.lava.loihi_reference import _ACT_SHIFT, _BIAS_EXP, _UV_MAX, _trunc_decay, _wrap
from spikeport.targets.lava.network import DECAY_UNITY, netx_dense_weights

__all__ = ["GraphExecutor", "run_graph_reference"]


class GraphExecutor:
    """Integer executor of a :class:`LoihiGraph` on one device.

    Args:
        graph: the network.
        device: torch device (default CPU).
        input_message_bits: 0 for unary spike input (nonzero = a spike), > 0 for graded integers.
    """

    def __init__(self, graph: LoihiGraph, device: str | torch.device | None = None,
                 input_message_bits: int = 0) -> None:
        self.graph = graph
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.input_message_bits = int(input_message_bits)
        self._conns: dict[str, dict[str, Any]] = {}
        for c in graph.connections:
            spec: dict[str, Any] = {"src": c.src, "dst": c.dst, "kind": c.kind}
            if c.kind == "dense":
                w_lava, _, spec["exp"], _ = netx_dense_weights(c.weight)
                spec["w"] = torch.tensor(w_lava, dtype=torch.float64, device=self.device)
            else:
                spec["w"] = torch.tensor(np.asarray(c.weight), dtype=torch.float64, device=self.device)
                spec["geo"] = {"stride": c.stride, "padding": c.padding, "dilation": c.dilation, "groups": c.groups}
            self._conns[c.name] = spec
        self._pops: dict[str, dict[str, Any]] = {}
        for p in graph.populations:
            bias = None
            if p.bias is not None:
                b = torch.tensor(np.asarray(p.bias), dtype=torch.int64, device=self.device) << _BIAS_EXP
                bias = b.view(-1, 1, 1) if len(p.shape) == 3 else b
            self._pops[p.name] = {"shape": p.shape, "keep_u": DECAY_UNITY - p.i_decay,
                                  "keep_v": DECAY_UNITY - p.v_decay, "vth": p.v_th_mant << _ACT_SHIFT, "bias": bias,
                                  "level": graph.level(p.name),
                                  "conns": [c.name for c in graph.incoming(p.name)]}

    def _accumulate(self, name: str, x: torch.Tensor) -> torch.Tensor:
        spec = self._conns[name]
        xf = x.to(torch.float64)
        if spec["kind"] == "dense":
            acc = torch.round(xf.reshape(xf.shape[0], -1) @ spec["w"].T).to(torch.int64)
            acc = acc << spec["exp"] if spec["exp"] > 0 else acc >> -spec["exp"]
            return _wrap(acc, 32)
        acc = torch.round(F.conv2d(xf, spec["w"], **spec["geo"])).to(torch.int64)
        return _wrap(acc, 24)

    def _neuron(self, name: str, a: torch.Tensor, u: torch.Tensor, v: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = self._pops[name]
        cur = _wrap(_trunc_decay(u, p["keep_u"]) + _wrap(a << _ACT_SHIFT, 32), 32)
        cur = torch.where(cur > _UV_MAX, cur - 2 * _UV_MAX, torch.where(cur <= -_UV_MAX, cur + 2 * _UV_MAX, cur))
        volt = _trunc_decay(v, p["keep_v"]) + cur
        if p["bias"] is not None:
            volt = volt + p["bias"]
        volt = torch.clamp(_wrap(volt, 32), -_UV_MAX + 1, _UV_MAX - 1)
        s = volt > p["vth"]
        return s, cur, torch.where(s, torch.zeros_like(volt), volt)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_floating_point() and not torch.equal(x, torch.round(x)):
            raise DataError("Loihi reference: inputs must be integer-valued spikes or graded integers")
        x = x.to(self.device, torch.int64)
        return (x != 0).to(torch.int64) if self.input_message_bits == 0 else x

    def run(self, inputs: torch.Tensor | np.ndarray, *, lava_delay: bool = False,
            reset_interval: int | None = None) -> dict[str, torch.Tensor]:
        """Spikes ``{population: [steps, B, *shape] int8}`` for ``inputs`` ``[steps, B, *input_shape]``.

        Args:
            lava_delay: Lava's timeline (one step per synapse hop) instead of the zero-latency one.
            reset_interval: with ``lava_delay``, zero population ``P``'s state at the steps ``t`` with
                ``t % reset_interval == level(P) % reset_interval`` (Lava ``LIFReset``).
        """
        x = torch.as_tensor(inputs)
        want = self.graph.input_shape
        if x.dim() != len(want) + 2 or tuple(x.shape[2:]) != want:
            raise DataError(f"Loihi reference: inputs must have shape [T, B, {', '.join(map(str, want))}], got "
                            f"{list(x.shape)}")
        batch = x.shape[1]
        state = {n: tuple(torch.zeros((batch, *p["shape"]), dtype=torch.int64, device=self.device)
                          for _ in range(2)) for n, p in self._pops.items()}
        bufs = {n: torch.zeros((batch, *self._pops[c["dst"]]["shape"]), dtype=torch.int64, device=self.device)
                for n, c in self._conns.items()}
        out: dict[str, list[torch.Tensor]] = {n: [] for n in self._pops}
        for t in range(x.shape[0]):
            spikes: dict[str, torch.Tensor] = {INPUT: self._prepare(x[t])}
            for name, p in self._pops.items():  # topological order
                if lava_delay:
                    terms = [bufs[c] for c in p["conns"]]
                else:
                    terms = [self._accumulate(c, spikes[self._conns[c]["src"]]) for c in p["conns"]]
                a = sum(terms[1:], terms[0])  # LoihiGraph feeds every population by at least one connection
                u, v = state[name]
                if lava_delay and reset_interval and t % reset_interval == p["level"] % reset_interval:
                    u, v = torch.zeros_like(u), torch.zeros_like(v)
                s, u, v = self._neuron(name, _wrap(a, 32), u, v)
                state[name] = (u, v)
                spikes[name] = s.to(torch.int64)
                out[name].append(s.to(torch.int8))
            if lava_delay:
                bufs = {n: self._accumulate(n, spikes[c["src"]]) for n, c in self._conns.items()}
        return {n: torch.stack(v) for n, v in out.items()}


def run_graph_reference(graph: LoihiGraph, inputs: torch.Tensor | np.ndarray, *, input_message_bits: int = 0,
                        stream: bool = False, device: str | torch.device | None = None) -> dict[str, torch.Tensor]:
    """Spikes of every population for ``inputs`` ``[T, B, *input_shape]`` on the input-aligned timeline.

    Args:
        stream: ``False``: the zero-latency run (each sample from zero state). ``True``: Lava's timeline on
            the contract's stream (samples back to back, ``depth`` zero steps, reset every ``T`` steps at
            each population's level), decoded by dropping each population's latency; equal to the
            zero-latency run (see the module docstring) and to Lava.
        input_message_bits, device: as :class:`GraphExecutor`.

    Returns:
        ``{population name: [T, B, *shape] int8}``.
    """
    ex = GraphExecutor(graph, device, input_message_bits)
    x = torch.as_tensor(inputs)
    if not stream:
        return ex.run(x)
    steps, batch = x.shape[:2]
    depth = graph.depth
    flat = x.transpose(0, 1).reshape(batch * steps, 1, *x.shape[2:])
    seq = torch.cat([flat, torch.zeros((depth, 1, *x.shape[2:]), dtype=x.dtype)])
    rec = ex.run(seq, lava_delay=True, reset_interval=steps)
    out = {}
    for name, r in rec.items():
        k = graph.level(name)
        r = r[k:k + batch * steps, 0]
        out[name] = r.reshape(batch, steps, *r.shape[1:]).transpose(0, 1).contiguous()
    return out
