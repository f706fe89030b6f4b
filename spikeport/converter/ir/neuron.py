r"""Spiking neuron nodes in discrete time (one update per timestep, zero initial state).

Notation: :math:`x[t]` input current, :math:`H[t]` membrane after charging,
:math:`V[t]` membrane after reset, :math:`S[t] = \Theta(H[t] - V_{th})` with
:math:`\Theta(u) = 1[u \ge 0]`. Reset after firing:

* hard (``v_reset`` a number/array): :math:`V[t] = H[t](1 - S[t]) + V_{reset} S[t]`;
* soft (``v_reset=None``): :math:`V[t] = H[t] - V_{th} S[t]`.

Parameters are python floats (shared) or numpy arrays broadcast leading-aligned
(``(C,)`` = per channel, full shape = per element); see
:mod:`spikeport.converter.ir.node`. The equations match
:mod:`spikeport.models.neurons.functional` exactly, which the reference executor
(:mod:`spikeport.converter.lower`) calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spikeport.converter.ir.node import IRNode, Param, Shape, param_field

__all__ = ["NEURON_TYPES", "IF", "LIF", "PLIF", "DALIF", "CubaLIF", "Threshold", "NeuronNode"]


def _positive(node: IRNode, field: str, strict: bool = True) -> None:
    v = getattr(node, field)
    arr = np.asarray(v)
    if np.any(arr <= 0) if strict else np.any(arr < 0):
        got = v if arr.ndim == 0 else f"an array with minimum {arr.min()}"
        raise node._fail(field, f"must be {'>' if strict else '>='} 0, got {got}")


def _in_range(node: IRNode, field: str, lo: float, hi: float) -> None:
    arr = np.asarray(getattr(node, field))
    if np.any(arr < lo) or np.any(arr > hi):
        raise node._fail(field, f"must lie in [{lo}, {hi}], got {getattr(node, field)!r}")


@dataclass(frozen=True, eq=False, repr=False)
class NeuronNode(IRNode):
    """Base of the stateful spiking neurons (not instantiable: no equation)."""

    family = "neuron"
    stateful = True

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        s = in_shapes[0]
        names = list(self.arrays())
        self._require_param_shapes(s, 0, *names)
        return s


class _ResetNeuron(NeuronNode):
    """Base of spikeport's own neurons: a threshold ``v_threshold`` and a hard (``v_reset``) or soft (``None``)
    reset. No fields of its own: each neuron declares them."""

    v_threshold: Param
    v_reset: Param | None

    @property
    def soft_reset(self) -> bool:
        return self.v_reset is None

    def _check_common(self) -> None:
        _positive(self, "v_threshold")
        start = getattr(self, "start_at_reset", False)
        if not isinstance(start, (bool, np.bool_)):
            raise self._fail("start_at_reset", f"must be a bool, got {start!r}")
        if hasattr(self, "start_at_reset"):
            object.__setattr__(self, "start_at_reset", bool(start))


@dataclass(frozen=True, eq=False, repr=False)
class IF(_ResetNeuron):
    r"""Integrate-and-fire: :math:`H[t] = V[t-1] + x[t]`.

    Args:
        v_threshold: :math:`V_{th}` (> 0).
        v_reset: hard-reset value, ``None`` for soft reset.
        start_at_reset: (keyword) the membrane starts at ``v_reset`` instead of 0 (SpikingJelly).
    """

    v_threshold: Param = param_field(1.0)
    v_reset: Param | None = param_field(0.0, optional=True)
    start_at_reset: bool = field(default=False, kw_only=True)

    def _check(self) -> None:
        self._check_common()


@dataclass(frozen=True, eq=False, repr=False)
class LIF(_ResetNeuron):
    r"""Leaky integrate-and-fire with a fixed time constant :math:`\tau` in timesteps.

    * ``decay_input=True``:  :math:`H[t] = V[t-1] + \frac{1}{\tau}\big(x[t] - (V[t-1] - V_{leak})\big)`
    * ``decay_input=False``: :math:`H[t] = V[t-1] - \frac{1}{\tau}(V[t-1] - V_{leak}) + x[t]`

    with :math:`V_{leak} = V_{reset}` (hard reset) or 0 (soft reset).

    ``tau_arithmetic`` says how the charge scales by :math:`1/\tau`: ``"reciprocal"`` multiplies by
    ``1.0 / tau`` (spikeport's LIF, the default), ``"divide"`` divides by ``tau``
    (SpikingJelly's ``LIFNode``: ``v + (x - (v - v_reset)) / tau``). The two round differently in
    float32, so each model is exact only with its own.

    Args:
        tau: :math:`\tau` (> 0).
        decay_input: whether the input is scaled by :math:`1/\tau`.
        v_threshold: :math:`V_{th}` (> 0).
        v_reset: hard-reset value, ``None`` for soft reset.
        tau_arithmetic: (keyword) ``"reciprocal"`` or ``"divide"``, see above.
        start_at_reset: (keyword) the membrane starts at ``v_reset`` instead of 0 (SpikingJelly).
    """

    tau: Param = param_field(2.0)
    decay_input: bool = True
    v_threshold: Param = param_field(1.0)
    v_reset: Param | None = param_field(0.0, optional=True)
    tau_arithmetic: str = field(default="reciprocal", kw_only=True)
    start_at_reset: bool = field(default=False, kw_only=True)

    def _check(self) -> None:
        self._check_common()
        _positive(self, "tau")
        if not isinstance(self.decay_input, (bool, np.bool_)):
            raise self._fail("decay_input", f"must be a bool, got {self.decay_input!r}")
        object.__setattr__(self, "decay_input", bool(self.decay_input))
        if self.tau_arithmetic not in ("reciprocal", "divide"):
            raise self._fail("tau_arithmetic", f"must be 'reciprocal' or 'divide', got {self.tau_arithmetic!r}")


@dataclass(frozen=True, eq=False, repr=False)
class PLIF(_ResetNeuron):
    r"""Parametric LIF: the LIF equations with a learned :math:`1/\tau = \mathrm{sigmoid}(w)`.

    Args:
        inv_tau: :math:`1/\tau` in (0, 1] (float32 array of shape ``()`` from a trained
            :class:`spikeport.models.neurons.PLIF`, or per channel/element).
        decay_input, v_threshold, v_reset, start_at_reset: as :class:`LIF`.
    """

    inv_tau: Param = param_field()
    decay_input: bool = True
    v_threshold: Param = param_field(1.0)
    v_reset: Param | None = param_field(0.0, optional=True)
    start_at_reset: bool = field(default=False, kw_only=True)

    param_fields = ("inv_tau",)

    def _check(self) -> None:
        self._check_common()
        _positive(self, "inv_tau")
        _in_range(self, "inv_tau", 0.0, 1.0)
        object.__setattr__(self, "decay_input", bool(self.decay_input))


@dataclass(frozen=True, eq=False, repr=False)
class DALIF(_ResetNeuron):
    r"""Dual-adaptive LIF (DA-LIF): :math:`H[t] = \beta V[t-1] + \alpha x[t]`.

    :math:`\alpha` is the spatial (input) decay and :math:`\beta` the temporal
    (membrane) decay; a trained :class:`spikeport.models.neurons.DALIF` stores
    :math:`\alpha = \tanh(\tau_a)`, :math:`\beta = \tanh(\tau_b)` here (float32,
    shape ``()`` per layer or ``(C,)`` per channel).

    Args:
        alpha: input decay :math:`\alpha`.
        beta: membrane decay :math:`\beta`.
        v_threshold: :math:`V_{th}` (> 0).
        v_reset: hard-reset value, ``None`` for soft reset.
    """

    alpha: Param = param_field()
    beta: Param = param_field()
    v_threshold: Param = param_field(1.0)
    v_reset: Param | None = param_field(0.0, optional=True)

    param_fields = ("alpha", "beta")

    def _check(self) -> None:
        self._check_common()


@dataclass(frozen=True, eq=False, repr=False)
class CubaLIF(_ResetNeuron):
    r"""Current-based LIF (Loihi CUBA):

    .. math::
        I[t] = (1 - d_i) I[t-1] + x[t], \qquad H[t] = (1 - d_v) V[t-1] + I[t]

    Args:
        i_decay: current decay :math:`d_i` in [0, 1].
        v_decay: voltage decay :math:`d_v` in [0, 1].
        v_threshold: :math:`V_{th}` (> 0).
        v_reset: hard-reset value, ``None`` for soft reset.
    """

    i_decay: Param = param_field(0.5)
    v_decay: Param = param_field(0.5)
    v_threshold: Param = param_field(1.0)
    v_reset: Param | None = param_field(0.0, optional=True)

    def _check(self) -> None:
        self._check_common()
        _in_range(self, "i_decay", 0.0, 1.0)
        _in_range(self, "v_decay", 0.0, 1.0)


@dataclass(frozen=True, eq=False, repr=False)
class Threshold(IRNode):
    r"""Stateless spike function :math:`S[t] = \Theta(x[t] - \theta)` (NIR ``Threshold``).

    Args:
        threshold: :math:`\theta`.
    """

    threshold: Param = param_field(1.0)

    family = "neuron"

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        self._require_param_shapes(in_shapes[0], 0, *self.arrays())
        return in_shapes[0]


NEURON_TYPES: tuple[type[IRNode], ...] = (IF, LIF, PLIF, DALIF, CubaLIF, Threshold)
"""Node types that emit spikes."""
