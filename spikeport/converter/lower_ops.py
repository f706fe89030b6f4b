"""Per-node torch modules of the reference executor (one lowering per IR node type).

Every lowered module takes and returns multi-step tensors ``[T, B, ...]``.
Per-timestep ops fold T into the batch exactly like
:mod:`spikeport.models.layers` (the synapse and pooling nodes are lowered *to*
those layer classes), and neurons loop over T calling the same pure functions
as :mod:`spikeport.models.neurons`, so a traced model and its lowering produce
bit-identical outputs. Stateful modules (neurons) accept ``state=`` a
:class:`StateSlot` to continue from (and update) a previous state; this is how
the executor streams step by step.

Extend with :func:`register_lowering` for new IR node types.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from spikeport.converter import ir
from spikeport.converter.ir import Shape
from spikeport.errors import GraphError
from spikeport.models import layers as L
from spikeport.models.neurons import functional as F
from spikeport.models.neurons.surrogate import get_surrogate

__all__ = ["LOWERINGS", "register_lowering", "lower_node", "StateSlot", "NeuronModule"]

Lowering = Callable[[ir.IRNode, list[Shape]], nn.Module]
LOWERINGS: dict[type, Lowering] = {}


def register_lowering(*node_types: type) -> Callable[[Lowering], Lowering]:
    """Register ``fn(node, in_shapes) -> nn.Module`` as the lowering of ``node_types``."""

    def deco(fn: Lowering) -> Lowering:
        for t in node_types:
            LOWERINGS[t] = fn
        return fn

    return deco


def lower_node(node: ir.IRNode, in_shapes: list[Shape]) -> nn.Module:
    """Build the executor module for ``node`` (GraphError if the type has no lowering)."""
    fn = next((LOWERINGS[k] for k in type(node).__mro__ if k in LOWERINGS), None)
    if fn is None:
        raise GraphError(f"node '{node.name}' ({node.op}) has no lowering to torch; register one with "
                         "spikeport.converter.lower_ops.register_lowering")
    return fn(node, in_shapes)


class StateSlot:
    """Mutable holder passed to a stateful module: read ``value`` (None = zero state), write the final state."""

    __slots__ = ("value",)

    def __init__(self, value: Any = None) -> None:
        self.value = value


def _param(a: np.ndarray | None) -> nn.Parameter | None:
    return None if a is None else nn.Parameter(torch.tensor(np.asarray(a)))


def _buffer(a: Any, rank: int) -> Any:
    """python float -> float; array -> tensor reshaped leading-aligned to a per-step rank (0-dim kept)."""
    if a is None or isinstance(a, float):
        return a
    t = torch.tensor(np.asarray(a), dtype=torch.float32)
    if t.dim() == 0:
        return t
    return t.reshape(*t.shape, *([1] * (rank - t.dim())))


# ---------------------------------------------------------------- synapses / norm
class _Linear(nn.Linear):
    """``F.linear`` on the last axis of ``[T, B, ..., F]`` (as ``spikeport.models.layers.Linear``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.Linear.forward(self, x)


@register_lowering(ir.Linear)
def _lower_linear(n: ir.Linear, _: list[Shape]) -> nn.Module:
    m = _Linear(n.in_features, n.out_features, bias=n.bias is not None, device="meta")
    m.weight, m.bias = _param(n.weight), _param(n.bias)
    return m


@register_lowering(ir.Conv1d)
def _lower_conv1d(n: ir.Conv1d, _: list[Shape]) -> nn.Module:
    m = L.Conv1d(n.in_channels, n.weight.shape[0], n.weight.shape[2], stride=n.stride, padding=n.padding,
                 dilation=n.dilation, groups=n.groups, bias=n.bias is not None, device="meta")
    m.weight, m.bias = _param(n.weight), _param(n.bias)
    return m


@register_lowering(ir.Conv2d)
def _lower_conv2d(n: ir.Conv2d, _: list[Shape]) -> nn.Module:
    m = L.Conv2d(n.in_channels, n.out_channels, n.kernel_size, stride=n.stride, padding=n.padding,
                 dilation=n.dilation, groups=n.groups, bias=n.bias is not None, device="meta")
    m.weight, m.bias = _param(n.weight), _param(n.bias)
    return m


@register_lowering(ir.ConvTranspose2d)
def _lower_convt(n: ir.ConvTranspose2d, _: list[Shape]) -> nn.Module:
    m = L.ConvTranspose2d(n.in_channels, n.out_channels, tuple(n.weight.shape[2:]), stride=n.stride,
                          padding=n.padding, output_padding=n.output_padding, dilation=n.dilation, groups=n.groups,
                          bias=n.bias is not None, device="meta")
    m.weight, m.bias = _param(n.weight), _param(n.bias)
    return m


class _BatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm folding T into the batch (any per-step rank 1-3), as the multi-step layers do."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        pass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[0], x.shape[1]
        y = super().forward(x.flatten(0, 1))
        return y.reshape(t, b, *y.shape[1:])


@register_lowering(ir.BatchNorm)
def _lower_bn(n: ir.BatchNorm, _: list[Shape]) -> nn.Module:
    affine = n.weight is not None or n.bias is not None
    m = _BatchNorm(n.num_features, eps=n.eps, affine=affine, device="meta")
    if affine:
        c = n.num_features
        m.weight = _param(n.weight if n.weight is not None else np.ones(c, np.float32))
        m.bias = _param(n.bias if n.bias is not None else np.zeros(c, np.float32))
    m.running_mean = torch.tensor(np.asarray(n.mean))
    m.running_var = torch.tensor(np.asarray(n.var))
    m.num_batches_tracked = torch.tensor(0, dtype=torch.long)
    return m


# ---------------------------------------------------------------- pooling / shape / arith
@register_lowering(ir.MaxPool)
def _lower_maxpool(n: ir.MaxPool, _: list[Shape]) -> nn.Module:
    return L.MaxPool2d(n.kernel_size, n.stride, n.padding, n.dilation, ceil_mode=n.ceil_mode)


@register_lowering(ir.AvgPool)
def _lower_avgpool(n: ir.AvgPool, _: list[Shape]) -> nn.Module:
    return L.AvgPool2d(n.kernel_size, n.stride, n.padding, ceil_mode=n.ceil_mode,
                       count_include_pad=n.count_include_pad, divisor_override=n.divisor_override)


@register_lowering(ir.SumPool)
def _lower_sumpool(n: ir.SumPool, _: list[Shape]) -> nn.Module:
    return L.AvgPool2d(n.kernel_size, n.stride, n.padding, count_include_pad=True, divisor_override=1)


@register_lowering(ir.AdaptiveAvgPool)
def _lower_adaptive(n: ir.AdaptiveAvgPool, _: list[Shape]) -> nn.Module:
    return L.AdaptiveAvgPool2d(n.output_size)


class _Fn(nn.Module):
    """A parameter-free op on multi-step tensors."""

    def __init__(self, fn: Callable[..., torch.Tensor], desc: str) -> None:
        super().__init__()
        self.fn, self.desc = fn, desc

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.fn(*xs)

    def extra_repr(self) -> str:
        return self.desc


def _full_axis(a: int) -> int:
    return a if a < 0 else a + 2


@register_lowering(ir.Flatten)
def _lower_flatten(n: ir.Flatten, _: list[Shape]) -> nn.Module:
    s, e = _full_axis(n.start_dim), _full_axis(n.end_dim)
    return _Fn(lambda x: x.flatten(s, e), f"flatten({s}, {e})")


@register_lowering(ir.Reshape)
def _lower_reshape(n: ir.Reshape, _: list[Shape]) -> nn.Module:
    shape = n.shape
    return _Fn(lambda x: x.reshape(x.shape[0], x.shape[1], *shape), f"reshape(T, B, {shape})")


def _add(*xs: torch.Tensor) -> torch.Tensor:
    y = xs[0] + xs[1]
    for x in xs[2:]:
        y = y + x
    return y


@register_lowering(ir.Add)
def _lower_add(n: ir.Add, _: list[Shape]) -> nn.Module:
    return _Fn(_add, "add")


@register_lowering(ir.Mul)
def _lower_mul(n: ir.Mul, _: list[Shape]) -> nn.Module:
    return _Fn(lambda a, b: a * b, "mul")


@register_lowering(ir.Concat)
def _lower_concat(n: ir.Concat, _: list[Shape]) -> nn.Module:
    ax = _full_axis(n.axis)
    return _Fn(lambda *xs: torch.cat(xs, dim=ax), f"cat(dim={ax})")


class _Scale(nn.Module):
    def __init__(self, scale: Any, rank: int) -> None:
        super().__init__()
        s = _buffer(scale, rank)
        if isinstance(s, torch.Tensor):
            self.register_buffer("scale", s)
        else:
            self.scale = s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


@register_lowering(ir.Scale)
def _lower_scale(n: ir.Scale, in_shapes: list[Shape]) -> nn.Module:
    return _Scale(n.scale, len(in_shapes[0]))


@register_lowering(ir.ReLU)
def _lower_relu(n: ir.ReLU, _: list[Shape]) -> nn.Module:
    return nn.ReLU()


@register_lowering(ir.Input, ir.Output)
def _lower_io(n: ir.IRNode, _: list[Shape]) -> nn.Module:
    return nn.Identity()


# ---------------------------------------------------------------- neurons
_NEURON_PARAMS = ("v_threshold", "v_reset", "tau", "inv_tau", "alpha", "beta", "i_decay", "v_decay", "threshold")


class NeuronModule(nn.Module):
    """Executor neuron over ``[T, B, ...]`` (zero initial state unless ``state=`` is given).

    Scalar parameters stay python floats and array parameters become buffers, so
    the arithmetic matches :mod:`spikeport.models.neurons` exactly.
    """

    def __init__(self, node: ir.IRNode, in_shape: Shape) -> None:
        super().__init__()
        self.kind = type(node).__name__
        self.stateful = bool(node.stateful)
        self.surrogate = get_surrogate("sigmoid")
        self.decay_input = bool(getattr(node, "decay_input", True))
        self._floats: dict[str, Any] = {}
        for p in _NEURON_PARAMS:
            if not hasattr(node, p):
                continue
            v = _buffer(getattr(node, p), len(in_shape))
            if isinstance(v, torch.Tensor):
                self.register_buffer(p, v)
            else:
                self._floats[p] = v
        if isinstance(node, ir.LIF):  # 1/tau exactly as spikeport.models.neurons.LIF computes it
            tau = self._get("tau")
            if isinstance(tau, torch.Tensor):
                self.register_buffer("inv_tau", 1.0 / tau)
            else:
                self._floats["inv_tau"] = 1.0 / tau

    def _get(self, p: str) -> Any:
        return self._floats[p] if p in self._floats else getattr(self, p)

    def init_state(self, x_t: torch.Tensor) -> Any:
        if self.kind == "CubaLIF":
            return F.CubaState(torch.zeros_like(x_t), torch.zeros_like(x_t))
        return torch.zeros_like(x_t)

    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One timestep: ``(spikes, new_state)``."""
        g = self._get
        if self.kind == "Threshold":
            return F.fire(x, g("threshold"), self.surrogate), state
        vth, vr = g("v_threshold"), g("v_reset")
        if self.kind == "IF":
            h = F.if_charge(x, state)
        elif self.kind in ("LIF", "PLIF"):
            h = _lif_charge(x, state, g("inv_tau"), 0.0 if vr is None else vr, self.decay_input)
        elif self.kind == "DALIF":
            h = F.dalif_charge(x, state, g("alpha"), g("beta"))
        elif self.kind == "CubaLIF":
            i, h = F.cuba_charge(x, state, g("i_decay"), g("v_decay"))
            s = F.fire(h, vth, self.surrogate)
            return s, F.CubaState(i, _reset(h, s, vth, vr))
        else:  # pragma: no cover - guarded by the lowering table
            raise GraphError(f"no executor equation for neuron type {self.kind}")
        s = F.fire(h, vth, self.surrogate)
        return s, _reset(h, s, vth, vr)

    def forward(self, x: torch.Tensor, state: StateSlot | None = None) -> torch.Tensor:
        st = state.value if state is not None and state.value is not None else self.init_state(x[0])
        out = []
        for t in range(x.shape[0]):
            s, st = self.step(x[t], st)
            out.append(s)
        if state is not None:
            state.value = st
        return torch.stack(out)

    def extra_repr(self) -> str:
        ps = ", ".join(f"{k}={v}" for k, v in self._floats.items())
        return f"{self.kind}({ps})"


def _lif_charge(x: torch.Tensor, v: torch.Tensor, inv_tau: Any, v_leak: Any, decay_input: bool) -> torch.Tensor:
    if isinstance(v_leak, float):
        return F.lif_charge(x, v, inv_tau, v_leak, decay_input)
    if decay_input:
        return v + (x - (v - v_leak)) * inv_tau
    return v - (v - v_leak) * inv_tau + x


def _reset(h: torch.Tensor, s: torch.Tensor, vth: Any, vr: Any) -> torch.Tensor:
    if vr is None or isinstance(vr, float):
        return F.reset(h, s, vth, vr, False)
    return h * (1.0 - s) + vr * s


@register_lowering(ir.IF, ir.LIF, ir.PLIF, ir.DALIF, ir.CubaLIF, ir.Threshold)
def _lower_neuron(n: ir.IRNode, in_shapes: list[Shape]) -> nn.Module:
    return NeuronModule(n, in_shapes[0])


# ---------------------------------------------------------------- seed modules
class _TemporalShift(nn.Module):
    """TS-SNN shift on ``[T, B, C, ...]`` (same ops as ``spikeport.models.seeds.TemporalShift``)."""

    def __init__(self, n: ir.TemporalShift) -> None:
        super().__init__()
        self.nf, self.np = n.n_future, n.n_past
        a = n.alpha
        self.register_buffer("alpha", torch.tensor(np.asarray(a), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nf, npast = self.nf, self.np
        fut, past, rest = x[:, :, :nf], x[:, :, nf:nf + npast], x[:, :, nf + npast:]
        fut = torch.cat([fut[1:], torch.zeros_like(fut[:1])], dim=0)
        past = torch.cat([torch.zeros_like(past[:1]), past[:-1]], dim=0)
        return self.alpha * torch.cat([fut, past, rest], dim=2) + x


@register_lowering(ir.TemporalShift)
def _lower_tshift(n: ir.TemporalShift, _: list[Shape]) -> nn.Module:
    return _TemporalShift(n)


def _load(m: nn.Module, state: dict[str, Any], node: ir.IRNode) -> nn.Module:
    sd = {k: torch.tensor(np.asarray(v)) for k, v in state.items() if v is not None}
    try:
        m.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise GraphError(f"node '{node.name}' ({node.op}): parameters do not fit the module "
                         f"({str(e).splitlines()[0]})") from e
    return m


def _seeds() -> Any:
    from spikeport.models import seeds

    return seeds


@register_lowering(ir.TemporalPositionEncoding)
def _lower_tpe(n: ir.TemporalPositionEncoding, _: list[Shape]) -> nn.Module:
    m = _seeds().TemporalPositionEncoding(n.timesteps, int(n.pos.shape[1]))
    return _load(m, {"pos": n.pos}, n)


@register_lowering(ir.GCAttention)
def _lower_gc(n: ir.GCAttention, _: list[Shape]) -> nn.Module:
    m = _seeds().GCBlock(n.channels, n.reduction)
    return _load(m, {"context.weight": n.context_weight, "context.bias": n.context_bias,
                     "transform.0.weight": n.t1_weight, "transform.0.bias": n.t1_bias,
                     "transform.1.weight": n.ln_weight, "transform.1.bias": n.ln_bias,
                     "transform.3.weight": n.t2_weight, "transform.3.bias": n.t2_bias}, n)


@register_lowering(ir.StepAttention)
def _lower_sa(n: ir.StepAttention, _: list[Shape]) -> nn.Module:
    m = _seeds().StepAttention(n.timesteps, n.reduction)
    return _load(m, {"fc.0.weight": n.w1, "fc.0.bias": n.b1, "fc.2.weight": n.w2, "fc.2.bias": n.b2}, n)


@register_lowering(ir.FSTA)
def _lower_fsta(n: ir.FSTA, _: list[Shape]) -> nn.Module:
    m = _seeds().FSTA(n.channels, n.timesteps, n.freq_num, n.reduction)
    state: dict[str, Any] = {"alpha": n.alpha, "beta": n.beta, "theta_t": n.theta_t, "theta_s": n.theta_s,
                             "fc_t.weight": n.fc_t}
    if n.attn_w2 is None:
        state["freq_attention.weight"] = n.attn_w1
    else:
        state["freq_attention.0.weight"], state["freq_attention.2.weight"] = n.attn_w1, n.attn_w2
    return _load(m, state, n)
