"""Norse 1.1: the ``NorseLIF`` and ``NorseLIFBox`` ops; adapters for ``LIFCell``, ``LIF``, ``LIFBoxCell`` and
``SequentialState``.

Cells are called once per step with ``[B, ...]`` and an explicit state (time layout ``step``);
``LIF`` takes the whole ``[T, B, ...]`` sequence (layout ``tb``). Norse 1.1 has no sequence
``LIFBox`` module (only the cell). Norse keeps its parameters in ``module.p`` (a NamedTuple of
tensors, not in the state_dict) and ``module.dt``: the adapters read both from the module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch

from spikeport.converter.ir import frameworks as fw
from spikeport.ops import nir_frameworks as nf
from spikeport.ops.frameworks._shared import adapter, f32, framework_rule, refuse, require_layout
from spikeport.ops.neurons import execute_neuron
from spikeport.ops.spec import (
    ModuleAdapter,
    NeuronDynamics,
    NirMapping,
    OpSpec,
    Refused,
    register_adapter,
    register_op,
)

__all__ = ["NorseState", "LIF_CELL", "LIF_SEQ", "LIFBOX_CELL", "SEQUENTIAL_STATE"]

LIF_CELL = "norse.torch.module.lif.LIFCell"
LIF_SEQ = "norse.torch.module.lif.LIF"
LIFBOX_CELL = "norse.torch.module.lif_box.LIFBoxCell"
SEQUENTIAL_STATE = "norse.torch.module.sequential.SequentialState"
_SNN_BASES = ("norse.torch.module.snn.SNNCell", "norse.torch.module.snn.SNN")
_METHODS = ("forward", "initial_state")
_METHODS_OK = ("heaviside", "super", "triangle", "tanh", "circ", "heavi_erfc", "adjoint")


class NorseState(NamedTuple):
    v: torch.Tensor
    i: torch.Tensor


# ---------------------------------------------------------------- steps (norse/torch/functional/lif.py, lif_box.py)
def _spike(h: torch.Tensor, p: Mapping[str, Any]) -> torch.Tensor:
    return 1.0 - p["surrogate"](p["v_th"] - h)  # Norse: heaviside(h - v_th) = 1[h - v_th > 0]


def _lif_init(x: torch.Tensor, p: Mapping[str, Any]) -> NorseState:
    return NorseState(torch.zeros_like(x) + p["v_leak"], torch.zeros_like(x))


def _lif_step(x: torch.Tensor, st: NorseState, p: Mapping[str, Any]) -> tuple[torch.Tensor, NorseState]:
    dt = p["dt"]
    j = st.i + x
    h = st.v + dt * p["tau_mem_inv"] * ((p["v_leak"] - st.v) + j)
    i = j + -dt * p["tau_syn_inv"] * j
    z = _spike(h, p)
    return z, NorseState((1 - z) * h + z * p["v_reset"], i)


def _box_init(x: torch.Tensor, p: Mapping[str, Any]) -> torch.Tensor:
    return torch.zeros_like(x) + p["v_leak"]


def _box_step(x: torch.Tensor, v: torch.Tensor, p: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    h = v + p["dt"] * p["tau_mem_inv"] * (x + p["v_leak"] - v)
    z = _spike(h, p)
    if p["reset"] == "subtract":
        return z, (1 - z) * h + z * (h - p["v_th"])
    return z, (1 - z) * h + z * p["v_reset"]


# ---------------------------------------------------------------- adapters
def _params(m: Any, name: str, fields: tuple[str, ...]) -> dict[str, Any]:
    p = m.p
    method = getattr(p, "method", "super")
    if method not in _METHODS_OK:
        raise refuse(m, name, f"p.method={method!r}", f"unknown threshold method (known: {', '.join(_METHODS_OK)})")
    dt = getattr(m, "dt", None)
    if not isinstance(dt, (int, float)) or isinstance(dt, bool):
        raise refuse(m, name, f"dt={dt!r}", "dt must be a python number")
    return {"dt": float(dt), **{f: f32(getattr(p, f)) for f in fields}}


_LIF_FIELDS = ("tau_syn_inv", "tau_mem_inv", "v_leak", "v_th", "v_reset")


def _from_lif_cell(m: Any, name: str) -> fw.NorseLIF:
    require_layout(m, name, ("step",), "is a cell called once per step with [B, ...] and its state (Norse LIFCell)")
    return fw.NorseLIF(name, **_params(m, name, _LIF_FIELDS))


def _from_lif_seq(m: Any, name: str) -> fw.NorseLIF:
    require_layout(m, name, ("tb",), "takes the whole sequence [T, B, ...] (Norse LIF)")
    return fw.NorseLIF(name, **_params(m, name, _LIF_FIELDS))


def _from_box_cell(m: Any, name: str) -> fw.NorseLIFBox:
    require_layout(m, name, ("step",), "is a cell called once per step with [B, ...] and its state (Norse LIFBoxCell)")
    fn = getattr(m.p, "reset_method", None)
    kinds = {"norse.torch.functional.reset.reset_value": "value",
             "norse.torch.functional.reset.reset_subtract": "subtract"}
    kind = kinds.get(f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', '')}")
    if kind is None:
        raise refuse(m, name, f"p.reset_method={getattr(fn, '__qualname__', fn)!r}",
                     "only norse's reset_value and reset_subtract are known")
    return fw.NorseLIFBox(name, reset=kind, **_params(m, name, ("tau_mem_inv", "v_leak", "v_th", "v_reset")))


def _from_sequential_state(m: Any, name: str) -> list[Any]:
    """A SequentialState is a chain: each child converted in order (its states are the nodes' states)."""
    from spikeport.converter.tracer import convert_module

    nodes: list[Any] = []
    for child_name, child in m.named_children():
        nodes += convert_module(child, f"{name}.{child_name}" if name else child_name)
    if not nodes:
        raise refuse(m, name, "an empty SequentialState", "nothing to convert")
    return nodes


_LOIHI = Refused("Norse fires on H > v_th (strict) and its membrane starts at v_leak; a Loihi float CUBA-LIF fires "
                 "on H >= V_th from 0")

register_op(OpSpec(
    fw.NorseLIF, "Norse LIF neuron (current jump first, strict threshold)", execute_neuron,
    modules=(adapter(LIF_CELL, _from_lif_cell, "norse", _METHODS, _SNN_BASES, True),
             adapter(LIF_SEQ, _from_lif_seq, "norse", _METHODS, _SNN_BASES, True)),
    dynamics=NeuronDynamics(("tau_syn_inv", "tau_mem_inv", "v_leak", "v_th", "v_reset", "dt"), _lif_step,
                            init_state=_lif_init),
    energy=framework_rule(2, 6, "Norse LIF", binary=True),
    nir=NirMapping(nf.export_norse_lif, {"CubaLIF": nf.import_norse_lif}, dialects=("norse", "nirtorch")),
    loihi=_LOIHI))

register_op(OpSpec(
    fw.NorseLIFBox, "Norse LIFBox neuron (no synaptic current, strict threshold)", execute_neuron,
    modules=(adapter(LIFBOX_CELL, _from_box_cell, "norse", _METHODS, _SNN_BASES, True),),
    dynamics=NeuronDynamics(("tau_mem_inv", "v_leak", "v_th", "v_reset", "dt", "reset"), _box_step,
                            init_state=_box_init),
    energy=framework_rule(1, 4, "Norse LIFBox", binary=True),
    nir=NirMapping(nf.export_norse_lifbox, {"LIF": nf.import_norse_lifbox}, dialects=("norse", "nirtorch")),
    loihi=_LOIHI))

register_adapter(ModuleAdapter(SEQUENTIAL_STATE, _from_sequential_state, known=(SEQUENTIAL_STATE,),
                               framework="norse", tuple_output=True))
