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
           "render_html", "render_report", "png_bytes"]

FIGURE_FILES = ("fig_rates.png", "fig_rate_heatmap.png", "fig_energy_layers.png", "fig_energy_kinds.png")
REPORT_FILES = ("layers.csv", "timestep_rates.csv", "report.json", "report.md", "report.html") + FIGURE_FILES
ENERGY_COLUMNS = tuple(f"e_{k}_pj" for k in ENERGY_KINDS) + ("energy_pj", "paper_energy_pj")
ID_COLUMNS = ("layer", "type", "role", "value_class", "calls", "neurons", "rate", "in_rate")
SUM_COLUMNS = OP_COLUMNS + ENERGY_COLUMNS
MAX_FIG_INCHES = 16.0  # figures stay this size at most, however many timesteps or layers
MAX_TICKS = 32  # timestep axes label every step up to this T


@dataclass
class EnergyReport:
    """Per-layer rates, op counts and energy of one model under one energy model (per sample).

    Attributes:
        layers: DataFrame, one row per node (execution order); see :data:`ID_COLUMNS`,
            :data:`~spikeport.energy.counting.OP_COLUMNS` and :data:`ENERGY_COLUMNS`.
        totals: column sums plus ``firing_rate`` (all neurons), ``ann_energy_pj`` (dense MACs x
            E_MAC) and ``ann_over_snn`` (their ratio).
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
                f"(papers' formula {t['paper_energy_pj'] / 1e6:.6g} uJ; ANN {t['ann_energy_pj'] / 1e6:.6g} uJ)")


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
    totals["ann_energy_pj"] = totals["dense_macs"] * hw.e_mac_pj
    totals["ann_over_snn"] = totals["ann_energy_pj"] / totals["energy_pj"] if totals["energy_pj"] else float("nan")
    t = max([len(v) for v in counts.timestep_rates.values()], default=0)
    trates = pd.DataFrame.from_dict({k: list(v) + [None] * (t - len(v)) for k, v in counts.timestep_rates.items()},
                                    orient="index", columns=[f"t{i}" for i in range(t)], dtype=float)
    trates.index.name = "layer"
    assumptions = list(counts.notes) + hw.assumptions() + [
        "ann_energy_pj: the same network as an ANN: dense MACs x E_MAC (compute only, for comparison)"]
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
        if r.rule.role == "neuron":
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
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xticks(range(len(active)), _short(list(active["layer"])), rotation=75, ha="right", fontsize=7)
    ax.set_ylabel("energy per sample (uJ)")
    ax.set_title(f"Energy by layer ({report.hardware.name})")
    ax.legend(fontsize=8)
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
_MD_COLS = ("layer", "type", "value_class", "rate", "in_rate", "dense_macs", "syn_acs", "syn_int_acs", "syn_macs",
            "approx_sops", "elem_adds", "elem_macs", "spikes", "energy_pj", "paper_energy_pj")


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 or v == 0 else f"{v:.4e}"
    return str(v)


def _md_table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header] + [[_fmt(v).replace("|", "\\|") for v in r] for r in rows]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells[1:]]
    return "\n".join(lines)


def _totals_rows(report: EnergyReport) -> list[list[Any]]:
    return [[k, v] for k, v in report.totals.items()] + [[f"neurobench.{k}", v] for k, v in report.neurobench.items()]


def render_markdown(report: EnergyReport) -> str:
    """The report as Markdown (tables only; figures are separate PNG files)."""
    m = report.meta
    parts = [f"# Energy report: {m.get('model', '')}", "",
             _md_table([[k, v] for k, v in m.items()], ["run", "value"]), "",
             "## Totals (per sample)", "", _md_table(_totals_rows(report), ["quantity", "value"]), "",
             "## Layers (per sample)", "",
             _md_table([[r.get(c) for c in _MD_COLS] for r in report.layers.to_dict(orient="records")],
                       list(_MD_COLS)), "",
             "## Energy constants", "",
             _md_table([[k, v if not isinstance(v, list) else json.dumps(v)] for k, v in
                        report.hardware.constants().items()], ["constant", "value"]), "",
             "## Assumptions", ""]
    parts += [f"- {a}" for a in report.assumptions]
    parts += ["", "Figures: " + ", ".join(f"[{f}]({f})" for f in FIGURE_FILES), ""]
    return "\n".join(parts)


def _html_table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: EnergyReport, figs: Mapping[str, bytes]) -> str:
    """A self-contained HTML page (figures inlined as base64 PNG)."""
    m = report.meta
    imgs = "".join(f'<figure><img alt="{html.escape(n)}" src="data:image/png;base64,'
                   f'{base64.b64encode(b).decode("ascii")}"><figcaption>{html.escape(n)}</figcaption></figure>'
                   for n, b in figs.items())
    layer_rows = [[r.get(c) for c in _MD_COLS] for r in report.layers.to_dict(orient="records")]
    consts = [[k, json.dumps(v) if isinstance(v, list) else v] for k, v in report.hardware.constants().items()]
    style = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;font-size:12px;"
             "margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}"
             "td:first-child{text-align:left}figure{display:inline-block;margin:0.5em}img{max-width:680px}")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>Energy report: {html.escape(str(m.get('model', '')))}</title><style>{style}</style></head><body>"
            f"<h1>Energy report: {html.escape(str(m.get('model', '')))}</h1>"
            + _html_table(["run", "value"], [[k, v] for k, v in m.items()])
            + "<h2>Totals (per sample)</h2>" + _html_table(["quantity", "value"], _totals_rows(report))
            + f"<h2>Figures</h2>{imgs}"
            + "<h2>Layers (per sample)</h2>" + _html_table(list(_MD_COLS), layer_rows)
            + "<h2>Energy constants</h2>" + _html_table(["constant", "value"], consts)
            + "<h2>Assumptions</h2><ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in report.assumptions)
            + "</ul></body></html>\n")


def render_report(report: EnergyReport) -> dict[str, bytes]:
    """Every file of :data:`REPORT_FILES` rendered in memory: ``{file name: content}``."""
    figs = figures(report)
    layers = report.layers.copy()
    total = dict.fromkeys(layers.columns, "")
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
