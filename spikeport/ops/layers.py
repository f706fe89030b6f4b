"""Op specs of the stateless layers: pooling, shape, element-wise arithmetic, ReLU and graph I/O.

Also the module adapters of torch modules that are not one IR op: identities at
inference (Dropout, Identity) are bypassed, and a few torch modules the IR does
not represent are still counted by the hook-based recorder (Conv3d, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from spikeport.converter import ir
from spikeport.energy.rules import (
    OpRule,
    adaptive_pool_fanout,
    autograd_fanout,
    conv_fanout,
    dense_conv,
    dense_conv_transpose,
    pool_fanout,
    tensors,
    value_class,
)
from spikeport.errors import GraphError
from spikeport.models import layers as L
from spikeport.ops import _nir
from spikeport.ops._torch import Fn, buffer, full_axis
from spikeport.ops.spec import (
    LoihiMapping,
    ModuleAdapter,
    NirContext,
    NirMapping,
    OpSpec,
    PoolWindow,
    Refusal,
    Refused,
    register_adapter,
    register_op,
)
from spikeport.ops.synapses import synapse_rule

__all__ = ["FREE", "count_add", "count_mul", "count_scale"]

FREE = OpRule("free")
_POOL_NOTE = "average/sum pooling: one addition per nonzero input per window containing it; the divisor is folded"


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _adapter(torch_cls: type, spikeport_cls: type | None, convert: Any) -> tuple[ModuleAdapter, ...]:
    known = (torch_cls,) if spikeport_cls is None else (torch_cls, spikeport_cls)
    return (ModuleAdapter(torch_cls, convert, known=known),)


# ---------------------------------------------------------------- pooling
def _from_maxpool(m: nn.MaxPool2d, name: str) -> ir.MaxPool:
    if m.return_indices:
        raise GraphError(f"module '{name}': MaxPool2d(return_indices=True) is not supported")
    k = _pair(m.kernel_size)
    return ir.MaxPool(name, kernel_size=k, stride=_pair(m.stride) if m.stride else k, padding=_pair(m.padding),
                      dilation=_pair(m.dilation), ceil_mode=bool(m.ceil_mode))


def _from_avgpool(m: nn.AvgPool2d, name: str) -> ir.AvgPool:
    k = _pair(m.kernel_size)
    return ir.AvgPool(name, kernel_size=k, stride=_pair(m.stride) if m.stride else k, padding=_pair(m.padding),
                      ceil_mode=bool(m.ceil_mode), count_include_pad=bool(m.count_include_pad),
                      divisor_override=m.divisor_override)


def _from_adaptive(m: nn.AdaptiveAvgPool2d, name: str) -> ir.AdaptiveAvgPool:
    size = m.output_size
    if size is None or (not isinstance(size, int) and None in tuple(size)):
        raise GraphError(f"module '{name}': AdaptiveAvgPool2d with a None output size is not supported")
    return ir.AdaptiveAvgPool(name, output_size=_pair(size))


def _exec_maxpool(n: ir.MaxPool, _: list[Any]) -> nn.Module:
    return L.MaxPool2d(n.kernel_size, n.stride, n.padding, n.dilation, ceil_mode=n.ceil_mode)


def _exec_avgpool(n: ir.AvgPool, _: list[Any]) -> nn.Module:
    return L.AvgPool2d(n.kernel_size, n.stride, n.padding, ceil_mode=n.ceil_mode,
                       count_include_pad=n.count_include_pad, divisor_override=n.divisor_override)


def _exec_sumpool(n: ir.SumPool, _: list[Any]) -> nn.Module:
    return L.AvgPool2d(n.kernel_size, n.stride, n.padding, count_include_pad=True, divisor_override=1)


def _exec_adaptive(n: ir.AdaptiveAvgPool, _: list[Any]) -> nn.Module:
    return L.AdaptiveAvgPool2d(n.output_size)


def _nir_sumpool(node: ir.SumPool, ctx: NirContext) -> Any:
    return _nir.nir().SumPool2d(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride),
                                padding=np.array(node.padding))


def _nir_avgpool(node: ir.AvgPool, ctx: NirContext) -> Any:
    if node.ceil_mode or node.divisor_override is not None or (any(node.padding) and not node.count_include_pad):
        raise Refusal("AvgPool with ceil_mode, divisor_override or count_include_pad=False")
    return _nir.nir().AvgPool2d(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride),
                                padding=np.array(node.padding))


def _nir_adaptive(node: ir.AdaptiveAvgPool, ctx: NirContext) -> Any:
    eq = node.as_avg_pool(ctx.in_shapes[0])
    if eq is None:
        raise Refusal(f"AdaptiveAvgPool from {list(ctx.in_shapes[0][1:])} to {list(node.output_size)} is not a "
                      "fixed window")
    return _nir_avgpool(eq, ctx)


def _import_pool(name: str, node: Any, ctx: NirContext) -> list[Any]:
    cls = ir.SumPool if type(node).__name__ == "SumPool2d" else ir.AvgPool
    return [cls(name, kernel_size=_nir.ints(node.kernel_size, 2), stride=_nir.ints(node.stride, 2),
                padding=_nir.ints(node.padding, 2))]


_POOL_RULE = OpRule("pool", item_ndim=3, fanout=pool_fanout, note=_POOL_NOTE)
_MAXPOOL_RULE = OpRule("free", note="max pooling: comparisons are not counted (an OR on binary spikes)")


# ---------------------------------------------------------------- Loihi windows
def _floor_sized(node: Any, in_shape: tuple[int, ...]) -> None:
    """Refuse ``ceil_mode`` when it adds a partial window (Lava convolutions pad both sides equally)."""
    if getattr(node, "ceil_mode", False) and node.out_shape([in_shape]) != node.replace(ceil_mode=False).out_shape(
            [in_shape]):
        raise Refusal(f"{node.op} with ceil_mode=True adds a partial window on {list(in_shape[1:])}: a Loihi "
                      "convolution cannot express it; use an input size divisible by the stride or ceil_mode=False")


def _avg_window(node: ir.AvgPool, in_shape: tuple[int, ...]) -> PoolWindow:
    if any(node.padding):
        raise Refusal("average pooling with padding: its border windows cannot be folded into the next synapse "
                      "exactly; use padding=0")
    _floor_sized(node, in_shape)
    div = node.divisor_override or node.kernel_size[0] * node.kernel_size[1]
    return PoolWindow(node.kernel_size, node.stride, weight=1.0 / div)


def _sum_window(node: ir.SumPool, in_shape: tuple[int, ...]) -> PoolWindow:
    if any(node.padding):
        raise Refusal("sum pooling with padding: its border windows cannot be folded into the next synapse; use "
                      "padding=0")
    return PoolWindow(node.kernel_size, node.stride)


def _adaptive_window(node: ir.AdaptiveAvgPool, in_shape: tuple[int, ...]) -> PoolWindow:
    eq = node.as_avg_pool(in_shape)
    if eq is None:
        raise Refusal(f"adaptive average pooling from {list(in_shape[1:])} to {list(node.output_size)} has windows "
                      "of different sizes: no fixed kernel to fold into the next synapse")
    return _avg_window(eq, in_shape)


def _max_window(node: ir.MaxPool, in_shape: tuple[int, ...]) -> PoolWindow:
    _floor_sized(node, in_shape)
    return PoolWindow(node.kernel_size, node.stride, node.padding, node.dilation)



register_op(OpSpec(
    ir.MaxPool, "2-D max pooling", _exec_maxpool, modules=_adapter(nn.MaxPool2d, L.MaxPool2d, _from_maxpool),
    energy=_MAXPOOL_RULE,
    nir=NirMapping(Refused("MaxPool has no NIR primitive")),
    loihi=LoihiMapping("or", window=_max_window)))

register_op(OpSpec(
    ir.AvgPool, "2-D average pooling", _exec_avgpool, modules=_adapter(nn.AvgPool2d, L.AvgPool2d, _from_avgpool),
    energy=_POOL_RULE,
    nir=NirMapping(_nir_avgpool, {"AvgPool2d": _import_pool}),
    loihi=LoihiMapping("pool", window=_avg_window)))

register_op(OpSpec(
    ir.SumPool, "2-D sum pooling (NIR SumPool2d)", _exec_sumpool,
    modules=Refused("no torch module maps to sum pooling; it comes from NIR files"),
    energy=_POOL_RULE,
    nir=NirMapping(_nir_sumpool, {"SumPool2d": _import_pool}),
    loihi=LoihiMapping("pool", window=_sum_window)))

register_op(OpSpec(
    ir.AdaptiveAvgPool, "2-D adaptive average pooling", _exec_adaptive,
    modules=_adapter(nn.AdaptiveAvgPool2d, L.AdaptiveAvgPool2d, _from_adaptive),
    energy=OpRule("pool", item_ndim=3, fanout=adaptive_pool_fanout, note=_POOL_NOTE),
    nir=NirMapping(_nir_adaptive, import_note="exported as NIR AvgPool2d (fixed windows), which imports back as "
                                              "AvgPool"),
    loihi=LoihiMapping("pool", window=_adaptive_window)))


# ---------------------------------------------------------------- shape
def _from_flatten(m: nn.Flatten, name: str) -> ir.Flatten:
    from spikeport.converter.tracer import current_layout, step_axis

    def per_step(d: int) -> int:
        if current_layout() == "tb" and 0 <= d < 2:
            raise GraphError(f"module '{name}': Flatten(start_dim={m.start_dim}, end_dim={m.end_dim}) merges the time/"
                             "batch axes of [T, B, ...]; use spikeport.models.layers.Flatten (flattens dims >= 2), or "
                             "pass --time-layout step if the model is called once per step with [B, ...]")
        try:
            return step_axis(d, f"module '{name}': Flatten(start_dim={m.start_dim}, end_dim={m.end_dim})")
        except GraphError as e:
            raise GraphError(f"{e}; flatten only the per-sample axes") from None

    return ir.Flatten(name, start_dim=per_step(m.start_dim), end_dim=per_step(m.end_dim))


def _exec_flatten(n: ir.Flatten, _: list[Any]) -> nn.Module:
    s, e = full_axis(n.start_dim), full_axis(n.end_dim)
    return Fn(lambda x: x.flatten(s, e), f"flatten({s}, {e})")


def _exec_reshape(n: ir.Reshape, _: list[Any]) -> nn.Module:
    shape = n.shape
    return Fn(lambda x: x.reshape(x.shape[0], x.shape[1], *shape), f"reshape(T, B, {shape})")


def _nir_flatten(node: ir.Flatten, ctx: NirContext) -> Any:
    return _nir.nir().Flatten(input_type={"input": np.array(ctx.in_shapes[0])}, start_dim=node.start_dim,
                              end_dim=node.end_dim)


def _import_flatten(name: str, node: Any, ctx: NirContext) -> list[Any]:
    return [ir.Flatten(name, start_dim=int(node.start_dim), end_dim=int(node.end_dim))]


_LOIHI_FLATTEN = LoihiMapping("flatten")

register_op(OpSpec(
    ir.Flatten, "flatten per-step axes", _exec_flatten, modules=_adapter(nn.Flatten, L.Flatten, _from_flatten),
    energy=FREE, nir=NirMapping(_nir_flatten, {"Flatten": _import_flatten}), loihi=_LOIHI_FLATTEN))

register_op(OpSpec(
    ir.Reshape, "reshape the per-step tensor", _exec_reshape,
    modules=Refused("no torch module maps to Reshape; view/reshape calls are not traced (use a Flatten module)"),
    energy=FREE, nir=NirMapping(Refused("Reshape has no NIR primitive")), loihi=_LOIHI_FLATTEN))


# ---------------------------------------------------------------- element-wise arithmetic
def count_add(module: Any, node: Any, inputs: tuple[Any, ...], output: Any) -> dict[str, float]:
    """Add: one addition per position and extra nonzero operand (adding zero is free)."""
    xs = tensors(inputs)
    if len(xs) < 2:
        return {}
    n = (xs[0] != 0).to(torch.int32)  # nonzero operands per position (broadcast)
    for x in xs[1:]:
        n = n + (x != 0).to(torch.int32)
    return {"elem_adds": int((n - 1).clamp_min_(0).sum())}


def count_mul(module: Any, node: Any, inputs: tuple[Any, ...], output: Any) -> dict[str, float]:
    """Mul: one product per nonzero output; MAC cost when an operand is non-binary, else an AND (AC cost)."""
    xs = tensors(inputs)
    nz = int(torch.count_nonzero(output))
    spiking = all(value_class(x) in ("binary", "signed_binary") for x in xs)
    return {"elem_adds" if spiking else "elem_macs": nz}


def count_scale(module: Any, node: Any, inputs: tuple[Any, ...], output: Any) -> dict[str, float]:
    """Scale by a constant: one product per nonzero input."""
    xs = tensors(inputs)
    return {"elem_macs": int(torch.count_nonzero(xs[0]))} if xs else {}


def _add(*xs: torch.Tensor) -> torch.Tensor:
    y = xs[0] + xs[1]
    for x in xs[2:]:
        y = y + x
    return y


class _Scale(nn.Module):
    def __init__(self, scale: Any, rank: int) -> None:
        super().__init__()
        s = buffer(scale, rank)
        if isinstance(s, torch.Tensor):
            self.register_buffer("scale", s)
        else:
            self.scale = s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def _exec_fn(fn: Callable[..., torch.Tensor], desc: str) -> Callable[[Any, list[Any]], nn.Module]:
    return lambda n, _: Fn(fn, desc)


def _exec_concat(n: ir.Concat, _: list[Any]) -> nn.Module:
    ax = full_axis(n.axis)
    return Fn(lambda *xs: torch.cat(xs, dim=ax), f"cat(dim={ax})")


def _nir_scale(node: ir.Scale, ctx: NirContext) -> Any:
    return _nir.nir().Scale(scale=_nir.full(node.scale, ctx.shape))


def _import_scale(name: str, node: Any, ctx: NirContext) -> list[Any]:
    return [ir.Scale(name, scale=_nir.uniform_or_array(node.scale))]


_TRACED = Refused("created by the tracer from forward() code (+, *, torch.cat), not from a module")

register_op(OpSpec(
    ir.Add, "element-wise sum (residual add)", _exec_fn(_add, "add"), modules=_TRACED,
    energy=OpRule("custom", count=count_add, note="element-wise Add: one addition per extra nonzero operand"),
    nir=NirMapping(Refused("exported as several NIR edges into the consumer (NIR sums a node's inputs)"),
                   imported_by="any node with several incoming NIR edges"),
    loihi=LoihiMapping("merge")))

register_op(OpSpec(
    ir.Mul, "element-wise product", _exec_fn(lambda a, b: a * b, "mul"), modules=_TRACED,
    energy=OpRule("custom", count=count_mul,
                  note="element-wise Mul: a MAC per nonzero product when an operand is non-binary, else an AC"),
    nir=NirMapping(Refused("Mul has no NIR primitive")),
    loihi=Refused("element-wise product: no Loihi synapse multiplies two activations")))

register_op(OpSpec(
    ir.Concat, "concatenation along a per-step axis", _exec_concat, modules=_TRACED, energy=FREE,
    nir=NirMapping(Refused("Concat has no NIR primitive")),
    loihi=Refused("concatenation: a Loihi population receives the sum of its synapses; channel concatenation "
                  "would need the next synapse split by input channel, which spikeport does not lower")))

register_op(OpSpec(
    ir.Scale, "element-wise scale by a constant", lambda n, s: _Scale(n.scale, len(s[0])), modules=_TRACED,
    energy=OpRule("custom", count=count_scale, note="Scale: one MAC per nonzero input"),
    nir=NirMapping(_nir_scale, {"Scale": _import_scale}),
    loihi=Refused("element-wise scale that could not be folded into a neighbouring synapse")))

register_op(OpSpec(
    ir.ReLU, "ReLU activation (ANN layers)", lambda n, _: nn.ReLU(),
    modules=(ModuleAdapter(nn.ReLU, lambda m, name: ir.ReLU(name)),),
    energy=OpRule("activation", note="ReLU: nonzero fraction reported as the rate; no membrane updates"),
    nir=NirMapping(Refused("ReLU has no NIR primitive")),
    loihi=Refused("ReLU activation: Loihi runs spiking neurons only (convert the ANN to an SNN first)")))


# ---------------------------------------------------------------- graph I/O
def _nir_input(node: ir.Input, ctx: NirContext) -> Any:
    return _nir.nir().Input(input_type=np.array(node.shape))


def _nir_output(node: ir.Output, ctx: NirContext) -> Any:
    return _nir.nir().Output(output_type=np.array(ctx.shape))


def _import_input(name: str, node: Any, ctx: NirContext) -> list[Any]:
    return [ir.Input(name, shape=tuple(int(d) for d in np.asarray(node.input_type["input"]).ravel()),
                     index=ctx.n_inputs)]


def _import_output(name: str, node: Any, ctx: NirContext) -> list[Any]:
    return [ir.Output(name, index=ctx.n_outputs)]


_IO = Refused("graph inputs and outputs are created by the tracer, not from modules")
_LOIHI_IO = LoihiMapping("io")

register_op(OpSpec(ir.Input, "graph input", lambda n, _: nn.Identity(), modules=_IO, energy=FREE,
                   nir=NirMapping(_nir_input, {"Input": _import_input}), loihi=_LOIHI_IO))
register_op(OpSpec(ir.Output, "graph output", lambda n, _: nn.Identity(), modules=_IO, energy=FREE,
                   nir=NirMapping(_nir_output, {"Output": _import_output}), loihi=_LOIHI_IO))


# ---------------------------------------------------------------- modules that are not one IR op
for _bypassed in (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout):
    register_adapter(_bypassed)  # identities at inference: bypassed by the tracer, free for the recorder


def _record_only(cls: type, rule: OpRule) -> ModuleAdapter:
    def refuse(m: Any, name: str) -> Any:
        raise GraphError(f"module '{name}' ({cls.__name__}): no IR op represents it; spikeport can count it "
                         "(spikeport energy --no-trace) but not trace or export it")

    return ModuleAdapter(cls, refuse, energy=rule)


for _cls, _rule in ((nn.Conv3d, synapse_rule(4, conv_fanout, dense_conv)),
                    (nn.ConvTranspose1d, synapse_rule(2, autograd_fanout, dense_conv_transpose)),
                    (nn.MaxPool1d, _MAXPOOL_RULE), (nn.MaxPool3d, _MAXPOOL_RULE), (nn.Unflatten, FREE)):
    register_adapter(_record_only(_cls, _rule))
