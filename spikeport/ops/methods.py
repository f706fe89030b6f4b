"""Op specs of the 2025 paper methods' modules (TS-SNN shift, STAA attention, FSTA attention).

These ops mix timesteps or gate activations with non-synaptic arithmetic, so no
Loihi or NIR primitive expresses them; each refusal says why. Their executor
modules are the :mod:`spikeport.models.methods` modules rebuilt from the node's
arrays, so the equations are exactly those documented there. Energy: each op
has its own count of element-wise products and additions (documented per
function); softmax, LayerNorm and sigmoid are not counted.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from spikeport.converter import ir
from spikeport.energy.rules import OpRule, tensors, value_class
from spikeport.models import methods as S
from spikeport.ops._torch import load_state
from spikeport.ops.neurons import to_numpy
from spikeport.ops.spec import ModuleAdapter, OnnxSupport, OpSpec, Refused, register_adapter, register_op

__all__ = ["count_temporal_shift", "count_position_encoding", "count_gc", "count_step_attention",
           "count_staa_block", "count_fsta"]

_NO_NIR = Refused("no NIR primitive (a paper-method module: mixes timesteps or gates with non-synaptic arithmetic)",
                  detail=lambda n: f"{n.op} has no NIR primitive (a paper-method module: mixes timesteps or gates "
                                   "with non-synaptic arithmetic)")
_NON_CAUSAL_STREAM = Refused("needs the whole [T, B, ...] sequence (non-causal): use the onnx sequence export")


def _nz(x: torch.Tensor) -> int:
    return int(torch.count_nonzero(x))


# ---------------------------------------------------------------- energy counts
def count_temporal_shift(module: Any, node: Any, inputs: tuple[Any, ...], output: Any) -> dict[str, float]:
    """TS-SNN ``alpha * Z + X``: one product and one addition per nonzero of the shifted tensor Z."""
    x = tensors(inputs)[0]
    if node is not None and hasattr(node, "n_future"):
        nf, npast = int(node.n_future), int(node.n_past)
    else:
        nf, npast = module.channel_counts()
    nz = _nz(x) - _nz(x[0, :, :nf]) - _nz(x[-1, :, nf:nf + npast])
    return {"elem_macs": nz, "elem_adds": nz}


def count_position_encoding(module: Any, node: Any, inputs: tuple[Any, ...], output: Any) -> dict[str, float]:
    """STAA PE ``x + P_t``: one addition per element."""
    return {"elem_adds": int(tensors(inputs)[0].numel())}


def _gc_hidden(module: Any, node: Any) -> int:
    if node is not None and hasattr(node, "t1_weight"):
        return int(node.t1_weight.shape[0])
    return int(module.transform[0].out_channels)


def count_gc(module: Any, node: Any, inputs: tuple[Any, ...], output: Any) -> dict[str, float]:
    """STAA GC gate per step: context 1x1 conv, attention-weighted sum, bottleneck transform, gating product.

    On nonzero inputs: the context conv (an addition per nonzero when the input
    is binary, else a product), the softmax-weighted sum (a product per nonzero),
    the gate (a product per nonzero); the transform is dense: ``2 C hidden`` per
    step and sample. Softmax, LayerNorm and sigmoid are not counted.
    """
    x = tensors(inputs)[0]
    t, b, c = x.shape[:3]
    nz = _nz(x)
    spiking = value_class(x) in ("binary", "signed_binary")
    out: dict[str, float] = {"elem_macs": 2 * nz + t * b * 2 * c * _gc_hidden(module, node), "elem_adds": 0}
    out["elem_adds" if spiking else "elem_macs"] += nz
    return out


def _sa_hidden(module: Any, node: Any) -> tuple[int, int]:
    if node is not None and hasattr(node, "w1"):
        return int(node.timesteps), int(node.w1.shape[0])
    sa = module.sa if hasattr(module, "sa") else module
    return int(sa.timesteps), int(sa.fc[0].out_channels)


def count_step_attention(module: Any, node: Any, inputs: tuple[Any, ...], output: Any) -> dict[str, float]:
    """STAA SA: mean over (C, H, W) (an addition per nonzero), the T->hidden->T FC, a product per nonzero."""
    x = tensors(inputs)[0]
    t, h = _sa_hidden(module, node)
    nz = _nz(x)
    return {"elem_adds": nz, "elem_macs": nz + int(x.shape[1]) * 2 * t * h}


def count_staa_block(module: Any, node: Any, inputs: tuple[Any, ...], output: Any) -> dict[str, float]:
    """STAABlock's own step attention on its spikes (PE, GC and the neuron are hooked separately).

    ``s * w`` with ``w`` in (0, 1) keeps the spikes' nonzeros, so the output's
    nonzero count is the spike count.
    """
    t, h = _sa_hidden(module, node)
    nz = _nz(output)
    return {"elem_adds": nz, "elem_macs": nz + int(output.shape[1]) * 2 * t * h}


def _conv_macs(weights: list[Any], hw: int) -> int:
    return sum(int(math.prod(w.shape)) * hw for w in weights)


def count_fsta(module: Any, node: Any, inputs: tuple[Any, ...], output: Any) -> dict[str, float]:
    """FSTA on the input current.

    Temporal: average pool over HW (an addition per nonzero; max pooling's
    comparisons are not counted), ``alpha``/``beta`` mixing (2 T B C products),
    the T x T FC (B C T^2), mean over C (B T C additions), ``x (1 + w)`` (a product
    per nonzero). Spatial: mean over T and sum over C (an addition per nonzero),
    the fixed DCT conv and the 7x7 attention convs (dense per sample), ``x_t (1 +
    sigmoid(s))`` (a product per nonzero). Fusion: two products and one addition
    per nonzero. Sigmoids are not counted.
    """
    x = tensors(inputs)[0]
    t, b, c, h, w = x.shape
    nz = _nz(x)
    if node is not None and hasattr(node, "attn_w1"):
        k = 7 if int(node.freq_num) == 49 else 3
        weights = [node.attn_w1] + ([node.attn_w2] if node.attn_w2 is not None else [])
        freq = int(node.freq_num)
    else:
        k = int(module.dct_basis.shape[-1])
        weights = [m.weight for m in module.modules() if isinstance(m, nn.Conv2d)]
        freq = int(module.freq_num)
    spatial = b * (freq * k * k * h * w + _conv_macs(weights, h * w))
    macs = 2 * t * b * c + b * c * t * t + nz + spatial + nz + 2 * nz
    adds = nz + b * t * c + nz + nz
    return {"elem_macs": macs, "elem_adds": adds}


# ---------------------------------------------------------------- executor modules
class _TemporalShift(nn.Module):
    """TS-SNN shift on ``[T, B, C, ...]`` (same ops as ``spikeport.models.methods.TemporalShift``)."""

    alpha: torch.Tensor  # buffer

    def __init__(self, n: ir.TemporalShift) -> None:
        super().__init__()
        self.nf, self.np = n.n_future, n.n_past
        self.register_buffer("alpha", torch.tensor(np.asarray(n.alpha), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nf, npast = self.nf, self.np
        fut, past, rest = x[:, :, :nf], x[:, :, nf:nf + npast], x[:, :, nf + npast:]
        fut = torch.cat([fut[1:], torch.zeros_like(fut[:1])], dim=0)
        past = torch.cat([torch.zeros_like(past[:1]), past[:-1]], dim=0)
        return self.alpha * torch.cat([fut, past, rest], dim=2) + x


def _exec_tpe(n: ir.TemporalPositionEncoding, _: list[Any]) -> nn.Module:
    return load_state(S.TemporalPositionEncoding(n.timesteps, int(n.pos.shape[1])), {"pos": n.pos}, n)


def _exec_gc(n: ir.GCAttention, _: list[Any]) -> nn.Module:
    return load_state(S.GCBlock(n.channels, n.reduction),
                      {"context.weight": n.context_weight, "context.bias": n.context_bias,
                       "transform.0.weight": n.t1_weight, "transform.0.bias": n.t1_bias,
                       "transform.1.weight": n.ln_weight, "transform.1.bias": n.ln_bias,
                       "transform.3.weight": n.t2_weight, "transform.3.bias": n.t2_bias}, n)


def _exec_sa(n: ir.StepAttention, _: list[Any]) -> nn.Module:
    return load_state(S.StepAttention(n.timesteps, n.reduction),
                      {"fc.0.weight": n.w1, "fc.0.bias": n.b1, "fc.2.weight": n.w2, "fc.2.bias": n.b2}, n)


def _exec_fsta(n: ir.FSTA, _: list[Any]) -> nn.Module:
    state: dict[str, Any] = {"alpha": n.alpha, "beta": n.beta, "theta_t": n.theta_t, "theta_s": n.theta_s,
                             "fc_t.weight": n.fc_t}
    if n.attn_w2 is None:
        state["freq_attention.weight"] = n.attn_w1
    else:
        state["freq_attention.0.weight"], state["freq_attention.2.weight"] = n.attn_w1, n.attn_w2
    return load_state(S.FSTA(n.channels, n.timesteps, n.freq_num, n.reduction), state, n)


# ---------------------------------------------------------------- module adapters
def _from_tshift(m: Any, name: str) -> ir.TemporalShift:
    nf, npast = m.channel_counts()
    return ir.TemporalShift(name, channels=int(m.channels), n_future=int(nf), n_past=int(npast),
                            alpha=to_numpy(m.alpha))


def _from_tpe(m: Any, name: str) -> ir.TemporalPositionEncoding:
    return ir.TemporalPositionEncoding(name, pos=to_numpy(m.pos))


def _from_gc(m: Any, name: str) -> ir.GCAttention:
    c1, ln, c2 = m.transform[0], m.transform[1], m.transform[3]
    return ir.GCAttention(name, channels=int(m.channels), reduction=int(m.reduction),
                          context_weight=to_numpy(m.context.weight), context_bias=to_numpy(m.context.bias),
                          t1_weight=to_numpy(c1.weight), t1_bias=to_numpy(c1.bias),
                          ln_weight=to_numpy(ln.weight), ln_bias=to_numpy(ln.bias), ln_eps=float(ln.eps),
                          t2_weight=to_numpy(c2.weight), t2_bias=to_numpy(c2.bias))


def _from_sa(m: Any, name: str) -> ir.StepAttention:
    a, b = m.fc[0], m.fc[2]
    t = int(m.timesteps)
    return ir.StepAttention(name, timesteps=t, reduction=max(1, t // int(a.out_channels)),
                            w1=to_numpy(a.weight), b1=to_numpy(a.bias), w2=to_numpy(b.weight), b2=to_numpy(b.bias))


def _from_fsta(m: Any, name: str) -> ir.FSTA:
    fa = m.freq_attention
    w1, w2 = (fa.weight, None) if isinstance(fa, nn.Conv2d) else (fa[0].weight, fa[2].weight)
    return ir.FSTA(name, channels=int(m.channels), timesteps=int(m.timesteps), freq_num=int(m.freq_num),
                   reduction=int(m.reduction), alpha=to_numpy(m.alpha), beta=to_numpy(m.beta),
                   theta_t=to_numpy(m.theta_t), theta_s=to_numpy(m.theta_s), fc_t=to_numpy(m.fc_t.weight),
                   attn_w1=to_numpy(w1), attn_w2=to_numpy(w2))


def _from_staa(m: Any, name: str) -> list[Any]:
    """Inference: TSRD is inactive, so the block is PE -> GC -> neuron -> SA (see methods/staa.py)."""
    from spikeport.converter.tracer import convert_module

    return [n for child in ("pe", "gc", "neuron", "sa") for n in convert_module(getattr(m, child), f"{name}.{child}")]


def _module(cls: type, convert: Any) -> tuple[ModuleAdapter, ...]:
    return (ModuleAdapter(cls, convert, framework="spikeport"),)


def _ts_loihi(node: Any) -> str:
    if not node.causal:
        return (f"non-causal temporal shift ({node.n_future} channel(s) read step t+1): cannot run step by step "
                f"on Loihi")
    return "temporal shift: mixes timesteps per channel; netx layers have no per-channel delay"


# ---------------------------------------------------------------- the specs
register_op(OpSpec(
    ir.TemporalShift, "TS-SNN temporal shift", lambda n, _: _TemporalShift(n),
    modules=_module(S.TemporalShift, _from_tshift),
    energy=OpRule("custom", count=count_temporal_shift,
                  note="TemporalShift: alpha*Z + X costs a MAC and an addition per nonzero of Z; its output is "
                       "real-valued, so the next synapse is counted in MACs (alpha is not folded into the weights)"),
    nir=_NO_NIR, onnx=OnnxSupport(stream=_NON_CAUSAL_STREAM),
    loihi=Refused("temporal shift: mixes timesteps per channel", detail=_ts_loihi)))

register_op(OpSpec(
    ir.TemporalPositionEncoding, "STAA temporal position encoding", _exec_tpe,
    modules=_module(S.TemporalPositionEncoding, _from_tpe),
    energy=OpRule("custom", count=count_position_encoding, note="position encoding: one addition per element"),
    nir=_NO_NIR, onnx=OnnxSupport(stream=Refused("adds a term indexed by the absolute step t over a fixed T: use "
                                                 "the onnx sequence export")),
    loihi=Refused("STAA position encoding: adds a term indexed by the absolute step t, which a free-running Loihi "
                  "network does not know")))

register_op(OpSpec(
    ir.GCAttention, "STAA global-context attention (per step)", _exec_gc, modules=_module(S.GCBlock, _from_gc),
    energy=OpRule("custom", count=count_gc,
                  note="GC attention: products on nonzero inputs + dense bottleneck; softmax/LayerNorm/sigmoid not "
                       "counted"),
    nir=_NO_NIR,
    loihi=Refused("STAA global-context attention: softmax and LayerNorm gating have no Loihi synapse/neuron "
                  "mapping")))

register_op(OpSpec(
    ir.StepAttention, "STAA step attention (over all T)", _exec_sa, modules=_module(S.StepAttention, _from_sa),
    energy=OpRule("custom", count=count_step_attention,
                  note="step attention: mean (additions) + FC + one MAC per nonzero spike (real step weights)"),
    nir=_NO_NIR, onnx=OnnxSupport(stream=_NON_CAUSAL_STREAM),
    loihi=Refused("STAA step attention: non-causal (weights every step from the mean over all T steps)")))

register_op(OpSpec(
    ir.FSTA, "FSTA-SNN frequency-based spatial-temporal attention", _exec_fsta, modules=_module(S.FSTA, _from_fsta),
    energy=OpRule("custom", count=count_fsta,
                  note="FSTA: products on nonzero currents, dense DCT/attention convs per sample; sigmoid not "
                       "counted"),
    nir=_NO_NIR, onnx=OnnxSupport(stream=_NON_CAUSAL_STREAM),
    loihi=Refused("FSTA attention: non-causal temporal attention and DCT spatial attention have no Loihi "
                  "mapping")))

register_adapter(S.TimeStepRandomDropout)  # the identity at inference
register_adapter(ModuleAdapter(
    S.STAABlock, _from_staa, framework="spikeport",
    energy=OpRule("custom", count=count_staa_block, leaf=False,
                  note="STAA block: its step attention on the spikes (mean + FC + a MAC per spike); PE, GC and the "
                       "neuron are counted as their own nodes")))
