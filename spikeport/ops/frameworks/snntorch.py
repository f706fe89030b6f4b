"""snnTorch 1.0: the ``SnnTorchLeaky`` and ``SnnTorchSynaptic`` ops and the ``Leaky``/``Synaptic`` adapters.

snnTorch neurons are called once per step with ``[B, ...]`` (time layout ``step``), in the
``init_hidden`` Sequential style or with explicit state. The step functions below follow
``snntorch/_neurons/leaky.py`` and ``synaptic.py`` operation by operation (see the node
docstrings in :mod:`spikeport.converter.ir.frameworks`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import torch

from spikeport.converter.ir import frameworks as fw
from spikeport.ops import nir_frameworks as nf
from spikeport.ops.frameworks._shared import adapter, f32, framework_rule, refuse, require_layout
from spikeport.ops.neurons import execute_neuron
from spikeport.ops.spec import NeuronDynamics, NirMapping, OpSpec, Refused, register_op

__all__ = ["SynapticState", "LEAKY", "SYNAPTIC"]

LEAKY = "snntorch._neurons.leaky.Leaky"
SYNAPTIC = "snntorch._neurons.synaptic.Synaptic"
_NEURON_BASES = ("snntorch._neurons.neurons.SpikingNeuron", "snntorch._neurons.neurons.LIF")
_METHODS = ("forward", "fire", "mem_reset", "_base_state_function", "_base_sub", "_base_zero", "_base_int",
            "_base_state_reset_zero")
_CHARGE = {"_base_sub": "subtract", "_base_zero": "zero", "_base_int": "none"}
_RESET_VAL = {0: "subtract", 1: "zero", 2: "none"}


class SynapticState(NamedTuple):
    syn: torch.Tensor
    mem: torch.Tensor


# ---------------------------------------------------------------- steps
def _clamp01(v: Any) -> Any:
    return v.clamp(0, 1) if isinstance(v, torch.Tensor) else min(max(v, 0.0), 1.0)


def _derived(p: Mapping[str, Any]) -> dict[str, Any]:
    out = {"b": _clamp01(p["beta"])}
    if "alpha" in p:
        out["a"] = _clamp01(p["alpha"])
    return out


def _fire(h: torch.Tensor, r: torch.Tensor, p: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Strict spikes ``g 1[H - thr > 0]`` and the stored membrane (``reset_delay=False`` resets at once)."""
    thr, g = p["threshold"], p["graded_spikes_factor"]
    spk = (1.0 - p["surrogate"](thr - h)) * g
    if not p["reset_delay"]:
        d = spk / g - r
        if p["reset_mechanism"] == "subtract":
            h = h - d * thr
        elif p["reset_mechanism"] == "zero":
            h = h - d * h
    return spk, h


def _leaky_step(x: torch.Tensor, mem: torch.Tensor, p: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    thr, b, mech = p["threshold"], p["b"], p["reset_mechanism"]
    r = (mem > thr).to(x.dtype)  # the reset flag from the stored membrane (snnTorch's mem_reset)
    if mech == "subtract":
        h = (b * mem + x) - r * thr
    elif mech == "zero":
        h = b * ((1 - r) * mem) + x
    else:
        h = b * mem + x
    return _fire(h, r, p)


def _synaptic_init(x: torch.Tensor, p: Mapping[str, Any]) -> SynapticState:
    return SynapticState(torch.zeros_like(x), torch.zeros_like(x))


def _synaptic_step(x: torch.Tensor, st: SynapticState, p: Mapping[str, Any]) -> tuple[torch.Tensor, SynapticState]:
    thr, mech = p["threshold"], p["reset_mechanism"]
    r = (st.mem > thr).to(x.dtype)
    syn = p["a"] * st.syn + x
    h = p["b"] * st.mem + syn
    if mech == "subtract":
        h = h - r * thr
    elif mech == "zero":
        h = h - h * r
    spk, mem = _fire(h, r, p)
    return spk, SynapticState(syn, mem)


# ---------------------------------------------------------------- adapters
def _common(m: Any, name: str) -> dict[str, Any]:
    require_layout(m, name, ("step",), "is called once per step with [B, ...] (snnTorch)")
    if getattr(m, "inhibition", False):
        raise refuse(m, name, "inhibition=True", "only the arg-max neuron may fire while the reset flag still comes "
                     "from every neuron above threshold; no IR op has this coupling")
    if getattr(m, "state_quant", False):
        raise refuse(m, name, "state_quant", "the membrane is quantized by a user function before firing")
    fn = getattr(m, "spike_grad", None)
    if fn is not None and getattr(fn, "__module__", "") != "snntorch.surrogate" and \
            getattr(fn, "__name__", "") != "_surrogate_bypass":
        raise refuse(m, name, f"spike_grad={getattr(fn, '__qualname__', fn)!r}",
                     "a custom spike function may change the forward spike (built-ins fire on mem - threshold > 0)")
    charge = _CHARGE.get(getattr(getattr(m, "state_function", None), "__name__", ""))
    val = _RESET_VAL.get(int(m.reset_mechanism_val))
    if charge is None or charge != val:
        raise refuse(m, name, f"reset_mechanism_val={int(m.reset_mechanism_val)} with state function "
                     f"{getattr(getattr(m, 'state_function', None), '__name__', '?')}",
                     "the loaded reset_mechanism_val buffer disagrees with the charge rule chosen in __init__ "
                     "(build the module with the reset_mechanism it was trained with)")
    return {"threshold": f32(m.threshold), "reset_mechanism": charge, "reset_delay": bool(m.reset_delay),
            "graded_spikes_factor": f32(m.graded_spikes_factor)}


def _from_leaky(m: Any, name: str) -> fw.SnnTorchLeaky:
    return fw.SnnTorchLeaky(name, beta=f32(m.beta), **_common(m, name))


def _from_synaptic(m: Any, name: str) -> fw.SnnTorchSynaptic:
    return fw.SnnTorchSynaptic(name, alpha=f32(m.alpha), beta=f32(m.beta), **_common(m, name))


def _unit_gsf(node: Any) -> bool:
    """Binary spikes unless a graded-spike factor other than 1 scales them."""
    return bool(np.all(np.asarray(node.graded_spikes_factor) == 1))


def _returns_tuple(m: Any) -> bool:
    """snnTorch neurons return ``spk`` with init_hidden, else ``(spk, [syn,] mem)``."""
    return bool(getattr(m, "output", False)) or not getattr(m, "init_hidden", False)


_LOIHI = Refused("snnTorch fires on mem > threshold (strict) and resets one step late by default; a Loihi float "
                 "CUBA-LIF fires on H >= V_th and resets at once")

register_op(OpSpec(
    fw.SnnTorchLeaky, "snnTorch Leaky neuron (delayed reset, strict threshold)", execute_neuron,
    modules=(adapter(LEAKY, _from_leaky, "snntorch", _METHODS, _NEURON_BASES, _returns_tuple),),
    dynamics=NeuronDynamics(("beta", "threshold", "reset_mechanism", "reset_delay", "graded_spikes_factor"),
                            _leaky_step, derived=_derived),
    energy=framework_rule(1, 3, "snnTorch Leaky", binary=False, binary_if=_unit_gsf),
    nir=NirMapping(nf.export_snntorch_leaky, {"LIF": nf.import_snntorch_leaky, "IF": nf.import_strict_if},
                   dialects={"LIF": ("snntorch",), "IF": ("snntorch", "norse", "nirtorch")}),
    loihi=_LOIHI))

register_op(OpSpec(
    fw.SnnTorchSynaptic, "snnTorch Synaptic neuron (current + membrane, delayed reset)", execute_neuron,
    modules=(adapter(SYNAPTIC, _from_synaptic, "snntorch", _METHODS, _NEURON_BASES, _returns_tuple),),
    dynamics=NeuronDynamics(("alpha", "beta", "threshold", "reset_mechanism", "reset_delay",
                             "graded_spikes_factor"), _synaptic_step, init_state=_synaptic_init, derived=_derived),
    energy=framework_rule(2, 4, "snnTorch Synaptic", binary=False, binary_if=_unit_gsf),
    nir=NirMapping(nf.export_snntorch_synaptic, {"CubaLIF": nf.import_snntorch_synaptic}, dialects=("snntorch",)),
    loihi=_LOIHI))
