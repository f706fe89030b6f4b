"""The demo's energy step: firing rates, synaptic ops and energy of the trained digits SNN.

Appended to :data:`spikeport.demo.DEMO_STEPS` by the demo when this module exists.
Records ``ctx.snn`` once on the digits test split (at the T and encoder it was
trained with), writes the ``horowitz45`` report (CSV, JSON, Markdown, HTML and
figures) into ``<demo out>/energy/``, echoes the per-inference totals and adds
them, priced under every built-in energy model, to the demo summary.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run", "REPORT_DIR", "HARDWARE", "energy_totals"]

REPORT_DIR = "energy"
"""Folder (inside the demo folder) that receives the report."""

HARDWARE = ("horowitz45", "lemaire", "loihi")
"""Energy models priced in the summary; the first one's report is written."""


def energy_totals(report: Any) -> dict[str, float]:
    """Per-inference figures of an :class:`~spikeport.energy.EnergyReport`.

    Returns:
        ``energy_uj`` (per sample), ``acs``, ``macs``, ``spikes``, ``firing_rate``,
        ``ann_macs`` and ``ann_energy_uj`` (the ANN of the same shape, one forward pass: the dense
        MACs of one timestep x E_MAC) and ``ann_over_snn`` (ANN / SNN energy).
    """
    t = report.totals
    return {"energy_uj": t["energy_pj"] / 1e6, "acs": t["syn_acs"] + t["syn_int_acs"], "macs": t["syn_macs"],
            "spikes": t["spikes"], "firing_rate": t["firing_rate"], "ann_macs": t["ann_macs"],
            "ann_energy_uj": t["ann_energy_pj"] / 1e6,
            "ann_over_snn": t["ann_over_snn"]}


def run(ctx: Any) -> None:
    """Record ``ctx.snn`` on the digits test split and write its energy report into ``ctx.out / "energy"``."""
    from spikeport.data import get_dataset
    from spikeport.energy.analyze import record_model, recording_target
    from spikeport.energy.report import estimate, write_report

    if ctx.snn is None:  # pragma: no cover - the train step always runs first
        return
    info = ctx.snn.info
    timesteps = info.timesteps or ctx.timesteps
    encoder = info.encoder if info.encoder not in ("", "none") else "direct"
    split = get_dataset("digits", train=False)
    model = ctx.snn.model.to("cpu").eval()
    target, recorded_on = recording_target(model, tuple(split.input_shape))
    ctx.echo(f"[demo] energy: recording {info.model} on the digits test split (T={timesteps}, {recorded_on})")
    rec = record_model(target, split, timesteps=timesteps, encoder=encoder, batch_size=128, device="cpu", seed=0,
                       progress=ctx.progress, count_active=True)  # active/idle updates: priced by loihi
    meta = {"model": "snn.pt", "model_kind": "checkpoint", "data": "digits (test split)", "recorded_on": recorded_on,
            "encoder": encoder, "seed": 0, "timesteps_from": "checkpoint"}
    reports = {hw: estimate(rec, hw, meta=meta) for hw in HARDWARE}
    main = reports[HARDWARE[0]]
    files = write_report(main, ctx.out / REPORT_DIR, force=True)
    totals = {hw: energy_totals(r) for hw, r in reports.items()}
    m = totals[HARDWARE[0]]
    ctx.echo(f"[demo]   {main.meta['samples']} samples: {m['energy_uj']:.4g} uJ per inference ({HARDWARE[0]}), "
             f"{m['acs']:.4g} ACs, {m['macs']:.4g} MACs, mean firing rate {m['firing_rate']:.4f}; "
             f"wrote {len(files)} files to {ctx.out / REPORT_DIR}")
    ctx.summary["energy"] = {"report_dir": REPORT_DIR, "samples": int(main.meta["samples"]), "timesteps": timesteps,
                             "recorded_on": recorded_on, "hardware": totals}
    md = [f"## Energy per inference (digits test split, {main.meta['samples']} samples, T={timesteps})", "",
          f"Report: `{REPORT_DIR}/report.html` (also CSV, JSON, Markdown and figures); recorded on {recorded_on}.",
          "", "| energy model | energy (uJ) | ACs | MACs | spikes | mean firing rate | ANN energy, one pass (uJ) "
              "| ANN / SNN |",
          "|---|---|---|---|---|---|---|---|"]
    for hw, t in totals.items():
        md.append(f"| {hw} | {t['energy_uj']:.4g} | {t['acs']:.4g} | {t['macs']:.4g} | {t['spikes']:.4g} | "
                  f"{t['firing_rate']:.4f} | {t['ann_energy_uj']:.4g} | {t['ann_over_snn']:.3g} |")
    ctx.markdown += md + ["", f"ANN: the same network with ReLU runs once per inference: the dense MACs of one "
                              f"timestep ({m['ann_macs']:.4g}, the first layer included) x each model's E_MAC; "
                              f"the SNN's figures cover all T={timesteps} steps.", ""]
