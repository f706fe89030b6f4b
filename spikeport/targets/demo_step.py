"""The demo's export step: ONNX (sequence + streaming) of the trained digits SNN, verified on the test split.

Appended to :data:`spikeport.demo.DEMO_STEPS` by the demo when this module exists.
Writes ``snn.onnx`` and ``snn_stream.onnx`` (+ their ``.summary.json``/``.summary.md``)
into the demo folder and adds the verification numbers to the demo summary.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run"]


def run(ctx: Any) -> None:
    """Export ``ctx.snn`` to onnx and onnx-stream, then verify both on the digits test split."""
    from spikeport.data import get_dataset
    from spikeport.targets.export import export_model
    from spikeport.targets.verify import dataset_batches, verify_export

    if ctx.snn is None:  # pragma: no cover - the train step always runs first
        return
    model = ctx.snn.model.to("cpu").eval()
    split = get_dataset("digits", train=False)
    rows, md = {}, ["## Export (ONNX, checked by onnxruntime against the torch reference)", "",
                    "| target | file | spikes | max logit error | accuracy torch / onnxruntime | verdict |",
                    "|---|---|---|---|---|---|"]
    for target, name in (("onnx", "snn.onnx"), ("onnx-stream", "snn_stream.onnx")):
        ctx.echo(f"[demo] exporting {target} -> {name}")
        res = export_model(model, target, ctx.out / name, timesteps=ctx.timesteps, force=True, source="snn.pt")
        [c] = verify_export(model, res.path, dataset_batches(split, timesteps=ctx.timesteps, batch_size=128))
        ctx.echo(f"[demo]   {c.describe()}; accuracy torch {c.ref_accuracy:.4f}, onnxruntime {c.target_accuracy:.4f}")
        rows[target] = {"file": name, **c.to_dict()}
        agree = f"{100 * (1 - c.spike_mismatches / max(1, sum(x.total for x in c.layers))):.4f}% identical"
        md.append(f"| {target} | {name} | {agree} | {c.max_logit_error:.2g} | {c.ref_accuracy:.4f} / "
                  f"{c.target_accuracy:.4f} | {c.verdict} |")
    ctx.summary["export"] = rows
    ctx.markdown += md + [""]
