"""The demo's export step: every target for the trained digits SNN, each verified on the test split.

Appended to :data:`spikeport.demo.DEMO_STEPS` by the demo when this module exists.
Writes ``snn.onnx``, ``snn_stream.onnx``, ``snn.nir`` and ``snn.net`` (Lava netx; with
their summaries) into the demo folder, prints one verification line per target and
adds the verification table to the demo summary. A target that cannot take the model
is reported in the table with the exporter's reason instead of failing the demo.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run", "TARGET_FILES"]

#: (target, file name in the demo folder), in the order the demo runs them.
TARGET_FILES = (("onnx", "snn.onnx"), ("onnx-stream", "snn_stream.onnx"), ("nir", "snn.nir"), ("lava", "snn.net"))


def run(ctx: Any) -> None:
    """Export ``ctx.snn`` to every target, then verify each on the digits test split."""
    from spikeport.data import get_dataset
    from spikeport.errors import SpikeportError
    from spikeport.targets.export import describe_lava_check, export_model
    from spikeport.targets.verify import dataset_batches, dataset_check_data, verify_export

    if ctx.snn is None:  # pragma: no cover - the train step always runs first
        return
    model = ctx.snn.model.to("cpu").eval()
    split = get_dataset("digits", train=False)
    check_data = dataset_check_data(split, "digits", timesteps=ctx.timesteps)  # the export's own check
    rows, md = {}, ["## Export (each target run on the test split against the torch reference)", "",
                    "| target | file | spikes | max logit error | accuracy torch / target | verdict |",
                    "|---|---|---|---|---|---|"]
    notes: list[str] = []
    for target, name in TARGET_FILES:
        ctx.echo(f"[demo] exporting {target} -> {name}")
        try:
            res = export_model(model, target, ctx.out / name, timesteps=ctx.timesteps, force=True, source="snn.pt",
                               check_data=check_data)
            c = verify_export(model, res.path, dataset_batches(split, timesteps=ctx.timesteps, batch_size=128))[0]
        except SpikeportError as e:
            ctx.echo(f"[demo]   {target}: not exported: {e}")
            rows[target] = {"file": None, "error": str(e)}
            md.append(f"| {target} | - | - | - | - | not exported: {e} |")
            continue
        ctx.echo(f"[demo]   {c.describe()}; accuracy torch {c.ref_accuracy:.4f}, {target} {c.target_accuracy:.4f}")
        lava = res.summary.get("lava_check")
        if lava:  # the export ran Lava itself on a few inputs against spikeport's Loihi-exact reference
            ctx.echo(f"[demo]   {describe_lava_check(lava)}")
            notes.append(f"{describe_lava_check(lava)} (checked at export on the first test samples).")
        rows[target] = {"file": name, **c.to_dict()}
        agree = f"{100 * (1 - c.spike_mismatches / max(1, sum(x.total for x in c.layers))):.4f}% identical"
        md.append(f"| {target} | {name} | {agree} | {c.max_logit_error:.2g} | {c.ref_accuracy:.4f} / "
                  f"{c.target_accuracy:.4f} | {c.verdict} |")
    ctx.summary["export"] = rows
    ctx.markdown += md + [""] + notes + ([""] if notes else [])
