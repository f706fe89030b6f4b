"""SpikingJelly 2.0 (``activation_based``): adapters for IFNode, LIFNode, ParametricLIFNode and the ``layer`` wrappers.

SpikingJelly's neurons are the built-in ops, exactly: ``IFNode`` -> :class:`~spikeport.converter.ir.IF`,
``LIFNode`` -> :class:`~spikeport.converter.ir.LIF` with ``tau_arithmetic="divide"`` (SpikingJelly
divides by tau), ``ParametricLIFNode`` -> :class:`~spikeport.converter.ir.PLIF` with
``inv_tau = sigmoid(w)`` in float32; all fire on ``H >= V_th`` and start at ``v_reset``
(``start_at_reset``; 0 for soft reset). ``v_reset=None`` is the soft reset, ``detach_reset``
only changes gradients. The CPU kernel ``spikingjelly/_ops/{if_,lif,plif}/cpu.py:_forward_impl``
is the reference.

Step modes: a module in multi-step mode (``step_mode='m'``) takes ``[T, B, ...]`` (time
layout ``tb``); in single-step mode (``'s'``, SpikingJelly's default) it is called once per
step with ``[B, ...]`` (layout ``step``). A surrogate in ``spiking=False`` mode makes the
forward output the analog surrogate and is refused.
"""

from __future__ import annotations

from typing import Any

import torch

from spikeport.converter import ir
from spikeport.ops.frameworks._shared import f32, refuse, require_layout
from spikeport.ops.layers import _from_adaptive, _from_avgpool, _from_maxpool
from spikeport.ops.spec import ModuleAdapter, register_adapter
from spikeport.ops.synapses import _from_batchnorm, _from_conv1d, _from_conv2d, _from_linear

__all__ = ["NEURONS", "LAYERS"]

_AB = "spikingjelly.activation_based"
NEURONS = {"IFNode": f"{_AB}.neuron.integrate_and_fire.IFNode", "LIFNode": f"{_AB}.neuron.lif.LIFNode",
           "ParametricLIFNode": f"{_AB}.neuron.plif.ParametricLIFNode"}
_W = f"{_AB}.layer.stateless_wrapper"
LAYERS = {"Conv1d": f"{_W}.Conv1d", "Conv2d": f"{_W}.Conv2d", "Linear": f"{_W}.Linear",
          "MaxPool2d": f"{_W}.MaxPool2d", "AvgPool2d": f"{_W}.AvgPool2d",
          "AdaptiveAvgPool2d": f"{_W}.AdaptiveAvgPool2d",
          "Flatten": f"{_W}.Flatten", "BatchNorm1d": f"{_AB}.layer.bn.BatchNorm1d",
          "BatchNorm2d": f"{_AB}.layer.bn.BatchNorm2d", "SeqToANNContainer": f"{_AB}.layer.container.SeqToANNContainer",
          "Dropout": f"{_AB}.layer.dropout.Dropout"}
_NEURON_BASES = (f"{_AB}.neuron.base_node.BaseNode", f"{_AB}.base.MemoryModule")
_NEURON_METHODS = ("forward", "single_step_forward", "multi_step_forward", "neuronal_charge", "neuronal_fire",
                   "neuronal_reset", "single_step_functional_forward", "multi_step_functional_forward",
                   "materialize_states")
_MODE_LAYOUT = {"m": "tb", "s": "step"}


def _step_mode(m: Any, name: str) -> None:
    mode = getattr(m, "step_mode", "s")
    layout = _MODE_LAYOUT.get(mode)
    if layout is None:
        raise refuse(m, name, f"step_mode={mode!r}", "expected 's' or 'm'")
    what = ("is in multi-step mode (step_mode='m', input [T, B, ...])" if mode == "m" else
            "is in single-step mode (step_mode='s', called once per step with [B, ...])")
    require_layout(m, name, (layout,), what)


def _neuron_common(m: Any, name: str) -> dict[str, Any]:
    _step_mode(m, name)
    fn = getattr(m, "surrogate_function", None)
    if fn is not None:
        if type(fn).__module__ != f"{_AB}.surrogate":
            raise refuse(m, name, f"surrogate_function={type(fn).__qualname__}",
                         "a custom surrogate's forward decides the spikes (SpikingJelly's built-ins fire on "
                         "H - V_th >= 0)")
        if not getattr(fn, "spiking", True):
            raise refuse(m, name, f"surrogate_function={type(fn).__qualname__}(spiking=False)",
                         "the forward outputs the analog surrogate instead of spikes")
    if getattr(m, "_neuron_precision", None) is not None:
        raise refuse(m, name, "neuron precision", "a reduced-precision neuron state (Triton kernels)")
    vth, vr = m.v_threshold, m.v_reset
    if isinstance(vth, torch.Tensor) or (vr is not None and isinstance(vr, torch.Tensor)):
        raise refuse(m, name, "tensor v_threshold/v_reset", "SpikingJelly's kernels take python floats")
    return {"v_threshold": float(vth), "v_reset": None if vr is None else float(vr), "start_at_reset": True}


def _from_if(m: Any, name: str) -> ir.IF:
    return ir.IF(name, **_neuron_common(m, name))


def _from_lif(m: Any, name: str) -> ir.LIF:
    common = _neuron_common(m, name)
    if not isinstance(m.tau, (int, float)) or isinstance(m.tau, bool):
        raise refuse(m, name, f"tau={m.tau!r}", "LIFNode's tau is a python float")
    return ir.LIF(name, tau=float(m.tau), decay_input=bool(m.decay_input), tau_arithmetic="divide", **common)


def _from_plif(m: Any, name: str) -> ir.PLIF:
    common = _neuron_common(m, name)
    with torch.no_grad():
        inv_tau = f32(m.w.detach().float().sigmoid())
    return ir.PLIF(name, inv_tau=inv_tau, decay_input=bool(m.decay_input), **common)


# ---------------------------------------------------------------- layer wrappers
def _layer(convert: Any) -> Any:
    def run(m: Any, name: str) -> Any:
        _step_mode(m, name)
        return convert(m, name)

    return run


def _from_flatten(m: Any, name: str) -> ir.Flatten:
    _step_mode(m, name)  # both modes flatten each sample: dims count from the sample's first axis
    start, end = int(m.start_dim), int(m.end_dim)
    if start == 0 or end == 0:
        raise refuse(m, name, f"Flatten(start_dim={start}, end_dim={end})", "it merges the batch axis")
    return ir.Flatten(name, start_dim=start - 1 if start > 0 else start, end_dim=end - 1 if end > 0 else end)


def _from_seq_to_ann(m: Any, name: str) -> list[Any]:
    """SeqToANNContainer applies its children to [T*B, ...]: each child is a per-step layer."""
    from spikeport.converter.tracer import convert_module, layout_scope

    require_layout(m, name, ("tb",), "is a multi-step container (input [T, B, ...])")
    nodes: list[Any] = []
    with layout_scope("step"):
        for child_name, child in m.named_children():
            nodes += convert_module(child, f"{name}.{child_name}" if name else child_name)
    return nodes


def _neuron_adapter(cls: str, convert: Any, op: type) -> ModuleAdapter:
    return ModuleAdapter(cls, convert, known=(cls, *_NEURON_BASES), methods=_NEURON_METHODS,
                         framework="spikingjelly", op=op)


def _layer_adapter(kind: str, convert: Any, op: type | None, torch_base: str) -> ModuleAdapter:
    return ModuleAdapter(LAYERS[kind], convert, known=(LAYERS[kind], torch_base, f"{_AB}.base.StepModule"),
                         framework="spikingjelly", op=op)


for _adapter in (
        _neuron_adapter(NEURONS["IFNode"], _from_if, ir.IF),
        _neuron_adapter(NEURONS["LIFNode"], _from_lif, ir.LIF),
        _neuron_adapter(NEURONS["ParametricLIFNode"], _from_plif, ir.PLIF),
        _layer_adapter("Conv1d", _layer(_from_conv1d), ir.Conv1d, "torch.nn.modules.conv.Conv1d"),
        _layer_adapter("Conv2d", _layer(_from_conv2d), ir.Conv2d, "torch.nn.modules.conv.Conv2d"),
        _layer_adapter("Linear", _layer(_from_linear), ir.Linear, "torch.nn.modules.linear.Linear"),
        _layer_adapter("BatchNorm1d", _layer(_from_batchnorm), ir.BatchNorm, "torch.nn.modules.batchnorm.BatchNorm1d"),
        _layer_adapter("BatchNorm2d", _layer(_from_batchnorm), ir.BatchNorm, "torch.nn.modules.batchnorm.BatchNorm2d"),
        _layer_adapter("MaxPool2d", _layer(_from_maxpool), ir.MaxPool, "torch.nn.modules.pooling.MaxPool2d"),
        _layer_adapter("AvgPool2d", _layer(_from_avgpool), ir.AvgPool, "torch.nn.modules.pooling.AvgPool2d"),
        _layer_adapter("AdaptiveAvgPool2d", _layer(_from_adaptive), ir.AdaptiveAvgPool,
                       "torch.nn.modules.pooling.AdaptiveAvgPool2d"),
        _layer_adapter("Flatten", _from_flatten, ir.Flatten, "torch.nn.modules.flatten.Flatten"),
        _layer_adapter("SeqToANNContainer", _from_seq_to_ann, None, "torch.nn.modules.container.Sequential"),
):
    register_adapter(_adapter)
register_adapter(LAYERS["Dropout"])  # identity at inference
