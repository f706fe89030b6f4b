"""sinabs 2.0: the ``SinabsLIF`` op; adapters for ``IAF``, ``LIF``, ``IAFSqueeze``, ``LIFSqueeze`` and ``SumPool2d``.

``IAF``/``LIF`` take ``[B, T, ...]`` (time layout ``bt``); the ``Squeeze`` forms take
``[B*T, ...]`` with row ``b*T + t`` (layout ``bt-flat``). The step follows
``sinabs/layers/functional/lif.py:lif_forward_single`` and ``sinabs/activation`` operation by
operation. sinabs' default spike function ``MultiSpike`` emits integer spike *counts*.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from spikeport.converter import ir
from spikeport.converter.ir import frameworks as fw
from spikeport.errors import ExportError
from spikeport.ops import nir_frameworks as nf
from spikeport.ops.frameworks._shared import adapter, f32, framework_rule, refuse, require_layout
from spikeport.ops.neurons import execute_neuron, per_layer
from spikeport.ops.spec import (
    LoihiMapping,
    ModuleAdapter,
    NeuronDynamics,
    NirMapping,
    OpSpec,
    find_spec,
    register_adapter,
    register_op,
)

__all__ = ["SinabsState", "IAF", "IAF_SQUEEZE", "LIF", "LIF_SQUEEZE", "SUMPOOL"]

LIF = "sinabs.layers.lif.LIF"
LIF_SQUEEZE = "sinabs.layers.lif.LIFSqueeze"
IAF = "sinabs.layers.iaf.IAF"
IAF_SQUEEZE = "sinabs.layers.iaf.IAFSqueeze"
SUMPOOL = "sinabs.layers.pool2d.SumPool2d"
_BASES = ("sinabs.layers.stateful_layer.StatefulLayer", LIF, "sinabs.layers.reshape.SqueezeMixin")
_METHODS = ("forward", "alpha_mem_calculated", "alpha_syn_calculated", "squeeze_forward")


class SinabsState(NamedTuple):
    v: torch.Tensor
    i: torch.Tensor


# ---------------------------------------------------------------- step (lif_forward_single)
def _init(x: torch.Tensor, p: Mapping[str, Any]) -> SinabsState:
    return SinabsState(torch.zeros_like(x), torch.zeros_like(x))


def _step(x: torch.Tensor, st: SinabsState, p: Mapping[str, Any]) -> tuple[torch.Tensor, SinabsState]:
    alpha, thr = p["alpha_mem"], p["spike_threshold"]
    i = x if p["alpha_syn"] is None else p["alpha_syn"] * (st.i + x)
    v = alpha * st.v + ((1 - alpha) * i if p["norm_input"] else i)
    first = p["surrogate"](v - thr)  # 1[v - thr >= 0]: the single spike, and the first of a count
    if p["spike"] == "single":
        s = first
    else:
        s = (v > 0) * torch.div(v, thr, rounding_mode="trunc").float()
        if p["spike"] == "max":
            s = torch.clamp(s, max=p["max_spikes"])
    if p["reset"] == "subtract":
        v = v - s * (thr if p["subtract_value"] is None else p["subtract_value"])
    else:
        v = v * (s == 0).float() + p["reset_value"]
    if p["min_v_mem"] is not None:
        v = F.relu(v - p["min_v_mem"]) + p["min_v_mem"]
    return s, SinabsState(v, i if p["alpha_syn"] is not None else st.i)


# ---------------------------------------------------------------- adapters
def _spike_kind(m: Any, name: str) -> tuple[str, int | None]:
    fn = m.spike_fn
    if fn is None:
        raise refuse(m, name, "spike_fn=None", "the layer outputs its membrane potential (a non-spiking layer)")
    label = getattr(fn, "__qualname__", type(fn).__qualname__)
    module = getattr(fn, "__module__", "")
    if module == "sinabs.activation.spike_generation":
        if label == "MultiSpike":
            return "multi", None
        if label == "SingleSpike":
            return "single", None
        if label == "MaxSpike":
            m_max = fn.max_num_spikes_per_bin
            return ("multi", None) if m_max is None else ("max", int(m_max))
    raise refuse(m, name, f"spike_fn={label}", "only sinabs' MultiSpike, SingleSpike and MaxSpike are known")


def _reset_kind(m: Any, name: str) -> dict[str, Any]:
    fn = m.reset_fn
    label = f"{type(fn).__module__}.{type(fn).__qualname__}"
    if label == "sinabs.activation.reset_mechanism.MembraneSubtract":
        sv = fn.subtract_value
        return {"reset": "subtract", "subtract_value": None if sv is None else float(sv)}
    if label == "sinabs.activation.reset_mechanism.MembraneReset":
        return {"reset": "reset", "reset_value": float(fn.reset_value)}
    raise refuse(m, name, f"reset_fn={type(fn).__qualname__}", "only MembraneSubtract and MembraneReset are known")


def _from_sinabs(m: Any, name: str) -> fw.SinabsLIF:
    squeeze = hasattr(m, "num_timesteps")
    if squeeze:
        require_layout(m, name, ("bt-flat",), "takes [B*T, ...] with time folded into the batch (sinabs Squeeze)")
    else:
        require_layout(m, name, ("bt",), "takes [B, T, ...] (sinabs)")
    spike, max_spikes = _spike_kind(m, name)
    if m.spike_threshold is None:
        raise refuse(m, name, "spike_threshold=None", "a spiking layer needs a threshold")
    with torch.no_grad():
        alpha = f32(m.alpha_mem_calculated)
        alpha_syn = m.alpha_syn_calculated
    return fw.SinabsLIF(name, alpha_mem=alpha, spike_threshold=f32(m.spike_threshold),
                        alpha_syn=None if alpha_syn is None else f32(alpha_syn), spike=spike, max_spikes=max_spikes,
                        min_v_mem=None if m.min_v_mem is None else f32(m.min_v_mem), norm_input=bool(m.norm_input),
                        **_reset_kind(m, name))


def _from_sumpool(m: Any, name: str) -> list[Any]:
    if float(m.norm_type) != 1.0 or m.ceil_mode:
        raise refuse(m, name, f"norm_type={m.norm_type}, ceil_mode={m.ceil_mode}", "only a sum pool (norm_type 1, "
                     "floor mode) is known")
    k = (m.kernel_size, m.kernel_size) if isinstance(m.kernel_size, int) else tuple(m.kernel_size)
    s = k if m.stride is None else ((m.stride, m.stride) if isinstance(m.stride, int) else tuple(m.stride))
    area = k[0] * k[1]
    if area & (area - 1) == 0:  # lp_pool2d averages then multiplies by k*k: exactly the sum for 2^n windows
        return [ir.SumPool(name, kernel_size=k, stride=s, padding=(0, 0))]
    return [ir.AvgPool(name, kernel_size=k, stride=s, padding=(0, 0)), ir.Scale(f"{name}.area", scale=float(area))]


def _loihi(node: fw.SinabsLIF) -> Any:
    from spikeport.targets.lava.quantize import FloatNeuron

    if node.spike != "single" or node.reset != "reset" or node.reset_value != 0.0:
        raise ExportError(f"SinabsLIF: {node.spike}-spike output with {node.reset} reset (reset_value "
                          f"{node.reset_value}); a Loihi CUBA-LIF emits single spikes and resets to 0")
    if node.min_v_mem is not None or node.alpha_syn is not None:
        raise ExportError("SinabsLIF: min_v_mem clamping or a synaptic time constant has no Loihi CUBA-LIF form")
    alpha = per_layer(node, "alpha_mem")
    return FloatNeuron(per_layer(node, "spike_threshold"), v_decay=1.0 - alpha,
                       input_gain=1.0 - alpha if node.norm_input else 1.0)


_ADAPTERS = tuple(adapter(c, _from_sinabs, "sinabs", _METHODS, _BASES) for c in (LIF, IAF, LIF_SQUEEZE, IAF_SQUEEZE))

register_op(OpSpec(
    fw.SinabsLIF, "sinabs LIF/IAF neuron (multi-spike counts by default)", execute_neuron, modules=_ADAPTERS,
    dynamics=NeuronDynamics(("alpha_mem", "spike_threshold", "alpha_syn", "spike", "max_spikes", "reset",
                             "subtract_value", "reset_value", "min_v_mem", "norm_input"), _step, init_state=_init),
    energy=framework_rule(2, 2, "sinabs LIF", binary=False,
                          binary_if=lambda n: n.spike == "single" or (n.spike == "max" and n.max_spikes == 1)),
    nir=NirMapping(nf.export_sinabs_lif, {"IF": nf.import_sinabs_lif, "LIF": nf.import_sinabs_lif},
                   dialects=("sinabs",)),
    loihi=LoihiMapping("neuron", _loihi)))

_pool_spec = find_spec(ir.SumPool)
register_adapter(ModuleAdapter(SUMPOOL, _from_sumpool, known=(SUMPOOL, "torch.nn.modules.pooling.LPPool2d"),
                               energy=None if _pool_spec is None else _pool_spec.energy,
                               framework="sinabs"))
