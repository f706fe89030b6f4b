"""Energy reports: a per-layer DataFrame with totals, written as CSV, JSON, Markdown and HTML.

:func:`estimate` turns a recording into an :class:`EnergyReport` under one energy
model; :func:`write_report` writes it to a directory:

* ``layers.csv`` (one row per node plus a ``TOTAL`` row), ``timestep_rates.csv``;
* ``report.json`` (everything, including constants, assumptions, per-channel rates);
* ``report.md`` and a self-contained ``report.html`` (figures embedded as base64 PNG);
* ``fig_rates.png``, ``fig_rate_heatmap.png``, ``fig_energy_layers.png``, ``fig_energy_kinds.png``.

The report is written all or nothing (rendered in memory, staged in a hidden
directory, then renamed into place); CSV and JSON hold no timestamps, so the same
model, data and seed give byte-identical files.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from spikeport._io import check_overwrite, ensure_writable_dir
from spikeport.energy.counting import HELPER_COLUMNS, OP_COLUMNS, OpCounts, count_ops, neurobench_ops
from spikeport.energy.hardware import ENERGY_KINDS, EnergyModel, get_hardware
from spikeport.energy.record import NeuronRecord, Recording
from spikeport.errors import ConfigError

__all__ = ["EnergyReport", "estimate", "write_report", "REPORT_FILES", "FIGURE_FILES", "render_markdown",
           "render_html", "render_report", "png_bytes", "headline", "COLUMN_LABELS"]

FIGURE_FILES = ("fig_rates.png", "fig_rate_heatmap.png", "fig_energy_layers.png", "fig_energy_kinds.png")
REPORT_FILES = ("layers.csv", "timestep_rates.csv", "report.json", "report.md", "report.html") + FIGURE_FILES
ENERGY_COLUMNS = tuple(f"e_{k}_pj" for k in ENERGY_KINDS) + ("energy_pj", "paper_energy_pj")
ID_COLUMNS = ("layer", "type", "role", "value_class", "calls", "neurons", "rate", "in_rate")
SUM_COLUMNS = OP_COLUMNS + ENERGY_COLUMNS
ANN_ASSUMPTION = (
    "ann_energy_pj: the ANN of the same shape (ReLU instead of spiking neurons) runs once per inference, not T "
    "times: one forward pass = the dense MACs of one timestep (every synapse, the first layer included; column "
    "ann_macs) x E_MAC ({e_mac:g} pJ); compute only (no memory, element-wise or attention ops); ann_over_snn = "
    "ann_energy_pj / energy_pj, the SNN's energy over all T steps")
MAX_FIG_INCHES = 16.0  # figures stay this size at most, however many timesteps or layers
MAX_TICKS = 32  # timestep axes label every step up to this T


@dataclass
class EnergyReport:
    """Per-layer rates, op counts and energy of one model under one energy model (per sample).

    Attributes:
        layers: DataFrame, one row per node (execution order); see :data:`ID_COLUMNS`,
            :data:`~spikeport.energy.counting.OP_COLUMNS` and :data:`ENERGY_COLUMNS`.
        totals: column sums plus ``firing_rate`` (all neurons), ``ann_energy_pj`` (the ANN of the
            same shape, one forward pass: ``ann_macs`` x E_MAC) and ``ann_over_snn`` (ANN / SNN energy).
        timestep_rates: DataFrame, neuron layers x timesteps.
        channel_rates: per neuron layer, the rate of each channel.
        neurobench: the same counts in NeuroBench's SynapticOperations vocabulary.
        hardware: the energy model used.
        assumptions: counting and energy assumptions, in the order reported.
        meta: model, data and run description (no timestamps).
    """

    layers: pd.DataFrame
    totals: dict[str, float]
    timestep_rates: pd.DataFrame
    channel_rates: dict[str, list[float]]
    neurobench: dict[str, float]
    hardware: EnergyModel
    assumptions: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly content (NaN/inf become None)."""
        return _clean({
            "meta": self.meta,
            "hardware": self.hardware.constants(),
            "assumptions": self.assumptions,
            "totals": self.totals,
            "neurobench": self.neurobench,
            "layers": self.layers.to_dict(orient="records"),
            "timestep_rates": {str(k): list(v) for k, v in self.timestep_rates.iterrows()},
            "channel_rates": self.channel_rates,
        })

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

    def summary(self) -> str:
        """A few lines for the terminal."""
        t = self.totals
        m = self.meta
        rate = t["firing_rate"]
        unmeasured = m.get("unmeasured_layers") or []
        warn = (f"\n  UNMEASURED: {len(unmeasured)} layer(s) without an energy rule ({', '.join(unmeasured)}); every "
                "total below excludes them (a lower bound)") if unmeasured else ""
        return (f"{m.get('model', '?')}: {m.get('samples', '?')} samples, T={m.get('timesteps')}"
                f", firing rate {'unmeasured' if not math.isfinite(rate) else format(rate, '.4f')}{warn}\n"
                f"  per sample{', measured layers only (lower bounds)' if unmeasured else ''}: "
                f"{t['syn_acs'] + t['syn_int_acs']:.4g} ACs, {t['syn_macs']:.4g} MACs "
                f"(dense {t['dense_macs']:.4g}), {t['spikes']:.4g} spikes\n"
                f"  energy ({self.hardware.name}): {t['energy_pj'] / 1e6:.6g} uJ per sample "
                f"(papers' formula {t['paper_energy_pj'] / 1e6:.6g} uJ)\n"
                f"  ANN of the same shape, one forward pass: {t['ann_macs']:.4g} MACs, "
                f"{t['ann_energy_pj'] / 1e6:.6g} uJ; ANN / SNN = {t['ann_over_snn']:.3g}")


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            return _clean(obj.item())
        except (TypeError, ValueError):
            return str(obj)
    return obj


def estimate(rec: Recording | OpCounts, hardware: str | EnergyModel = "horowitz45", *, samples: int | None = None,
             meta: Mapping[str, Any] | None = None) -> EnergyReport:
    """Count ops of a recording and price them with ``hardware``.

    Args:
        rec: the :class:`Recording` from :func:`~spikeport.energy.record_spikes` (or its counts).
        hardware: energy model name (``horowitz45``, ``lemaire``, ``loihi``), TOML path or model.
        samples: override the recorded sample count.
        meta: extra run description stored in the report (model, dataset, seed, ...).

    Returns:
        The :class:`EnergyReport` (per-sample numbers).
    """
    hw = get_hardware(hardware)
    counts = rec if isinstance(rec, OpCounts) else count_ops(rec, samples)
    nb = neurobench_ops(rec, samples) if isinstance(rec, Recording) else {}
    neuron_ops = _neuron_ops(rec) if isinstance(rec, Recording) else {}
    rows = []
    for row in counts.rows:
        out = {c: row.get(c) for c in ID_COLUMNS}
        if row["role"] == "unmeasured":  # no rule: every count and energy is unknown (NaN), never 0
            out.update({c: math.nan for c in (*OP_COLUMNS, *ENERGY_COLUMNS, *HELPER_COLUMNS) if c not in out})
            rows.append(out)
            continue
        e = hw.layer_energy(row, neuron_ops.get(row["layer"], (0, 0)))
        out.update({c: float(row[c]) for c in OP_COLUMNS})
        out.update({f"e_{k}_pj": e[k] for k in ENERGY_KINDS})
        out["energy_pj"] = sum(e[k] for k in ENERGY_KINDS)
        out["paper_energy_pj"] = hw.paper_energy(row)
        out.update({c: float(row[c]) for c in HELPER_COLUMNS})
        rows.append(out)
    cols = list(ID_COLUMNS) + list(OP_COLUMNS) + list(ENERGY_COLUMNS) + [c for c in HELPER_COLUMNS
                                                                          if c not in ID_COLUMNS]
    layers = pd.DataFrame(rows, columns=cols)
    totals = {c: float(layers[c].sum()) if len(layers) else 0.0 for c in SUM_COLUMNS}
    neuron_rows = layers[layers["role"].isin(["neuron", "activation"])]
    elems = float((neuron_rows["neurons"] * counts.timesteps).sum()) if len(neuron_rows) else 0.0
    totals["firing_rate"] = _weighted_rate(rec) if isinstance(rec, Recording) else (
        totals["spikes"] / elems if elems else 0.0)
    totals["ann_energy_pj"] = totals["ann_macs"] * hw.e_mac_pj
    totals["ann_over_snn"] = totals["ann_energy_pj"] / totals["energy_pj"] if totals["energy_pj"] else float("nan")
    t = max([len(v) for v in counts.timestep_rates.values()], default=0)
    trates = pd.DataFrame.from_dict({k: list(v) + [None] * (t - len(v)) for k, v in counts.timestep_rates.items()},
                                    orient="index", columns=[f"t{i}" for i in range(t)], dtype=float)
    trates.index.name = "layer"
    assumptions = list(counts.notes) + hw.assumptions() + [
        ANN_ASSUMPTION.format(e_mac=hw.e_mac_pj)]
    info = {"model": getattr(rec, "model_name", ""), "samples": counts.samples, "timesteps": counts.timesteps,
            "hardware": hw.name}
    if counts.unmeasured:
        info["unmeasured_layers"] = list(counts.unmeasured)
    info.update(dict(meta or {}))
    return EnergyReport(layers, totals, trates, counts.channel_rates, nb, hw, assumptions, info)


def _neuron_ops(rec: Recording) -> dict[str, tuple[int, int]]:
    return {r.name: r.rule.neuron_ops for r in rec.nodes(NeuronRecord)}


def _weighted_rate(rec: Recording) -> float:
    """Spikes / neuron-steps over the measured neuron layers (NaN when only unmeasured layers could spike)."""
    spikes = elems = 0
    for r in rec.nodes(NeuronRecord):
        if isinstance(r, NeuronRecord) and r.rule.role == "neuron":  # isinstance: nodes() is typed _NodeBase
            spikes += int(r.spikes_tc.sum())
            elems += int(r.elements_t.sum())
    if not elems and rec.unmeasured:
        return math.nan
    return spikes / elems if elems else 0.0


# ---------------------------------------------------------------- figures
def _figure(width: float = 8.0, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig) -> bytes:
    """Render a matplotlib Figure to PNG bytes (no timestamp metadata)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None}, bbox_inches="tight")
    return buf.getvalue()


def _short(names: list[str], n: int = 28) -> list[str]:
    return [s if len(s) <= n else "..." + s[-(n - 3):] for s in names]


def figures(report: EnergyReport) -> dict[str, bytes]:
    """The four report figures as PNG bytes, by file name."""
    out: dict[str, bytes] = {}
    df = report.layers
    neu = df[df["role"].isin(["neuron", "activation"])]
    names = _short(list(neu["layer"]))
    fig = _figure(max(6.0, 0.35 * len(neu) + 2), 4.0)
    ax = fig.add_subplot()
    ax.bar(range(len(neu)), list(neu["rate"].astype(float)), color="#3b75af")
    ax.set_xticks(range(len(neu)), names, rotation=75, ha="right", fontsize=7)
    ax.set_ylabel("firing rate (spikes / neuron / step)")
    ax.set_title(f"Firing rate per layer ({report.meta.get('model', '')})")
    out["fig_rates.png"] = png_bytes(fig)

    tr = report.timestep_rates
    # the width grows with T only up to MAX_FIG_INCHES; beyond MAX_TICKS steps matplotlib picks the ticks
    fig = _figure(min(MAX_FIG_INCHES, max(5.0, 0.6 * tr.shape[1] + 4)),
                  min(MAX_FIG_INCHES, max(3.0, 0.22 * len(tr) + 1.5)))
    ax = fig.add_subplot()
    if tr.size:
        im = ax.imshow(tr.to_numpy(dtype=float), aspect="auto", cmap="viridis", interpolation="nearest")
        fig.colorbar(im, ax=ax, label="firing rate")
        ax.set_yticks(range(len(tr)), _short(list(tr.index)), fontsize=7)
        if tr.shape[1] <= MAX_TICKS:
            ax.set_xticks(range(tr.shape[1]), list(tr.columns))
        else:
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(nbins=MAX_TICKS, integer=True))
    ax.set_xlabel("timestep")
    ax.set_title("Firing rate per layer and timestep")
    out["fig_rate_heatmap.png"] = png_bytes(fig)

    kinds = [k for k in ENERGY_KINDS if float(df[f"e_{k}_pj"].sum()) > 0] or ["ac"]
    colors = {"ac": "#3b75af", "mac": "#ef8636", "neuron": "#519e3e", "spike": "#c53a32", "memory": "#8d69b8"}
    active = df[df["energy_pj"] > 0]
    fig = _figure(max(6.0, 0.35 * len(active) + 2), 4.0)
    ax = fig.add_subplot()
    bottom = [0.0] * len(active)
    for k in kinds:
        vals = [v / 1e6 for v in active[f"e_{k}_pj"].astype(float)]
        ax.bar(range(len(active)), vals, bottom=bottom, label=k, color=colors[k])
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_xticks(range(len(active)), _short(list(active["layer"])), rotation=75, ha="right", fontsize=7)
    # a zero-height segment on top of a stack pins autoscaling at the stack's top (bars make their base a
    # "sticky" limit), which clipped the tallest bar: set the range from the stacked totals instead
    ax.set_ylim(0.0, 1.08 * max(bottom, default=0.0) or 1.0)
    ax.set_ylabel("energy per sample (uJ)")
    ax.set_title(f"Energy by layer ({report.hardware.name})")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    out["fig_energy_layers.png"] = png_bytes(fig)

    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
    tot = [report.totals[f"e_{k}_pj"] / 1e6 for k in ENERGY_KINDS]
    ax.bar(list(ENERGY_KINDS), tot, color=[colors[k] for k in ENERGY_KINDS])
    ax.axhline(report.totals["paper_energy_pj"] / 1e6, color="k", ls="--", lw=1, label="papers' formula (total)")
    ax.set_ylabel("energy per sample (uJ)")
    ax.set_title(f"Energy by op kind ({report.hardware.name})")
    ax.legend(fontsize=8)
    out["fig_energy_kinds.png"] = png_bytes(fig)
    return out


# ---------------------------------------------------------------- text renderings
_MD_COLS = ("layer", "type", "value_class", "rate", "in_rate", "dense_macs", "ann_macs", "syn_acs", "syn_int_acs",
            "syn_macs", "approx_sops", "elem_adds", "elem_macs", "spikes", "energy_pj", "paper_energy_pj")

COLUMN_LABELS: dict[str, str] = {
    "layer": "layer", "type": "type", "value_class": "input values", "role": "role", "calls": "calls",
    "neurons": "neurons per step", "rate": "firing rate (spikes / neuron / step)",
    "in_rate": "input nonzero fraction", "dense_macs": "dense MACs, all T steps",
    "ann_macs": "ANN MACs, one forward pass", "syn_acs": "ACs on spikes",
    "syn_int_acs": "ACs on integer inputs (value-weighted)", "syn_macs": "MACs on real-valued inputs",
    "approx_sops": "papers' SOPs (rate x T x FLOPs)", "approx_macs": "papers' MACs (real inputs)",
    "elem_adds": "element-wise additions", "elem_macs": "element-wise products (MACs)",
    "neuron_updates": "membrane updates", "active_updates": "membrane updates with input", "spikes": "spikes",
    "energy_pj": "energy (pJ)", "paper_energy_pj": "papers' formula energy (pJ)", "e_ac_pj": "AC energy (pJ)",
    "e_mac_pj": "MAC energy (pJ)", "e_neuron_pj": "membrane update energy (pJ)", "e_spike_pj": "spike energy (pJ)",
    "e_memory_pj": "memory access energy (pJ)", "firing_rate": "mean firing rate (spikes / neuron / step)",
    "ann_energy_pj": "ANN energy, one forward pass (pJ)", "ann_over_snn": "ANN / SNN energy (ratio)",
}
"""Human names with units of the report's machine column names (HTML and Markdown; CSV/JSON keep the keys).
Op counts and energies are per inference (one sample over all T steps unless the name says one pass)."""


def _label(key: str) -> str:
    if key.startswith("neurobench."):
        return f"NeuroBench {key.split('.', 1)[1].replace('_', ' ')}"
    return COLUMN_LABELS.get(key, key)


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 or v == 0 else f"{v:.4e}"
    return str(v)


def _si(v: float) -> str:
    """A count with 4 significant digits and a k / M / G suffix."""
    for div, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(v) >= div:
            return f"{v / div:.4g}{suffix}"
    return f"{v:.4g}"


def _energy(pj: float, scale_pj: float | None = None) -> str:
    """An energy in pJ with a readable unit (pJ, nJ, uJ, mJ), chosen from ``scale_pj`` (default ``pj``)."""
    ref = abs(pj if scale_pj is None else scale_pj)
    for div, unit in ((1e9, "mJ"), (1e6, "uJ"), (1e3, "nJ")):
        if ref >= div:
            return f"{pj / div:.4g} {unit}"
    return f"{pj:.4g} pJ"


def headline(report: EnergyReport) -> list[tuple[str, str]]:
    """The report's first screen: ``(figure, what it is)`` pairs, every figure measured or computed from counts."""
    t, m, hw = report.totals, report.meta, report.hardware
    ratio = t.get("ann_over_snn", float("nan"))
    if not math.isfinite(ratio) or ratio <= 0:
        verdict = "no ratio: the SNN's energy is 0 under this model"
        ratio_s = "n/a"
    else:
        ratio_s = f"{ratio:.3g}x"
        verdict = (f"the SNN uses {ratio:.3g}x less energy than the ANN" if ratio >= 1 else
                   f"the SNN uses {1 / ratio:.3g}x more energy than the ANN")
    acs = t["syn_acs"] + t["syn_int_acs"]
    steps = m.get("timesteps")
    ops = f"{_si(acs)} ACs + {_si(t['syn_macs'])} MACs"
    elem = t["elem_adds"] + t["elem_macs"]
    unit = min(t["energy_pj"], t["ann_energy_pj"]) or None  # one unit for both energies
    unmeasured = m.get("unmeasured_layers") or []
    warning = [(f"{len(unmeasured)} UNMEASURED", f"layer(s) without an energy rule ({', '.join(unmeasured)}): their "
                "spikes and operations are in no figure below, so every total is a lower bound")] if unmeasured else []
    rate = t["firing_rate"]
    bound = " (lower bound: unmeasured layers excluded)" if unmeasured else ""
    return warning + [
        (_energy(t["energy_pj"], unit), f"energy per inference (one sample, all T={steps} steps), energy model "
                                  f"'{hw.name}'{bound}"),
        (_energy(t["ann_energy_pj"], unit), f"the ANN of the same shape, one forward pass: {_si(t['ann_macs'])} MACs x "
                                      f"{hw.e_mac_pj:g} pJ"),
        (ratio_s, f"ANN / SNN energy: {verdict}"
                  + ("; the ANN figure is compute only, the SNN's includes memory accesses" if hw.memory else "")),
        (f"{rate:.4f}" if math.isfinite(rate) else "unmeasured",
         "mean firing rate (spikes per neuron per step)" + (" of the measured neuron layers" if unmeasured else "")),
        (ops, "SNN synaptic ops per inference (ACs on spikes and integer inputs, MACs on real-valued inputs)"
              + (f"; plus {_si(elem)} element-wise ops" if elem else "")
              + f"; the ANN does {_si(t['ann_macs'])} MACs"),
        (hw.name, (hw.description + "; " if hw.description else "")
         + f"AC {hw.e_ac_pj:g} pJ, MAC {hw.e_mac_pj:g} pJ"
         + ("; memory accesses charged" if hw.memory else "")),
    ]


def _run_line(report: EnergyReport) -> str:
    m = report.meta
    parts = [f"model {m.get('model', '?')}"]
    if m.get("data"):
        parts.append(f"data {m['data']}")
    parts += [f"{m.get('samples', '?')} samples", f"T={m.get('timesteps', '?')}"]
    return ", ".join(str(p) for p in parts)


def _md_table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header] + [[_fmt(v).replace("|", "\\|") for v in r] for r in rows]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells[1:]]
    return "\n".join(lines)


def _layer_rows(report: EnergyReport) -> list[list[Any]]:
    """Layer table rows for people: an unmeasured layer's unknown numbers read "unmeasured", never blank or 0."""
    rows = []
    for r in report.layers.to_dict(orient="records"):
        unknown = r.get("role") == "unmeasured"
        rows.append([("unmeasured" if unknown and (v is None or (isinstance(v, float) and not math.isfinite(v)))
                      else v) for v in (r.get(c) for c in _MD_COLS)])
    return rows


def _totals_rows(report: EnergyReport) -> list[list[Any]]:
    return [[k, v] for k, v in report.totals.items()] + [[f"neurobench.{k}", v] for k, v in report.neurobench.items()]


def render_markdown(report: EnergyReport) -> str:
    """The report as Markdown (tables only; figures are separate PNG files)."""
    m = report.meta
    parts = [f"# Energy report: {m.get('model', '')}", "", _run_line(report), ""]
    parts += [f"- **{value}**: {what}" for value, what in headline(report)]
    parts += ["", "## Run", "", _md_table([[k, v] for k, v in m.items()], ["run", "value"]), "",
              "## Totals (per inference)", "",
              _md_table([[_label(k), v, k] for k, v in _totals_rows(report)], ["quantity", "value", "JSON key"]), "",
              "## Layers (per inference)", "",
              _md_table(_layer_rows(report), [_label(c) for c in _MD_COLS]), "",
              "## Energy constants", "",
              _md_table([[k, v if not isinstance(v, list) else json.dumps(v)] for k, v in
                         report.hardware.constants().items()], ["constant", "value"]), "",
              "## Assumptions", ""]
    parts += [f"- {a}" for a in report.assumptions]
    parts += ["", "Figures: " + ", ".join(f"[{f}]({f})" for f in FIGURE_FILES), ""]
    return "\n".join(parts)


def _html_table(header: list[str], rows: list[list[Any]], keys: list[str] | None = None) -> str:
    """A table; ``keys`` (machine names, as in CSV/JSON) become the header cells' tooltips."""
    tips = keys or [""] * len(header)
    head = "".join(f'<th title="{html.escape(k)}">{html.escape(h)}</th>' if k else f"<th>{html.escape(h)}</th>"
                   for h, k in zip(header, tips, strict=True))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_FIGURE_CAPTIONS = {"fig_rates.png": "Firing rate per layer", "fig_rate_heatmap.png": "Firing rate per layer and step",
                    "fig_energy_layers.png": "Energy per inference by layer",
                    "fig_energy_kinds.png": "Energy per inference by op kind"}


def render_html(report: EnergyReport, figs: Mapping[str, bytes]) -> str:
    """A self-contained HTML page (figures inlined as base64 PNG) that opens on the headline figures."""
    m = report.meta
    imgs = "".join(f'<figure><img alt="{html.escape(_FIGURE_CAPTIONS.get(n, n))}" src="data:image/png;base64,'
                   f'{base64.b64encode(b).decode("ascii")}"><figcaption>{html.escape(_FIGURE_CAPTIONS.get(n, n))} '
                   f"({html.escape(n)})</figcaption></figure>" for n, b in figs.items())
    cards = "".join(f'<div class="card"><div class="big">{html.escape(v)}</div><div>{html.escape(w)}</div></div>'
                    for v, w in headline(report))
    layer_rows = _layer_rows(report)
    consts = [[k, json.dumps(v) if isinstance(v, list) else v] for k, v in report.hardware.constants().items()]
    totals = _totals_rows(report)
    style = ("body{font-family:sans-serif;margin:2em;max-width:1400px;color:#222}"
             "table{border-collapse:collapse;font-size:12px;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}"
             "td:first-child{text-align:left}figure{display:inline-block;margin:0.5em}img{max-width:680px}"
             ".cards{display:flex;flex-wrap:wrap;gap:12px;margin:1em 0}"
             ".card{flex:1 1 300px;border:1px solid #ccc;border-radius:6px;padding:10px 14px;background:#f7f9fc}"
             ".big{font-size:26px;font-weight:bold;margin-bottom:4px}.run{color:#555}")
    title = html.escape(str(m.get("model", "")))
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>Energy report: {title}</title><style>{style}</style></head><body>"
            f"<h1>Energy report: {title}</h1><p class=\"run\">{html.escape(_run_line(report))}</p>"
            f'<div class="cards">{cards}</div>'
            + f"<h2>Figures</h2>{imgs}"
            + "<h2>Totals (per inference)</h2>"
            + _html_table(["quantity", "value", "JSON key"], [[_label(k), v, k] for k, v in totals])
            + "<h2>Layers (per inference)</h2>"
            + _html_table([_label(c) for c in _MD_COLS], layer_rows, list(_MD_COLS))
            + "<h2>Run</h2>" + _html_table(["run", "value"], [[k, v] for k, v in m.items()])
            + "<h2>Energy constants</h2>" + _html_table(["constant", "value"], consts)
            + "<h2>Assumptions</h2><ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in report.assumptions)
            + "</ul></body></html>\n")


def render_report(report: EnergyReport) -> dict[str, bytes]:
    """Every file of :data:`REPORT_FILES` rendered in memory: ``{file name: content}``."""
    figs = figures(report)
    layers = report.layers.copy()
    total: dict[str, object] = dict.fromkeys(layers.columns, "")
    total.update({"layer": "TOTAL", "rate": report.totals["firing_rate"]})
    total.update({c: report.totals[c] for c in SUM_COLUMNS})
    layers = pd.concat([layers, pd.DataFrame([total], columns=layers.columns)], ignore_index=True)
    texts = {"layers.csv": layers.to_csv(index=False, lineterminator="\n"),
             "timestep_rates.csv": report.timestep_rates.to_csv(lineterminator="\n"),
             "report.json": report.to_json(),
             "report.md": render_markdown(report),
             "report.html": render_html(report, figs)}
    files = {name: text.encode("utf-8") for name, text in texts.items()}
    files.update(figs)
    return files


def _stage_dir(parent: Path, name: str) -> Path:
    """A new hidden directory ``parent/.name.XXXXXXXX.tmp`` (created with the umask's permissions)."""
    for _ in range(100):
        stage = parent / f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            stage.mkdir()
            return stage
        except FileExistsError:
            continue
        except OSError as e:
            raise ConfigError(f"{parent / name}: cannot create files in {parent} ({e.strerror}); "
                              "choose a writable --out") from e
    raise ConfigError(f"{parent / name}: cannot create a staging directory in {parent}")  # pragma: no cover


def write_report(report: EnergyReport, out_dir: str | Path, *, force: bool = False) -> list[Path]:
    """Write every file of :data:`REPORT_FILES` into ``out_dir``, all or nothing.

    Everything is rendered in memory first, then written into a staging
    directory; only when every file is complete is the staging directory renamed
    to ``out_dir`` (or, when ``out_dir`` exists, its files moved in). A failure
    at any point leaves no new file behind.

    Raises:
        ConfigError: an output exists and ``force`` is False, or the directory is not writable.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a directory; choose another output path")
    for name in REPORT_FILES:
        check_overwrite(out / name, force)
    files = render_report(report)
    existed = out.is_dir()
    if existed:
        ensure_writable_dir(out)
        stage = _stage_dir(out, "report")
    else:
        stage = _stage_dir(ensure_writable_dir(out.parent if str(out.parent) else "."), out.name)
    try:
        for name, data in files.items():
            (stage / name).write_bytes(data)
        if existed:
            for name in files:
                os.replace(stage / name, out / name)
            stage.rmdir()
        else:
            os.rename(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return [out / name for name in files]
