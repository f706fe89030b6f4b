"""Plausibility checks of an imported NIR graph: what was assumed, and what looks wrong.

* :func:`assumptions`: the time semantics used and why (for every report of a ``.nir`` model);
* :func:`fingerprints`: parameters that look like another producer's convention than the one used
  (time constants in steps, Norse's ``r = 1`` integrators, snnTorch's float32 gains);
* :func:`earliest_spikes`: for each spiking layer, the first step at which *any* of its neurons could
  fire if every input were at its largest possible value (interval bounds through the synapses, graph
  inputs in [0, 1], spikes 0/1), simulated with the op's own dynamics; :func:`reach_warnings` turns a
  layer that cannot fire within T steps into a warning naming the NIR node and its fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from spikeport.converter import ir
from spikeport.converter.graph import SpikeGraph
from spikeport.converter.nir_io.dialects import DEFAULT_DT, DEFAULT_PRODUCER, NirSemantics
from spikeport.ops import spec_of

__all__ = ["HORIZON", "INPUT_RANGE", "assumptions", "fingerprints", "earliest_spikes", "reach_warnings",
           "field_summary"]

HORIZON = 1000
"""Steps simulated by the silent-layer check."""

INPUT_RANGE = (0.0, 1.0)
"""Graph inputs assumed by the silent-layer check (spikes, or data normalised to [0, 1])."""

_MAX_ELEMENT_STEPS = 20_000_000  # the check's cost cap per layer (neurons x steps)


def assumptions(sem: NirSemantics) -> list[str]:
    """The report lines stating how the file was read."""
    lines = [f"NIR import: {sem.describe()}"]
    if sem.producer_from == "default":
        lines.append(f"NIR import: the file does not record which tool wrote it (no 'source' in its metadata), so it "
                     f"is read with the {DEFAULT_PRODUCER}/spikeport convention (forward Euler at dt = "
                     f"{DEFAULT_DT:g} s, spike on v >= v_threshold); files from snnTorch, Norse, sinabs, lava-dl or "
                     "nirtorch need --nir-from (see docs/nir.md)")
    lines.append(f"NIR import ({sem.producer}): {sem.dialect.summary}")
    return lines


def _summary(value: Any) -> str:
    a = np.asarray(value, dtype=np.float64)
    if a.size == 0:
        return "[]"
    lo, hi = float(a.min()), float(a.max())
    return f"{lo:.4g}" if lo == hi else f"{lo:.4g}..{hi:.4g}"


def field_summary(node: Any) -> str:
    """``"LIF: tau=0.001, r=10, v_threshold=1"``: a NIR neuron node's numeric fields (uniform value or range)."""
    parts = []
    for key, value in vars(node).items():
        if key in ("metadata", "input_type", "output_type") or value is None or isinstance(value, (str, dict)):
            continue
        try:
            parts.append(f"{key}={_summary(value)}")
        except (TypeError, ValueError):
            continue
    return f"{type(node).__name__}: {', '.join(parts)}"


def _uniform(node: Any, key: str) -> float | None:
    v = getattr(node, key, None)
    if v is None:
        return None
    a = np.asarray(v, dtype=np.float64).ravel()
    return float(a[0]) if a.size and np.all(a == a[0]) else None


def fingerprints(nodes: Mapping[str, Any], sem: NirSemantics) -> list[str]:
    """Hints that a file read with the default convention came from another producer (named node and field)."""
    if sem.producer_from != "default":
        return []
    out: list[str] = []
    for name, node in nodes.items():
        t = type(node).__name__
        taus = [k for k in ("tau", "tau_syn", "tau_mem") if hasattr(node, k)]
        for k in taus:
            a = np.asarray(getattr(node, k), dtype=np.float64)
            if a.size and float(a.min()) >= 1.0:
                out.append(f"NIR node '{name}' ({t}): {k} = {_summary(a)} looks like a time constant in steps "
                           f"(sinabs and lava-dl write steps); read as seconds at dt = {sem.dt:g} s it is "
                           f"{float(a.min()) / sem.dt:,.0f}+ steps. If the file came from sinabs or lava-dl, read it "
                           "with --nir-from sinabs (or lava-dl)")
                break
        if t == "IF" and _uniform(node, "r") == 1.0 and sem.dt != 1.0:
            out.append(f"NIR node '{name}' (IF): r = 1 is how Norse and sinabs write 'add the input once per step'; "
                       f"at dt = {sem.dt:g} s it is an input gain of {sem.dt:g} per step. If the file came from "
                       "Norse or sinabs, read it with --nir-from norse (or sinabs)")
        if t == "LIF" and _uniform(node, "v_reset") == 0.0 and _uniform(node, "v_leak") == 0.0:
            r, tau = _uniform(node, "r"), _uniform(node, "tau")
            if r is not None and tau and r != 1.0:
                g = r * 1e-4 / tau
                if g != 1.0 and abs(g - 1.0) < 1e-5:
                    out.append(f"NIR node '{name}' (LIF): r * 1e-4 / tau = {g:.9g} (1 up to float32 rounding) is "
                               "what snnTorch's exporter writes; snnTorch's default reset (subtract, one step late) "
                               "is not in the file. If it came from snnTorch, read it with --nir-from snntorch")
    return out


# ---------------------------------------------------------------- silent-layer check
def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _bounds(node: ir.IRNode, ins: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Interval bounds ``(lo, hi)`` of ``node``'s output from its inputs' (per element, one step); ``None``: unknown."""
    if isinstance(node, (ir.Output, ir.Flatten)):
        lo, hi = ins[0]
        if isinstance(node, ir.Flatten):
            s, e = node.start_dim, node.end_dim
            s, e = (s + 1 if s >= 0 else s), (e + 1 if e >= 0 else e)
            return lo.flatten(s, e), hi.flatten(s, e)
        return lo, hi
    if isinstance(node, ir.Add):
        lo, hi = ins[0]
        for a, b in ins[1:]:
            lo, hi = lo + a, hi + b
        return lo, hi
    if isinstance(node, ir.Scale):
        sc = torch.tensor(np.asarray(node.scale, dtype=np.float32))
        lo, hi = ins[0]
        sc = sc.reshape(*sc.shape, *([1] * (lo.dim() - 1 - sc.dim()))) if sc.dim() else sc
        a, b = lo * sc, hi * sc
        return torch.minimum(a, b), torch.maximum(a, b)
    if isinstance(node, (ir.Linear, ir.Conv1d, ir.Conv2d)):
        lo, hi = ins[0]
        w = torch.tensor(np.asarray(node.weight, dtype=np.float32))
        bias = None if node.bias is None else torch.tensor(np.asarray(node.bias, dtype=np.float32))
        wp, wn = w.clamp(min=0), w.clamp(max=0)
        if isinstance(node, ir.Linear):
            def op(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
                return F.linear(x, k)
        else:
            conv = F.conv1d if isinstance(node, ir.Conv1d) else F.conv2d

            def op(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
                return conv(x, k, None, node.stride, node.padding, node.dilation, node.groups)
        out_hi, out_lo = op(hi, wp) + op(lo, wn), op(lo, wp) + op(hi, wn)
        if bias is not None:
            shape = (-1,) + (1,) * (out_hi.dim() - 2)
            out_hi, out_lo = out_hi + bias.reshape(shape), out_lo + bias.reshape(shape)
        return out_lo, out_hi
    if isinstance(node, (ir.AvgPool, ir.SumPool)):
        lo, hi = ins[0]
        k, st, p = _pair(node.kernel_size), _pair(node.stride), _pair(node.padding)
        div = 1 if isinstance(node, ir.SumPool) else None
        return (F.avg_pool2d(lo, k, st, p, divisor_override=div), F.avg_pool2d(hi, k, st, p, divisor_override=div))
    return None


def _first_spike(node: ir.IRNode, drive: torch.Tensor, horizon: int) -> tuple[bool, int | None]:
    """``(decided, step)``: the first step (1-based) at which any neuron of ``node`` spikes under the constant
    ``drive``, ``None`` when none does within ``horizon`` steps; undecided when the cost cap stopped earlier."""
    from spikeport.ops._torch import NeuronModule

    mod = spec_of(node).execute(node, [tuple(drive.shape[1:])])
    if not isinstance(mod, NeuronModule):
        return False, None
    steps = max(1, min(horizon, _MAX_ELEMENT_STEPS // max(1, drive.numel())))
    with torch.no_grad():
        state = mod.init_state(drive)
        for t in range(steps):
            s, state = mod.step(drive, state)
            if bool(torch.any(s != 0)):
                return True, t + 1
    return steps >= horizon, None


def earliest_spikes(graph: SpikeGraph, horizon: int = HORIZON) -> dict[str, int | None]:
    """``{neuron node: first step any of its neurons could fire, or None (not within horizon)}`` for the
    spiking layers whose input bound is known (see the module docstring)."""
    bounds: dict[str, tuple[torch.Tensor, torch.Tensor] | None] = {}
    out: dict[str, int | None] = {}
    lo0, hi0 = INPUT_RANGE
    for name in graph.topological_order():
        node = graph.node(name)
        edges = graph.in_edges(name)
        if isinstance(node, ir.Input):
            shape = (1, *graph.shape(name))
            bounds[name] = (torch.full(shape, lo0), torch.full(shape, hi0))
            continue
        ins = [bounds.get(e.src) if not e.recurrent else None for e in edges]
        if getattr(node, "family", "") == "neuron":
            first = ins[0] if ins else None
            if first is not None and getattr(node, "stateful", False):
                try:
                    decided, step = _first_spike(node, first[1], horizon)
                except (RuntimeError, ValueError, TypeError):
                    decided, step = False, None
                if decided:
                    out[name] = step
            rule = spec_of(node).energy
            binary = bool(getattr(rule, "binary_output", False))
            shape = (1, *graph.shape(name))
            bounds[name] = (torch.zeros(shape), torch.ones(shape)) if binary else None
            continue
        known = [i for i in ins if i is not None]
        if not known or len(known) != len(ins):
            bounds[name] = None
            continue
        try:
            bounds[name] = _bounds(node, known)
        except (RuntimeError, ValueError, TypeError):
            bounds[name] = None
    return out


def reach_warnings(info: Mapping[str, Any], timesteps: int | None = None) -> list[str]:
    """Warnings for the layers of an import (``graph.meta["nir"]``) that cannot fire within ``timesteps``."""
    horizon = int(info.get("reach_horizon", HORIZON))
    t = horizon if timesteps is None else int(timesteps)
    fields = info.get("fields", {})
    lo, hi = INPUT_RANGE
    out = []
    for name, step in dict(info.get("reach", {})).items():
        if step is not None and step <= t:
            continue
        when = (f"before step {step:,}" if step is not None else f"within {horizon:,} steps")
        desc = fields.get(name, "")
        out.append(f"NIR node '{name}' ({desc}): no neuron of this layer can fire {when} (T = {t}) even with every "
                   f"input at its largest possible value (graph inputs in [{lo:g}, {hi:g}], spikes 0/1): the layer is "
                   "silent. Its time constants or input gain do not fit dt: check --dt and --nir-from")
    return out
