"""lava-dl 0.6 SLAYER: the ``SlayerCUBA`` op and the adapters of the CUBA blocks (``slayer.block.cuba``).

SLAYER tensors put time last (``[B, C, T]``, ``[B, C, H, W, T]``: time layout ``time-last``).
A block is ``synapse -> neuron -> one-step delay``; each becomes IR nodes:

=========  =====================================================================================
block      IR nodes
=========  =====================================================================================
Dense      ``SlayerDense`` (8-bit quantized weights) -> ``SlayerCUBA`` -> ``Delay(1)``
Conv       ``Conv2d`` (quantized ``weight[..., 0]``) -> ``SlayerCUBA`` -> ``Delay(1)``
Pool       ``SlayerPool`` (sum) [-> ``Scale`` by the quantized pool weight] -> ``SlayerCUBA`` -> ``Delay(1)``
Input      ``Quantize`` (the data itself, 8-bit grid) [-> ``Scale``] -> ``SlayerCUBA`` -> ``Delay(1)``
Flatten    ``Flatten``
=========  =====================================================================================

The weights pass through the block's 8-bit pre-hook at every SLAYER forward; it is
deterministic, so it is applied once here with the block's own ``quantize_8bit``. The
``Delay`` is omitted for ``delay_shift=False``. The neuron follows the CPU path of SLAYER
(integer arithmetic, see :class:`~spikeport.converter.ir.frameworks.SlayerCUBA`); SLAYER's CUDA
kernel compares and resets differently at exact threshold ties.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch

from spikeport.converter import ir
from spikeport.converter.ir import frameworks as fw
from spikeport.ops import nir_frameworks as nf
from spikeport.ops.frameworks._shared import (
    delay_nodes,
    f32,
    framework_rule,
    refuse,
    require_layout,
    scalar,
)
from spikeport.ops.neurons import execute_neuron
from spikeport.ops.spec import (
    ModuleAdapter,
    NeuronDynamics,
    NirMapping,
    OnnxSupport,
    OpSpec,
    Refused,
    register_adapter,
    register_op,
)

__all__ = ["SlayerState", "BLOCKS"]

_PKG = "lava.lib.dl.slayer.block"
BLOCKS = {kind: f"{_PKG}.cuba.{kind}" for kind in ("Dense", "Conv", "Pool", "Input", "Flatten")}
_BASES = {kind: f"{_PKG}.base.Abstract{kind}" for kind in ("Dense", "Conv", "Pool", "Input", "Flatten")}


class SlayerState(NamedTuple):
    i: torch.Tensor  # int64, units of 1/state_scale
    v: torch.Tensor


# ---------------------------------------------------------------- step (leaky_integrator._li_dynamics_fwd, Spike)
def _init(x: torch.Tensor, p: Mapping[str, Any]) -> SlayerState:
    z = torch.zeros(x.shape, dtype=torch.int64, device=x.device)
    return SlayerState(z, z.clone())


def _shift12(a: torch.Tensor) -> torch.Tensor:
    """``a >> 12`` rounding toward zero (SLAYER's right_shift_to_zero)."""
    return torch.div(a, 4096, rounding_mode="trunc")


def _step(x: torch.Tensor, st: SlayerState, p: Mapping[str, Any]) -> tuple[torch.Tensor, SlayerState]:
    s_scale = p["state_scale"]
    th = p["threshold"] + 0.01 / s_scale  # SLAYER's threshold + threshold_eps
    i = _shift12(st.i * (4096 - p["current_decay"])) + (s_scale * x).to(torch.int64)
    current = (i / s_scale).to(x.dtype)  # the float current SLAYER hands to the voltage integrator
    v = _shift12(st.v * (4096 - p["voltage_decay"])) + (s_scale * current).to(torch.int64)
    fired = v >= th * s_scale  # the reset condition, on the integer state
    volt = (v / s_scale).to(x.dtype)
    s = p["surrogate"](volt - th)  # Spike.forward: 1[voltage >= threshold + eps]
    if p["graded"]:
        s = s * volt
    return s, SlayerState(i, v * (fired < 0.5))


# ---------------------------------------------------------------- adapters
def _block_checks(b: Any, name: str) -> None:
    require_layout(b, name, ("time-last",), "takes time-last tensors [B, ..., T] (SLAYER)")
    if getattr(b, "count_log", False):
        raise refuse(b, name, "count_log=True", "the block returns (output, event rate) tuples; build it with "
                     "count_log=False for inference")
    if getattr(b, "delay", None) is not None:
        raise refuse(b, name, "delay=True", "a learnable per-channel axonal delay has no IR op yet")


def _neuron(b: Any, name: str) -> fw.SlayerCUBA:
    n = b.neuron
    where = f"{name}.neuron"
    if type(n).__module__ + "." + type(n).__qualname__ != "lava.lib.dl.slayer.neuron.cuba.Neuron":
        raise refuse(n, where, f"neuron {type(n).__qualname__}", "only the CUBA neuron (slayer.neuron.cuba) is known")
    if getattr(n, "shared_param", True) is not True:
        raise refuse(n, where, "shared_param=False", "per-channel decays are drawn at random on the first forward")
    if getattr(n, "norm", None) is not None:
        raise refuse(n, where, "norm", "a normalisation between the current and voltage integrators")
    if int(n.p_scale) != 4096:
        raise refuse(n, where, f"p_scale={n.p_scale}", "the CPU dynamics shift decays by 12 bits (p_scale 4096)")
    decays = {}
    for key in ("current_decay", "voltage_decay"):
        d = getattr(n, key).detach().float()
        if getattr(n, "requires_grad", False):
            d = d.clamp(0, 4096)  # SLAYER clamps in place before each forward when learning is enabled
        d = torch.round(d)
        if d.numel() != 1 or not 0 <= float(d) <= 4096:
            raise refuse(n, where, f"{key}={d.tolist()}", "must be one value in [0, 4096] (x 4096)")
        decays[key] = int(d)
    return fw.SlayerCUBA(where, threshold=float(n.threshold), state_scale=int(n.s_scale),
                         graded=bool(n.graded_spike), **decays)


def _weight(b: Any, name: str) -> torch.Tensor:
    """The synapse weight SLAYER applies: weight norm and mask resolved, the 8-bit pre-hook applied."""
    syn = b.synapse
    if getattr(syn, "complex", False):
        raise refuse(b, name, "a complex synapse", "complex weights have no IR op")
    w = None
    for hook in syn._forward_pre_hooks.values():  # weight_norm recomputes `weight` before each forward
        if hasattr(hook, "compute_weight"):
            w = hook.compute_weight(syn)
    w = (syn.weight if w is None else w).detach().float()
    mask = getattr(b, "mask", None)
    if mask is not None:
        w = w * mask
    fx = syn._pre_hook_fx
    if fx is None:
        return w
    if fx != b.neuron.quantize_8bit:
        raise refuse(b, name, "pre_hook_fx", "a custom weight pre-hook (only the neuron's quantize_8bit is known)")
    with torch.no_grad():
        return fx(w).detach()


def _spatial(syn: Any, b: Any, name: str) -> dict[str, tuple[int, int]]:
    out = {}
    for key, last in (("stride", 1), ("padding", 0), ("dilation", 1)):
        v = tuple(int(a) for a in getattr(syn, key))
        if v[2] != last:
            raise refuse(b, name, f"synapse {key}={v}", "an operation along the time axis")
        out[key] = (v[0], v[1])
    return out


def _tail(b: Any, name: str) -> list[Any]:
    return [_neuron(b, name), *delay_nodes(name, 1 if b.delay_shift else 0)]


def _from_dense(b: Any, name: str) -> list[Any]:
    _block_checks(b, name)
    w = _weight(b, name)
    if tuple(w.shape[2:]) != (1, 1, 1):
        raise refuse(b, name, f"weight shape {list(w.shape)}", "a Dense synapse has 1x1x1 kernels")
    bias = b.synapse.bias
    syn = fw.SlayerDense(f"{name}.synapse", weight=f32(w.reshape(w.shape[0], -1)),
                         bias=None if bias is None else f32(bias))
    return [syn, *_tail(b, name)]


def _from_conv(b: Any, name: str) -> list[Any]:
    _block_checks(b, name)
    w = _weight(b, name)
    if w.shape[-1] != 1:
        raise refuse(b, name, f"kernel {list(w.shape[2:])}", "a kernel along the time axis")
    sp = _spatial(b.synapse, b, name)
    bias = b.synapse.bias
    conv = ir.Conv2d(f"{name}.synapse", weight=f32(w[..., 0]), bias=None if bias is None else f32(bias),
                     groups=int(b.synapse.groups), **sp)
    return [conv, *_tail(b, name)]


def _from_pool(b: Any, name: str) -> list[Any]:
    _block_checks(b, name)
    w = _weight(b, name)
    vals = torch.unique(w)
    if vals.numel() != 1 or b.synapse.bias is not None:
        raise refuse(b, name, "pool weights", "a SLAYER pool has one shared weight and no bias")
    sp = _spatial(b.synapse, b, name)
    if sp["dilation"] != (1, 1):
        raise refuse(b, name, f"dilation={sp['dilation']}", "dilated pooling")
    nodes: list[Any] = [fw.SlayerPool(f"{name}.synapse", kernel_size=(w.shape[2], w.shape[3]), stride=sp["stride"],
                                      padding=sp["padding"])]
    if float(vals) != 1.0:
        nodes.append(ir.Scale(f"{name}.weight", scale=float(vals)))
    return [*nodes, *_tail(b, name)]


def _from_input(b: Any, name: str) -> list[Any]:
    _block_checks(b, name)
    if b.neuron is None:
        return delay_nodes(name, 1 if b.delay_shift else 0)
    if getattr(b, "bias", None) is not None:
        raise refuse(b, name, "bias", "the Input block's learnable offset: no IR op adds a constant")
    scale = int(b.neuron.w_scale)
    nodes: list[Any] = [fw.Quantize(f"{name}.quantize", step=2 / scale, minimum=-256 / scale, maximum=254 / scale)]
    if getattr(b, "weight", None) is not None:
        with torch.no_grad():
            nodes.append(ir.Scale(f"{name}.weight", scale=scalar(b.neuron.quantize_8bit(b.weight))))
    return [*nodes, *_tail(b, name)]


def _from_flatten(b: Any, name: str) -> list[Any]:
    require_layout(b, name, ("time-last",), "takes time-last tensors [B, ..., T] (SLAYER)")
    if getattr(b, "count_log", False):
        raise refuse(b, name, "count_log=True", "the block returns (output, None) tuples")
    return [ir.Flatten(name, start_dim=0, end_dim=-1)]


def _block_adapter(kind: str, convert: Any) -> ModuleAdapter:
    return ModuleAdapter(BLOCKS[kind], convert, known=(BLOCKS[kind], _BASES[kind]), framework="lava-dl",
                         energy=Refused("a SLAYER block expands to several IR nodes; its energy is measured on the "
                                        "traced graph"))


register_op(OpSpec(
    fw.SlayerCUBA, "lava-dl SLAYER CUBA neuron (Loihi integer dynamics)", execute_neuron,
    modules=Refused("created by the SLAYER block adapters (a cuba.Neuron is part of a block)"),
    dynamics=NeuronDynamics(("current_decay", "voltage_decay", "threshold", "state_scale", "graded"), _step,
                            init_state=_init),
    energy=framework_rule(2, 3, "SLAYER CUBA", binary=False, binary_if=lambda n: not n.graded),
    nir=NirMapping(nf.export_slayer_cuba, {"CubaLIF": nf.import_slayer_cuba}, dialects=("lava-dl",)),
    onnx=OnnxSupport(stream=Refused("int64 neuron state: the streaming ONNX graph carries float32 state tensors")),
    loihi=Refused("SLAYER CUBA is Loihi's integer neuron; a float CUBA-LIF does not reproduce its integer rounding "
                  "(an integer-exact lowering belongs to the Lava graph target)")))

for _kind, _fn in (("Dense", _from_dense), ("Conv", _from_conv), ("Pool", _from_pool), ("Input", _from_input),
                   ("Flatten", _from_flatten)):
    register_adapter(_block_adapter(_kind, _fn))
