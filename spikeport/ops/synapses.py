"""Op specs of the weighted synapses (Linear, Conv1d, Conv2d, ConvTranspose2d) and batch norm.

Synapses are counted exactly by the energy recorder (nonzero inputs times their
true fan-out, see :mod:`spikeport.energy.rules`); on Loihi, Linear and Conv2d
become Dense/Conv synapse processes (BatchNorm folded into them first).
"""

from __future__ import annotations

from typing import Any, Literal, overload

import numpy as np
from torch import nn

from spikeport.converter import ir
from spikeport.energy.rules import (
    OpRule,
    autograd_fanout,
    conv_fanout,
    dense_conv,
    dense_conv_transpose,
    dense_linear,
    linear_fanout,
)
from spikeport.errors import GraphError
from spikeport.models import layers as L
from spikeport.ops import _nir
from spikeport.ops._torch import param
from spikeport.ops.neurons import to_numpy
from spikeport.ops.spec import (
    LoihiMapping,
    ModuleAdapter,
    NirContext,
    NirMapping,
    OpSpec,
    Refusal,
    Refused,
    register_op,
)

__all__ = ["SYNAPSE_NOTE", "synapse_rule"]

SYNAPSE_NOTE = ("synaptic ops counted exactly: nonzero inputs x their true fan-out (nonzero weights met, borders, "
                "stride, padding, groups); bias additions are not counted")


def synapse_rule(item_ndim: int, fanout: Any, dense: Any) -> OpRule:
    """The op-count rule of a weighted synapse with ``item_ndim`` per-item input axes."""
    return OpRule("synapse", item_ndim=item_ndim, fanout=fanout, dense=dense, note=SYNAPSE_NOTE)


def _zero_padding(m: nn.Module, name: str) -> None:
    if getattr(m, "padding_mode", "zeros") != "zeros":
        raise GraphError(f"module '{name}': padding_mode='{m.padding_mode}' is not supported (only zero padding)")


@overload
def _padding(m: Any, name: str, n: Literal[1]) -> tuple[int]: ...
@overload
def _padding(m: Any, name: str, n: Literal[2]) -> tuple[int, int]: ...
def _padding(m: Any, name: str, n: int) -> tuple[int, ...]:
    p = m.padding
    if p == "valid":
        return _nir.ints(0, n)
    if p == "same":
        k, d = m.kernel_size, m.dilation
        total = [d[i] * (k[i] - 1) for i in range(n)]
        if any(t % 2 for t in total):
            raise GraphError(f"module '{name}': padding='same' with an even effective kernel is asymmetric; "
                             "use explicit padding")
        return _nir.ints([t // 2 for t in total], n)
    return _nir.ints(p, n)


# ---------------------------------------------------------------- adapters
def _from_linear(m: nn.Linear, name: str) -> ir.Linear:
    return ir.Linear(name, weight=to_numpy(m.weight), bias=to_numpy(m.bias))


def _from_conv1d(m: nn.Conv1d, name: str) -> ir.Conv1d:
    _zero_padding(m, name)
    return ir.Conv1d(name, weight=to_numpy(m.weight), bias=to_numpy(m.bias), stride=_nir.ints(m.stride, 1),
                     padding=_padding(m, name, 1), dilation=_nir.ints(m.dilation, 1), groups=m.groups)


def _from_conv2d(m: nn.Conv2d, name: str) -> ir.Conv2d:
    _zero_padding(m, name)
    return ir.Conv2d(name, weight=to_numpy(m.weight), bias=to_numpy(m.bias), stride=_nir.ints(m.stride, 2),
                     padding=_padding(m, name, 2), dilation=_nir.ints(m.dilation, 2), groups=m.groups)


def _from_convt2d(m: nn.ConvTranspose2d, name: str) -> ir.ConvTranspose2d:
    _zero_padding(m, name)
    return ir.ConvTranspose2d(name, weight=to_numpy(m.weight), bias=to_numpy(m.bias),
                              stride=_nir.ints(m.stride, 2), padding=_nir.ints(m.padding, 2),
                              output_padding=_nir.ints(m.output_padding, 2), dilation=_nir.ints(m.dilation, 2),
                              groups=m.groups)


def _from_batchnorm(m: nn.modules.batchnorm._BatchNorm, name: str) -> ir.BatchNorm:
    if m.running_mean is None or m.running_var is None:
        raise GraphError(f"module '{name}': BatchNorm without running statistics (track_running_stats=False) "
                         "normalises with batch statistics and has no fixed inference form")
    return ir.BatchNorm(name, mean=to_numpy(m.running_mean), var=to_numpy(m.running_var),
                        weight=to_numpy(m.weight), bias=to_numpy(m.bias), eps=float(m.eps))


def _adapter(torch_cls: type, spikeport_cls: type, convert: Any) -> tuple[ModuleAdapter, ...]:
    return (ModuleAdapter(torch_cls, convert, known=(torch_cls, spikeport_cls)),)


# ---------------------------------------------------------------- executor
class _Linear(nn.Linear):
    """``F.linear`` on the last axis of ``[T, B, ..., F]`` (as ``spikeport.models.layers.Linear``)."""

    def forward(self, x: Any) -> Any:
        return nn.Linear.forward(self, x)


def _exec_linear(n: ir.Linear, _: list[Any]) -> nn.Module:
    m = _Linear(n.in_features, n.out_features, bias=n.bias is not None, device="meta")
    m.weight = param(n.weight)
    m.register_parameter("bias", param(n.bias))  # nn.Linear types `bias` as a Parameter; it may be None
    return m


def _exec_conv1d(n: ir.Conv1d, _: list[Any]) -> nn.Module:
    m = L.Conv1d(n.in_channels, n.weight.shape[0], n.weight.shape[2], stride=n.stride, padding=n.padding,
                 dilation=n.dilation, groups=n.groups, bias=n.bias is not None, device="meta")
    m.weight, m.bias = param(n.weight), param(n.bias)
    return m


def _exec_conv2d(n: ir.Conv2d, _: list[Any]) -> nn.Module:
    m = L.Conv2d(n.in_channels, n.out_channels, n.kernel_size, stride=n.stride, padding=n.padding,
                 dilation=n.dilation, groups=n.groups, bias=n.bias is not None, device="meta")
    m.weight, m.bias = param(n.weight), param(n.bias)
    return m


def _exec_convt(n: ir.ConvTranspose2d, _: list[Any]) -> nn.Module:
    m = L.ConvTranspose2d(n.in_channels, n.out_channels, tuple(n.weight.shape[2:]), stride=n.stride,
                          padding=n.padding, output_padding=n.output_padding, dilation=n.dilation, groups=n.groups,
                          bias=n.bias is not None, device="meta")
    m.weight, m.bias = param(n.weight), param(n.bias)
    return m


class _BatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm folding T into the batch (any per-step rank 1-3), as the multi-step layers do."""

    def _check_input_dim(self, x: Any) -> None:
        pass

    def forward(self, x: Any) -> Any:
        t, b = x.shape[0], x.shape[1]
        y = super().forward(x.flatten(0, 1))
        return y.reshape(t, b, *y.shape[1:])


def _exec_bn(n: ir.BatchNorm, _: list[Any]) -> nn.Module:
    import torch

    affine = n.weight is not None or n.bias is not None
    m = _BatchNorm(n.num_features, eps=n.eps, affine=affine, device="meta")
    if affine:
        c = n.num_features
        m.weight = param(n.weight if n.weight is not None else np.ones(c, np.float32))
        m.bias = param(n.bias if n.bias is not None else np.zeros(c, np.float32))
    m.running_mean = torch.tensor(np.asarray(n.mean))
    m.running_var = torch.tensor(np.asarray(n.var))
    m.num_batches_tracked = torch.tensor(0, dtype=torch.long)
    return m


# ---------------------------------------------------------------- NIR
def _nir_linear(node: ir.Linear, ctx: NirContext) -> Any:
    nir = _nir.nir()
    if len(ctx.in_shapes[0]) != 1:
        raise Refusal(f"Linear on a rank-{len(ctx.in_shapes[0])} per-step input (NIR Affine takes vectors)")
    if node.bias is None:
        return nir.Linear(weight=np.array(node.weight))
    return nir.Affine(weight=np.array(node.weight), bias=np.array(node.bias))


def _conv_bias(node: Any) -> np.ndarray:
    return np.zeros(node.weight.shape[0], node.weight.dtype) if node.bias is None else np.array(node.bias)


def _ungrouped(weight: np.ndarray, groups: int) -> np.ndarray:
    """The dense (``groups=1``) weight of a grouped convolution: zeros outside each group's block (exact).

    NIR 1.0.8's type check reads the input channels from ``weight.shape[1]`` and so rejects grouped
    convolutions; the dense form computes the same sums (the added terms are exact zeros).
    """
    if groups == 1:
        return np.array(weight)
    out_c, in_g = weight.shape[0], weight.shape[1]
    dense = np.zeros((out_c, in_g * groups, *weight.shape[2:]), dtype=weight.dtype)
    per = out_c // groups
    for g in range(groups):
        dense[g * per:(g + 1) * per, g * in_g:(g + 1) * in_g] = weight[g * per:(g + 1) * per]
    return dense


def _nir_conv1d(node: ir.Conv1d, ctx: NirContext) -> Any:
    return _nir.nir().Conv1d(input_shape=int(ctx.in_shapes[0][1]), weight=_ungrouped(node.weight, node.groups),
                             stride=node.stride[0], padding=node.padding[0], dilation=node.dilation[0],
                             groups=1, bias=_conv_bias(node))


def _nir_conv2d(node: ir.Conv2d, ctx: NirContext) -> Any:
    return _nir.nir().Conv2d(input_shape=tuple(ctx.in_shapes[0][1:]), weight=_ungrouped(node.weight, node.groups),
                             stride=node.stride, padding=node.padding, dilation=node.dilation, groups=1,
                             bias=_conv_bias(node))


def _import_linear(name: str, node: Any, ctx: NirContext) -> list[Any]:
    t = type(node).__name__
    w = np.asarray(node.weight)
    if w.ndim != 2:
        raise GraphError(f"NIR node '{name}' ({t}): weight must be 2-D, got shape {list(w.shape)}")
    return [ir.Linear(name, weight=w, bias=np.asarray(node.bias) if t == "Affine" else None)]


@overload
def _conv_padding(node: Any, n: Literal[1]) -> tuple[int]: ...
@overload
def _conv_padding(node: Any, n: Literal[2]) -> tuple[int, int]: ...
def _conv_padding(node: Any, n: int) -> tuple[int, ...]:
    p = node.padding
    if isinstance(p, str):
        if p == "valid":
            return _nir.ints(0, n)
        k, d = node.weight.shape[2:], _nir.ints(node.dilation, n)
        total = [d[i] * (k[i] - 1) for i in range(n)]
        if any(t % 2 for t in total):
            raise GraphError("NIR conv with padding='same' and an even kernel is asymmetric; not supported")
        return _nir.ints([t // 2 for t in total], n)
    return _nir.ints(p, n)


def _import_conv(name: str, node: Any, ctx: NirContext) -> list[Any]:
    b = np.asarray(node.bias)
    bias = None if not np.any(b) else b
    if type(node).__name__ == "Conv1d":
        return [ir.Conv1d(name, weight=np.asarray(node.weight), bias=bias, stride=_nir.ints(node.stride, 1),
                          padding=_conv_padding(node, 1), dilation=_nir.ints(node.dilation, 1),
                          groups=int(node.groups))]
    return [ir.Conv2d(name, weight=np.asarray(node.weight), bias=bias, stride=_nir.ints(node.stride, 2),
                      padding=_conv_padding(node, 2), dilation=_nir.ints(node.dilation, 2), groups=int(node.groups))]


# ---------------------------------------------------------------- the specs
_LOIHI_SYNAPSE = LoihiMapping("synapse")

register_op(OpSpec(
    ir.Linear, "fully connected synapse", _exec_linear, modules=_adapter(nn.Linear, L.Linear, _from_linear),
    energy=synapse_rule(1, linear_fanout, dense_linear),
    nir=NirMapping(_nir_linear, {"Affine": _import_linear, "Linear": _import_linear}),
    loihi=_LOIHI_SYNAPSE))

register_op(OpSpec(
    ir.Conv1d, "1-D convolution synapse", _exec_conv1d, modules=_adapter(nn.Conv1d, L.Conv1d, _from_conv1d),
    energy=synapse_rule(2, conv_fanout, dense_conv),
    nir=NirMapping(_nir_conv1d, {"Conv1d": _import_conv}),
    loihi=Refused("1-D convolution: netx builds 2-D conv and dense layers only")))

register_op(OpSpec(
    ir.Conv2d, "2-D convolution synapse", _exec_conv2d, modules=_adapter(nn.Conv2d, L.Conv2d, _from_conv2d),
    energy=synapse_rule(3, conv_fanout, dense_conv),
    nir=NirMapping(_nir_conv2d, {"Conv2d": _import_conv}),
    loihi=_LOIHI_SYNAPSE))

register_op(OpSpec(
    ir.ConvTranspose2d, "2-D transposed convolution synapse", _exec_convt,
    modules=_adapter(nn.ConvTranspose2d, L.ConvTranspose2d, _from_convt2d),
    energy=synapse_rule(3, autograd_fanout, dense_conv_transpose),
    nir=NirMapping(Refused("ConvTranspose2d has no NIR primitive")),
    loihi=Refused("transposed convolution: netx raises NotImplementedError on 'convT'")))

register_op(OpSpec(
    ir.BatchNorm, "batch normalisation (inference statistics)", _exec_bn,
    modules=(*_adapter(nn.BatchNorm1d, L.BatchNorm1d, _from_batchnorm),
             *_adapter(nn.BatchNorm2d, L.BatchNorm2d, _from_batchnorm)),
    energy=OpRule("free", note="batch norm is folded into the preceding synapse's weights and bias (0 ops)"),
    nir=NirMapping(Refused("BatchNorm not directly after a conv/linear with no other consumer (cannot be folded)")),
    loihi=Refused("BatchNorm that could not be folded into a preceding Conv2d/Linear")))
