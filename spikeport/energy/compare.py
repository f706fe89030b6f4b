"""Compare several energy reports (different models, or one model at several T).

:func:`compare_reports` reads the ``report.json`` of each report directory and
writes ``compare.csv``/``compare.json``/``compare.md``/``compare.html`` (a table of
per-sample totals with ratios to the first report) and ``fig_compare_rates.png``
(firing rate per layer of every report on one figure) plus
``fig_compare_energy.png``.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from spikeport._io import atomic_write_bytes, atomic_write_text, check_overwrite, ensure_writable_dir
from spikeport.errors import ConfigError, DataError

__all__ = ["load_report_dir", "compare_reports", "COMPARE_FILES", "COMPARE_COLUMNS"]

COMPARE_FILES = ("compare.csv", "compare.json", "compare.md", "compare.html", "fig_compare_rates.png",
                 "fig_compare_energy.png")
COMPARE_COLUMNS = ("firing_rate", "spikes", "dense_macs", "syn_acs", "syn_int_acs", "syn_macs", "elem_adds",
                   "elem_macs", "energy_pj", "paper_energy_pj", "ann_energy_pj")
RATIO_COLUMNS = ("firing_rate", "syn_acs", "syn_macs", "energy_pj")


def load_report_dir(path: str | Path) -> dict[str, Any]:
    """The parsed ``report.json`` of a report directory (or the JSON file itself).

    Raises:
        DataError: missing or malformed report.
    """
    p = Path(path)
    f = p / "report.json" if p.is_dir() else p
    if not f.is_file():
        raise DataError(f"{p}: no report.json found; run `spikeport energy ... --out {p}` first")
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"{f}: cannot read the report ({e})") from e
    if not isinstance(data, dict) or not {"totals", "layers", "meta"} <= set(data):
        raise DataError(f"{f}: not a spikeport energy report (missing totals/layers/meta)")
    return data


def _labels(paths: Sequence[str | Path]) -> list[str]:
    names = [Path(p).name or str(p) for p in paths]
    if len(set(names)) < len(names):
        names = [str(p) for p in paths]
    return names


def _ratio(a: Any, b: Any) -> float | None:
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return None
    return a / b if b and math.isfinite(a) and math.isfinite(b) else None


def compare_reports(dirs: Sequence[str | Path], out_dir: str | Path | None = None, *, force: bool = False,
                    labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Table of totals (per sample) of several reports, with ratios to the first.

    Args:
        dirs: report directories (from ``spikeport energy``), at least two.
        out_dir: where to write :data:`COMPARE_FILES` (``None``: write nothing).
        force: overwrite existing outputs.
        labels: one label per report (default: directory names).

    Returns:
        One row per report.

    Raises:
        ConfigError: fewer than two reports, label count mismatch, or outputs exist without ``force``.
        DataError: a report cannot be read.
    """
    if len(dirs) < 2:
        raise ConfigError("compare needs at least two report directories")
    labels = list(labels) if labels is not None else _labels(dirs)
    if len(labels) != len(dirs):
        raise ConfigError(f"got {len(labels)} labels for {len(dirs)} reports")
    reports = [load_report_dir(d) for d in dirs]
    rows = []
    for lab, rep in zip(labels, reports, strict=True):
        m, t = rep["meta"], rep["totals"]
        row = {"report": lab, "model": m.get("model", ""), "timesteps": m.get("timesteps"),
               "samples": m.get("samples"), "hardware": m.get("hardware", "")}
        row.update({c: t.get(c) for c in COMPARE_COLUMNS})
        rows.append(row)
    base = rows[0]
    for row in rows:
        for c in RATIO_COLUMNS:
            row[f"{c}_ratio"] = _ratio(row[c], base[c])
    table = pd.DataFrame(rows)
    if out_dir is not None:
        _write(table, labels, reports, out_dir, force)
    return table


def _rate_series(rep: dict[str, Any]) -> list[tuple[str, float]]:
    return [(r["layer"], float(r["rate"])) for r in rep["layers"]
            if r.get("role") in ("neuron", "activation") and r.get("rate") is not None]


def _figures(labels: list[str], reports: list[dict[str, Any]], table: pd.DataFrame) -> dict[str, bytes]:
    from spikeport.energy.report import _figure, _short, png_bytes

    series = [_rate_series(r) for r in reports]
    same_layers = all([n for n, _ in s] == [n for n, _ in series[0]] for s in series)
    order: list[str] = []
    for s in series:
        order += [n for n, _ in s if n not in order]
    fig = _figure(max(7.0, 0.3 * len(order) + 3), 4.5)
    ax = fig.add_subplot()
    for lab, s in zip(labels, series, strict=True):
        if same_layers or len(set(order)) == len(order):
            pos = {n: i for i, n in enumerate(order)}
            xs = [pos[n] for n, _ in s]
        else:  # pragma: no cover - duplicate names cannot happen with qualified names
            xs = list(range(len(s)))
        ax.plot(xs, [v for _, v in s], marker="o", ms=3, lw=1.2, label=lab)
    ax.set_xticks(range(len(order)), _short(order), rotation=75, ha="right", fontsize=7)
    ax.set_ylabel("firing rate")
    ax.set_title("Firing rate per layer")
    ax.legend(fontsize=8)
    out = {"fig_compare_rates.png": png_bytes(fig)}
    fig = _figure(max(5.0, 0.8 * len(labels) + 2), 4.0)
    ax = fig.add_subplot()
    ax.bar(range(len(labels)), [float(v or 0) / 1e6 for v in table["energy_pj"]], color="#3b75af", label="exact")
    ax.plot(range(len(labels)), [float(v or 0) / 1e6 for v in table["paper_energy_pj"]], "k_", ms=20, mew=2,
            label="papers' formula")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("energy per sample (uJ)")
    ax.set_title("Energy per sample")
    ax.legend(fontsize=8)
    out["fig_compare_energy.png"] = png_bytes(fig)
    return out


def _write(table: pd.DataFrame, labels: list[str], reports: list[dict[str, Any]], out_dir: str | Path,
           force: bool) -> None:
    from spikeport.energy.report import _html_table, _md_table

    out = ensure_writable_dir(out_dir)
    for name in COMPARE_FILES:
        check_overwrite(out / name, force)
    figs = _figures(labels, reports, table)
    cols = list(table.columns)
    rows = table.astype(object).where(table.notna(), None).values.tolist()
    hw = sorted({str(r["meta"].get("hardware", "")) for r in reports})
    note = ("ratios are relative to the first report; all numbers are per sample"
            + ("" if len(hw) == 1 else f"; WARNING: reports use different energy models ({', '.join(hw)})"))
    payload = {"reports": [str(d) for d in labels], "note": note,
               "table": [dict(zip(cols, r, strict=True)) for r in rows]}
    atomic_write_text(out / "compare.csv", table.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(out / "compare.json", json.dumps(_clean(payload), indent=1, allow_nan=False) + "\n")
    atomic_write_text(out / "compare.md", "# Energy comparison\n\n" + _md_table(rows, cols) + f"\n\n{note}\n\n"
                      + "Figures: " + ", ".join(f"[{f}]({f})" for f in figs) + "\n")
    imgs = "".join(f'<figure><img alt="{html.escape(n)}" src="data:image/png;base64,'
                   f'{base64.b64encode(b).decode("ascii")}"></figure>' for n, b in figs.items())
    atomic_write_text(out / "compare.html", "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Energy "
                      "comparison</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:"
                      "collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:900px}"
                      f"</style></head><body><h1>Energy comparison</h1>{_html_table(cols, rows)}"
                      f"<p>{html.escape(note)}</p>{imgs}</body></html>\n")
    for name, data in figs.items():
        atomic_write_bytes(out / name, data)


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj
