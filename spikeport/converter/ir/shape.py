"""Shape nodes (per timestep; the time and batch axes are never touched).

* :class:`Flatten`: merge axes ``start_dim..end_dim`` of the per-timestep shape
  (``Flatten(start_dim=0)`` on ``(C, H, W)`` gives ``(C*H*W,)``; the multi-step
  layer ``spikeport.models.layers.Flatten`` maps to ``start_dim=0``).
* :class:`Reshape`: view as ``shape`` (one ``-1`` allowed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from spikeport.converter.ir.node import InputShapeError, IRNode, Shape, shape_field

__all__ = ["Flatten", "Reshape"]


@dataclass(frozen=True, eq=False, repr=False)
class Flatten(IRNode):
    """Flatten per-timestep axes ``start_dim`` to ``end_dim`` (inclusive; negatives count from the end)."""

    start_dim: int = 0
    end_dim: int = -1

    family = "shape"

    def _check(self) -> None:
        for f in ("start_dim", "end_dim"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int):
                raise self._fail(f, f"must be an int, got {v!r}")

    def axes(self, rank: int) -> tuple[int, int]:
        """``(start, end)`` as non-negative axes for a per-timestep rank."""
        s = self.start_dim + rank if self.start_dim < 0 else self.start_dim
        e = self.end_dim + rank if self.end_dim < 0 else self.end_dim
        return s, e

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        sh = in_shapes[0]
        s, e = self.axes(len(sh))
        if not (0 <= s <= e < len(sh)):
            raise InputShapeError(self, 0, f"rank > {max(self.start_dim, self.end_dim)}", sh,
                                  f"cannot flatten axes {self.start_dim}..{self.end_dim}")
        return (*sh[:s], math.prod(sh[s:e + 1]), *sh[e + 1:])


@dataclass(frozen=True, eq=False, repr=False)
class Reshape(IRNode):
    """Reshape the per-timestep tensor to ``shape`` (element count preserved)."""

    shape: tuple[int, ...] = shape_field(allow_minus_one=True)

    family = "shape"

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        sh = in_shapes[0]
        n = math.prod(sh)
        known = math.prod(d for d in self.shape if d != -1)
        if -1 in self.shape:
            if known == 0 or n % known:
                raise InputShapeError(self, 0, f"a multiple of {known} elements", sh,
                                      f"cannot view as {list(self.shape)}")
            return tuple(n // known if d == -1 else d for d in self.shape)
        if known != n:
            raise InputShapeError(self, 0, f"{known} elements", sh, f"cannot view as {list(self.shape)}")
        return self.shape
