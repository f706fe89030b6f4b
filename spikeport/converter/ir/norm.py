r"""Normalisation nodes.

:class:`BatchNorm` in inference form, per channel ``c`` (axis 0 of the
per-timestep shape, statistics shared by all timesteps):

.. math:: y = \gamma_c \frac{x - \mu_c}{\sqrt{\sigma^2_c + \epsilon}} + \beta_c
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikeport.converter.ir.node import InputShapeError, IRNode, Shape, array_field

__all__ = ["BatchNorm"]


@dataclass(frozen=True, eq=False, repr=False)
class BatchNorm(IRNode):
    """Inference batch norm over channel axis 0 (BatchNorm1d on ``(F,)``/``(C, L)``, BatchNorm2d on ``(C, H, W)``).

    Args:
        mean: running mean :math:`\\mu`, shape ``(C,)``.
        var: running variance :math:`\\sigma^2`, shape ``(C,)``.
        weight: scale :math:`\\gamma` ``(C,)`` or ``None`` (1).
        bias: shift :math:`\\beta` ``(C,)`` or ``None`` (0).
        eps: :math:`\\epsilon`.
    """

    mean: np.ndarray = array_field()
    var: np.ndarray = array_field()
    weight: np.ndarray | None = array_field(optional=True)
    bias: np.ndarray | None = array_field(optional=True)
    eps: float = 1e-5

    family = "norm"
    param_fields = ("weight", "bias")

    def _check(self) -> None:
        if self.mean.ndim != 1:
            raise self._fail("mean", f"must be 1-D (C,), got shape {list(self.mean.shape)}")
        c = self.mean.shape[0]
        for n in ("var", "weight", "bias"):
            v = getattr(self, n)
            if v is not None and v.shape != (c,):
                raise self._fail(n, f"must have shape ({c},) like 'mean', got {list(v.shape)}")
        if np.any(self.var < 0):
            raise self._fail("var", "must be >= 0")
        if not (isinstance(self.eps, (int, float)) and self.eps >= 0):
            raise self._fail("eps", f"must be a float >= 0, got {self.eps!r}")
        object.__setattr__(self, "eps", float(self.eps))

    @property
    def num_features(self) -> int:
        return int(self.mean.shape[0])

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        s = in_shapes[0]
        if not s or s[0] != self.num_features or len(s) > 3:
            raise InputShapeError(self, 0, f"[{self.num_features}, ...]", s, f"num_features={self.num_features}")
        return s

    def scale_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel ``(a, b)`` with ``y = a * x + b`` (float64)."""
        inv = 1.0 / np.sqrt(self.var.astype(np.float64) + self.eps)
        g = np.ones_like(inv) if self.weight is None else self.weight.astype(np.float64)
        beta = np.zeros_like(inv) if self.bias is None else self.bias.astype(np.float64)
        a = g * inv
        return a, beta - a * self.mean.astype(np.float64)
