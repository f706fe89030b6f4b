"""Thin multi-step neuron modules over the pure step functions.

All modules take ``x`` of shape ``[T, B, ...]`` and return spikes of the same
shape. Every ``forward`` starts from zero state, so there is no hidden state a
caller must reset. For streaming use (ONNX single-step export, Loihi), each
module exposes ``init_state(x_t)`` and ``step(x_t, state) -> (spikes, state)``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from spikeport.errors import ConfigError
from spikeport.models.neurons import functional as F
from spikeport.models.neurons import fused
from spikeport.models.neurons.surrogate import Surrogate, get_surrogate

__all__ = ["SpikingNeuron", "IF", "LIF", "PLIF", "DALIF", "CubaLIF"]


def _check_positive(owner: str, name: str, value: float, strict: bool = True) -> float:
    ok = value > 0 if strict else value >= 0
    if not ok or not math.isfinite(value):
        raise ConfigError(f"{owner}: {name} must be {'>' if strict else '>='} 0 and finite, got {value}")
    return float(value)


class SpikingNeuron(nn.Module):
    """Base class: threshold, reset mode, surrogate; loops ``step`` over time.

    Args:
        v_threshold: firing threshold :math:`V_{th}` (> 0).
        v_reset: hard-reset value, or ``None`` for soft reset (subtract threshold).
        surrogate: surrogate gradient name (``sigmoid``, ``atan``, ``triangle``, ``rectangle``).
        alpha: surrogate sharpness (``None``: that surrogate's default).
        detach_reset: stop the gradient through the reset path.
    """

    def __init__(self, v_threshold: float = 1.0, v_reset: float | None = 0.0, surrogate: str | Surrogate = "sigmoid",
                 alpha: float | None = None, detach_reset: bool = False) -> None:
        super().__init__()
        name = type(self).__name__
        self.v_threshold = _check_positive(name, "v_threshold", v_threshold)
        self.v_reset = None if v_reset is None else float(v_reset)
        sg = get_surrogate(surrogate)
        self.surrogate = sg if alpha is None else Surrogate(sg.name, alpha)
        self.detach_reset = bool(detach_reset)

    # -- streaming API
    def init_state(self, x_t: torch.Tensor) -> Any:
        """Zero state matching one timestep of input."""
        return torch.zeros_like(x_t)

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- multi-step API
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2:
            raise ConfigError(f"{type(self).__name__}: expected input [T, B, ...], got shape {tuple(x.shape)}")
        y = self._fused_forward(x)
        if y is not None:
            return y
        state = self.init_state(x[0])
        out = []
        for t in range(x.shape[0]):
            s, state = self.step(x[t], state)
            out.append(s)
        return torch.stack(out)

    def _fused_forward(self, x: torch.Tensor) -> torch.Tensor | None:
        """Whole-sequence fused forward, or ``None`` to use the ``step`` loop (default)."""
        return None

    def extra_repr(self) -> str:
        reset = "soft" if self.v_reset is None else f"hard({self.v_reset})"
        backend = getattr(self, "backend", "auto")
        return (f"v_threshold={self.v_threshold}, reset={reset}, surrogate={self.surrogate.name}"
                + ("" if backend == "auto" else f", backend={backend}"))


class IF(SpikingNeuron):
    """Integrate-and-fire: :math:`H[t] = V[t-1] + x[t]`."""

    def step(self, x_t, state):
        return F.if_step(x_t, state, v_threshold=self.v_threshold, v_reset=self.v_reset,
                         surrogate=self.surrogate, detach_reset=self.detach_reset)


class _LeakyNeuron(SpikingNeuron):
    """Shared step and fused path of LIF and PLIF (subclasses define ``inv_tau``, ``decay_input``, ``backend``)."""

    if TYPE_CHECKING:  # declared for the type checker only: nn.Module attributes resolve to Tensor | Module
        decay_input: bool
        backend: str

        @property
        def inv_tau(self) -> fused.Param: ...

    def step(self, x_t, state):
        return F.lif_step(x_t, state, inv_tau=self.inv_tau, v_threshold=self.v_threshold, v_reset=self.v_reset,
                          decay_input=self.decay_input, surrogate=self.surrogate, detach_reset=self.detach_reset)

    def _fused_forward(self, x):
        inv_tau = self.inv_tau
        if not fused.use_fused(type(self).__name__, self.backend, x, inv_tau):
            return None
        return fused.lif_multistep(x, inv_tau, v_threshold=self.v_threshold, v_reset=self.v_reset,
                                   decay_input=self.decay_input, surrogate=self.surrogate,
                                   detach_reset=self.detach_reset)


class LIF(_LeakyNeuron):
    """Leaky integrate-and-fire with fixed time constant ``tau`` (> 1 for a leak below 1).

    ``decay_input=True``: :math:`H = V + (x - (V - V_{leak}))/\\tau`;
    ``decay_input=False``: :math:`H = V - (V - V_{leak})/\\tau + x`.
    ``backend``: ``auto`` (the fused multi-step kernel of :mod:`.fused` when it supports the
    call, else the ``step`` loop), ``eager`` (always the loop) or ``fused`` (error if unsupported).
    """

    def __init__(self, tau: float = 2.0, decay_input: bool = True, backend: str = "auto", **kw: Any) -> None:
        super().__init__(**kw)
        self.tau = _check_positive("LIF", "tau", tau)
        if self.tau < 1.0:
            raise ConfigError(f"LIF: tau must be >= 1 (1/tau is the leak per step), got {tau}")
        self.decay_input = bool(decay_input)
        self.backend = fused.check_backend("LIF", backend)

    @property
    def inv_tau(self) -> float:
        return 1.0 / self.tau


    def extra_repr(self) -> str:
        return f"tau={self.tau}, decay_input={self.decay_input}, " + super().extra_repr()


class PLIF(_LeakyNeuron):
    """Parametric LIF: :math:`1/\\tau = \\mathrm{sigmoid}(w)` with learnable scalar ``w`` (``backend``: see LIF)."""

    def __init__(self, init_tau: float = 2.0, decay_input: bool = True, backend: str = "auto", **kw: Any) -> None:
        super().__init__(**kw)
        if not init_tau > 1.0:
            raise ConfigError(f"PLIF: init_tau must be > 1, got {init_tau}")
        self.decay_input = bool(decay_input)
        self.backend = fused.check_backend("PLIF", backend)
        self.w = nn.Parameter(torch.tensor(-math.log(init_tau - 1.0)))

    @property
    def inv_tau(self) -> torch.Tensor:
        return torch.sigmoid(self.w)

    @property
    def tau(self) -> float:
        return float(1.0 / self.inv_tau.detach())



class DALIF(SpikingNeuron):
    """Dual-adaptive LIF (DA-LIF, arXiv 2502.10422): :math:`H = \\beta V + \\alpha x`.

    :math:`\\alpha = \\tanh(\\tau_a)` is the learnable *spatial* decay on the input and
    :math:`\\beta = \\tanh(\\tau_b)` the learnable *temporal* decay of the membrane.
    The paper's ablation picks tanh. [RECON] parameter shape and init were not
    recoverable: ``per_channel=None`` gives two scalars per layer (the paper's
    "per-layer adaptation", default); ``per_channel=C`` gives one pair per channel
    (dim 1 of each ``[B, C, ...]`` step). [RECON] The initial decays ``beta = 0.25`` and
    ``alpha = 0.9`` (options ``init_beta``/``init_alpha``) are spikeport's own reconstruction
    choice, not recovered from the paper: ``beta = 0.25`` matches the fixed membrane decay of
    the group's other LIFs (e.g. FSTA-SNN's ``0.25 * mem + x``), ``alpha = 0.9`` is a near-unity
    input gain with no recovered source. The group's earlier code (``yukairong/snn``,
    ``LIFUpdate``) does *not* start there: it draws its two raw decay weights from N(0, 1), i.e.
    random initial decays ``tanh(w)``. Spike/reset: hard reset (the group's standard).
    ``backend``: see :class:`LIF`.
    """

    def __init__(self, init_alpha: float = 0.9, init_beta: float = 0.25, per_channel: int | None = None,
                 backend: str = "auto", **kw: Any) -> None:
        super().__init__(**kw)
        self.backend = fused.check_backend("DALIF", backend)
        for n, v in (("init_alpha", init_alpha), ("init_beta", init_beta)):
            if not 0.0 < v < 1.0:
                raise ConfigError(f"DALIF: {n} must be in (0, 1), got {v}")
        if per_channel is not None and per_channel <= 0:
            raise ConfigError(f"DALIF: per_channel must be a positive channel count or None, got {per_channel}")
        shape = () if per_channel is None else (int(per_channel),)
        self.per_channel = per_channel
        self.tau_a = nn.Parameter(torch.full(shape, math.atanh(init_alpha)))
        self.tau_b = nn.Parameter(torch.full(shape, math.atanh(init_beta)))

    def _bcast(self, p: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        if self.per_channel is None:
            return p
        if x_t.dim() < 2 or x_t.shape[1] != self.per_channel:
            raise ConfigError(f"DALIF: per_channel={self.per_channel} but step input has shape {tuple(x_t.shape)}")
        return p.view(-1, *([1] * (x_t.dim() - 2)))

    @property
    def alpha(self) -> torch.Tensor:
        return torch.tanh(self.tau_a)

    @property
    def beta(self) -> torch.Tensor:
        return torch.tanh(self.tau_b)

    def step(self, x_t, state):
        return F.dalif_step(x_t, state, alpha=self._bcast(self.alpha, x_t), beta=self._bcast(self.beta, x_t),
                            v_threshold=self.v_threshold, v_reset=self.v_reset, surrogate=self.surrogate,
                            detach_reset=self.detach_reset)

    def _fused_forward(self, x):
        if self.backend == "eager":
            return None
        alpha, beta = self._bcast(self.alpha, x[0]), self._bcast(self.beta, x[0])
        if not fused.use_fused("DALIF", self.backend, x, alpha, beta):
            return None
        return fused.dalif_multistep(x, alpha, beta, v_threshold=self.v_threshold, v_reset=self.v_reset,
                                     surrogate=self.surrogate, detach_reset=self.detach_reset)


class CubaLIF(SpikingNeuron):
    """Current-based LIF (Loihi's CUBA neuron, NIR's CubaLIF in discrete time).

    :math:`I[t] = (1-d_i) I[t-1] + x[t]`, :math:`H[t] = (1-d_v) V[t-1] + I[t]`;
    ``i_decay`` = :math:`d_i`, ``v_decay`` = :math:`d_v`, both in [0, 1].
    """

    def __init__(self, i_decay: float = 0.5, v_decay: float = 0.5, **kw: Any) -> None:
        super().__init__(**kw)
        for n, v in (("i_decay", i_decay), ("v_decay", v_decay)):
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"CubaLIF: {n} must be in [0, 1], got {v}")
        self.i_decay, self.v_decay = float(i_decay), float(v_decay)

    def init_state(self, x_t):
        return F.CubaState(torch.zeros_like(x_t), torch.zeros_like(x_t))

    def step(self, x_t, state):
        return F.cuba_lif_step(x_t, state, i_decay=self.i_decay, v_decay=self.v_decay, v_threshold=self.v_threshold,
                               v_reset=self.v_reset, surrogate=self.surrogate, detach_reset=self.detach_reset)
