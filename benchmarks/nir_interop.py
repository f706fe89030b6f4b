"""NIR interoperability, measured: each framework's exporter -> spikeport, and spikeport -> each framework's importer.

For every producer of benchmarks/nir_producers.py (snnTorch, Norse, sinabs, SpikingJelly, plain nirtorch,
lava-dl SLAYER) and model (MLP 64-H-10, CNN conv8-conv16-pool-fc10; neuron variants), on the digits test
split with direct encoding (the same frame for T steps):

* the framework runs its own model: the reference (spikes of every spiking layer, predictions);
* ``import``: its exporter's NIR graph read by spikeport (``load_nir(graph, producer=<preset>)``, in memory;
  the same graph through a ``.nir`` file must give the same spikes), run by spikeport's reference executor;
* ``export``: the framework model as spikeport traces it (``trace(model, time_layout=...)``; the NIR import
  where spikeport cannot trace it) written with ``to_nir(..., consumer=<framework>)`` and read by the
  framework's own importer (or the refusal, with its reason);
* ``own round trip``: the framework's exporter -> its own importer, for comparison;
* ``energy``: the per-layer firing rates spikeport's energy recorder measures on the imported model, against
  the framework's own;
* ``native``: spikeport's own IF/LIF/CubaLIF models written for each importer, against spikeport's run.

Each cell is ``spike agreement / prediction agreement`` (fractions of equal spike entries over all spiking
layers, and of equal argmax predictions); a run whose spikes are < 5 % of the reference's is marked
*silent* (a silent run still scores high spike agreement because most entries are 0).

Usage::

    python benchmarks/nir_interop.py [--samples 360] [--timesteps 16] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from nir_producers import Producer, Run

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

__all__ = ["agreement", "spikeport_run", "calibrate", "measure", "native", "NATIVE"]

SILENT = 0.05


def agreement(ref: Run, test: Run) -> dict[str, Any]:
    """Spike agreement (all layers pooled), prediction agreement, spike totals and the silent flag."""
    eq = tot = 0
    layers = []
    for r, s in zip(ref.spikes, test.spikes, strict=True):
        s = s.reshape(r.shape)
        e = int((r == s).sum())
        eq, tot = eq + e, tot + r.size
        layers.append({"agree": e / r.size, "ref_spikes": float(r.sum()), "test_spikes": float(s.sum())})
    ref_total, test_total = sum(x["ref_spikes"] for x in layers), sum(x["test_spikes"] for x in layers)
    pred = float((ref.logits.argmax(-1) == test.logits.reshape(ref.logits.shape).argmax(-1)).mean())
    return {"spikes": eq / tot, "pred": pred, "ref_spikes": ref_total, "test_spikes": test_total,
            "silent": test_total < SILENT * ref_total, "layers": layers, "samples": int(ref.logits.shape[0])}


def spikeport_run(module: Any, x: torch.Tensor) -> Run:
    """Run a spikeport executor (``LoweredModule``) on ``x`` recording every spiking layer in graph order."""
    from nir_producers import Run
    from spikeport.converter import ir

    g = module.graph
    names = [n for n in g.topological_order()
             if getattr(g.node(n), "family", "") == "neuron" and not isinstance(g.node(n), ir.Threshold)]
    mods = {m.ir_name: m for m in module.modules() if hasattr(m, "ir_name")}
    recs: dict[str, torch.Tensor] = {}
    hs = [mods[n].register_forward_hook(lambda _m, _i, o, n=n: recs.__setitem__(n, o.detach())) for n in names]
    try:
        with torch.no_grad():
            out = module(x)
    finally:
        for h in hs:
            h.remove()
    t, b = x.shape[0], x.shape[1]
    return Run([recs[n].reshape(t, b, -1).numpy() for n in names], out.sum(0).reshape(b, -1).numpy())


def calibrate(p: Producer, kind: str, variant: str, w: dict[str, np.ndarray], x: torch.Tensor,
              lo: float = 0.05, hi: float = 0.3, steps: int = 12) -> list[float]:
    """Per-layer weight gains giving each spiking layer a mean rate in [lo, hi] in the framework's own run."""
    gains = [1.0] * p.n_layers(kind)
    for k in range(len(gains)):
        below = above = None
        for _ in range(steps):
            r = float((p.own(p.build(kind, variant, w, gains), x).spikes[k] > 0).mean())
            if lo <= r <= hi:
                break
            if r < lo:
                below = gains[k]
                gains[k] = gains[k] * 2 if above is None else (gains[k] * above) ** 0.5
            else:
                above = gains[k]
                gains[k] = gains[k] / 2 if below is None else (gains[k] * below) ** 0.5
    return gains


_FAILURES = (RuntimeError, ValueError, TypeError, KeyError, IndexError, AttributeError, AssertionError,
             NotImplementedError, ZeroDivisionError, OSError)


def _attempt(fn: Any) -> tuple[Any, str | None]:
    """``(fn(), None)`` or ``(None, the failure)``: an exporter's or importer's failure is a measured finding."""
    from spikeport.errors import SpikeportError

    try:
        return fn(), None
    except (SpikeportError, *_FAILURES) as e:
        return None, f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"


def _energy_rates(module: Any, x: torch.Tensor) -> list[float]:
    """Per-layer firing rates of spikeport's energy recorder on the imported model (neuron layers, in order)."""
    from spikeport.energy import analyze

    data = x.transpose(0, 1).contiguous().numpy()  # [N, T, ...] sequences: exactly the inputs of the own run
    rep = analyze(module, data, timesteps=x.shape[0], temporal=True, batch_size=64)
    rows = rep.layers[rep.layers["role"] == "neuron"]
    return [float(r) for r in rows["rate"]]


def measure(p: Producer, kind: str, variant: str, x: torch.Tensor, w: dict[str, np.ndarray],
            calib: torch.Tensor) -> dict[str, Any]:
    """All cells of one producer model (see the module docstring)."""
    import nir

    from spikeport.converter.nir_io import from_nir, load_nir, to_nir

    gains = calibrate(p, kind, variant, w, calib)
    model = p.build(kind, variant, w, gains)
    own = p.own(model, x)
    res: dict[str, Any] = {"producer": p.name, "model": kind, "variant": variant, "gains": gains,
                           "own_rates": [float(s.astype(np.float64).mean()) for s in own.spikes]}
    graph, err = _attempt(lambda: p.export(model, kind, x))
    if err:
        res["export_error"] = err
        return res
    opts = p.import_options(variant)
    res["options"] = opts
    sp, err = _attempt(lambda: load_nir(graph, **opts))
    if err:
        res["import"] = {"error": err}
    else:
        run = spikeport_run(sp, x)
        res["import"] = agreement(own, run)
        res["import"]["warnings"] = sp.graph.meta["nir"]["warnings"]
        res["import"]["ops"] = sorted({n.op for n in sp.graph.nodes().values() if n.family == "neuron"})
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "m.nir"
            g2 = _attempt(lambda: (graph.infer_types(), nir.write(path, graph)))[1]
            if g2 is None:
                back = spikeport_run(load_nir(path, **opts), x)
                res["import"]["file_equal"] = all(np.array_equal(a, b) for a, b in zip(run.spikes, back.spikes,
                                                                                       strict=True))
            else:
                res["import"]["file_equal"] = f"nir.write failed: {g2}"
        rates, err = _attempt(lambda: _energy_rates(sp, x))
        events = [float((s != 0).astype(np.float64).mean()) for s in own.spikes]  # neuron-steps with a spike
        res["energy"] = ({"error": err} if err else
                         {"rates": rates, "own_events": events,  # own_rates: spikes (counts) per neuron-step
                          "equal": bool(np.allclose(rates, res["own_rates"], rtol=1e-12, atol=0))})
        from spikeport.converter import trace

        shape = (64,) if kind == "mlp" else (1, 8, 8)
        traced, terr = _attempt(lambda: trace(model, shape, time_layout=p.layout)) if p.layout else (None, "-")
        res["export_from"] = "traced model" if traced is not None else f"NIR import (trace: {terr})"
        source = traced if traced is not None else from_nir(graph, **opts)
        ng, err = _attempt(lambda: to_nir(source, consumer=p.name))
        if not p.has_importer():
            res["export"] = {"n/a": f"{p.name} has no NIR importer"}
        elif err:
            res["export"] = {"refused": err}
        else:
            back, err = _attempt(lambda: p.their_import(ng, x))
            res["export"] = {"error": err} if err else agreement(own, back)
    if p.has_importer():
        back, err = _attempt(lambda: p.their_import(graph, x))
        res["own_round_trip"] = {"error": err} if err else agreement(own, back)
    else:
        res["own_round_trip"] = {"n/a": f"{p.name} has no NIR importer"}
    return res


NATIVE = (("mlp", "if", {}), ("mlp", "lif", {"tau": 2.0}), ("mlp", "cuba_lif", {"i_decay": 0.5, "v_decay": 0.25}),
          ("cnn", "if", {}))


def _native_model(kind: str, neuron: str, kw: dict[str, Any], w: dict[str, np.ndarray], gains: Sequence[float]) -> Any:
    """A spikeport SpikeGraph of the MLP/CNN with spikeport neurons (hard reset to 0)."""
    from spikeport.converter import SpikeGraph, ir

    def cell(name: str) -> Any:
        return {"if": lambda: ir.IF(name), "lif": lambda: ir.LIF(name, **kw),
                "cuba_lif": lambda: ir.CubaLIF(name, **kw)}[neuron]()
    g = SpikeGraph(f"{kind}_{neuron}")
    if kind == "mlp":
        g.add(ir.Input("input", shape=(64,)))
        g.add(ir.Linear("fc1", weight=w["w1"] * gains[0], bias=w["b1"] * gains[0]), ["input"])
        g.add(cell("n1"), ["fc1"])
        g.add(ir.Linear("fc2", weight=w["w2"] * gains[1], bias=w["b2"] * gains[1]), ["n1"])
        g.add(cell("n2"), ["fc2"])
        g.add(ir.Output("output"), ["n2"])
        return g.validate()
    g.add(ir.Input("input", shape=(1, 8, 8)))
    g.add(ir.Conv2d("c1", weight=w["c1"] * gains[0], bias=w["cb1"] * gains[0], padding=(1, 1)), ["input"])
    g.add(cell("n1"), ["c1"])
    g.add(ir.Conv2d("c2", weight=w["c2"] * gains[1], bias=w["cb2"] * gains[1], padding=(1, 1)), ["n1"])
    g.add(cell("n2"), ["c2"])
    g.add(ir.AvgPool("pool", kernel_size=(2, 2), stride=(2, 2)), ["n2"])
    g.add(ir.Flatten("flat"), ["pool"])
    g.add(ir.Linear("fc", weight=w["w"] * gains[2], bias=w["b"] * gains[2]), ["flat"])
    g.add(cell("n3"), ["fc"])
    g.add(ir.Output("output"), ["n3"])
    return g.validate()


def native(consumer: str, kind: str, neuron: str, kw: dict[str, Any], x: torch.Tensor,
           w: dict[str, np.ndarray]) -> dict[str, Any]:
    """spikeport's own model written for ``consumer``'s importer, against spikeport's run."""
    from spikeport.converter import lower
    from spikeport.converter.nir_io import to_nir

    gains = [1.0] * (2 if kind == "mlp" else 3)
    for k in range(len(gains)):  # healthy rates in spikeport's own run
        for _ in range(12):
            r = float((spikeport_run(lower(_native_model(kind, neuron, kw, w, gains)), x).spikes[k] > 0).mean())
            if 0.05 <= r <= 0.3:
                break
            gains[k] *= 1.6 if r < 0.05 else 0.6
    graph = _native_model(kind, neuron, kw, w, gains)
    ref = spikeport_run(lower(graph), x)
    res: dict[str, Any] = {"consumer": consumer, "model": kind, "neuron": neuron}
    ng, err = _attempt(lambda: to_nir(graph, consumer=consumer))
    if err:
        res["refused"] = err
        return res
    from nir_producers import PRODUCERS

    back, err = _attempt(lambda: PRODUCERS[consumer].their_import(ng, x))
    res.update({"error": err} if err else agreement(ref, back))
    return res


def _cell(r: Any) -> str:
    if not isinstance(r, dict):
        return "-"
    if "n/a" in r:
        return "n/a: " + r["n/a"]
    if "refused" in r:
        return "refused: " + r["refused"][:90]
    if "error" in r:
        return "ERROR " + r["error"][:90]
    silent = " *silent*" if r.get("silent") else ""
    return f"{100 * r['spikes']:.1f} / {100 * r['pred']:.1f}{silent}"


def table(results: list[dict[str, Any]], natives: list[dict[str, Any]]) -> str:
    lines = ["| producer | model | import: exporter -> spikeport | export: spikeport -> importer | "
             "own round trip | energy rates equal |", "|---|---|---|---|---|---|"]
    for r in results:
        e = r.get("energy", {})
        energy = "error" if "error" in e else ("yes" if e.get("equal") else "NO") if e else "-"
        model = f"{r['model']} {r['variant']}".strip()
        lines.append(f"| {r['producer']} | {model} | {_cell(r.get('import', {'error': r.get('export_error', '')}))} | "
                     f"{_cell(r.get('export'))} | {_cell(r.get('own_round_trip'))} | {energy} |")
    lines += ["", "| spikeport model | " + " | ".join(sorted({n["consumer"] for n in natives})) + " |",
              "|---|" + "---|" * len({n["consumer"] for n in natives})]
    for kind, neuron, _ in NATIVE:
        row = [n for n in natives if n["model"] == kind and n["neuron"] == neuron]
        row.sort(key=lambda n: n["consumer"])
        lines.append(f"| {kind} {neuron} | " + " | ".join(_cell(n) for n in row) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=360)
    ap.add_argument("--timesteps", type=int, default=16)
    ap.add_argument("--producers", nargs="*", default=["snntorch", "norse", "sinabs", "spikingjelly", "nirtorch",
                                                       "lava-dl"])
    ap.add_argument("--json", help="write every figure to this JSON file")
    args = ap.parse_args(argv)
    from nir_producers import PRODUCERS, digits_inputs, random_weights, trained_weights

    torch.set_num_threads(2)
    t0 = time.time()
    results, natives = [], []
    weights = {k: trained_weights(k) for k in ("mlp", "cnn")}
    for name in args.producers:
        p = PRODUCERS[name]
        if not p.available():
            print(f"{name}: not installed, skipped")
            continue
        for kind in p.kinds:
            x, _ = digits_inputs(args.samples, args.timesteps, kind == "cnn")
            calib = x[:, :60]
            for variant in p.variants:
                r = measure(p, kind, variant, x, weights[kind], calib)
                results.append(r)
                print(f"[{time.time() - t0:6.1f}s] {name} {kind} {variant}: import {_cell(r.get('import'))}; "
                      f"export {_cell(r.get('export'))}; own {_cell(r.get('own_round_trip'))}", flush=True)
        if name in ("snntorch", "norse", "sinabs", "spikingjelly", "nirtorch"):
            for kind, neuron, kw in NATIVE:
                x, _ = digits_inputs(min(args.samples, 120), args.timesteps, kind == "cnn")
                natives.append(native(name, kind, neuron, kw, x, random_weights(kind, 64)))
    print()
    print(table(results, natives))
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "native": natives}, indent=1, default=str))
    print(f"\n{time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
