r"""Loihi-exact integer executor for a :class:`LoihiNetwork`, in torch.

Reproduces, bit for bit, what Lava 0.10.0 computes when it runs a netx network
under ``Loihi2SimCfg(select_tag='fixed_pt')``; the same code runs on CPU or
CUDA (integer state is int64; matmul and conv run in float64, which is exact
while partial sums stay below :math:`2^{53}`; Lava 0.10's Conv model uses
``scipy.signal.convolve2d`` in float64, as exact).

Per step ``t`` and neuron layer (after ``lava/proc/lif/models.py``,
``PyLifModelBitAcc``, with netx's ``du = iDecay - 1``, ``dv = vDecay``,
``bias_exp = 6``):

.. math::

    u &= \mathrm{wrap}_{24}\big(\mathrm{trunc}(u\,(4096 - i_{decay}) / 4096) + (a \ll 6)\big) \\
    v &= \mathrm{clip}_{\pm(2^{23}-1)}\big(\mathrm{trunc}(v\,(4096 - v_{decay}) / 4096) + u + (b \ll 6)\big) \\
    s &= v > (v_{th} \ll 6), \qquad v \leftarrow 0 \text{ where } s

``trunc`` rounds towards zero (Lava: ``sign(x) * (|x| >> 12)``); ``wrap_24`` is
Lava's one-shot wrap (``u > 2^23`` loses :math:`2^{24}`, ``u <= -2^{23}`` gains
it). Synapses (``lava/proc/dense/models.py``, ``lava/proc/conv/models.py``):

* Dense: ``a = (W_lava @ s) >> -weight_exp`` (floor), with ``W_lava`` from
  :func:`~spikeport.targets.lava.network.netx_dense_weights`; int32 on the wire.
* Conv: ``a = signed_clamp_24(conv2d(s, W))``; no weight exponent (netx passes
  conv weights unchanged).

**Latency.** Lava's Dense and Conv models send at step ``t`` the accumulation
they computed at step ``t - 1`` (``a_buff``), so a network with ``k`` neuron
layers outputs at step ``t + k`` what the input of step ``t`` caused; the
source RingBuffer adds no delay. ``lava_delay=True`` (default) reproduces this
index for index; ``lava_delay=False`` removes the buffers (same integer
dynamics, zero latency, the float model's timeline). The two agree after
shifting layer ``i`` by :meth:`LoihiNetwork.latency`; see :func:`align_to_input`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from spikeport.errors import DataError, GraphError
from spikeport.targets.lava.network import DECAY_UNITY, LoihiNetwork, netx_dense_weights

__all__ = ["LoihiExecutor", "ReferenceTrace", "run_reference", "align_to_input"]

_UV_MAX = 1 << 23
LayerStates = list[tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None]
"""Per-layer executor state: ``(u, v, a_buff)`` of a neuron layer, ``None`` for a flatten layer."""

_ACT_SHIFT = 6       # synaptic input and threshold are MSB-aligned by 6 bits
_BIAS_EXP = 6        # netx sets bias_exp = 6


def _wrap(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Two's-complement wrap of an int64 tensor to ``bits`` bits (numpy int32 overflow)."""
    half = 1 << (bits - 1)
    return torch.remainder(x + half, 1 << bits) - half


def _trunc_decay(x: torch.Tensor, keep: int) -> torch.Tensor:
    """``sign(x * keep) * (|x * keep| >> 12)``: multiply and truncate towards zero."""
    p = x * keep
    return torch.sign(p) * (p.abs() >> 12)


@dataclass(frozen=True)
class ReferenceTrace:
    """Result of :meth:`LoihiExecutor.run`.

    Attributes:
        spikes: neuron layer index -> ``[T, B, *shape]`` int8 spikes.
        u: layer index -> ``[T, B, *shape]`` int64 current (only with ``record_state``).
        v: layer index -> ``[T, B, *shape]`` int64 voltage after reset (only with ``record_state``).
    """

    spikes: dict[int, torch.Tensor]
    u: dict[int, torch.Tensor] | None = None
    v: dict[int, torch.Tensor] | None = None


@dataclass
class _Layer:
    index: int
    kind: str
    shape: tuple[int, ...]
    weight: torch.Tensor | None = None        # float64: dense (out, in) W_lava; conv (out, in/g, kH, kW)
    weight_exp: int = 0
    conv: dict[str, Any] | None = None
    bias: torch.Tensor | None = None          # int64, already << 6 and shaped to broadcast
    keep_u: int = 0
    keep_v: int = DECAY_UNITY
    vth: int = 0                              # already << 6


class LoihiExecutor:
    """Integer executor holding a network's parameters on one device.

    Args:
        net: the network.
        device: torch device (default CPU).
        input_message_bits: 0 for unary spike input (any nonzero value is a
            spike, as Lava casts to bool); > 0 for graded integer input, used as is.
    """

    def __init__(self, net: LoihiNetwork, device: str | torch.device | None = None,
                 input_message_bits: int = 0) -> None:
        self.net = net
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.input_message_bits = int(input_message_bits)
        self._layers: list[_Layer] = []
        for i, layer in enumerate(net.layers):
            if not layer.has_neurons:
                self._layers.append(_Layer(i, "flatten", layer.shape))
                continue
            spec = _Layer(i, layer.kind, layer.shape, keep_u=DECAY_UNITY - layer.i_decay,
                          keep_v=DECAY_UNITY - layer.v_decay, vth=layer.v_th_mant << _ACT_SHIFT)
            if layer.kind == "dense":
                w_lava, _, spec.weight_exp, _ = netx_dense_weights(layer.synapse_weight)
                spec.weight = torch.tensor(w_lava, dtype=torch.float64, device=self.device)
            else:
                spec.weight = torch.tensor(np.asarray(layer.synapse_weight), dtype=torch.float64, device=self.device)
                spec.conv = {"stride": layer.stride, "padding": layer.padding, "dilation": layer.dilation,
                             "groups": layer.groups}
            if layer.bias is not None:
                b = torch.tensor(np.asarray(layer.bias), dtype=torch.int64, device=self.device) << _BIAS_EXP
                spec.bias = b.view(-1, 1, 1) if layer.kind == "conv" else b
            self._layers.append(spec)

    # ------------------------------------------------------------ pieces
    def _synapse(self, spec: _Layer, x: torch.Tensor) -> torch.Tensor:
        """Accumulated synaptic input of one step (what Lava puts in ``a_buff``)."""
        xf, w = x.to(torch.float64), spec.weight
        if w is None:  # flatten layers have no synapse; step() does not call this for them
            raise GraphError(f"Loihi reference: layer {spec.index} ({spec.kind}) has no synapse")
        if spec.kind == "dense":
            acc = torch.round(xf @ w.T).to(torch.int64)
            acc = acc << spec.weight_exp if spec.weight_exp > 0 else acc >> -spec.weight_exp
            return _wrap(acc, 32)
        acc = torch.round(F.conv2d(xf, w, **(spec.conv or {}))).to(torch.int64)
        return _wrap(acc, 24)  # conv utils.signed_clamp(x, bits=24)

    @staticmethod
    def _neuron(spec: _Layer, a: torch.Tensor, u: torch.Tensor, v: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cur = _wrap(_trunc_decay(u, spec.keep_u) + _wrap(a << _ACT_SHIFT, 32), 32)
        cur = torch.where(cur > _UV_MAX, cur - 2 * _UV_MAX, torch.where(cur <= -_UV_MAX, cur + 2 * _UV_MAX, cur))
        volt = _trunc_decay(v, spec.keep_v) + cur
        if spec.bias is not None:
            volt = volt + spec.bias
        volt = torch.clamp(_wrap(volt, 32), -_UV_MAX + 1, _UV_MAX - 1)
        s = volt > spec.vth
        return s, cur, torch.where(s, torch.zeros_like(volt), volt)

    # ------------------------------------------------------------ API
    def init_state(self, batch: int) -> LayerStates:
        """Zero state per layer: ``(u, v, a_buff)`` for neuron layers, ``None`` for flatten."""
        state: LayerStates = []
        for spec in self._layers:
            if spec.kind == "flatten":
                state.append(None)
                continue
            z = torch.zeros((batch, *spec.shape), dtype=torch.int64, device=self.device)
            state.append((z, z.clone(), z.clone()))
        return state

    def _prepare(self, x_t: torch.Tensor) -> torch.Tensor:
        x_t = x_t.to(self.device)
        if x_t.is_floating_point() and not torch.equal(x_t, torch.round(x_t)):
            raise DataError("Loihi reference: inputs must be integer-valued spikes or graded integers")
        x_t = x_t.to(torch.int64)
        if self.input_message_bits == 0:
            x_t = (x_t != 0).to(torch.int64)
        return x_t

    def step(self, x_t: torch.Tensor, state: LayerStates, lava_delay: bool = True
             ) -> tuple[list[torch.Tensor | None], LayerStates]:
        """Advance one step. ``x_t`` is ``[B, *input_shape]``; returns per-layer spikes and the new state."""
        x = self._prepare(x_t)
        spikes: list[torch.Tensor | None] = []
        new_state: LayerStates = []
        for spec, st in zip(self._layers, state, strict=True):
            if spec.kind == "flatten" or st is None:
                x = x.reshape(x.shape[0], -1)
                spikes.append(None)
                new_state.append(None)
                continue
            u, v, a_buff = st
            if spec.kind == "dense" and x.dim() > 2:  # a dense layer fed by a (C, H, W) input
                x = x.reshape(x.shape[0], -1)
            a_now = self._synapse(spec, x)
            a = a_buff if lava_delay else a_now
            s, u, v = self._neuron(spec, a, u, v)
            spikes.append(s)
            new_state.append((u, v, a_now))
            x = s.to(torch.int64)
        return spikes, new_state

    def run(self, inputs: torch.Tensor | np.ndarray, lava_delay: bool = True,
            record_state: bool = False) -> ReferenceTrace:
        """Run ``inputs`` ``[T, B, *input_shape]`` from zero state.

        Returns:
            :class:`ReferenceTrace` with spikes (and ``u``/``v`` if ``record_state``)
            for every dense/conv layer, keyed by layer index.
        """
        x = torch.as_tensor(inputs)
        want = tuple(self.net.input_shape)
        if x.dim() != len(want) + 2 or tuple(x.shape[2:]) != want:
            raise DataError(f"Loihi reference: inputs must have shape [T, B, {', '.join(map(str, want))}], "
                            f"got {list(x.shape)}")
        state = self.init_state(x.shape[1])
        idx = self.net.neuron_layers
        spk: dict[int, list[torch.Tensor]] = {i: [] for i in idx}
        us: dict[int, list[torch.Tensor]] = {i: [] for i in idx}
        vs: dict[int, list[torch.Tensor]] = {i: [] for i in idx}
        for t in range(x.shape[0]):
            out, state = self.step(x[t], state, lava_delay=lava_delay)
            for i in idx:
                s_i, st_i = out[i], state[i]
                if s_i is None or st_i is None:  # neuron layers always spike and keep a state
                    raise GraphError(f"Loihi reference: layer {i} has no neurons")
                spk[i].append(s_i.to(torch.int8))
                if record_state:
                    us[i].append(st_i[0])
                    vs[i].append(st_i[1])
        spikes = {i: torch.stack(spk[i]) for i in idx}
        if not record_state:
            return ReferenceTrace(spikes)
        return ReferenceTrace(spikes, {i: torch.stack(us[i]) for i in idx}, {i: torch.stack(vs[i]) for i in idx})


def run_reference(net: LoihiNetwork, inputs: torch.Tensor | np.ndarray, *, lava_delay: bool = True,
                  input_message_bits: int = 0, device: str | torch.device | None = None) -> dict[int, torch.Tensor]:
    """Spikes of every dense/conv layer for ``inputs`` ``[T, B, *input_shape]``.

    Args:
        net: the network.
        inputs: binary spikes (or graded integers with ``input_message_bits > 0``).
        lava_delay: reproduce Lava's one-step synaptic delay per layer (default),
            so the result equals :func:`~spikeport.targets.lava.lava_sim.run_lava`
            index for index; ``False`` gives the zero-latency timeline.
        input_message_bits: as in :class:`LoihiExecutor`.
        device: torch device.

    Returns:
        ``{layer index: [T, B, *shape] int8 spikes}`` (flatten layers omitted).
    """
    return LoihiExecutor(net, device, input_message_bits).run(inputs, lava_delay=lava_delay).spikes


def align_to_input(spikes: dict[int, Any], net: LoihiNetwork) -> dict[int, Any]:
    """Shift Lava-timed spikes so step ``t`` of every layer belongs to input step ``t``.

    Layer ``i``'s first :meth:`LoihiNetwork.latency` steps are dropped and the
    tail is padded with zeros (those steps were never computed). For the first
    ``T - latency`` steps the result equals ``run_reference(..., lava_delay=False)``.
    """
    out: dict[int, Any] = {}
    for i, s in spikes.items():
        k = net.latency(i)
        if isinstance(s, torch.Tensor):
            out[i] = torch.cat([s[k:], torch.zeros_like(s[:k])]) if k < s.shape[0] else torch.zeros_like(s)
        else:
            arr = np.asarray(s)
            out[i] = np.concatenate([arr[k:], np.zeros_like(arr[:k])]) if k < arr.shape[0] else np.zeros_like(arr)
    return out

