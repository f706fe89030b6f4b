r"""Element-wise arithmetic nodes (per timestep).

* :class:`Add`: :math:`y = \sum_i x_i` over two or more same-shaped inputs (residual adds).
* :class:`Mul`: :math:`y = x_0 \odot x_1` (same shape).
* :class:`Concat`: concatenate along per-timestep ``axis``.
* :class:`Scale`: :math:`y = s \odot x` with a scalar or leading-aligned array ``s`` (NIR ``Scale``).
* :class:`ReLU`: :math:`y = \max(x, 0)` (ANN teachers and ANN-to-SNN sources).
"""

from __future__ import annotations

from dataclasses import dataclass

from spikeport.converter.ir.node import InputShapeError, IRNode, Param, Shape, param_field

__all__ = ["Add", "Mul", "Concat", "Scale", "ReLU"]


def _same_shapes(node: IRNode, in_shapes: list[Shape]) -> Shape:
    first = in_shapes[0]
    for i, s in enumerate(in_shapes[1:], start=1):
        if s != first:
            raise InputShapeError(node, i, str(list(first)), s,
                                  f"all inputs of {type(node).__name__} must match input 0")
    return first


@dataclass(frozen=True, eq=False, repr=False)
class Add(IRNode):
    """Sum of two or more inputs of the same shape."""

    family = "arith"
    n_inputs = None

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        return _same_shapes(self, in_shapes)


@dataclass(frozen=True, eq=False, repr=False)
class Mul(IRNode):
    """Element-wise product of two inputs of the same shape."""

    family = "arith"
    n_inputs = 2

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        return _same_shapes(self, in_shapes)


@dataclass(frozen=True, eq=False, repr=False)
class Concat(IRNode):
    """Concatenate two or more inputs along per-timestep ``axis`` (negative counts from the end)."""

    axis: int = 0

    family = "arith"
    n_inputs = None

    def _check(self) -> None:
        if isinstance(self.axis, bool) or not isinstance(self.axis, int):
            raise self._fail("axis", f"must be an int, got {self.axis!r}")

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        first = in_shapes[0]
        ax = self.axis + len(first) if self.axis < 0 else self.axis
        if not 0 <= ax < len(first):
            raise InputShapeError(self, 0, f"rank > {ax}", first, f"axis {self.axis} out of range")
        total = 0
        for i, s in enumerate(in_shapes):
            if len(s) != len(first) or any(s[d] != first[d] for d in range(len(s)) if d != ax):
                exp = [("*" if d == ax else first[d]) for d in range(len(first))]
                raise InputShapeError(self, i, str(exp).replace("'", ""), s, f"shapes must match except on axis {ax}")
            total += s[ax]
        return (*first[:ax], total, *first[ax + 1:])


@dataclass(frozen=True, eq=False, repr=False)
class Scale(IRNode):
    """Multiply by a constant: python float or a leading-aligned array (NIR ``Scale``)."""

    scale: Param = param_field(1.0)

    family = "arith"

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        self._require_param_shapes(in_shapes[0], 0, *self.arrays())
        return in_shapes[0]


@dataclass(frozen=True, eq=False, repr=False)
class ReLU(IRNode):
    """Rectified linear unit (non-spiking activation)."""

    family = "arith"
