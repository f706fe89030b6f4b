"""Graph boundary nodes.

* :class:`Input`: a graph input carrying its per-timestep ``shape`` (no inputs).
* :class:`Output`: a graph output (identity); ``index`` orders multiple outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from spikeport.converter.ir.node import IRNode, Shape, shape_field

__all__ = ["Input", "Output"]


@dataclass(frozen=True, eq=False, repr=False)
class Input(IRNode):
    """Graph input of per-timestep ``shape`` (e.g. ``(1, 8, 8)``); the executor feeds ``[T, B, *shape]``.

    Args:
        shape: per-timestep shape (positive ints).
        index: position among several inputs (0 for the first).
    """

    shape: tuple[int, ...] = shape_field()
    index: int = 0

    family = "io"
    n_inputs = 0

    def _check(self) -> None:
        if isinstance(self.index, bool) or not isinstance(self.index, int) or self.index < 0:
            raise self._fail("index", f"must be an int >= 0, got {self.index!r}")

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        return self.shape


@dataclass(frozen=True, eq=False, repr=False)
class Output(IRNode):
    """Graph output (identity); ``index`` orders several outputs (0 for the first)."""

    index: int = 0

    family = "io"

    def _check(self) -> None:
        if isinstance(self.index, bool) or not isinstance(self.index, int) or self.index < 0:
            raise self._fail("index", f"must be an int >= 0, got {self.index!r}")
