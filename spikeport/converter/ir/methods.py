r"""Nodes of the 2025 paper methods (:mod:`spikeport.models.methods`), in inference form.

Unlike the other families these may mix timesteps: ``sequence = True`` nodes
need the whole ``[T, B, ...]`` sequence and cannot run step by step; ``causal``
says whether output step t depends only on input steps <= t (exporters to
step-by-step hardware refuse non-causal nodes). Parameters are kept as arrays
under the names below; the reference executor rebuilds the corresponding
:mod:`spikeport.models.methods` module from them, so the equations are exactly
those documented there.

* :class:`TemporalShift` (TS-SNN): :math:`Z[t]_c = X[t+1]_c` for the first
  ``n_future`` channels, :math:`X[t-1]_c` for the next ``n_past``, :math:`X[t]_c`
  otherwise (zeros outside ``[0, T)``); :math:`Y = \alpha Z + X`.
* :class:`TemporalPositionEncoding` (STAA PE): :math:`Y_t = X_t + P_t`.
* :class:`GCAttention` (STAA GC, per step): :math:`Y = X \cdot \sigma(W_2\,\mathrm{ReLU}(\mathrm{LN}(W_1 c)))`,
  :math:`c = \sum_{HW} \mathrm{softmax}_{HW}(W_k * X) X`.
* :class:`StepAttention` (STAA SA): :math:`Y_t = w_t X_t`,
  :math:`w = \sigma(W_b\,\mathrm{ReLU}(W_a\,\mathrm{mean}_{CHW} X))` (one weight per step and sample).
* :class:`FSTA` (FSTA-SNN): temporal and DCT-spatial attention on the input current.

TSRD (time-step random dropout) is the identity at inference and has no node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikeport.converter.ir.node import InputShapeError, IRNode, Param, Shape, array_field, param_field

__all__ = ["METHOD_TYPES", "TemporalShift", "TemporalPositionEncoding", "GCAttention", "StepAttention", "FSTA"]


def _need_channels(node: IRNode, s: Shape, channels: int, rank: int | None = 3) -> None:
    if not s or s[0] != channels or (rank is not None and len(s) != rank):
        exp = f"[{channels}, H, W]" if rank == 3 else f"[{channels}, ...]"
        raise InputShapeError(node, 0, exp, s, f"channels={channels}")


def _int(node: IRNode, field: str, minimum: int = 0) -> None:
    v = getattr(node, field)
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise node._fail(field, f"must be an int >= {minimum}, got {v!r}")
    object.__setattr__(node, field, int(v))


@dataclass(frozen=True, eq=False, repr=False)
class _MethodNode(IRNode):
    family = "method"
    sequence = True

    @property
    def causal(self) -> bool:
        return True


@dataclass(frozen=True, eq=False, repr=False)
class TemporalShift(_MethodNode):
    """TS-SNN temporal shift (eval split frozen into channel counts).

    Args:
        channels: C.
        n_future: leading channels that read step t+1.
        n_past: following channels that read step t-1.
        alpha: residual scale :math:`\\alpha` (float32 array of shape ``()``).
    """

    channels: int
    n_future: int
    n_past: int
    alpha: Param = param_field(0.3)

    param_fields = ("alpha",)

    def _check(self) -> None:
        _int(self, "channels", 1)
        _int(self, "n_future")
        _int(self, "n_past")
        if self.n_future + self.n_past > self.channels:
            raise self._fail("n_past", f"n_future + n_past = {self.n_future + self.n_past} exceeds channels "
                                       f"{self.channels}")

    @property
    def causal(self) -> bool:
        return self.n_future == 0

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        _need_channels(self, in_shapes[0], self.channels, rank=None)
        return in_shapes[0]


@dataclass(frozen=True, eq=False, repr=False)
class TemporalPositionEncoding(_MethodNode):
    """STAA learnable position encoding ``pos[T, C, 1, 1]`` added at each step (fixed T)."""

    pos: np.ndarray = array_field()

    param_fields = ("pos",)

    def _check(self) -> None:
        if self.pos.ndim != 4 or self.pos.shape[2:] != (1, 1):
            raise self._fail("pos", f"must have shape (T, C, 1, 1), got {list(self.pos.shape)}")

    @property
    def timesteps(self) -> int:
        return int(self.pos.shape[0])

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        _need_channels(self, in_shapes[0], int(self.pos.shape[1]))
        return in_shapes[0]


@dataclass(frozen=True, eq=False, repr=False)
class GCAttention(_MethodNode):
    """STAA global-context channel gate (per step; GCNet style).

    Args:
        channels: C; reduction: bottleneck ratio r (hidden = max(1, C // r)).
        context_weight, context_bias: 1x1 conv C -> 1 (``(1, C, 1, 1)``, ``(1,)``).
        t1_weight, t1_bias: 1x1 conv C -> hidden.
        ln_weight, ln_bias: LayerNorm affine ``(hidden, 1, 1)``; ln_eps: its epsilon.
        t2_weight, t2_bias: 1x1 conv hidden -> C.
    """

    channels: int
    reduction: int
    context_weight: np.ndarray = array_field()
    t1_weight: np.ndarray = array_field()
    t2_weight: np.ndarray = array_field()
    context_bias: np.ndarray | None = array_field(optional=True)
    t1_bias: np.ndarray | None = array_field(optional=True)
    ln_weight: np.ndarray | None = array_field(optional=True)
    ln_bias: np.ndarray | None = array_field(optional=True)
    ln_eps: float = 1e-5
    t2_bias: np.ndarray | None = array_field(optional=True)

    sequence = False
    param_fields = ("context_weight", "context_bias", "t1_weight", "t1_bias", "ln_weight", "ln_bias", "t2_weight",
                    "t2_bias")

    def _check(self) -> None:
        _int(self, "channels", 1)
        _int(self, "reduction", 1)
        c, h = self.channels, self.t1_weight.shape[0]
        for field, shape in (("context_weight", (1, c, 1, 1)), ("t1_weight", (h, c, 1, 1)),
                             ("t2_weight", (c, h, 1, 1))):
            if getattr(self, field).shape != shape:
                raise self._fail(field, f"must have shape {list(shape)}, got {list(getattr(self, field).shape)}")
        object.__setattr__(self, "ln_eps", float(self.ln_eps))

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        _need_channels(self, in_shapes[0], self.channels)
        return in_shapes[0]


@dataclass(frozen=True, eq=False, repr=False)
class StepAttention(_MethodNode):
    """STAA step attention: two 1x1 Conv1d over the T "channels" (fixed T; non-causal).

    Args:
        timesteps: T; reduction: hidden = max(1, T // reduction).
        w1, b1: Conv1d T -> hidden (``(hidden, T, 1)``, ``(hidden,)``).
        w2, b2: Conv1d hidden -> T.
    """

    timesteps: int
    reduction: int
    w1: np.ndarray = array_field()
    w2: np.ndarray = array_field()
    b1: np.ndarray | None = array_field(optional=True)
    b2: np.ndarray | None = array_field(optional=True)

    param_fields = ("w1", "b1", "w2", "b2")

    def _check(self) -> None:
        _int(self, "timesteps", 1)
        _int(self, "reduction", 1)
        t = self.timesteps
        if self.w1.ndim != 3 or self.w1.shape[1:] != (t, 1):
            raise self._fail("w1", f"must have shape (hidden, {t}, 1), got {list(self.w1.shape)}")
        if self.w2.shape != (t, self.w1.shape[0], 1):
            raise self._fail("w2", f"must have shape ({t}, {self.w1.shape[0]}, 1), got {list(self.w2.shape)}")

    @property
    def causal(self) -> bool:
        return False

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        if len(in_shapes[0]) != 3:
            raise InputShapeError(self, 0, "[C, H, W]", in_shapes[0], "step attention needs a (C, H, W) input")
        return in_shapes[0]


@dataclass(frozen=True, eq=False, repr=False)
class FSTA(_MethodNode):
    """FSTA-SNN attention on the input current (fixed T; non-causal).

    Args:
        channels: C; timesteps: T; freq_num: DCT bases (49 = 7x7 or 9 = 3x3, fixed DCT-II,
            rebuilt from ``freq_num``); reduction: 1 (one conv) or r > 1 (conv-ReLU-conv).
        alpha, beta: avg/max pooling mix (float32 ``()``).
        theta_t, theta_s: fusion weights (float32 ``()``).
        fc_t: temporal FC ``(T, T)`` (no bias).
        attn_w1: first 7x7 conv of the spatial attention (``(1 or F//r, F, 7, 7)``).
        attn_w2: second 7x7 conv when ``reduction > 1`` (``(1, F//r, 7, 7)``), else ``None``.
    """

    channels: int
    timesteps: int
    fc_t: np.ndarray = array_field()
    attn_w1: np.ndarray = array_field()
    freq_num: int = 49
    reduction: int = 1
    alpha: Param = param_field(0.5)
    beta: Param = param_field(0.5)
    theta_t: Param = param_field(0.6)
    theta_s: Param = param_field(0.5)
    attn_w2: np.ndarray | None = array_field(optional=True)

    param_fields = ("alpha", "beta", "theta_t", "theta_s", "fc_t", "attn_w1", "attn_w2")

    def _check(self) -> None:
        for f in ("channels", "timesteps", "reduction"):
            _int(self, f, 1)
        _int(self, "freq_num", 1)
        t = self.timesteps
        if self.fc_t.shape != (t, t):
            raise self._fail("fc_t", f"must have shape ({t}, {t}), got {list(self.fc_t.shape)}")
        if (self.reduction > 1) != (self.attn_w2 is not None):
            raise self._fail("attn_w2", "must be given exactly when reduction > 1")

    @property
    def causal(self) -> bool:
        return False

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        _need_channels(self, in_shapes[0], self.channels)
        return in_shapes[0]


METHOD_TYPES: tuple[type[IRNode], ...] = (TemporalShift, TemporalPositionEncoding, GCAttention, StepAttention, FSTA)
