r"""Exact linear composition for the Loihi lowering: pooling folded into the next synapse, identity synapses.

Loihi has no pooling layer, but pooling between spiking layers is linear, and so is the synapse after it,
so the two compose into one synapse.

**Average / sum pooling before a convolution.** A pool with a uniform ``k_p x k_p`` window of tap value
``c`` (``1/k_p^2`` for an average), stride ``s_p`` and no padding, followed by a convolution ``W`` (kernel
``k``, stride ``s``, padding ``p``, dilation 1) is one convolution of the pool's input:

.. math::

    y[o, i, j] = \sum_{c,a,b} W[o,c,a,b] \, P[c, s i + a - p, s j + b - p],\qquad
    P[c, u, v] = c \sum_{m,n < k_p} x[c, s_p u + m, s_p v + n]

so :math:`y` is the convolution of :math:`x` with the kernel
:math:`K[o, c, s_p a + m, s_p b + n] = c\,W[o,c,a,b]` of size :math:`(k-1) s_p + k_p`, stride
:math:`s\,s_p` and padding :math:`p\,s_p` (:func:`fold_window_into_conv`). It is exact where the zero
padding of the pooled map lands on the zero padding of the input: on the left when :math:`k_p \le s_p`
(the windows of pooled index -1 lie entirely left of the input), on the right when the convolution reads
pooled index :math:`H_p` only if :math:`s_p H_p \ge H` (e.g. ``H`` divisible by the stride). Otherwise the
fold is refused with the reason. Output sizes agree because
:math:`\lfloor(\lfloor a \rfloor + b)/s\rfloor = \lfloor (a + b)/s \rfloor` for integer ``b``.

**Pooling (and flatten) before a dense synapse.** The chain of linear ops ``A`` before ``W`` is applied to
the identity basis of its input in float64 (:func:`compose_dense`): ``W' = W A``, exact up to float64
rounding of the products (checked: ``folded == unfolded`` in the tests).

**Identity synapse.** A residual ``x`` added to a current without a synapse on its path (an identity
shortcut) becomes a depthwise 1x1 convolution with weight 1 per channel (``groups = C``): ``C H W``
synapses, never a dense ``(CHW)^2`` diagonal (:func:`identity_conv`); pooling on that path folds into it
as above. Lava holds ``groups`` in an int8, so above 127 channels the channel-wise convolution is grouped
with block-diagonal weights (:func:`channelwise_conv`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from spikeport.errors import ExportError

__all__ = ["ConvSpec", "LAVA_MAX_GROUPS", "fold_window_into_conv", "identity_conv", "channelwise_conv",
           "depthwise_groups", "compose_dense", "conv_spec_output"]


@dataclass(frozen=True, eq=False)
class ConvSpec:
    """A float convolution: ``weight (out, in/groups, kH, kW)`` and its geometry, ``(H, W)`` order."""

    weight: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution of ``x`` ``[N, C, H, W]`` (float64), for checks."""
        w = torch.as_tensor(self.weight, dtype=x.dtype)
        return torch.nn.functional.conv2d(x, w, stride=self.stride, padding=self.padding, dilation=self.dilation,
                                          groups=self.groups)


def conv_spec_output(conv: ConvSpec, hw: Sequence[int]) -> tuple[int, int]:
    """Spatial output size of ``conv`` on an input of spatial size ``hw``."""
    k = conv.weight.shape[2:4]
    h, w = ((hw[i] + 2 * conv.padding[i] - conv.dilation[i] * (k[i] - 1) - 1) // conv.stride[i] + 1 for i in range(2))
    return int(h), int(w)


def fold_window_into_conv(window: Any, conv: ConvSpec, in_hw: Sequence[int], where: str) -> ConvSpec:
    """The convolution of the pool's input equal to ``conv(pool(x))`` (see the module docstring).

    Args:
        window: a :class:`~spikeport.ops.spec.PoolWindow` (uniform taps, no padding, no dilation).
        conv: the convolution after the pool.
        in_hw: spatial size ``(H, W)`` of the pool's input.
        where: the nodes concerned, for the error message.

    Raises:
        ExportError: the composition is not exact (overlapping windows or a partial border window read
            through the convolution's padding, a dilated convolution, a padded pool).
    """
    if any(window.padding) or tuple(window.dilation) != (1, 1):
        raise ExportError(f"{where}: a padded or dilated pooling window cannot be folded into the next synapse")
    if tuple(conv.dilation) != (1, 1):
        raise ExportError(f"{where}: pooling before a dilated convolution cannot be folded (the taps interleave)")
    kp, sp = window.kernel, window.stride
    w = np.asarray(conv.weight, dtype=np.float64)
    k = w.shape[2:4]
    out_hw = conv_spec_output(conv, [(in_hw[i] - kp[i]) // sp[i] + 1 for i in range(2)])
    for i, axis in enumerate(("H", "W")):
        hp = (in_hw[i] - kp[i]) // sp[i] + 1
        pad = conv.padding[i]
        if pad > 0 and kp[i] > sp[i]:
            raise ExportError(f"{where}: overlapping pooling windows (kernel {kp[i]} > stride {sp[i]}) before a "
                              f"padded convolution cannot be folded exactly")
        last_read = conv.stride[i] * (out_hw[i] - 1) - pad + k[i] - 1
        if last_read >= hp and sp[i] * hp < in_hw[i]:
            raise ExportError(f"{where}: pooling {in_hw[i]} -> {hp} along {axis} drops input rows that the folded "
                              f"convolution would read through its padding; use a size divisible by the stride")
    kk = ((k[0] - 1) * sp[0] + kp[0], (k[1] - 1) * sp[1] + kp[1])
    folded = np.zeros((w.shape[0], w.shape[1], *kk))
    for m in range(kp[0]):
        for n in range(kp[1]):
            folded[:, :, m:m + sp[0] * k[0]:sp[0], n:n + sp[1] * k[1]:sp[1]] += w * window.weight
    out = ConvSpec(folded, (conv.stride[0] * sp[0], conv.stride[1] * sp[1]),
                   (conv.padding[0] * sp[0], conv.padding[1] * sp[1]), (1, 1), conv.groups)
    if conv_spec_output(out, in_hw) != out_hw:  # cannot happen (see the module docstring); a guard
        raise ExportError(f"{where}: folded convolution has output {conv_spec_output(out, in_hw)}, expected {out_hw}")
    return out


LAVA_MAX_GROUPS = 127
"""Lava 0.10's Python Conv model holds ``groups`` in an int8 (``lava/proc/conv/models.py``), so at most 127."""


def depthwise_groups(channels: int) -> int:
    """Groups of a channel-wise convolution Lava can hold: ``channels``, or its largest divisor <= 127."""
    return max(d for d in range(1, min(channels, LAVA_MAX_GROUPS) + 1) if channels % d == 0)


def channelwise_conv(channels: int, kernel: np.ndarray) -> ConvSpec:
    """The convolution applying ``kernel`` ``(kH, kW)`` to each channel separately (no mixing of channels).

    Depthwise (``groups = C``, weight ``(C, 1, kH, kW)``) when ``C <= 127``; otherwise grouped with the
    largest divisor ``G`` of ``C`` below that bound and block-diagonal weights ``(C, C / G, kH, kW)``
    (zero outside each channel's own tap): the same linear map, within Lava's ``groups`` range.
    """
    groups = depthwise_groups(channels)
    per = channels // groups
    w = np.zeros((channels, per, *np.shape(kernel)))
    for o in range(channels):
        w[o, o % per] = kernel
    return ConvSpec(w, groups=groups)


def identity_conv(channels: int) -> ConvSpec:
    """1x1 channel-wise convolution with weight 1: the identity on ``channels`` channels (never a dense diagonal)."""
    return channelwise_conv(channels, np.ones((1, 1)))


def compose_dense(weight: np.ndarray, ops: Sequence[Any], in_shapes: Sequence[tuple[int, ...]],
                  src_shape: tuple[int, ...]) -> np.ndarray:
    """``W A``: the dense weight on the source's (torch-flattened) spikes through the linear ``ops``.

    Args:
        weight: ``(out, M)`` float weights of the dense synapse.
        ops: IR nodes (pooling, flatten) between the source and the synapse, in order.
        in_shapes: the input shape of each op.
        src_shape: the source's per-step shape.
    """
    from spikeport.ops import spec_of

    n = int(np.prod(src_shape))
    x = torch.eye(n, dtype=torch.float64).reshape(1, n, *src_shape)  # [T=1, B=n, *shape]: the identity basis
    with torch.no_grad():
        for node, shape in zip(ops, in_shapes, strict=True):
            x = spec_of(node).execute(node, [shape])(x)
    a = x.reshape(n, -1).T.numpy()  # (M, n)
    if a.shape[0] != weight.shape[1]:
        raise ExportError(f"dense weight expects {weight.shape[1]} inputs but its input ops give {a.shape[0]}")
    return np.asarray(weight, dtype=np.float64) @ a
