r"""The Lava runtime contract of a Loihi export: what plain Lava must do to reproduce spikeport's numbers.

A ``.net`` file holds the integer network only. Running it in Lava so that it
computes what ``spikeport verify`` checked needs five more facts, which the
sidecar ``<file>.loihi.json`` states in its ``runtime`` section (written by
:func:`runtime_contract`, read back and checked by :func:`read_contract`):

1. **Input encoding.** Real-valued input is sent as graded spikes
   ``round(x * scale)`` with ``message_bits`` bits (``input_message_bits`` of
   netx), in Lava's ``(W, H, C)`` order (the torch ``(C, H, W)`` frame
   transposed, ``frame.transpose(2, 1, 0)``); direct encoding repeats the same
   frame at each of the ``T`` steps of a sample.
2. **Latency.** Each Lava Dense/Conv synapse sends at step ``t`` what it
   accumulated at step ``t - 1``; a neuron layer ``k`` synapse hops from the
   input (its ``latency``) fires at step ``t + k`` for the input of step ``t``.
   Its spikes for sample step ``t`` are read ``k`` steps later.
3. **Stream and reset schedule.** Samples are played back to back, ``T`` steps
   each, followed by ``trailing_zero_steps`` (the largest latency) zero frames;
   every neuron layer is a ``LIFReset`` with ``reset_interval = T`` whose phase
   makes the layer with latency ``k`` zero ``u`` and ``v`` at (0-based) stream
   step ``j * T + k``: exactly when sample ``j``'s first input reaches it (netx:
   ``reset_interval=T, reset_offset=1``; netx adds the layer index and 1 for
   Lava's 1-based time). One sample alone is the same stream with ``j = 0``.
4. **Why the reset matters.** Without it, a fresh network per sample lets each
   layer integrate its bias during the ``k`` steps before its first input
   arrives, so it starts the sample from a nonzero voltage; the export summary
   states the measured spike agreement of that mistake for the exported model
   (:func:`fresh_network_agreement`).
5. **Host readout.** The nodes after the last spiking layer (pooling, flatten,
   the classifier) run on the host on that layer's ``[T, B, ...]`` spikes in
   torch order; the prediction is the argmax over classes of the mean over the
   ``T`` steps of the logits. The readout graph is the sidecar's ``readout``
   section (spikeport IR JSON: nodes with their parameters, arrays as
   ``{"__ndarray__": {"dtype", "shape", "values" | "b64"}}``, little-endian).

``examples/lava_plain_run.py`` follows these fields and nothing else (no
spikeport import) and reproduces the export's spikes; the test suite runs it.
"""

from __future__ import annotations

from typing import Any

import torch

from spikeport.errors import DataError

__all__ = ["RUN_CONFIG", "runtime_contract", "read_contract", "contract_markdown", "fresh_network_agreement",
           "lava_shape"]

RUN_CONFIG = "lava.magma.core.run_configs.Loihi2SimCfg(select_tag='fixed_pt')"
"""The Lava run configuration whose results the Loihi-exact reference reproduces bit for bit."""


def lava_shape(shape: tuple[int, ...] | list[int]) -> list[int]:
    """Lava's order of a torch-ordered shape: ``(C, H, W)`` -> ``(W, H, C)``; 1-D unchanged."""
    return list(shape)[::-1] if len(shape) == 3 else list(shape)


def _units(dep: Any) -> list[dict[str, Any]]:
    """One entry per spiking unit (netx block or graph population) with its latency and shapes."""
    net = dep.network
    units = []
    if dep.is_chain:
        for block, i in enumerate(net.neuron_layers):
            layer = net.layers[i]
            units.append({"name": layer.name, "block": block, "latency": net.latency(i),
                          "shape": list(layer.shape), "lava_shape": lava_shape(layer.shape)})
        return units
    for p in net.populations:
        units.append({"name": p.name, "role": p.role, "latency": net.level(p.name), "shape": list(p.shape),
                      "lava_shape": lava_shape(p.shape)})
    return units


def _network_section(dep: Any, timesteps: int) -> dict[str, Any]:
    kwargs = {"input_message_bits": dep.input_message_bits, "reset_interval": int(timesteps), "reset_offset": 1}
    if dep.is_chain:
        return {"format": "netx", "build": "lava.lib.dl.netx.hdf5.Network", "kwargs": kwargs,
                "note": "net_config is the .net file; netx gives block k the reset phase reset_offset + 1 + k "
                        "(1-based Lava time)"}
    return {"format": "spikeport-loihi-graph", "build": "spikeport.targets.lava.load_network", "kwargs": kwargs,
            "processes": "one lava.proc.lif.process.LIFReset per population (du = iDecay - 1, dv = vDecay, vth = "
                         "vThMant, bias_mant = bias, bias_exp = 6, reset_interval = T, reset_offset = reset_offset "
                         "+ latency), one lava.proc.dense.process.Dense or lava.proc.conv.process.Conv per "
                         "connection (see spikeport/targets/lava/graph_io.py for the file layout)",
            "note": "a population sums every connection into its a_in port; each connection delays by one step"}


def runtime_contract(dep: Any, timesteps: int) -> dict[str, Any]:
    """The ``runtime`` section of the sidecar for deployment ``dep`` exported for ``timesteps`` steps."""
    net = dep.network
    units = _units(dep)
    depth = max(u["latency"] for u in units)
    last = next(u for u in units if u["name"] == dep.graph.output)
    graded = bool(dep.input_scale)
    readout_ops = [n.op for n in dep.readout.nodes().values() if n.family != "io"]
    enc = {"shape": list(net.input_shape), "lava_shape": lava_shape(net.input_shape),
           "order": "lava_shape is the torch (C, H, W) frame transposed to (W, H, C): frame.transpose(2, 1, 0)"
                    if len(net.input_shape) == 3 else "1-D input: same order as torch",
           "encoding": "graded" if graded else "binary", "scale": dep.input_scale,
           "message_bits": dep.input_message_bits,
           "integer": (f"round(x * {dep.input_scale}), an integer in [0, {2 ** dep.input_message_bits - 1}]"
                       if graded else "x must be 0/1 spikes"),
           "steps": f"direct encoding: the same frame at each of the T={timesteps} steps of a sample (a [T, ...] "
                    "sequence, e.g. rate-encoded spikes, is sent step by step)",
           "port": ("Network.inp" if dep.is_chain else "the s_in of every connection whose src is 'input'")
           + ": connect a lava.proc.io.source.RingBuffer holding (*lava_shape, stream steps) int32"}
    return {
        "timesteps": int(timesteps),
        "run_config": RUN_CONFIG,
        "network": _network_section(dep, timesteps),
        "input": enc,
        "stream": {"layout": "samples back to back, T steps each, then trailing_zero_steps zero frames",
                   "trailing_zero_steps": depth, "steps_for_B_samples": f"B * {timesteps} + {depth}"},
        "reset": {"reset_interval": int(timesteps), "reset_offset": 1,
                  "rule": "the layer with latency k zeroes u and v at 0-based stream step j*T + k, when sample j's "
                          "first input reaches it",
                  "without_it": "a fresh network per sample without this schedule integrates each layer's bias "
                                "during its latency; see the export summary for the measured spike agreement"},
        "layers": units,
        "latency": "a layer's spike for sample j, step t is recorded at 0-based stream step j*T + t + latency "
                   "(Lava order lava_shape; transpose back to shape)",
        "output": {"layer": last["name"], "latency": last["latency"]},
        "readout": {"reads": last["name"], "runs_on": "host",
                    "input": f"the [T, B, {', '.join(map(str, last['shape']))}] spikes (0/1 floats) of the output "
                             "layer, torch order",
                    "ops": readout_ops, "graph": "the sidecar's 'readout' section (spikeport IR JSON), applied per "
                                                "step",
                    "prediction": "argmax over classes of the mean over the T steps of the logits"},
    }


def read_contract(doc: Any, dep: Any, where: str) -> dict[str, Any]:
    """Check a sidecar's ``runtime`` section against the deployment it describes (DataError naming ``where``)."""
    if not isinstance(doc, dict):
        raise DataError(f"{where}: the 'runtime' section must be an object")
    try:
        t = int(doc["timesteps"])
        kw = doc["network"]["kwargs"]
        layers = doc["layers"]
        bits = int(kw["input_message_bits"])
        interval, offset = int(kw["reset_interval"]), int(kw["reset_offset"])
        depth = int(doc["stream"]["trailing_zero_steps"])
        latencies = [(str(u["name"]), int(u["latency"])) for u in layers]
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{where}: malformed runtime contract ({type(e).__name__}: {e})") from e
    want = _units(dep)
    if t < 1 or interval != t or offset != 1 or bits != dep.input_message_bits:
        raise DataError(f"{where}: runtime contract T={t}, reset_interval={interval}, reset_offset={offset}, "
                        f"input_message_bits={bits} does not match the network (expected reset_interval=T, "
                        f"reset_offset=1, input_message_bits={dep.input_message_bits})")
    if latencies != [(u["name"], u["latency"]) for u in want] or depth != max(u["latency"] for u in want):
        raise DataError(f"{where}: runtime contract latencies {latencies} do not match the network's "
                        f"{[(u['name'], u['latency']) for u in want]}; re-export the model")
    return doc


def contract_markdown(c: dict[str, Any]) -> list[str]:
    """Markdown lines describing a runtime contract (for ``PATH.summary.md``)."""
    enc = c["input"]
    kw = c["network"]["kwargs"]
    net = c["network"]
    if net["format"] == "netx":
        build = (f"- build: `{net['build']}(net_config=FILE, " + ", ".join(f"{k}={v}" for k, v in kw.items())
                 + f")`, run with `{c['run_config']}`")
    else:
        build = (f"- build: `{net['build']}(FILE)` (graph file, not netx): {net['processes']}; "
                 f"{net['note']}; run with `{c['run_config']}`")
    lines = ["", "## Lava runtime contract (`.loihi.json` -> `runtime`)", "", build,
             f"- input: {enc['encoding']} spikes `{enc['integer']}`, {enc['message_bits']} message bits, frame "
             f"{enc['shape']} sent as {enc['lava_shape']} ({enc['order']}); {enc['steps']}",
             f"- stream: {c['stream']['layout']} (trailing_zero_steps = {c['stream']['trailing_zero_steps']})",
             f"- reset: reset_interval={c['reset']['reset_interval']}, reset_offset={c['reset']['reset_offset']}: "
             f"{c['reset']['rule']}",
             f"- latency: {c['latency']}", "",
             "| layer | role | latency (steps) | shape | Lava shape |", "|---|---|---|---|---|"]
    lines += [f"| {u['name']} | {u.get('role', 'neuron')} | {u['latency']} | {u['shape']} | {u['lava_shape']} |"
              for u in c["layers"]]
    r = c["readout"]
    lines += ["", f"- host readout: {', '.join(r['ops']) or 'identity'} on {r['input']}; prediction = "
                  f"{r['prediction']}"]
    return lines


def fresh_network_agreement(dep: Any, k: torch.Tensor) -> dict[str, float]:
    """Spike agreement per layer of a fresh network per sample *without* the reset schedule, vs the contract.

    Measured with the Loihi-exact reference (equal to Lava ``fixed_pt``): each sample of the integer input
    ``k`` ``[T, B, ...]`` runs ``T + depth`` steps from zero state with Lava's timing (biases integrate during
    each layer's latency), its layers are shifted by their latency, and the result is compared with the
    contract's timeline (the zero-latency run).
    """
    from spikeport.targets.lava.graph_reference import GraphExecutor

    graph = dep.graph
    ex = GraphExecutor(graph, input_message_bits=dep.input_message_bits)
    steps = k.shape[0]
    padded = torch.cat([k, torch.zeros((graph.depth, *k.shape[1:]), dtype=k.dtype)])
    raw = ex.run(padded, lava_delay=True)
    ref = ex.run(k)
    out = {}
    for p in graph.neurons:
        lv = graph.level(p.name)
        out[p.name] = float((raw[p.name][lv:lv + steps] == ref[p.name]).to(torch.float64).mean())
    return out
