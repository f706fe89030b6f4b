"""Pooling nodes over per-timestep ``(C, H, W)`` (torch semantics, applied at every timestep).

* :class:`MaxPool`: maximum over each window.
* :class:`AvgPool`: mean over each window (``count_include_pad`` as torch).
* :class:`SumPool`: sum over each window (NIR ``SumPool2d``; zero padding).
* :class:`AdaptiveAvgPool`: torch's adaptive average to a fixed ``output_size``.
"""

from __future__ import annotations

from dataclasses import dataclass

from spikeport.converter.ir.node import InputShapeError, IRNode, Shape, ints_field
from spikeport.converter.ir.synapse import conv_out_size

__all__ = ["MaxPool", "AvgPool", "SumPool", "AdaptiveAvgPool"]


def _pool_out(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    if not ceil:
        return conv_out_size(size, k, s, p, d)
    n = -(-(size + 2 * p - d * (k - 1) - 1) // s) + 1
    if (n - 1) * s >= size + p:  # torch: the last window must start inside the input or left padding
        n -= 1
    return n


class _Pool2d(IRNode):
    """Shared checks and shape rule of the 2-D pools (no fields of its own: each pool declares them)."""

    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]

    family = "pool"

    def _check(self) -> None:
        k, p = self.kernel_size, self.padding
        if any(2 * p[i] > k[i] for i in range(2)):
            raise self._fail("padding", f"must be at most half the kernel size {k}, got {p}")

    def _dilation(self) -> tuple[int, int]:
        return (1, 1)

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        s = in_shapes[0]
        if len(s) != 3:
            raise InputShapeError(self, 0, "[C, H, W]", s, "2-D pooling needs a (C, H, W) input")
        k, st, p, d = self.kernel_size, self.stride, self.padding, self._dilation()
        ceil = getattr(self, "ceil_mode", False)
        hw = tuple(_pool_out(s[i + 1], k[i], st[i], p[i], d[i], ceil) for i in range(2))
        if min(hw) < 1:
            raise InputShapeError(self, 0, "[C, H, W]", s, f"input is smaller than the window {k}")
        return (s[0], *hw)


@dataclass(frozen=True, eq=False, repr=False)
class MaxPool(_Pool2d):
    """2-D max pooling (``stride`` defaults to the kernel size in handlers)."""

    kernel_size: tuple[int, int] = ints_field(2, minimum=1)
    stride: tuple[int, int] = ints_field(2, minimum=1)
    padding: tuple[int, int] = ints_field(2, (0, 0))
    dilation: tuple[int, int] = ints_field(2, (1, 1), minimum=1)
    ceil_mode: bool = False

    def _dilation(self) -> tuple[int, int]:
        return self.dilation


@dataclass(frozen=True, eq=False, repr=False)
class AvgPool(_Pool2d):
    """2-D average pooling.

    Args:
        count_include_pad: whether zero padding counts in the divisor (torch default True).
        divisor_override: a fixed divisor instead of the window size, or ``None``.
    """

    kernel_size: tuple[int, int] = ints_field(2, minimum=1)
    stride: tuple[int, int] = ints_field(2, minimum=1)
    padding: tuple[int, int] = ints_field(2, (0, 0))
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None


@dataclass(frozen=True, eq=False, repr=False)
class SumPool(_Pool2d):
    """2-D sum pooling (zero padding, floor mode)."""

    kernel_size: tuple[int, int] = ints_field(2, minimum=1)
    stride: tuple[int, int] = ints_field(2, minimum=1)
    padding: tuple[int, int] = ints_field(2, (0, 0))


@dataclass(frozen=True, eq=False, repr=False)
class AdaptiveAvgPool(IRNode):
    """Torch's adaptive 2-D average pooling to ``output_size`` ``(oh, ow)``."""

    output_size: tuple[int, int] = ints_field(2, minimum=1)

    family = "pool"

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        s = in_shapes[0]
        if len(s) != 3:
            raise InputShapeError(self, 0, "[C, H, W]", s, "2-D pooling needs a (C, H, W) input")
        return (s[0], *self.output_size)

    def as_avg_pool(self, in_shape: Shape) -> AvgPool | None:
        """The equivalent fixed :class:`AvgPool` when the input divides evenly, else ``None``."""
        if len(in_shape) != 3 or any(in_shape[i + 1] % self.output_size[i] for i in range(2)):
            return None
        k = (in_shape[1] // self.output_size[0], in_shape[2] // self.output_size[1])
        return AvgPool(self.name, kernel_size=k, stride=k)
