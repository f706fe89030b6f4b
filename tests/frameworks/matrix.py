"""One row of the framework x command matrix: what each spikeport command does with a model of another framework.

Every cell is measured on the model as its user builds it (``file.py:factory --weights``) and on the
digits test split: ``inspect`` (trace), ``energy`` (per-layer rates against plain forward hooks on
the framework's own neuron modules; synaptic ops against NeuroBench's SynapticOperations),
``export`` onnx / nir / lava (with the check against the IR and the original model), ``verify``
(the ONNX file against the IR and the original). A cell is either a result or the one-line refusal.
Used by ``test_matrix.py`` (assertions) and ``benchmarks/frameworks_matrix.py`` (the table).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .training import T, Trained, digits, encode

SHAPE = (1, 8, 8)


def neurobench_synops(net: torch.nn.Module, batches: list[torch.Tensor]) -> dict[str, float]:
    """NeuroBench 2.3's SynapticOperations, driven as ``Benchmark.run`` does, batch by batch (under no_grad:
    SLAYER's weight pre-hook makes NeuroBench's deep copies fail otherwise). ``batches`` are ``[T, B, ...]``."""
    from neurobench.metrics.workload import SynapticOperations
    from neurobench.models import TorchModel

    model = TorchModel(net)
    model.register_hooks()
    metric = SynapticOperations()
    try:
        for x in batches:
            with torch.no_grad():
                preds = model(x)
                metric(model, preds, (torch.empty(x.shape[1]), None))  # per-sample: data[0].size(0) = B
            model.reset_hooks()
    finally:
        model.cleanup_hooks()
    return dict(metric.compute())


def _refusal(e: Exception) -> str:
    return str(e).strip().splitlines()[0]


def hook_counts(model: Any, x: torch.Tensor) -> dict[str, tuple[int, int]]:
    """``layer -> (spikes, neuron-steps)`` from plain forward hooks on the framework's own neuron modules
    (a spike count of n counts n)."""
    from spikeport.frameworks.runner import OriginalRunner

    outs = OriginalRunner(model).module_outputs(x)
    return {k: (int(v.double().sum()), int(v.numel())) for k, v in outs.items()}


def energy_cell(model: Any, batches: list[torch.Tensor]) -> dict[str, Any]:
    from spikeport.energy import estimate, neurobench_ops, record_spikes, recording_target

    target, how = recording_target(model, SHAPE)
    with torch.no_grad(), record_spikes(target) as rec:
        for x in batches:
            target(x)
    rows = estimate(rec).layers.set_index("layer")
    ours = {name: (round(float(rows.loc[name, "spikes"]) * rec.samples), round(float(rows.loc[name, "neuron_updates"])
                                                                            * rec.samples))
            for name in rows.index if rows.loc[name, "role"] == "neuron"}
    hooks: dict[str, tuple[int, int]] = {}
    for x in batches:
        for k, (s, n) in hook_counts(model, x).items():
            a, b = hooks.get(k, (0, 0))
            hooks[k] = (a + s, b + n)
    return {"recorded_on": how, "ours": ours, "hooks": hooks, "synops": neurobench_ops(rec),
            "neurobench": neurobench_synops(model, batches),
            "rates": {k: s / n for k, (s, n) in hooks.items()}}


def export_cell(model: Any, target: str, out: Path, data: Any) -> dict[str, Any]:
    from spikeport.errors import SpikeportError
    from spikeport.targets.export import export_model

    try:
        r = export_model(model, target, out, timesteps=T, input_shape=SHAPE, force=True, check_data=data)
    except SpikeportError as e:
        return {"refused": _refusal(e)}
    return {"path": r.path, "check": r.check, "original": r.original, "summary": r.summary}


def row(tr: Trained, work: Path, samples: int = 64) -> dict[str, Any]:
    """Every cell of one model's row (see the module docstring)."""
    from spikeport.converter import trace
    from spikeport.errors import SpikeportError
    from spikeport.targets.verify import CheckData, verify_export

    loaded = tr.load()
    model = loaded.model
    xte, yte = digits(False)
    batches = [encode(xte[i:i + 32]) for i in range(0, samples, 32)]
    labels = [yte[i:i + 32] for i in range(0, samples, 32)]
    data = CheckData(list(zip(batches, labels, strict=True)), f"digits test split, first {samples} samples, T={T}",
                     labelled=True)
    cells: dict[str, Any] = {"name": tr.name, "layout": tr.layout, "accuracy": tr.accuracy, "notes": loaded.notes}
    try:
        g = trace(model, SHAPE)
        cells["inspect"] = {"nodes": len(g), "ops": sorted({n.op for n in g.nodes().values()})}
    except SpikeportError as e:
        cells["inspect"] = {"refused": _refusal(e)}
    cells["energy"] = energy_cell(model, batches)
    for target, suffix in (("onnx", "onnx"), ("nir", "nir"), ("lava", "net")):
        cells[target] = export_cell(model, target, work / f"{tr.name}.{suffix}", data)
    if "path" in cells["onnx"]:
        cells["verify"] = verify_export(model, cells["onnx"]["path"], data.batches, input_shape=SHAPE)
    else:
        cells["verify"] = {"refused": cells["onnx"]["refused"]}
    return cells
