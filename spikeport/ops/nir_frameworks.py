r"""NIR mappings of the framework neuron ops (snnTorch, Norse, sinabs, lava-dl SLAYER) and of ``Delay``.

**Export.** Each op is written as the NIR node whose equations, at the file's step ``dt`` with forward
Euler, give the op's charge. What NIR cannot state (a delayed or subtractive reset, multi-spike outputs,
fixed-point arithmetic, a membrane starting at ``v_leak``) goes into the node's metadata
(``spikeport_op`` and the op's fields), from which spikeport reads the node back exactly;
``nir_faithful = False`` (with ``nir_note``) makes exports for other importers refuse the node, except
for the importers listed in ``readable_by`` (they read it exactly, e.g. sinabs' own IAF).

**Import.** Under a producer preset (``NirContext.options["producer"]``) each importer reads the
producer's own file convention, as :mod:`spikeport.converter.nir_io.dialects` describes:

==============  ==================================================================================
NIR node        becomes
==============  ==================================================================================
``snntorch``    LIF -> :class:`SnnTorchLeaky` (``beta = 1 - dt/tau`` recovered to snnTorch's float32,
                the reset the preset assumes), CubaLIF -> :class:`SnnTorchSynaptic`, IF -> a Leaky
                with ``beta = 1``
``norse``       LIF -> :class:`NorseLIFBox`, CubaLIF -> :class:`NorseLIF` with Norse's exporter's
                ``tau = dt / tau_inv`` (``tau_inv = dt / tau``, float32), IF -> ``v += x`` (a Leaky with
                ``beta = 1``, zero reset: Norse's ``IAFCell`` ignores ``r``)
``sinabs``      IF, LIF -> :class:`SinabsLIF` (multi-spike, subtract; LIF ``alpha = exp(-dt/tau)`` in
                float32 with normalised input, sinabs' defaults)
``lava-dl``     CubaLIF -> :class:`SlayerCUBA` (decays ``round(4096 dt/tau)``)
``nirtorch``    NIR's own text with a strict ``v > v_threshold``: LIF -> NorseLIFBox, CubaLIF ->
                NorseLIF (both plain NIR Euler or exact steps at ``dt``), IF -> a Leaky with ``beta = 1``
                and zero reset
==============  ==================================================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from spikeport.converter import ir
from spikeport.errors import GraphError
from spikeport.ops import _nir
from spikeport.ops.spec import NirContext, Refusal

__all__ = ["export_snntorch_leaky", "import_snntorch_leaky", "import_strict_if", "export_snntorch_synaptic",
           "import_snntorch_synaptic", "export_norse_lif", "import_norse_lif", "export_norse_lifbox",
           "import_norse_lifbox", "export_sinabs_lif", "import_sinabs_lif", "export_slayer_cuba", "import_slayer_cuba",
           "export_delay", "import_delay", "UNIT_GAIN_RTOL"]

UNIT_GAIN_RTOL = 1e-6
"""An input gain within this of 1 is 1: a producer's float32 ``r = tau / dt`` (snnTorch writes 9.999997)."""


# ---------------------------------------------------------------- helpers
def _a(v: Any) -> np.ndarray:
    return np.asarray(v, dtype=np.float64)


def _meta(node: Any) -> Mapping[str, Any]:
    m = getattr(node, "metadata", None)
    return m if isinstance(m, Mapping) and m.get("spikeport_op") is not None else {}


def _value(m: Mapping[str, Any], key: str, default: Any) -> Any:
    """A metadata value as a python object (``nir.read`` gives numpy scalars and bytes)."""
    v = m.get(key, default)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.ndim == 0 or isinstance(v, np.generic):
        return v.item()
    return v


def _named(node: Any, op: str, **fields: Any) -> dict[str, Any]:
    return {"spikeport_op": op, **fields}


def _param(v: Any) -> Any:
    """A parameter for a framework node: a float when uniform, else a float32 array."""
    s = _nir.scalar(np.asarray(v, dtype=np.float64))
    return s if s is not None else np.asarray(v, dtype=np.float32)


def _gain(name: str, g: Any) -> list[Any]:
    """A Scale node for an input gain other than 1 (within :data:`UNIT_GAIN_RTOL`)."""
    arr = _a(g)
    if np.allclose(arr, 1.0, rtol=UNIT_GAIN_RTOL, atol=0):
        return []
    return _nir.gain(name, arr)


def _snap32(target: np.ndarray, guess: np.ndarray, forward: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Per element, the float32 ``x`` within a few ulps of ``guess`` whose ``forward(x)`` is closest to ``target``
    (recovers a producer's float32 parameter from the value its exporter derived from it)."""
    g = np.asarray(guess, dtype=np.float32)
    cands = [g]
    lo = hi = g
    for _ in range(3):
        lo, hi = np.nextafter(lo, np.float32(-np.inf)), np.nextafter(hi, np.float32(np.inf))
        cands += [lo, hi]
    stack = np.stack(cands)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        err = np.abs(forward(stack.astype(np.float64)) - _a(target)[None])
    err = np.where(np.isfinite(err), err, np.inf)
    idx = np.argmin(err, axis=0)
    return np.take_along_axis(stack, idx[None], 0)[0]


def _zero(name: str, node: Any, key: str, who: str) -> None:
    v = getattr(node, key, None)
    if v is not None and np.any(_a(v) != 0):
        raise GraphError(f"NIR node '{name}' ({type(node).__name__}): {key} = {_a(v).ravel()[0]:g} != 0; {who} "
                         "(read the file with another --nir-from)")


def _full(v: Any, ctx: NirContext) -> np.ndarray:
    return _nir.full(np.asarray(v, dtype=np.float64) if not isinstance(v, float) else v, ctx.shape)


def _not_faithful(note: str, readable_by: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"nir_faithful": False, "nir_note": note, "readable_by": ",".join(readable_by)}


def _producer(ctx: NirContext) -> str:
    return str(ctx.options.get("producer", "spikeport"))


def _exact(ctx: NirContext) -> bool:
    return ctx.options.get("integration", "euler") == "exact"


def _decay(tau: Any, ctx: NirContext) -> np.ndarray:
    """Leak fraction per step of NIR time constants: ``dt/tau`` (Euler) or ``1 - exp(-dt/tau)`` (exact)."""
    t = _a(tau)
    return -np.expm1(-ctx.dt / t) if _exact(ctx) else ctx.dt / t


def _note(ctx: NirContext, text: str) -> None:
    notes = ctx.options.get("notes")
    if isinstance(notes, list):
        notes.append(text)


# ---------------------------------------------------------------- snnTorch
def _snn_beta(tau: Any, dt: float) -> np.ndarray:
    """snnTorch's float32 ``beta`` from ``tau = dt / (1 - beta)``."""
    t = _a(tau)
    return _snap32(t, 1.0 - dt / t, lambda b: dt / (1.0 - b))


def _snn_reset(node: Any, ctx: NirContext) -> tuple[str, bool]:
    m = _meta(node)
    if m:
        return str(_value(m, "reset_mechanism", "subtract")), bool(_value(m, "reset_delay", True))
    return str(ctx.options.get("reset") or "subtract"), True


def _snn_reset_note(reset: str, delay: bool) -> str:
    late = ", applied one step late" if delay else ""
    return {"subtract": f"snnTorch's subtract reset{late} (NIR resets to v_reset at once)",
            "none": "snnTorch's reset_mechanism='none' (NIR neurons always reset)",
            "zero": "snnTorch's Synaptic zero reset zeroes the whole next step (NIR resets to v_reset)"}[reset]


def export_snntorch_leaky(node: Any, ctx: NirContext) -> Any:
    nir = _nir.nir()
    if np.any(_a(node.graded_spikes_factor) != 1):
        raise Refusal("graded spikes (graded_spikes_factor != 1): NIR spikes are 1")
    b = np.clip(_full(node.beta, ctx), 0.0, 1.0)
    th = _full(node.threshold, ctx)
    reset, delay = node.reset_mechanism, node.reset_delay
    faithful = {} if reset == "zero" else _not_faithful(_snn_reset_note(reset, delay))
    meta = _named(node, "SnnTorchLeaky", reset_mechanism=reset, reset_delay=delay, **faithful)
    zeros = np.zeros(ctx.shape)
    if np.all(b == 1.0):  # no leak: an integrator
        return nir.IF(r=np.full(ctx.shape, 1.0 / ctx.dt), v_threshold=th, v_reset=zeros, metadata=meta)
    if np.any(b == 1.0):
        raise Refusal("beta = 1 for some neurons only (no leak: an infinite NIR tau)")
    tau = ctx.dt / (1.0 - b)
    return nir.LIF(tau=tau, r=1.0 / (1.0 - b), v_leak=zeros, v_threshold=th, v_reset=zeros.copy(), metadata=meta)


def import_snntorch_leaky(name: str, node: Any, ctx: NirContext) -> list[Any]:
    """NIR LIF as snnTorch's ``Leaky``: ``beta = 1 - dt/tau``, input gain ``r dt / tau`` (1 for snnTorch)."""
    who = "snnTorch's Leaky leaks towards 0 and resets to 0 or by subtraction"
    _zero(name, node, "v_leak", who)
    _zero(name, node, "v_reset", who)
    tau = _a(node.tau)
    reset, delay = _snn_reset(node, ctx)
    return [*_gain(name, _a(node.r) * ctx.dt / tau),
            ir.SnnTorchLeaky(name, beta=_param(_snn_beta(tau, ctx.dt)), threshold=_param(node.v_threshold),
                             reset_mechanism=reset, reset_delay=delay)]


def import_strict_if(name: str, node: Any, ctx: NirContext) -> list[Any]:
    """NIR IF with a strict ``v > v_threshold``: a snnTorch Leaky with ``beta = 1``.

    snnTorch: the preset's reset; Norse (``IAFCell``: ``v += x``, ``r`` ignored) and nirtorch (NIR's
    text): a zero reset at once. A non-zero ``v_reset`` under Norse/nirtorch falls back to the default
    IF (spike on ``v >= v_threshold``) with a warning.
    """
    from spikeport.ops.neurons import _import_if

    producer = _producer(ctx)
    m = _meta(node)
    if not m and producer in ("norse", "nirtorch") and np.any(_a(node.v_reset) != 0):
        _note(ctx, f"NIR node '{name}' (IF): v_reset != 0 has no strict-threshold op; imported as IF, which spikes "
                   "on v >= v_threshold (different from v > v_threshold only at exact equality)")
        return _import_if(name, node, ctx)
    if not m:
        _zero(name, node, "v_reset", "snnTorch's Leaky resets to 0 or by subtraction")
    gain = 1.0 if producer == "norse" and not m else _a(node.r) * ctx.dt
    if m or producer == "snntorch":
        reset, delay = _snn_reset(node, ctx)
    else:
        reset, delay = "zero", False
    return [*_gain(name, gain), ir.SnnTorchLeaky(name, beta=1.0, threshold=_param(node.v_threshold),
                                                 reset_mechanism=reset, reset_delay=delay)]


def export_snntorch_synaptic(node: Any, ctx: NirContext) -> Any:
    nir = _nir.nir()
    if np.any(_a(node.graded_spikes_factor) != 1):
        raise Refusal("graded spikes (graded_spikes_factor != 1): NIR spikes are 1")
    a = np.clip(_full(node.alpha, ctx), 0.0, 1.0)
    b = np.clip(_full(node.beta, ctx), 0.0, 1.0)
    if np.any(a == 1.0) or np.any(b == 1.0):
        raise Refusal("alpha or beta = 1 (no decay: an infinite NIR time constant)")
    ts, tm = ctx.dt / (1.0 - a), ctx.dt / (1.0 - b)
    zeros = np.zeros(ctx.shape)
    meta = _named(node, "SnnTorchSynaptic", reset_mechanism=node.reset_mechanism, reset_delay=node.reset_delay,
                  **_not_faithful(_snn_reset_note(node.reset_mechanism, node.reset_delay)))
    return nir.CubaLIF(tau_syn=ts, tau_mem=tm, r=tm / ctx.dt, v_leak=zeros, v_threshold=_full(node.threshold, ctx),
                       v_reset=zeros.copy(), w_in=ts / ctx.dt, metadata=meta)


def import_snntorch_synaptic(name: str, node: Any, ctx: NirContext) -> list[Any]:
    """NIR CubaLIF as snnTorch's ``Synaptic``: ``alpha = 1 - dt/tau_syn``, ``beta = 1 - dt/tau_mem``, input gain
    ``w_in dt/tau_syn * r dt/tau_mem`` (1 for snnTorch)."""
    who = "snnTorch's Synaptic leaks towards 0 and resets to 0 or by subtraction"
    _zero(name, node, "v_leak", who)
    _zero(name, node, "v_reset", who)
    ts, tm = _a(node.tau_syn), _a(node.tau_mem)
    reset, delay = _snn_reset(node, ctx)
    gain = (_a(node.w_in) * ctx.dt / ts) * (_a(node.r) * ctx.dt / tm)
    return [*_gain(name, gain),
            ir.SnnTorchSynaptic(name, alpha=_param(_snn_beta(ts, ctx.dt)), beta=_param(_snn_beta(tm, ctx.dt)),
                                threshold=_param(node.v_threshold), reset_mechanism=reset, reset_delay=delay)]


# ---------------------------------------------------------------- Norse
def _norse_inv(tau: Any, ctx: NirContext, node: Any) -> tuple[np.ndarray, float]:
    """``(tau_inv float32, the op's dt)`` of a Norse time constant, by how the file was written."""
    m = _meta(node)
    t = _a(tau)
    if m:  # spikeport wrote tau = file_dt / (norse_dt * tau_inv)
        dn = float(_value(m, "dt", ctx.dt))
        return _snap32(t, ctx.dt / (dn * t), lambda inv: ctx.dt / (dn * inv)), dn
    if _producer(ctx) == "norse":  # Norse's exporter: tau = dt / tau_inv in float32
        d32 = np.float32(ctx.dt)
        return _snap32(t, float(d32) / t, lambda inv: (d32 / inv.astype(np.float32)).astype(np.float64)), ctx.dt
    return np.asarray(_decay(t, ctx) / ctx.dt, dtype=np.float32), ctx.dt  # NIR's own reading


def export_norse_lif(node: Any, ctx: NirContext) -> Any:
    nir = _nir.nir()
    a_s = node.dt * _full(node.tau_syn_inv, ctx)
    a_m = node.dt * _full(node.tau_mem_inv, ctx)
    if np.any(a_s <= 0) or np.any(a_m <= 0):
        raise Refusal("tau_syn_inv or tau_mem_inv <= 0 (no decay: an infinite NIR time constant)")
    ts, tm = ctx.dt / a_s, ctx.dt / a_m
    v_leak = _full(node.v_leak, ctx)
    faithful = {} if np.all(v_leak == 0) else _not_faithful("Norse's membrane starts at v_leak != 0")
    return nir.CubaLIF(tau_syn=ts, tau_mem=tm, r=np.ones(ctx.shape), v_leak=v_leak, v_threshold=_full(node.v_th, ctx),
                       v_reset=_full(node.v_reset, ctx), w_in=ts / ctx.dt,
                       metadata=_named(node, "NorseLIF", dt=node.dt, **faithful))


def import_norse_lif(name: str, node: Any, ctx: NirContext) -> list[Any]:
    """NIR CubaLIF as Norse's ``LIFCell`` (the current jumps by the input; see the module docstring)."""
    inv_s, dn = _norse_inv(node.tau_syn, ctx, node)
    inv_m, _ = _norse_inv(node.tau_mem, ctx, node)
    if _meta(node) or _producer(ctx) == "norse":
        gain = _a(node.w_in) * _a(node.r) if not _meta(node) else _a(node.w_in) * ctx.dt / _a(node.tau_syn) * \
            _a(node.r)
    else:  # NIR's CubaLIF: i += a_s (w_in x - i), so the jump of Norse's current is a_s w_in r x
        gain = _decay(node.tau_syn, ctx) * _a(node.w_in) * _a(node.r)
    return [*_gain(name, gain),
            ir.NorseLIF(name, tau_syn_inv=_param(inv_s), tau_mem_inv=_param(inv_m), v_leak=_param(node.v_leak),
                        v_th=_param(node.v_threshold), v_reset=_param(_reset_or_zero(node)), dt=dn)]


def _reset_or_zero(node: Any) -> Any:
    return node.v_reset if node.v_reset is not None else np.zeros_like(_a(node.v_threshold))


def export_norse_lifbox(node: Any, ctx: NirContext) -> Any:
    nir = _nir.nir()
    a_m = node.dt * _full(node.tau_mem_inv, ctx)
    if np.any(a_m <= 0):
        raise Refusal("tau_mem_inv <= 0 (no decay: an infinite NIR time constant)")
    v_leak = _full(node.v_leak, ctx)
    faithful: dict[str, Any] = {}
    if node.reset != "value":
        faithful = _not_faithful("Norse's subtract reset (NIR resets to v_reset)")
    elif np.any(v_leak != 0):
        faithful = _not_faithful("Norse's membrane starts at v_leak != 0")
    return nir.LIF(tau=ctx.dt / a_m, r=np.ones(ctx.shape), v_leak=v_leak, v_threshold=_full(node.v_th, ctx),
                   v_reset=_full(node.v_reset, ctx),
                   metadata=_named(node, "NorseLIFBox", dt=node.dt, reset=node.reset, **faithful))


def import_norse_lifbox(name: str, node: Any, ctx: NirContext) -> list[Any]:
    """NIR LIF as Norse's ``LIFBoxCell``: ``v += dt tau_inv ((r x + v_leak) - v)``, strict threshold."""
    inv, dn = _norse_inv(node.tau, ctx, node)
    reset = str(_value(_meta(node), "reset", "value"))
    return [*_gain(name, node.r),
            ir.NorseLIFBox(name, tau_mem_inv=_param(inv), v_leak=_param(node.v_leak), v_th=_param(node.v_threshold),
                           v_reset=_param(_reset_or_zero(node)), dt=dn, reset=reset)]


# ---------------------------------------------------------------- sinabs
def _sinabs_alpha(tau: Any, dt: float) -> np.ndarray:
    """``exp(-dt / tau)`` computed as sinabs does (float32 torch)."""
    t = torch.tensor(np.asarray(tau, dtype=np.float32))
    return torch.exp(-dt / t).numpy() if dt != 1.0 else torch.exp(-1.0 / t).numpy()


def export_sinabs_lif(node: Any, ctx: NirContext) -> Any:
    nir = _nir.nir()
    if node.alpha_syn is not None:
        raise Refusal("a synaptic current (tau_syn): NIR's LIF has none and sinabs reads no CubaLIF")
    if node.min_v_mem is not None and _nir.scalar(_a(node.min_v_mem)) is None:
        raise Refusal("a per-neuron min_v_mem")
    alpha = _full(node.alpha_mem, ctx)
    th = _full(node.spike_threshold, ctx)
    fields = {"spike": node.spike, "reset": node.reset, "norm_input": node.norm_input,
              "max_spikes": node.max_spikes or 0, "reset_value": node.reset_value,
              "subtract_value": node.subtract_value if node.subtract_value is not None else math.nan,
              "min_v_mem": _nir.scalar(_a(node.min_v_mem)) if node.min_v_mem is not None else math.nan}
    zeros = np.zeros(ctx.shape)
    default = node.spike == "multi" and node.reset == "subtract" and node.subtract_value is None
    why = "sinabs' multi-spike output and subtractive reset (NIR spikes once and resets to v_reset)"
    if not default:
        why = f"sinabs' {node.spike}-spike output with {node.reset} reset, which sinabs' from_nir does not build"
    if np.all(alpha == 1.0) and not node.norm_input:
        th0 = _nir.scalar(th)
        sinabs_reads = default and node.min_v_mem is not None and th0 is not None and \
            fields["min_v_mem"] == -th0  # sinabs' from_nir: IAFSqueeze(min_v_mem = -threshold)
        if default and not sinabs_reads:
            why += "; sinabs' from_nir clips IF membranes at min_v_mem = -threshold, this layer does not"
        meta = _named(node, "SinabsLIF", **fields, **_not_faithful(why, ("sinabs",) if sinabs_reads else ()))
        return nir.IF(r=np.full(ctx.shape, 1.0 / ctx.dt), v_threshold=th, v_reset=zeros, metadata=meta)
    if np.any(alpha >= 1.0) or np.any(alpha <= 0.0):
        raise Refusal("alpha_mem outside (0, 1) in a leaky layer")
    tau = -ctx.dt / np.log(alpha)
    sinabs_reads = default and node.min_v_mem is None and not node.norm_input
    if default and node.norm_input:
        why += "; sinabs' from_nir builds LIFs without input normalisation, this layer has norm_input=True"
    elif default and node.min_v_mem is not None:
        why += "; sinabs' from_nir builds LIFs without min_v_mem"
    meta = _named(node, "SinabsLIF", **fields, **_not_faithful(why, ("sinabs",) if sinabs_reads else ()))
    r = np.ones(ctx.shape) if node.norm_input else 1.0 / (1.0 - alpha)
    return nir.LIF(tau=tau, r=r, v_leak=zeros, v_threshold=th, v_reset=zeros.copy(), metadata=meta)


def import_sinabs_lif(name: str, node: Any, ctx: NirContext) -> list[Any]:
    """NIR IF/LIF as sinabs' IAF/LIF (multi-spike, subtract; LIF with normalised input: sinabs' defaults)."""
    _zero(name, node, "v_leak", "sinabs' neurons leak towards 0")
    m = _meta(node)
    assume = ctx.options.get("assume") or {}
    kw: dict[str, Any] = {"spike": "multi", "reset": "subtract"}
    if assume.get("min_v_mem") == "-threshold":  # what sinabs' own importer sets
        kw["min_v_mem"] = -_a(node.v_threshold)
        kw["min_v_mem"] = _param(kw["min_v_mem"])
    if m:
        kw = {"spike": str(_value(m, "spike", "multi")), "reset": str(_value(m, "reset", "subtract")),
              "reset_value": float(_value(m, "reset_value", 0.0))}
        if kw["spike"] == "max":
            kw["max_spikes"] = int(_value(m, "max_spikes", 1))
        for key in ("subtract_value", "min_v_mem"):
            v = float(_value(m, key, math.nan))
            if not math.isnan(v):
                kw[key] = v
    th = _param(node.v_threshold)
    if type(node).__name__ == "IF":
        return [*_gain(name, _a(node.r) * ctx.dt),
                ir.SinabsLIF(name, alpha_mem=1.0, spike_threshold=th, norm_input=False, **kw)]
    norm = bool(_value(m, "norm_input", True)) if m else assume.get("norm_input", "true") == "true"
    if m:
        alpha = np.asarray(np.exp(-ctx.dt / _a(node.tau)), dtype=np.float32)
        gain = _a(node.r) * (1.0 if norm else (1.0 - alpha.astype(np.float64)))
    else:  # sinabs writes r = 1 whatever norm_input is
        alpha = _sinabs_alpha(node.tau, ctx.dt)
        gain = _a(node.r)
    return [*_gain(name, gain), ir.SinabsLIF(name, alpha_mem=_param(alpha), spike_threshold=th, norm_input=norm, **kw)]


# ---------------------------------------------------------------- lava-dl SLAYER CUBA
def export_slayer_cuba(node: Any, ctx: NirContext) -> Any:
    nir = _nir.nir()
    if node.current_decay == 0 or node.voltage_decay == 0:
        raise Refusal("a zero decay (an infinite NIR time constant)")
    if node.graded:
        raise Refusal("graded spikes (the spike carries the voltage): NIR spikes are 1")
    ts, tm = ctx.dt * 4096 / node.current_decay, ctx.dt * 4096 / node.voltage_decay
    full = np.ones(ctx.shape)
    meta = _named(node, "SlayerCUBA", current_decay=node.current_decay, voltage_decay=node.voltage_decay,
                  state_scale=node.state_scale,
                  **_not_faithful("Loihi's fixed-point CUBA dynamics (truncated 12-bit decays and states)"))
    return nir.CubaLIF(tau_syn=full * ts, tau_mem=full * tm, r=full * tm / ctx.dt, v_leak=0 * full,
                       v_threshold=full * node.threshold, v_reset=0 * full, w_in=full * ts / ctx.dt, metadata=meta)


def import_slayer_cuba(name: str, node: Any, ctx: NirContext) -> list[Any]:
    """NIR CubaLIF as SLAYER's CUBA neuron: decays ``round(4096 dt / tau)``, input added unscaled.

    A file in NIR's convention (``w_in = tau_syn/dt``, ``r = tau_mem/dt``) and one in upstream lava-dl's
    (``r = 1``, which its reader ignores) both read with gain 1; other gains become a Scale node.
    """
    who = "Loihi's CUBA neuron leaks towards 0 and resets to 0"
    _zero(name, node, "v_leak", who)
    _zero(name, node, "v_reset", who)
    m = _meta(node)
    th = _nir.scalar(_a(node.v_threshold))
    if th is None:
        raise GraphError(f"NIR node '{name}' (CubaLIF): a per-neuron v_threshold; a SLAYER CUBA layer has one "
                         "threshold")
    if m:
        dc, dv = int(_value(m, "current_decay", 0)), int(_value(m, "voltage_decay", 0))
        return [ir.SlayerCUBA(name, current_decay=dc, voltage_decay=dv, threshold=th,
                              state_scale=int(_value(m, "state_scale", 4096)))]
    decays = []
    for key in ("tau_syn", "tau_mem"):
        s = _nir.scalar(_a(getattr(node, key)))
        if s is None:
            raise GraphError(f"NIR node '{name}' (CubaLIF): a per-neuron {key}; a SLAYER CUBA layer has one decay")
        decays.append(int(round(4096 * ctx.dt / s)))
    ts, tm = _a(node.tau_syn), _a(node.tau_mem)
    g_in, g_r = _a(node.w_in) * ctx.dt / ts, _a(node.r) * ctx.dt / tm
    upstream = np.allclose(_a(node.r), 1.0) and not np.allclose(g_r, 1.0)
    if upstream:
        _note(ctx, f"NIR node '{name}' (CubaLIF): r = 1 with tau_mem = {tm.ravel()[0]:g} is upstream lava-dl's "
                   "netx->NIR convention; read as lava-dl reads it (r ignored, voltage gain 1)")
    gain = g_in if upstream else g_in * g_r
    return [*_gain(name, gain), ir.SlayerCUBA(name, current_decay=decays[0], voltage_decay=decays[1], threshold=th)]


# ---------------------------------------------------------------- Delay
def export_delay(node: Any, ctx: NirContext) -> Any:
    return _nir.nir().Delay(delay=np.full(ctx.shape, node.steps * ctx.dt))


def import_delay(name: str, node: Any, ctx: NirContext) -> list[Any]:
    """NIR Delay (seconds) as whole steps: uniform and a multiple of dt."""
    steps = _a(node.delay) / ctx.dt
    s = _nir.scalar(np.round(steps))
    if s is None or not np.allclose(steps, s, rtol=0, atol=1e-6) or s < 1:
        raise GraphError(f"NIR node '{name}' (Delay): delay / dt = {steps.ravel()[:3].tolist()} must be one whole "
                         "number >= 1 of steps for the layer (check --dt)")
    return [ir.Delay(name, steps=int(s))]
