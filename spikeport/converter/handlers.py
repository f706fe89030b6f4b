"""Built-in tracer handlers: torch layers, spikeport multi-step layers, neurons and seed modules.

Each handler maps one module to IR node(s) with the module's *per-timestep*
semantics; the multi-step layers of :mod:`spikeport.models.layers` subclass the
torch layers, so one handler serves both. A handler refuses (GraphError) a
subclass that overrides ``forward``/``step`` with code it does not know, so a
custom layer is never silently converted with the wrong equation: register
your own handler for it instead.

Add handlers for new module types with :func:`builtin` (inside spikeport) or
:func:`spikeport.converter.register_handler` (user code, takes precedence).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from spikeport.converter import ir
from spikeport.converter.tracer import HANDLERS, Handler, convert_module
from spikeport.errors import GraphError
from spikeport.models import layers as L
from spikeport.models.neurons import modules as N

__all__ = ["builtin", "to_numpy"]


def builtin(*classes: type, bypass: bool = False) -> Callable[[Handler], Handler]:
    """Register the decorated function as the built-in handler of ``classes``."""

    def deco(fn: Handler) -> Handler:
        for c in classes:
            HANDLERS[c] = None if bypass else fn
        return fn

    return deco


def to_numpy(t: torch.Tensor | None) -> np.ndarray | None:
    """Detached CPU numpy copy of a tensor (``None`` passes through)."""
    return None if t is None else t.detach().cpu().numpy().copy()


def _require_method(m: nn.Module, name: str, method: str, allowed: tuple[type, ...]) -> None:
    """Refuse subclasses that override ``method`` outside the classes whose semantics we know."""
    owner = next(k for k in type(m).__mro__ if method in vars(k))
    if owner not in allowed:
        raise GraphError(f"module '{name}' ({type(m).__module__}.{type(m).__qualname__}) overrides {method}() of "
                         f"{allowed[0].__name__}; its equation is unknown to the built-in handler. Register a handler "
                         f"for {type(m).__name__} with spikeport.converter.register_handler")


def _zero_padding(m: nn.Module, name: str) -> None:
    if getattr(m, "padding_mode", "zeros") != "zeros":
        raise GraphError(f"module '{name}': padding_mode='{m.padding_mode}' is not supported (only zero padding)")


def _padding(m: nn.Module, name: str, n: int) -> tuple[int, ...]:
    p = m.padding
    if p == "valid":
        return (0,) * n
    if p == "same":
        k, d = m.kernel_size, m.dilation
        total = [d[i] * (k[i] - 1) for i in range(n)]
        if any(t % 2 for t in total):
            raise GraphError(f"module '{name}': padding='same' with an even effective kernel is asymmetric; "
                             "use explicit padding")
        return tuple(t // 2 for t in total)
    return tuple(int(v) for v in p)


# ---------------------------------------------------------------- synapses
@builtin(nn.Linear)
def _linear(m: nn.Linear, name: str) -> ir.Linear:
    _require_method(m, name, "forward", (nn.Linear, L.Linear))
    return ir.Linear(name, weight=to_numpy(m.weight), bias=to_numpy(m.bias))


@builtin(nn.Conv1d)
def _conv1d(m: nn.Conv1d, name: str) -> ir.Conv1d:
    _require_method(m, name, "forward", (nn.Conv1d, L.Conv1d))
    _zero_padding(m, name)
    return ir.Conv1d(name, weight=to_numpy(m.weight), bias=to_numpy(m.bias), stride=m.stride,
                     padding=_padding(m, name, 1), dilation=m.dilation, groups=m.groups)


@builtin(nn.Conv2d)
def _conv2d(m: nn.Conv2d, name: str) -> ir.Conv2d:
    _require_method(m, name, "forward", (nn.Conv2d, L.Conv2d))
    _zero_padding(m, name)
    return ir.Conv2d(name, weight=to_numpy(m.weight), bias=to_numpy(m.bias), stride=m.stride,
                     padding=_padding(m, name, 2), dilation=m.dilation, groups=m.groups)


@builtin(nn.ConvTranspose2d)
def _convt2d(m: nn.ConvTranspose2d, name: str) -> ir.ConvTranspose2d:
    _require_method(m, name, "forward", (nn.ConvTranspose2d, L.ConvTranspose2d))
    _zero_padding(m, name)
    return ir.ConvTranspose2d(name, weight=to_numpy(m.weight), bias=to_numpy(m.bias), stride=m.stride,
                              padding=m.padding, output_padding=m.output_padding, dilation=m.dilation,
                              groups=m.groups)


# ---------------------------------------------------------------- norm
@builtin(nn.BatchNorm1d, nn.BatchNorm2d)
def _batchnorm(m: nn.modules.batchnorm._BatchNorm, name: str) -> ir.BatchNorm:
    _require_method(m, name, "forward", (nn.modules.batchnorm._BatchNorm, L.BatchNorm1d, L.BatchNorm2d))
    if m.running_mean is None or m.running_var is None:
        raise GraphError(f"module '{name}': BatchNorm without running statistics (track_running_stats=False) "
                         "normalises with batch statistics and has no fixed inference form")
    return ir.BatchNorm(name, mean=to_numpy(m.running_mean), var=to_numpy(m.running_var),
                        weight=to_numpy(m.weight), bias=to_numpy(m.bias), eps=float(m.eps))


# ---------------------------------------------------------------- pooling / shape
def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


@builtin(nn.MaxPool2d)
def _maxpool(m: nn.MaxPool2d, name: str) -> ir.MaxPool:
    _require_method(m, name, "forward", (nn.MaxPool2d, L.MaxPool2d))
    if m.return_indices:
        raise GraphError(f"module '{name}': MaxPool2d(return_indices=True) is not supported")
    k = _pair(m.kernel_size)
    return ir.MaxPool(name, kernel_size=k, stride=_pair(m.stride) if m.stride else k, padding=_pair(m.padding),
                      dilation=_pair(m.dilation), ceil_mode=bool(m.ceil_mode))


@builtin(nn.AvgPool2d)
def _avgpool(m: nn.AvgPool2d, name: str) -> ir.AvgPool:
    _require_method(m, name, "forward", (nn.AvgPool2d, L.AvgPool2d))
    k = _pair(m.kernel_size)
    return ir.AvgPool(name, kernel_size=k, stride=_pair(m.stride) if m.stride else k, padding=_pair(m.padding),
                      ceil_mode=bool(m.ceil_mode), count_include_pad=bool(m.count_include_pad),
                      divisor_override=m.divisor_override)


@builtin(nn.AdaptiveAvgPool2d)
def _adaptive_avgpool(m: nn.AdaptiveAvgPool2d, name: str) -> ir.AdaptiveAvgPool:
    _require_method(m, name, "forward", (nn.AdaptiveAvgPool2d, L.AdaptiveAvgPool2d))
    size = m.output_size
    if size is None or (not isinstance(size, int) and None in tuple(size)):
        raise GraphError(f"module '{name}': AdaptiveAvgPool2d with a None output size is not supported")
    return ir.AdaptiveAvgPool(name, output_size=_pair(size))


@builtin(nn.Flatten)
def _flatten(m: nn.Flatten, name: str) -> ir.Flatten:
    _require_method(m, name, "forward", (nn.Flatten, L.Flatten))

    def per_step(d: int) -> int:
        if 0 <= d < 2:
            raise GraphError(f"module '{name}': Flatten(start_dim={m.start_dim}, end_dim={m.end_dim}) merges the time/"
                             "batch axes of [T, B, ...]; use spikeport.models.layers.Flatten (flattens dims >= 2)")
        return d - 2 if d >= 2 else d

    return ir.Flatten(name, start_dim=per_step(m.start_dim), end_dim=per_step(m.end_dim))


@builtin(nn.ReLU)
def _relu(m: nn.ReLU, name: str) -> ir.ReLU:
    _require_method(m, name, "forward", (nn.ReLU,))
    return ir.ReLU(name)


_BYPASS = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
builtin(*_BYPASS, bypass=True)(lambda m, n: None)  # identities at inference


# ---------------------------------------------------------------- neurons
def _neuron_common(m: N.SpikingNeuron, name: str, cls: type) -> dict[str, Any]:
    _require_method(m, name, "step", cls.__mro__)  # cls or the spikeport base it inherits step() from
    return {"v_threshold": float(m.v_threshold), "v_reset": None if m.v_reset is None else float(m.v_reset)}


@builtin(N.IF)
def _if(m: N.IF, name: str) -> ir.IF:
    return ir.IF(name, **_neuron_common(m, name, N.IF))


@builtin(N.LIF)
def _lif(m: N.LIF, name: str) -> ir.LIF:
    return ir.LIF(name, tau=float(m.tau), decay_input=m.decay_input, **_neuron_common(m, name, N.LIF))


@builtin(N.PLIF)
def _plif(m: N.PLIF, name: str) -> ir.PLIF:
    with torch.no_grad():
        inv_tau = to_numpy(m.inv_tau)
    return ir.PLIF(name, inv_tau=inv_tau, decay_input=m.decay_input, **_neuron_common(m, name, N.PLIF))


@builtin(N.DALIF)
def _dalif(m: N.DALIF, name: str) -> ir.DALIF:
    with torch.no_grad():
        alpha, beta = to_numpy(m.alpha), to_numpy(m.beta)
    return ir.DALIF(name, alpha=alpha, beta=beta, **_neuron_common(m, name, N.DALIF))


@builtin(N.CubaLIF)
def _cuba(m: N.CubaLIF, name: str) -> ir.CubaLIF:
    return ir.CubaLIF(name, i_decay=float(m.i_decay), v_decay=float(m.v_decay), **_neuron_common(m, name, N.CubaLIF))


# ---------------------------------------------------------------- seed modules
def _register_seed_handlers() -> None:
    try:
        from spikeport.models import seeds as S
    except ModuleNotFoundError as e:  # seeds not present in this build
        if e.name and e.name.startswith("spikeport.models.seeds"):
            return
        raise

    @builtin(S.TemporalShift)
    def _tshift(m: Any, name: str) -> ir.TemporalShift:
        _require_method(m, name, "forward", (S.TemporalShift,))
        nf, npast = m.channel_counts()
        return ir.TemporalShift(name, channels=int(m.channels), n_future=int(nf), n_past=int(npast),
                                alpha=to_numpy(m.alpha))

    @builtin(S.TemporalPositionEncoding)
    def _tpe(m: Any, name: str) -> ir.TemporalPositionEncoding:
        _require_method(m, name, "forward", (S.TemporalPositionEncoding,))
        return ir.TemporalPositionEncoding(name, pos=to_numpy(m.pos))

    @builtin(S.GCBlock)
    def _gc(m: Any, name: str) -> ir.GCAttention:
        _require_method(m, name, "forward", (S.GCBlock,))
        c1, ln, c2 = m.transform[0], m.transform[1], m.transform[3]
        return ir.GCAttention(name, channels=int(m.channels), reduction=int(m.reduction),
                              context_weight=to_numpy(m.context.weight), context_bias=to_numpy(m.context.bias),
                              t1_weight=to_numpy(c1.weight), t1_bias=to_numpy(c1.bias),
                              ln_weight=to_numpy(ln.weight), ln_bias=to_numpy(ln.bias), ln_eps=float(ln.eps),
                              t2_weight=to_numpy(c2.weight), t2_bias=to_numpy(c2.bias))

    @builtin(S.StepAttention)
    def _sa(m: Any, name: str) -> ir.StepAttention:
        _require_method(m, name, "forward", (S.StepAttention,))
        a, b = m.fc[0], m.fc[2]
        t = int(m.timesteps)
        return ir.StepAttention(name, timesteps=t, reduction=max(1, t // int(a.out_channels)),
                                w1=to_numpy(a.weight), b1=to_numpy(a.bias), w2=to_numpy(b.weight), b2=to_numpy(b.bias))

    builtin(S.TimeStepRandomDropout, bypass=True)(lambda m, n: None)  # identity at inference

    @builtin(S.STAABlock)
    def _staa(m: Any, name: str) -> list[ir.IRNode]:
        # inference: TSRD is inactive, so the block is PE -> GC -> neuron -> SA (see seeds/staa.py)
        _require_method(m, name, "forward", (S.STAABlock,))
        out: list[ir.IRNode] = []
        for child in ("pe", "gc", "neuron", "sa"):
            out += convert_module(getattr(m, child), f"{name}.{child}")
        return out

    @builtin(S.FSTA)
    def _fsta(m: Any, name: str) -> ir.FSTA:
        _require_method(m, name, "forward", (S.FSTA,))
        fa = m.freq_attention
        w1, w2 = (fa.weight, None) if isinstance(fa, nn.Conv2d) else (fa[0].weight, fa[2].weight)
        return ir.FSTA(name, channels=int(m.channels), timesteps=int(m.timesteps), freq_num=int(m.freq_num),
                       reduction=int(m.reduction), alpha=to_numpy(m.alpha), beta=to_numpy(m.beta),
                       theta_t=to_numpy(m.theta_t), theta_s=to_numpy(m.theta_s), fc_t=to_numpy(m.fc_t.weight),
                       attn_w1=to_numpy(w1), attn_w2=to_numpy(w2))


_register_seed_handlers()
