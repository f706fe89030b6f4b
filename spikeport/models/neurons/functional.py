r"""Pure neuron step functions: ``charge -> fire -> reset``.

Every neuron advances one timestep with a pure function
``step(x_t, state, params) -> (spikes_t, new_state)``; nothing is stored between
calls. Modules in :mod:`spikeport.models.neurons.modules` are thin loops over
these functions. Discrete-time equations (``x[t]`` is the input current, ``H`` the
charged membrane before firing, ``V`` the membrane after reset,
``S[t] = \Theta(H[t] - V_{th})``):

* IF:       :math:`H[t] = V[t-1] + x[t]`
* LIF (``decay_input=True``):  :math:`H[t] = V[t-1] + (x[t] - (V[t-1] - V_{leak}))/\tau`
* LIF (``decay_input=False``): :math:`H[t] = V[t-1] - (V[t-1] - V_{leak})/\tau + x[t]`
  with :math:`V_{leak} = V_{reset}` for hard reset and 0 for soft reset.
* PLIF: LIF with :math:`1/\tau = \mathrm{sigmoid}(w)`, ``w`` learnable.
* DA-LIF: :math:`H[t] = \beta V[t-1] + \alpha x[t]` (spatial decay :math:`\alpha`, temporal decay :math:`\beta`).
* CUBA-LIF: :math:`I[t] = (1-d_i) I[t-1] + x[t]`, :math:`H[t] = (1-d_v) V[t-1] + I[t]`.

Reset: hard :math:`V[t] = H[t](1-S[t]) + V_{reset} S[t]`; soft (``v_reset=None``)
:math:`V[t] = H[t] - V_{th} S[t]`. With ``detach_reset`` the spike used in the
reset carries no gradient.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from spikeport.models.neurons.surrogate import Surrogate

__all__ = [
    "Scalar",
    "if_charge",
    "lif_charge",
    "dalif_charge",
    "cuba_charge",
    "fire",
    "reset",
    "if_step",
    "lif_step",
    "dalif_step",
    "cuba_lif_step",
    "CubaState",
]

Scalar = float | torch.Tensor


class CubaState(NamedTuple):
    """State of a current-based LIF: synaptic current ``i`` and membrane ``v``."""

    i: torch.Tensor
    v: torch.Tensor


# ---------------------------------------------------------------- charge
def if_charge(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """IF: :math:`H = V + x`."""
    return v + x


def lif_charge(x: torch.Tensor, v: torch.Tensor, inv_tau: Scalar, v_leak: float, decay_input: bool) -> torch.Tensor:
    """LIF charge with leak towards ``v_leak``; ``inv_tau`` is :math:`1/\\tau` (scalar or tensor)."""
    if decay_input:
        if v_leak == 0.0:
            return v + (x - v) * inv_tau
        return v + (x - (v - v_leak)) * inv_tau
    if v_leak == 0.0:
        return v - v * inv_tau + x
    return v - (v - v_leak) * inv_tau + x


def dalif_charge(x: torch.Tensor, v: torch.Tensor, alpha: Scalar, beta: Scalar) -> torch.Tensor:
    """DA-LIF: :math:`H = \\beta V + \\alpha x`."""
    return beta * v + alpha * x


def cuba_charge(x: torch.Tensor, state: CubaState, i_decay: Scalar,
                v_decay: Scalar) -> tuple[torch.Tensor, torch.Tensor]:
    """CUBA-LIF: returns ``(I[t], H[t])``."""
    i = state.i * (1.0 - i_decay) + x
    return i, state.v * (1.0 - v_decay) + i


# ---------------------------------------------------------------- fire / reset
def fire(h: torch.Tensor, v_threshold: Scalar, surrogate: Surrogate) -> torch.Tensor:
    """Spikes :math:`\\Theta(H - V_{th})` with a surrogate gradient."""
    return surrogate(h - v_threshold)


def reset(h: torch.Tensor, s: torch.Tensor, v_threshold: Scalar, v_reset: float | None,
          detach_reset: bool) -> torch.Tensor:
    """Hard reset to ``v_reset`` or soft reset (subtract threshold) when ``v_reset is None``."""
    sr = s.detach() if detach_reset else s
    if v_reset is None:
        return h - sr * v_threshold
    if v_reset == 0.0:
        return h * (1.0 - sr)
    return h * (1.0 - sr) + v_reset * sr


# ---------------------------------------------------------------- steps
def if_step(x, v, *, v_threshold: Scalar, v_reset: float | None, surrogate: Surrogate, detach_reset: bool = False):
    """One IF step. Returns ``(spikes, v)``."""
    h = if_charge(x, v)
    s = fire(h, v_threshold, surrogate)
    return s, reset(h, s, v_threshold, v_reset, detach_reset)


def lif_step(x, v, *, inv_tau: Scalar, v_threshold: Scalar, v_reset: float | None, decay_input: bool,
             surrogate: Surrogate, detach_reset: bool = False):
    """One LIF/PLIF step. Returns ``(spikes, v)``."""
    h = lif_charge(x, v, inv_tau, 0.0 if v_reset is None else v_reset, decay_input)
    s = fire(h, v_threshold, surrogate)
    return s, reset(h, s, v_threshold, v_reset, detach_reset)


def dalif_step(x, v, *, alpha: Scalar, beta: Scalar, v_threshold: Scalar, v_reset: float | None,
               surrogate: Surrogate, detach_reset: bool = False):
    """One DA-LIF step. Returns ``(spikes, v)``."""
    h = dalif_charge(x, v, alpha, beta)
    s = fire(h, v_threshold, surrogate)
    return s, reset(h, s, v_threshold, v_reset, detach_reset)


def cuba_lif_step(x, state: CubaState, *, i_decay: Scalar, v_decay: Scalar, v_threshold: Scalar,
                  v_reset: float | None, surrogate: Surrogate, detach_reset: bool = False):
    """One CUBA-LIF step. Returns ``(spikes, CubaState)``."""
    i, h = cuba_charge(x, state, i_decay, v_decay)
    s = fire(h, v_threshold, surrogate)
    return s, CubaState(i, reset(h, s, v_threshold, v_reset, detach_reset))
