r"""Op specs of the spiking neurons: IF, LIF, PLIF, DA-LIF, CUBA-LIF and the stateless Threshold.

Each spec declares, for its IR node type (:mod:`spikeport.converter.ir.neuron`):
the spikeport module it recognises, the executor step (the pure functions of
:mod:`spikeport.models.neurons.functional`), the op-count rule, the NIR mapping
(forward-Euler convention of :mod:`spikeport.converter.nir_io`), the ONNX
support and the Loihi 2 CUBA mapping. The NIR and Loihi mappings are tabulated in
the docstrings of :mod:`spikeport.converter.nir_io` and
:mod:`spikeport.targets.lava.quantize`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, overload

import numpy as np
import torch

from spikeport.converter import ir
from spikeport.energy.rules import OpRule
from spikeport.errors import ExportError, GraphError
from spikeport.models.neurons import functional as F
from spikeport.models.neurons import modules as N
from spikeport.ops import _nir
from spikeport.ops._torch import NeuronModule
from spikeport.ops.spec import (
    LoihiMapping,
    ModuleAdapter,
    NeuronDynamics,
    NirContext,
    NirMapping,
    OpSpec,
    Refusal,
    Refused,
    register_op,
)

__all__ = ["neuron_rule", "execute_neuron", "per_layer", "to_numpy"]


@overload
def to_numpy(t: torch.Tensor) -> np.ndarray: ...
@overload
def to_numpy(t: None) -> None: ...
@overload
def to_numpy(t: torch.Tensor | None) -> np.ndarray | None: ...
def to_numpy(t: torch.Tensor | None) -> np.ndarray | None:
    """Detached CPU numpy copy of a tensor (``None`` passes through)."""
    return None if t is None else t.detach().cpu().numpy().copy()


def neuron_rule(muls: int, adds: int, what: str) -> OpRule:
    """The op-count rule of a stateful spiking neuron (binary output; one membrane update per step)."""
    return OpRule("neuron", neuron_ops=(muls, adds), binary_output=True,
                  note=f"{what} membrane update: {muls} multiplication(s) + {adds} addition(s) incl. the threshold "
                       "compare; reset is a select (0 ops)")


def execute_neuron(node: Any, in_shapes: list[Any]) -> NeuronModule:
    """The executor module of any neuron op: loops its :class:`NeuronDynamics` over T (``OpSpec.execute``)."""
    return NeuronModule(node, in_shapes[0])


_execute = execute_neuron


def _common(m: N.SpikingNeuron) -> dict[str, Any]:
    return {"v_threshold": float(m.v_threshold), "v_reset": None if m.v_reset is None else float(m.v_reset)}


def _adapter(cls: type, convert: Any) -> tuple[ModuleAdapter, ...]:
    return (ModuleAdapter(cls, convert, known=(cls,), methods=("forward", "step"), framework="spikeport"),)


# ---------------------------------------------------------------- executor steps
def _reset(h: torch.Tensor, s: torch.Tensor, vth: Any, vr: Any) -> torch.Tensor:
    if vr is None or isinstance(vr, float):
        return F.reset(h, s, vth, vr, False)
    return h * (1.0 - s) + vr * s


def _fire_reset(h: torch.Tensor, p: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    vth = p["v_threshold"]
    s = F.fire(h, vth, p["surrogate"])
    return s, _reset(h, s, vth, p["v_reset"])


def _lif_charge(x: torch.Tensor, v: torch.Tensor, inv_tau: Any, v_leak: Any, decay_input: bool) -> torch.Tensor:
    if isinstance(v_leak, float):
        return F.lif_charge(x, v, inv_tau, v_leak, decay_input)
    if decay_input:
        return v + (x - (v - v_leak)) * inv_tau
    return v - (v - v_leak) * inv_tau + x


def _if_step(x: torch.Tensor, v: torch.Tensor, p: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    return _fire_reset(F.if_charge(x, v), p)


def _lif_step(x: torch.Tensor, v: torch.Tensor, p: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    vr = p["v_reset"]
    return _fire_reset(_lif_charge(x, v, p["inv_tau"], 0.0 if vr is None else vr, p["decay_input"]), p)


def _lif_divide_step(x: torch.Tensor, v: torch.Tensor, p: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """LIF dividing by tau, in SpikingJelly's operation order (``_ops/lif/cpu.py:_forward_impl``)."""
    vr = 0.0 if p["v_reset"] is None else p["v_reset"]
    tau = p["tau"]
    h = v + (x - (v - vr)) / tau if p["decay_input"] else v - (v - vr) / tau + x
    return _fire_reset(h, p)


def _lif_any_step(x: torch.Tensor, v: torch.Tensor, p: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    return (_lif_divide_step if p["tau_arithmetic"] == "divide" else _lif_step)(x, v, p)


def _lif_inv_tau(p: Mapping[str, Any]) -> dict[str, Any]:
    """``1/tau`` exactly as :class:`spikeport.models.neurons.LIF` computes it."""
    return {"inv_tau": 1.0 / p["tau"]}


def _start(x: torch.Tensor, p: Mapping[str, Any]) -> torch.Tensor:
    """Initial membrane: 0, or ``v_reset`` for nodes that start there (SpikingJelly)."""
    v = torch.zeros_like(x)
    if p.get("start_at_reset") and p["v_reset"] is not None:
        v = v + p["v_reset"]
    return v


def _dalif_step(x: torch.Tensor, v: torch.Tensor, p: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    return _fire_reset(F.dalif_charge(x, v, p["alpha"], p["beta"]), p)


def _cuba_init(x: torch.Tensor, p: Mapping[str, Any]) -> F.CubaState:
    return F.CubaState(torch.zeros_like(x), torch.zeros_like(x))


def _cuba_step(x: torch.Tensor, st: F.CubaState, p: Mapping[str, Any]) -> tuple[torch.Tensor, F.CubaState]:
    i, h = F.cuba_charge(x, st, p["i_decay"], p["v_decay"])
    s, v = _fire_reset(h, p)
    return s, F.CubaState(i, v)


def _threshold_step(x: torch.Tensor, st: Any, p: Mapping[str, Any]) -> tuple[torch.Tensor, Any]:
    return F.fire(x, p["threshold"], p["surrogate"]), st


# ---------------------------------------------------------------- Loihi (float CUBA-LIF, hard reset to 0)
def per_layer(node: Any, fname: str) -> float:
    """A neuron parameter as one float per layer (ExportError if it varies per channel/element)."""
    arr = np.asarray(getattr(node, fname), dtype=np.float64)
    if arr.size != 1 and not np.all(arr == arr.reshape(-1)[0]):
        raise ExportError(f"per-channel {fname} (shape {list(arr.shape)}): netx stores one neuron parameter "
                          f"value per layer")
    return float(arr.reshape(-1)[0])


def _loihi_common(node: Any) -> tuple[Any, float]:
    from spikeport.targets.lava.quantize import FloatNeuron

    reset = None if node.v_reset is None else per_layer(node, "v_reset")
    FloatNeuron.check_reset(node.op, reset)
    return FloatNeuron, per_layer(node, "v_threshold")


def _loihi_if(node: ir.IF) -> Any:
    fn, vth = _loihi_common(node)
    return fn(vth)


def _loihi_lif(node: ir.LIF) -> Any:
    fn, vth = _loihi_common(node)
    tau = per_layer(node, "tau")
    if tau < 1.0:
        raise ExportError(f"LIF: tau must be >= 1, got {tau}")
    return fn(vth, v_decay=1.0 / tau, input_gain=1.0 / tau if node.decay_input else 1.0)


def _loihi_plif(node: ir.PLIF) -> Any:
    fn, vth = _loihi_common(node)
    inv = per_layer(node, "inv_tau")
    return fn(vth, v_decay=inv, input_gain=inv if node.decay_input else 1.0)


def _loihi_dalif(node: ir.DALIF) -> Any:
    fn, vth = _loihi_common(node)
    beta, alpha = per_layer(node, "beta"), per_layer(node, "alpha")
    if not 0.0 <= beta <= 1.0 or alpha <= 0:
        raise ExportError(f"DA-LIF needs beta in [0, 1] and alpha > 0 for a Loihi CUBA neuron, got beta={beta:g}, "
                          f"alpha={alpha:g}")
    return fn(vth, v_decay=1.0 - beta, input_gain=alpha)


def _loihi_cuba(node: ir.CubaLIF) -> Any:
    fn, vth = _loihi_common(node)
    return fn(vth, v_decay=per_layer(node, "v_decay"), i_decay=per_layer(node, "i_decay"))


# ---------------------------------------------------------------- NIR (forward Euler with step dt)
def _nir_thresholds(node: Any, ctx: NirContext) -> tuple[np.ndarray, np.ndarray]:
    if node.v_reset is None:
        raise Refusal("soft reset (NIR neurons reset to v_reset)")
    if getattr(node, "start_at_reset", False) and np.any(np.asarray(node.v_reset) != 0):
        raise Refusal("a membrane starting at v_reset != 0 (NIR neurons start at 0)")
    return _nir.full(node.v_threshold, ctx.shape), _nir.full(node.v_reset, ctx.shape)


def _nir_if(node: ir.IF, ctx: NirContext) -> Any:
    vth, vr = _nir_thresholds(node, ctx)
    return _nir.nir().IF(r=np.full(ctx.shape, 1.0 / ctx.dt), v_threshold=vth, v_reset=vr)


def _nir_lif_tau(node: Any, tau: np.ndarray, ctx: NirContext) -> Any:
    vth, vr = _nir_thresholds(node, ctx)
    r = np.ones(ctx.shape) if node.decay_input else tau.copy()
    divide = getattr(node, "tau_arithmetic", "reciprocal") == "divide"  # SpikingJelly's order: read back as is
    meta = {"spikeport_op": "LIF", "tau_arithmetic": "divide"} if divide else {}
    return _nir.nir().LIF(tau=tau * ctx.dt, r=r, v_leak=vr.copy(), v_threshold=vth, v_reset=vr, metadata=meta)


def _nir_lif(node: ir.LIF, ctx: NirContext) -> Any:
    return _nir_lif_tau(node, _nir.full(node.tau, ctx.shape), ctx)


def _nir_plif(node: ir.PLIF, ctx: NirContext) -> Any:
    return _nir_lif_tau(node, 1.0 / _nir.full(node.inv_tau, ctx.shape), ctx)


def _nir_dalif(node: ir.DALIF, ctx: NirContext) -> Any:
    vth, vr = _nir_thresholds(node, ctx)
    a, b = _nir.full(node.alpha, ctx.shape), _nir.full(node.beta, ctx.shape)
    if np.any(b >= 1.0):
        raise Refusal("DALIF with beta >= 1 (no leak: infinite time constant)")
    return _nir.nir().LIF(tau=ctx.dt / (1.0 - b), r=a / (1.0 - b), v_leak=np.zeros(ctx.shape), v_threshold=vth,
                          v_reset=vr)


def _nir_cuba(node: ir.CubaLIF, ctx: NirContext) -> Any:
    vth, vr = _nir_thresholds(node, ctx)
    di, dv = _nir.full(node.i_decay, ctx.shape), _nir.full(node.v_decay, ctx.shape)
    if np.any(di <= 0) or np.any(dv <= 0):
        raise Refusal("CubaLIF with a zero decay (infinite NIR time constant)")
    return _nir.nir().CubaLIF(tau_syn=ctx.dt / di, tau_mem=ctx.dt / dv, r=1.0 / dv, v_leak=np.zeros(ctx.shape),
                              v_threshold=vth, v_reset=vr, w_in=1.0 / di)


def _nir_threshold(node: ir.Threshold, ctx: NirContext) -> Any:
    return _nir.nir().Threshold(threshold=_nir.full(node.threshold, ctx.shape))


def _vth_vr(node: Any) -> tuple[Any, Any]:
    return _nir.uniform_or_array(node.v_threshold), _nir.uniform_or_array(node.v_reset)


def _exact(ctx: NirContext) -> bool:
    return ctx.options.get("integration", "euler") == "exact"


def _check_tau(name: str, node: Any, field: str, ctx: NirContext) -> None:
    """Forward Euler needs tau >= dt (else a step overshoots the leak): GraphError naming node and field."""
    tau = np.asarray(getattr(node, field), np.float64)
    if _exact(ctx) or not np.any(tau < ctx.dt):
        return
    low = float(tau.min())
    raise GraphError(f"NIR node '{name}' ({type(node).__name__}): {field} = {low:g} s < dt = {ctx.dt:g} s; a "
                     f"forward-Euler step would overshoot (decay dt/{field} = {ctx.dt / low:g} per step). Norse's "
                     "exporter writes tau = dt * tau (read the file with --nir-from norse); otherwise pass a smaller "
                     "--dt or --integration exact")


def _decay(tau: Any, ctx: NirContext) -> Any:
    """The per-step leak fraction of time constant(s) ``tau`` (s): ``dt/tau`` (Euler) or ``1 - exp(-dt/tau)``."""
    dt = ctx.dt
    if _exact(ctx):
        return -np.expm1(-dt / np.asarray(tau, np.float64))
    s = _nir.scalar(np.asarray(tau, np.float64))
    if s is not None:
        return _nir.decode(s, lambda y: dt / y, lambda x: dt / x)
    return dt / np.asarray(tau, np.float64)


def _spikingjelly(ctx: NirContext) -> bool:
    """SpikingJelly's files: its membranes start at v_reset and its LIF divides by tau."""
    return ctx.options.get("producer") == "spikingjelly"


def _divides(node: Any, ctx: NirContext) -> bool:
    meta = getattr(node, "metadata", None) or {}
    mark = meta.get("tau_arithmetic") if meta.get("spikeport_op") is not None else None
    return _spikingjelly(ctx) or (mark.decode() if isinstance(mark, bytes) else str(mark)) == "divide"


def _import_if(name: str, node: Any, ctx: NirContext) -> list[Any]:
    vth, vr = _vth_vr(node)
    return [*_nir.gain(name, np.asarray(node.r, np.float64) * ctx.dt),
            ir.IF(name, v_threshold=vth, v_reset=vr, start_at_reset=_spikingjelly(ctx))]


def _import_lif(name: str, node: Any, ctx: NirContext) -> list[Any]:
    dt = ctx.dt
    _check_tau(name, node, "tau", ctx)
    vth, vr = _vth_vr(node)
    tau_nir, r, v_leak = (np.asarray(x, np.float64) for x in (node.tau, node.r, node.v_leak))
    leak_is_reset = np.allclose(v_leak, np.asarray(node.v_reset, np.float64), rtol=_nir.RTOL, atol=1e-12)
    if _exact(ctx):  # v <- v_leak + (v - v_leak) e^{-dt/tau} + (1 - e^{-dt/tau}) r x
        k = _decay(tau_nir, ctx)
        if leak_is_reset:
            return [*_nir.gain(name, r), ir.PLIF(name, inv_tau=_nir.uniform_or_array(k), decay_input=True,
                                                 v_threshold=vth, v_reset=vr)]
    else:
        ts = _nir.scalar(tau_nir)
        tau = _nir.decode(ts, lambda y: y / dt, lambda x: x * dt) if ts is not None else tau_nir / dt
        k = dt / tau_nir
        if leak_is_reset:
            rs, tss = _nir.scalar(r), _nir.scalar(np.asarray(tau, dtype=np.float64))
            kw = {"v_threshold": vth, "v_reset": vr, "start_at_reset": _spikingjelly(ctx),
                  "tau_arithmetic": "divide" if _divides(node, ctx) else "reciprocal"}
            if rs is not None and _nir.close(rs, 1.0):
                return [ir.LIF(name, tau=tau, decay_input=True, **kw)]
            if rs is not None and tss is not None and _nir.close(rs, tss):
                return [ir.LIF(name, tau=tau, decay_input=False, **kw)]
            return [*_nir.gain(name, r), ir.LIF(name, tau=tau, decay_input=True, **kw)]
    if np.all(v_leak == 0):  # leak towards 0 with a non-zero reset: DA-LIF form H = beta V + alpha x
        return [ir.DALIF(name, alpha=_nir.uniform_or_array(k * r), beta=_nir.uniform_or_array(1.0 - k),
                         v_threshold=vth, v_reset=vr)]
    raise GraphError(f"NIR node '{name}' (LIF): v_leak must equal v_reset or be 0 to be represented "
                     "(spikeport LIF leaks towards v_reset)")


def _import_cuba(name: str, node: Any, ctx: NirContext) -> list[Any]:
    vth, vr = _vth_vr(node)
    r, w_in, v_leak = (np.asarray(x, np.float64) for x in (node.r, node.w_in, node.v_leak))
    if np.any(v_leak != 0):
        raise GraphError(f"NIR node '{name}' (CubaLIF): v_leak must be 0 (spikeport CubaLIF has no leak potential)")
    _check_tau(name, node, "tau_syn", ctx)
    _check_tau(name, node, "tau_mem", ctx)
    di, dv = _decay(node.tau_syn, ctx), _decay(node.tau_mem, ctx)
    gain = (np.asarray(di) * w_in) * (np.asarray(dv) * r)
    return [*_nir.gain(name, gain), ir.CubaLIF(name, i_decay=_nir.uniform_or_array(di),
                                               v_decay=_nir.uniform_or_array(dv), v_threshold=vth, v_reset=vr)]


def _import_threshold(name: str, node: Any, ctx: NirContext) -> list[Any]:
    return [ir.Threshold(name, threshold=_nir.uniform_or_array(node.threshold))]


# ---------------------------------------------------------------- module adapters
def _from_if(m: N.IF, name: str) -> ir.IF:
    return ir.IF(name, **_common(m))


def _from_lif(m: N.LIF, name: str) -> ir.LIF:
    return ir.LIF(name, tau=float(m.tau), decay_input=m.decay_input, **_common(m))


def _from_plif(m: N.PLIF, name: str) -> ir.PLIF:
    with torch.no_grad():
        inv_tau = to_numpy(m.inv_tau)
    return ir.PLIF(name, inv_tau=inv_tau, decay_input=m.decay_input, **_common(m))


def _from_dalif(m: N.DALIF, name: str) -> ir.DALIF:
    with torch.no_grad():
        alpha, beta = to_numpy(m.alpha), to_numpy(m.beta)
    return ir.DALIF(name, alpha=alpha, beta=beta, **_common(m))


def _from_cuba(m: N.CubaLIF, name: str) -> ir.CubaLIF:
    return ir.CubaLIF(name, i_decay=float(m.i_decay), v_decay=float(m.v_decay), **_common(m))


# ---------------------------------------------------------------- the specs
_LIF_RULE = neuron_rule(1, 3, "LIF")
_NO_THRESHOLD_MODULE = Refused("no torch module maps to a stateless Threshold; it comes from NIR files")

register_op(OpSpec(
    ir.IF, "integrate-and-fire neuron", _execute, modules=_adapter(N.IF, _from_if),
    dynamics=NeuronDynamics(("v_threshold", "v_reset", "start_at_reset"), _if_step, init_state=_start),
    energy=neuron_rule(0, 2, "IF"),
    nir=NirMapping(_nir_if, {"IF": _import_if}),
    loihi=LoihiMapping("neuron", _loihi_if)))

register_op(OpSpec(
    ir.LIF, "leaky integrate-and-fire neuron (fixed tau)", _execute, modules=_adapter(N.LIF, _from_lif),
    dynamics=NeuronDynamics(("v_threshold", "v_reset", "tau", "decay_input", "tau_arithmetic", "start_at_reset"),
                            _lif_any_step, init_state=_start, derived=_lif_inv_tau),
    energy=_LIF_RULE,
    nir=NirMapping(_nir_lif, {"LIF": _import_lif}),
    loihi=LoihiMapping("neuron", _loihi_lif)))

register_op(OpSpec(
    ir.PLIF, "parametric LIF neuron (learned 1/tau)", _execute, modules=_adapter(N.PLIF, _from_plif),
    dynamics=NeuronDynamics(("v_threshold", "v_reset", "inv_tau", "decay_input", "start_at_reset"), _lif_step,
                            init_state=_start),
    energy=_LIF_RULE,
    nir=NirMapping(_nir_plif, import_note="exported as NIR LIF (tau = 1/inv_tau), which imports back as LIF "
                                          "with the same equation"),
    loihi=LoihiMapping("neuron", _loihi_plif)))

register_op(OpSpec(
    ir.DALIF, "dual-adaptive LIF neuron (DA-LIF)", _execute, modules=_adapter(N.DALIF, _from_dalif),
    dynamics=NeuronDynamics(("v_threshold", "v_reset", "alpha", "beta"), _dalif_step),
    energy=neuron_rule(2, 2, "DA-LIF"),
    nir=NirMapping(_nir_dalif, imported_by="LIF (nodes with v_leak = 0 and v_reset != 0)"),
    loihi=LoihiMapping("neuron", _loihi_dalif)))

register_op(OpSpec(
    ir.CubaLIF, "current-based LIF neuron (Loihi CUBA)", _execute, modules=_adapter(N.CubaLIF, _from_cuba),
    dynamics=NeuronDynamics(("v_threshold", "v_reset", "i_decay", "v_decay"), _cuba_step, init_state=_cuba_init),
    energy=neuron_rule(2, 3, "CUBA-LIF"),
    nir=NirMapping(_nir_cuba, {"CubaLIF": _import_cuba}),
    loihi=LoihiMapping("neuron", _loihi_cuba)))

register_op(OpSpec(
    ir.Threshold, "stateless spike function (NIR Threshold)", _execute, modules=_NO_THRESHOLD_MODULE,
    dynamics=NeuronDynamics(("threshold",), _threshold_step),
    energy=OpRule("activation", binary_output=True, note="Threshold: stateless spike function, rates only"),
    nir=NirMapping(_nir_threshold, {"Threshold": _import_threshold}),
    loihi=Refused("stateless threshold unit: no CUBA equivalent (use an IF neuron)")))
