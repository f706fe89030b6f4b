r"""Synapse nodes: weighted connections applied independently at every timestep.

* :class:`Linear`: :math:`y_t = W x_t + b` on the last axis.
* :class:`Conv1d` / :class:`Conv2d`: zero-padded cross-correlation (torch semantics).
* :class:`ConvTranspose2d`: the transposed 2-D convolution (torch semantics).

Weights keep torch's layout and dtype. ``bias=None`` means no bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikeport.converter.ir.node import InputShapeError, IRNode, Shape, array_field, ints_field

__all__ = ["Linear", "Conv1d", "Conv2d", "ConvTranspose2d", "conv_out_size"]


def conv_out_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution/pooling along one axis (floor mode)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _check_bias(node: Linear | _ConvBase, out_channels: int) -> None:
    b = node.bias
    if b is not None and b.shape != (out_channels,):
        raise node._fail("bias", f"must have shape ({out_channels},) to match the weight, got {list(b.shape)}")


@dataclass(frozen=True, eq=False, repr=False)
class Linear(IRNode):
    r"""Dense synapse :math:`y_t = W x_t + b` over the last axis.

    Args:
        weight: ``(out_features, in_features)``.
        bias: ``(out_features,)`` or ``None``.
    """

    weight: np.ndarray = array_field()
    bias: np.ndarray | None = array_field(optional=True)

    family = "synapse"
    param_fields = ("weight", "bias")

    def _check(self) -> None:
        if self.weight.ndim != 2:
            raise self._fail("weight", f"must be 2-D (out_features, in_features), got shape {list(self.weight.shape)}")
        _check_bias(self, self.weight.shape[0])

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        s = in_shapes[0]
        if not s or s[-1] != self.in_features:
            raise InputShapeError(self, 0, f"[..., {self.in_features}]", s, f"in_features={self.in_features}")
        return (*s[:-1], self.out_features)

    def fan_in(self) -> int:
        return self.in_features


class _ConvBase(IRNode):
    """Shared checks of the convolutions (``nd`` spatial axes; no fields of its own: each convolution declares
    them)."""

    weight: np.ndarray
    bias: np.ndarray | None
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int

    nd = 2

    def _check(self) -> None:
        w = self.weight
        if w.ndim != self.nd + 2:
            raise self._fail("weight", f"must be {self.nd + 2}-D, got shape {list(w.shape)}")
        if self.groups < 1:
            raise self._fail("groups", f"must be >= 1, got {self.groups}")
        if min(self.stride) < 1 or min(self.dilation) < 1:
            raise self._fail("stride", "and dilation must be >= 1")

    def fan_in(self) -> int:
        return int(np.prod(self.weight.shape[1:]))


class _ForwardConv(_ConvBase):
    """Checks of the forward convolutions, weight ``(C_out, C_in / groups, *kernel)``."""

    def _check(self) -> None:
        super()._check()
        _check_bias(self, self.weight.shape[0])
        if self.weight.shape[0] % self.groups:
            raise self._fail("groups", f"{self.groups} does not divide out channels {self.weight.shape[0]}")

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[1] * self.groups)


@dataclass(frozen=True, eq=False, repr=False)
class Conv1d(_ForwardConv):
    """1-D convolution over per-timestep ``(C, L)``.

    Args:
        weight: ``(C_out, C_in / groups, K)``.
        bias: ``(C_out,)`` or ``None``.
        stride, padding, dilation: 1-tuples; groups: channel groups.
    """

    weight: np.ndarray = array_field()
    bias: np.ndarray | None = array_field(optional=True)
    stride: tuple[int] = ints_field(1, 1, minimum=1)
    padding: tuple[int] = ints_field(1, 0)
    dilation: tuple[int] = ints_field(1, 1, minimum=1)
    groups: int = 1

    family = "synapse"
    nd = 1
    param_fields = ("weight", "bias")

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        s = in_shapes[0]
        if len(s) != 2 or s[0] != self.in_channels:
            raise InputShapeError(self, 0, f"[{self.in_channels}, L]", s, f"in_channels={self.in_channels}")
        n = conv_out_size(s[1], self.weight.shape[2], self.stride[0], self.padding[0], self.dilation[0])
        if n < 1:
            raise InputShapeError(self, 0, f"[{self.in_channels}, L]", s, "input is smaller than the kernel")
        return (int(self.weight.shape[0]), n)


@dataclass(frozen=True, eq=False, repr=False)
class Conv2d(_ForwardConv):
    """2-D convolution over per-timestep ``(C, H, W)``.

    Args:
        weight: ``(C_out, C_in / groups, kH, kW)``.
        bias: ``(C_out,)`` or ``None``.
        stride, padding, dilation: ``(h, w)`` pairs; groups: channel groups.
    """

    weight: np.ndarray = array_field()
    bias: np.ndarray | None = array_field(optional=True)
    stride: tuple[int, int] = ints_field(2, (1, 1), minimum=1)
    padding: tuple[int, int] = ints_field(2, (0, 0))
    dilation: tuple[int, int] = ints_field(2, (1, 1), minimum=1)
    groups: int = 1

    family = "synapse"
    nd = 2
    param_fields = ("weight", "bias")

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    @property
    def kernel_size(self) -> tuple[int, int]:
        return int(self.weight.shape[2]), int(self.weight.shape[3])

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        s = in_shapes[0]
        if len(s) != 3 or s[0] != self.in_channels:
            raise InputShapeError(self, 0, f"[{self.in_channels}, H, W]", s, f"in_channels={self.in_channels}")
        hw = tuple(conv_out_size(s[i + 1], self.kernel_size[i], self.stride[i], self.padding[i], self.dilation[i])
                   for i in range(2))
        if min(hw) < 1:
            raise InputShapeError(self, 0, f"[{self.in_channels}, H, W]", s, "input is smaller than the kernel")
        return (self.out_channels, *hw)


@dataclass(frozen=True, eq=False, repr=False)
class ConvTranspose2d(_ConvBase):
    """Transposed 2-D convolution over per-timestep ``(C, H, W)``.

    Args:
        weight: ``(C_in, C_out / groups, kH, kW)`` (torch layout).
        bias: ``(C_out,)`` or ``None``.
        stride, padding, output_padding, dilation: ``(h, w)`` pairs; groups: channel groups.
    """

    weight: np.ndarray = array_field()
    bias: np.ndarray | None = array_field(optional=True)
    stride: tuple[int, int] = ints_field(2, (1, 1), minimum=1)
    padding: tuple[int, int] = ints_field(2, (0, 0))
    output_padding: tuple[int, int] = ints_field(2, (0, 0))
    dilation: tuple[int, int] = ints_field(2, (1, 1), minimum=1)
    groups: int = 1

    family = "synapse"
    nd = 2
    param_fields = ("weight", "bias")

    def _check(self) -> None:
        super()._check()
        _check_bias(self, self.out_channels)
        if self.weight.shape[0] % self.groups:
            raise self._fail("groups", f"{self.groups} does not divide in channels {self.weight.shape[0]}")

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[0])

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[1] * self.groups)

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        s = in_shapes[0]
        if len(s) != 3 or s[0] != self.in_channels:
            raise InputShapeError(self, 0, f"[{self.in_channels}, H, W]", s, f"in_channels={self.in_channels}")
        k = self.weight.shape[2:]
        hw = tuple((s[i + 1] - 1) * self.stride[i] - 2 * self.padding[i] + self.dilation[i] * (k[i] - 1)
                   + self.output_padding[i] + 1 for i in range(2))
        return (self.out_channels, *hw)

    def fan_in(self) -> int:
        # every output unit sums over (C_in / groups) * kH * kW / (stride_h * stride_w) inputs on average
        w = self.weight
        return int(w.shape[0] // self.groups * w.shape[2] * w.shape[3])
