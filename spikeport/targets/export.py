"""Export dispatcher: ``target name -> function``, atomic outputs and deployability summaries.

:func:`export_model` runs one target (``onnx``, ``onnx-stream``, ``nir``, ``lava``)
and writes, next to the exported file ``PATH``:

* ``PATH.summary.json``: target, file, model, shapes, graph statistics, the
  post-export check (verdict, per-layer spike agreement and reference spikes, logit
  error, the data it ran on) and the :func:`deployability` of the model on every
  target (which nodes block which);
* ``PATH.summary.md``: the same for people;
* target sidecars (:data:`_SIDECARS`), e.g. ``PATH.loihi.json`` for ``lava``: the host readout and input
  encoding that go with the netx file (JSON; see :mod:`spikeport.targets.lava.sidecar`).

All files are first written (atomically) to hidden staging names next to
``PATH`` and renamed into place together only when everything succeeded, so a
failed export leaves nothing behind, and with ``force`` a failure keeps the old
export and its summaries as they were. Every target applies one policy to its
post-export check (:func:`~spikeport.targets.verify.enforce_check`): a check that
fails, or that is vacuous (a spike layer that never fires on the check data),
is an error and nothing is written, unless ``allow_mismatch`` / ``allow_silent``
keep the file with the verdict in its summary. An existing output is refused unless
``force``. Targets are plain functions registered in
:data:`TARGETS` (``fn(model, path, **options) -> ExportResult``); the model is
never modified.

:func:`open_exported` returns a runner (``run(x) -> RunResult``) for an exported
file, chosen by its suffix, for :mod:`spikeport.targets.verify`.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikeport._io import atomic_write_text, check_overwrite
from spikeport._registry import Registry
from spikeport.errors import ConfigError, DataError, ExportError, SpikeportError

__all__ = ["TARGETS", "ExportResult", "export_model", "deployability", "open_exported", "summary_paths",
           "target_options"]

TARGETS: Registry = Registry("export target")

_SIDECARS: dict[str, tuple[str, ...]] = {"lava": (".loihi.json",)}
"""Files a target writes beside ``PATH`` (as ``PATH + suffix``), staged and committed with it."""


@dataclass
class ExportResult:
    """One export: the target, the written file(s) and its summary (``check`` = the post-export Comparison)."""

    target: str
    path: Path
    summary: dict[str, Any]
    check: Any = None
    files: list[Path] = field(default_factory=list)
    original: list[Any] = field(default_factory=list)
    """``[traced IR vs the model itself, the model itself vs the file]`` (:mod:`spikeport.targets.original`)."""

    def describe(self) -> str:
        """One line for the CLI."""
        s = self.summary
        size = s.get("size_bytes", 0)
        parts = [f"wrote {self.path} ({self.target}", f"{size / 1024:.1f} KiB"]
        if s.get("timesteps"):
            parts.append(f"T={s['timesteps']}")
        line = ", ".join(parts) + ")"
        if self.check is not None:
            line += f"; check vs torch on {s.get('check_data') or 'the check data'}: {self.check.describe()}"
        if s.get("lava_check"):
            line += f"; {describe_lava_check(s['lava_check'])}"
        if self.original:
            line += (f"; the model itself vs its IR: {self.original[0].verdict}, vs the file: "
                     f"{self.original[1].verdict}")
        return line

    @property
    def check_failures(self) -> list[str]:
        """Why the kept file's checks did not pass (empty when every check passed or none ran)."""
        return [short for short, _ in self.failed_checks()]

    def failed_checks(self) -> list[tuple[str, str]]:
        """``(what, verdict line)`` for each check that failed or was vacuous although the file was kept."""
        out = []
        if self.check is not None and not self.check.agrees:
            out.append(("check FAILED, file kept because of --allow-mismatch", self.check.describe()))
        elif self.check is not None and self.check.vacuous:
            out.append(("check is VACUOUS, file kept because of --allow-silent", self.check.describe()))
        main_agrees = self.check is None or self.check.agrees
        for what, c in zip(("original model vs IR", "original model vs file"), self.original, strict=False):
            if what.endswith("file") and not main_agrees:
                continue  # implied by the failed check above (the file disagrees with the IR)
            if not c.agrees:
                out.append((f"{what} check FAILED, file kept because of --allow-mismatch", c.describe()))
            elif c.vacuous:
                out.append((f"{what} check is VACUOUS, file kept because of --allow-silent", c.describe()))
        lava = self.summary.get("lava_check") or {}
        if lava.get("verdict") == "differ":
            out.append(("Lava check FAILED, file kept because of --allow-mismatch", describe_lava_check(lava)))
        elif lava.get("verdict") == "vacuous":
            out.append(("Lava check is VACUOUS, file kept because of --allow-silent", describe_lava_check(lava)))
        return out


def summary_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(PATH.summary.json, PATH.summary.md)``."""
    p = Path(path)
    return p.with_name(p.name + ".summary.json"), p.with_name(p.name + ".summary.md")


# ----------------------------------------------------------------------------- targets
def _source(model: Any) -> str:
    return str(getattr(model, "zoo_name", "") or type(model).__name__)


@TARGETS.register(name="onnx")
def _onnx(model: Any, path: Path, *, timesteps: int | None = None, input_shape: Sequence[int] | None = None,
          **opts: Any) -> ExportResult:
    from spikeport.targets.onnx import export_onnx

    r = export_onnx(model, path, timesteps=timesteps, input_shape=input_shape, source=_source(model), **opts)
    return ExportResult("onnx", r.path, {"kind": r.kind, "timesteps": r.meta["timesteps"], "onnx_nodes": r.nodes,
                                         "size_bytes": r.size_bytes, "spike_outputs": len(r.meta["spikes"]),
                                         "exporter": r.meta["exporter"], "check_data": r.check_data}, r.check)


@TARGETS.register(name="onnx-stream")
def _onnx_stream(model: Any, path: Path, *, timesteps: int | None = None, input_shape: Sequence[int] | None = None,
                 **opts: Any) -> ExportResult:
    from spikeport.targets.onnx import export_onnx_stream

    r = export_onnx_stream(model, path, timesteps=timesteps, input_shape=input_shape, source=_source(model), **opts)
    return ExportResult("onnx-stream", r.path, {"kind": r.kind, "timesteps": None, "onnx_nodes": r.nodes,
                                                "size_bytes": r.size_bytes, "state_tensors": len(r.meta["states"]),
                                                "spike_outputs": len(r.meta["spikes"]),
                                                "exporter": r.meta["exporter"], "check_data": r.check_data}, r.check)


@TARGETS.register(name="nir")
def _nir(model: Any, path: Path, *, timesteps: int | None = None, input_shape: Sequence[int] | None = None,
         **opts: Any) -> ExportResult:
    from spikeport.converter.nir_io import CONSUMERS
    from spikeport.targets.nir import export_nir

    r = export_nir(model, path, input_shape=input_shape, timesteps=timesteps, **opts)
    reader = CONSUMERS[r.consumer]
    nir_info = {"dt": r.dt, "integration": "euler", "written_for": r.consumer, "read_with": reader.reads,
                "batch_sizes": reader.batch}
    return ExportResult("nir", r.path, {"nir_nodes": r.nodes, "nir_edges": r.edges, "size_bytes": r.size_bytes,
                                        "timesteps": None, "check_data": r.check_data, "nir": nir_info}, r.check)


LAVA_CHECK_SAMPLES = 32
"""Seeded grid inputs the lava export's float-vs-Loihi check runs when no check data is given."""
LAVA_RUN_SAMPLES = 4
"""Samples of the check data the lava export also runs in Lava itself (slow: about 0.2 s each)."""


@TARGETS.register(name="lava")
def _lava(model: Any, path: Path, *, timesteps: int | None = None, input_shape: Sequence[int] | None = None,
          check: bool = True, lava_check: bool | None = None, scale: float | str = "auto",
          input_scale: int | None = None, input_bits: int | None = None, check_data: Any = None,
          min_agreement: float | None = None, min_spikes: int | None = None, allow_mismatch: bool = False,
          allow_silent: bool = False) -> ExportResult:
    """netx ``path`` + ``path.loihi.json`` (host readout, input encoding); see :mod:`spikeport.targets.lava.deploy`.

    ``check``: compare the float model with the Loihi-exact reference on ``check_data`` (default: seeded inputs
    on the input grid); it passes when at least ``min_agreement`` of the predictions match (fixed point).
    ``lava_check``: also run Lava (``fixed_pt``) on the first few of them and require identical spikes (default:
    when Lava is installed). Either check failing, or vacuous (silent layers), raises under the common policy
    unless ``allow_mismatch`` / ``allow_silent``.
    """
    import torch

    from spikeport.targets.lava import lava_available
    from spikeport.targets.lava.contract import fresh_network_agreement
    from spikeport.targets.lava.cores import loihi_summary
    from spikeport.targets.lava.deploy import DEFAULT_INPUT_SCALE, deploy_graph, grid_inputs
    from spikeport.targets.lava.runner import LoihiRunner
    from spikeport.targets.lava.sidecar import write_deployment
    from spikeport.targets.nir import to_graph
    from spikeport.targets.verify import (
        DEFAULT_MIN_PRED_AGREEMENT,
        DEFAULT_MIN_SPIKES,
        CheckData,
        compare,
        enforce_check,
    )

    dep = deploy_graph(to_graph(model, input_shape), scale=scale,
                       input_scale=DEFAULT_INPUT_SCALE if input_scale is None else input_scale,
                       input_bits=input_bits)
    min_spikes = DEFAULT_MIN_SPIKES if min_spikes is None else min_spikes
    if check_data is None:
        t = timesteps or 4
        grid = "binary spike" if not dep.input_scale else f"1/{dep.input_scale} input grid"
        check_data = CheckData([(grid_inputs(dep.network.input_shape, timesteps=t, samples=LAVA_CHECK_SAMPLES,
                                             input_scale=dep.input_scale), None)],
                               f"{LAVA_CHECK_SAMPLES} seeded random inputs on the {grid} (no dataset known, "
                               f"pass --dataset for labelled data), T={t}")
    t = check_data.timesteps  # the runtime contract's T: the one the export is checked with
    written = write_deployment(dep, path, timesteps=t)
    summary: dict[str, Any] = {"layers": len(dep.graph.populations), "size_bytes": Path(path).stat().st_size,
                               "timesteps": t, "readout_suffix": written[1].name[len(written[0].name):],
                               "loihi": loihi_summary(dep)}
    k = dep.encode_input(torch.cat([x for x, _ in check_data.batches], dim=1))
    contract = json.loads(written[1].read_text(encoding="utf-8"))["runtime"]
    summary["lava_contract"] = {**contract, "fresh_network_spike_agreement": {
        "layers": fresh_network_agreement(dep, k), "samples": int(k.shape[1]),
        "what": "a fresh network per sample without the reset schedule (biases integrate during the latency) vs "
                f"the contract, measured with the Loihi-exact reference on the check data ({check_data.description})"}}
    comparison = None
    if check:
        from spikeport.targets.torch_runner import TorchRunner

        comparison = compare(TorchRunner(model, input_shape=input_shape), LoihiRunner(path), check_data.batches,
                             min_pred_agreement=DEFAULT_MIN_PRED_AGREEMENT if min_agreement is None else min_agreement,
                             min_spikes=min_spikes, allow_silent=allow_silent)
        summary["check_data"] = check_data.description
        enforce_check(comparison, path, allow_mismatch=allow_mismatch, data=check_data.description,
                      what="the Loihi fixed-point reference")
        if lava_check if lava_check is not None else lava_available():
            x = check_data.batches[0][0][:, :LAVA_RUN_SAMPLES]
            lc = _lava_spike_check(path, x, min_spikes)
            summary["lava_check"] = {**lc, "timesteps": check_data.timesteps}
            if lc["verdict"] == "differ" and not allow_mismatch:
                raise ExportError(f"{path}: the export check failed: {describe_lava_check(lc)}; nothing was written "
                                  "(pass --allow-mismatch to keep the file with the failed verdict in its summary)")
            if lc["verdict"] == "vacuous" and not allow_silent:
                raise ExportError(f"{path}: the Lava check is {describe_lava_check(lc)}; nothing was written; check "
                                  "on data that makes every layer spike (--dataset), or pass --allow-silent")
    return ExportResult("lava", Path(path), summary, comparison)


def _lava_spike_check(path: Path, x: Any, min_spikes: int) -> dict[str, Any]:
    """Run Lava (``fixed_pt``) and spikeport's Loihi reference on ``x``; count each layer's spikes."""
    from spikeport.targets.lava.runner import LoihiRunner

    runner = LoihiRunner(path, backend="both")
    try:
        spikes = runner.chip_spikes(x)
    except ExportError as e:  # Lava and the reference differ: the message names the layer and the count
        detail = str(e).split(": ", 1)[-1]
        return {"samples": int(x.shape[1]), "spikes_identical": False, "verdict": "differ", "detail": detail,
                "layer_spikes": {}, "silent_layers": [], "min_spikes": min_spikes}
    counts = {name: int(s.sum()) for name, s in spikes.items()}
    silent = [name for name, c in counts.items() if c < min_spikes]
    return {"samples": runner.lava_checked, "spikes_identical": True, "verdict": "vacuous" if silent else "identical",
            "layer_spikes": counts, "silent_layers": silent, "min_spikes": min_spikes}


def describe_lava_check(lc: dict[str, Any]) -> str:
    """One line for a Lava-vs-reference check (``summary["lava_check"]``)."""
    head = f"Lava Loihi2SimCfg(fixed_pt) vs spikeport's Loihi reference on {lc['samples']} samples"
    if lc.get("verdict") == "differ":
        return f"{head}: spikes DIFFER ({lc.get('detail', '')})"
    if lc.get("verdict") == "vacuous":
        fewer = "no spike" if lc["min_spikes"] == 1 else f"fewer than {lc['min_spikes']} spikes"
        return (f"{head}: vacuous for layers: {', '.join(lc['silent_layers'])} ({fewer}, so their equality shows "
                f"nothing); spikes identical in every layer")
    return f"{head}: spikes identical (spikes per layer: {', '.join(str(c) for c in lc['layer_spikes'].values())})"


def target_options(target: str) -> list[str]:
    """The keyword options ``target`` accepts (those of the library function that writes it).

    Raises:
        ConfigError: unknown target.
    """
    from spikeport.targets.nir import export_nir
    from spikeport.targets.onnx import export_onnx, export_onnx_stream

    writers: dict[str, Callable[..., Any]] = {"onnx": export_onnx, "onnx-stream": export_onnx_stream, "nir": export_nir}
    writer = writers.get(target)
    fn = writer if writer is not None else TARGETS.get(target)
    fixed = {"model", "path", "timesteps", "input_shape", "source"}
    return sorted(n for n, p in inspect.signature(fn).parameters.items()
                  if p.kind is inspect.Parameter.KEYWORD_ONLY and n not in fixed)


def _check_options(target: str, options: dict[str, Any]) -> None:
    known = target_options(target)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for export target '{target}' (it accepts: "
                          f"{', '.join(known)})")


# ----------------------------------------------------------------------------- deployability
def deployability(graph: Any) -> dict[str, dict[str, Any]]:
    """For each target: ``{"ok": bool, "blocking": [node descriptions], "note": str}`` for the IR ``graph``."""
    from spikeport.converter.nir_io import to_nir
    from spikeport.errors import UnsupportedNodeError

    nodes = graph.nodes()
    seq = [f"{n} ({node.op}{'' if getattr(node, 'causal', True) else ', non-causal'})"
           for n, node in nodes.items() if node.sequence]
    out: dict[str, dict[str, Any]] = {
        "onnx": {"ok": True, "blocking": [], "note": "time loop unrolled over a fixed T"},
        "onnx-stream": {"ok": not seq, "blocking": seq, "note": "one step per call, explicit neuron state"},
    }
    try:
        to_nir(graph)
        out["nir"] = {"ok": True, "blocking": [], "note": ""}
    except UnsupportedNodeError as e:
        out["nir"] = {"ok": False, "blocking": [str(e)], "note": "see spikeport.converter.nir_io"}
    except SpikeportError as e:
        out["nir"] = {"ok": False, "blocking": [str(e)], "note": ""}
    from spikeport.targets.lava import deploy_network

    try:
        deploy_network(graph)
        out["lava"] = {"ok": True, "blocking": [], "note": ""}
    except SpikeportError as e:
        out["lava"] = {"ok": False, "blocking": [str(e)], "note": ""}
    return out


def _graph_stats(model: Any, input_shape: Sequence[int] | None) -> tuple[Any, dict[str, Any]]:
    from spikeport.targets.nir import to_graph

    try:
        g = to_graph(model, input_shape)
    except SpikeportError as e:
        return None, {"traced": False, "trace_error": str(e)}
    ops: dict[str, int] = {}
    for node in g.nodes().values():
        ops[node.op] = ops.get(node.op, 0) + 1
    inp = g.input_nodes()[0]
    return g, {"traced": True, "graph": g.name, "nodes": len(g), "ops": dict(sorted(ops.items())),
               "input_shape": list(inp.shape),
               "spiking_layers": sum(1 for n in g.nodes().values() if getattr(n, "family", "") == "neuron")}


def _markdown(s: dict[str, Any]) -> str:
    lines = [f"# Export summary: {s['model']} -> {s['target']}", "",
             f"- file: `{s['file']}` ({s.get('size_bytes', 0) / 1024:.1f} KiB)"]
    for key in ("kind", "timesteps", "exporter", "onnx_nodes", "state_tensors", "nir_nodes", "layers"):
        if s.get(key) is not None:
            lines.append(f"- {key.replace('_', ' ')}: {s[key]}")
    g = s.get("graph", {})
    if g.get("traced"):
        lines.append(f"- IR: {g['nodes']} nodes, {g['spiking_layers']} spiking layers, input {g['input_shape']}")
    ni = s.get("nir")
    if ni:
        lines += [f"- NIR time semantics (in the file's metadata): dt = {ni['dt']:g} s per step, {ni['integration']} "
                  f"integration; written for {ni['written_for']}: read it with `{ni['read_with']}` "
                  f"({ni['batch_sizes']})"]
    src = s.get("source_nir")
    if src:
        lines += ["", "## How the source NIR file was read", ""] + [f"- {a}" for a in src["assumptions"]]
        lines += [f"- **WARNING**: {w}" for w in src["warnings"]]
    chk = s.get("check")
    lines += ["", "## Check against the torch reference", ""]
    if chk is None:
        lines.append("not run")
    else:
        lines += [f"data: {s.get('check_data') or 'not recorded'}", "", f"verdict: {chk['description']}", ""]
        lines += [f"**{f}**" for f in s.get("check_failures", [])] + ([""] if s.get("check_failures") else [])
        lines += ["| layer | agreement | mismatches | ref spikes | ref rate | target rate |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['layer']} | {100 * r['agreement']:.4f}% | {r['mismatches']}/{r['total']} | "
                  f"{r['ref_spikes']} | {r['ref_rate']:.4f} | {r['target_rate']:.4f} |" for r in chk["layers"]]
    if s.get("original_checks"):
        ir_vs, file_vs = s["original_checks"]
        lines += ["", "## Check against the original model", "",
                  "The model itself (in its own framework) ran on the same data:", "",
                  f"- traced IR vs the model: {ir_vs['description']}",
                  f"- the model vs the file: {file_vs['description']}"]
    lo = s.get("loihi")
    if lo:
        lines += ["", "## Loihi 2 deployment", "",
                  f"{lo['neurons']} neurons, {lo['synapses']} synapses ({lo['weights_stored']} weights stored), "
                  f"about {lo['est_cores']} of {lo['core_limits']['cores_per_chip']} cores (assumes "
                  f"{lo['core_limits']['neurons_per_core']} neurons / {lo['core_limits']['synapses_per_core']} "
                  f"synapses per core); input {lo['input']['encoding']} (scale {lo['input']['scale']}, "
                  f"{lo['input']['message_bits']} bits); host readout {lo['host_readout']['ops']} in "
                  f"`{s['file']}{s.get('readout_suffix', '')}`", "",
                  f"File format: {lo['format']}; {lo['populations']} populations, {lo['connections']} synapse "
                  f"groups, depth {lo['depth']} steps; relay neurons added to equalise path latencies: "
                  f"{lo['relay_neurons']} in {lo['relay_populations']} population(s) ({lo['relay_synapses']} "
                  f"synapses); OR neurons (max pooling): {lo['or_neurons']}; max fan-in {lo['max_fan_in']}, max "
                  f"fan-out {lo['max_fan_out']}", "",
                  "| population | role | kind | shape | latency | neurons | synapses | fan-in | fan-out | v_th | "
                  "est. cores |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['name']} | {r['role']} | {r['kind']} | {r['shape']} | {r['level']} | {r['neurons']} | "
                  f"{r['synapses']} | {r['fan_in']} | {r['fan_out']} | {r['v_th_mant']} | {r['est_cores']} |"
                  for r in lo["layers"]]
        if s.get("lava_check"):
            lines += ["", describe_lava_check(s["lava_check"]) + " (the first samples of the check data)"]
    lc = s.get("lava_contract")
    if lc:
        from spikeport.targets.lava.contract import contract_markdown

        lines += contract_markdown(lc)
        fresh = lc.get("fresh_network_spike_agreement")
        if fresh:
            lines += [f"- without the reset schedule (a fresh network per sample, T + "
                      f"{lc['stream']['trailing_zero_steps']} steps): spike agreement with the contract "
                      + ", ".join(f"{n} {100 * a:.2f}%" for n, a in fresh["layers"].items())
                      + f" on {fresh['samples']} check inputs (measured with the Loihi-exact reference): each layer "
                        "integrates its bias during its latency"]
        if lc["network"]["format"] == "netx":
            lines.append("- reproduce it in plain Lava: `python examples/lava_plain_run.py FILE.net --input x.npy` "
                         "(reads only this sidecar)")
        else:
            lines.append("- load it as standard Lava processes: `spikeport.targets.lava.load_network(FILE.net)` "
                         "(file layout: `spikeport/targets/lava/graph_io.py`)")
    lines += ["", "## Deployability", "", "| target | ok | blocking / note |", "|---|---|---|"]
    for tgt, d in s.get("deployability", {}).items():
        why = "; ".join(d["blocking"]) or d.get("note", "")
        lines.append(f"| {tgt} | {'yes' if d['ok'] else 'no'} | {why.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def export_model(model: Any, target: str, out: str | os.PathLike, *, timesteps: int | None = None,
                 input_shape: Sequence[int] | None = None, force: bool = False, summary: bool = True,
                 source: str = "", **options: Any) -> ExportResult:
    """Export ``model`` to ``target`` at ``out`` (plus summary files).

    Args:
        model: ``nn.Module``, ``SpikeGraph`` or ``LoweredModule`` (not modified).
        target: a name in :data:`TARGETS`.
        out: the output file.
        timesteps: T (baked into ``onnx``; the check's T otherwise).
        input_shape: per-step input shape (default: the model's).
        force: overwrite existing outputs.
        summary: also write ``out.summary.json`` / ``out.summary.md``.
        source: model description for the summary (default: zoo name or class).
        **options: passed to the target function (e.g. ``exporter``, ``spikes``, ``check``,
            ``check_data`` (a :class:`~spikeport.targets.verify.CheckData`, e.g. the model's test
            split), ``min_spikes``, ``allow_mismatch``, ``allow_silent``; ``min_agreement`` for lava).

    Raises:
        ConfigError: unknown target, or outputs exist without ``force``.
        ExportError / UnsupportedNodeError: the export failed, or its check failed or is vacuous and
            was not allowed (nothing is left behind).
    """
    fn = TARGETS.get(target)
    _check_options(target, options)
    dest = Path(out)
    if dest.is_dir():
        raise ConfigError(f"{dest}: is a directory; --out must be a file path")
    sidecars = [dest.with_name(dest.name + sfx) for sfx in _SIDECARS.get(target, ())]
    outputs = [dest, *summary_paths(dest)] if summary else [dest]
    outputs += sidecars
    for p in outputs:
        check_overwrite(p, force)
    token = secrets.token_hex(4)
    staged = {p: p.with_name(f".{p.name}.{token}.staged{p.suffix}") for p in outputs}
    for p, sfx in zip(sidecars, _SIDECARS.get(target, ()), strict=True):  # the target writes sidecars beside the file
        staged[p] = staged[dest].with_name(staged[dest].name + sfx)
    try:
        try:
            result = fn(model, staged[dest], timesteps=timesteps, input_shape=input_shape, **options)
            if options.get("check", True):  # the user's own model beside its IR and the file
                from spikeport.targets.original import run_original_checks

                result.original = run_original_checks(model, staged[dest], dest, target=target,
                                                       timesteps=timesteps, input_shape=input_shape, options=options)
        except SpikeportError as e:  # name the real output, not the staging file
            raise type(e)(str(e).replace(str(staged[dest]), str(dest)).replace(staged[dest].name, dest.name)) from e
        if summary:
            g, stats = _graph_stats(model, input_shape)
            doc: dict[str, Any] = {"model": source or _source(model), "target": target, "file": dest.name,
                                   **result.summary, "graph": stats}
            if result.check is not None:
                doc["check"] = {**result.check.to_dict(), "description": result.check.describe()}
            else:
                doc["check"] = None
            doc["original_checks"] = [{**c.to_dict(), "description": c.describe()} for c in result.original]
            doc["check_failures"] = result.check_failures
            doc["deployability"] = deployability(g) if g is not None else {}
            if g is not None and "nir" in g.meta:  # the model came from a NIR file: how it was read
                from spikeport.converter.nir_io import import_notes

                assumptions, warnings = import_notes(g, result.summary.get("timesteps") or timesteps)
                doc["source_nir"] = {"assumptions": assumptions, "warnings": warnings}
            js, md = summary_paths(dest)
            atomic_write_text(staged[js], json.dumps(doc, indent=1, default=str) + "\n")
            atomic_write_text(staged[md], _markdown(doc))
            result.summary = doc
        for p in outputs:  # commit: every file exists complete under its staging name
            os.replace(staged[p], p)
        result.path, result.files = dest, list(outputs)
        return result
    finally:
        for s in staged.values():
            with contextlib.suppress(OSError):
                s.unlink()


# ----------------------------------------------------------------------------- reading exports back
def open_exported(path: str | os.PathLike, *, device: str = "cpu", lava_backend: str = "reference",
                  nir_options: dict[str, Any] | None = None) -> Any:
    """A runner for an exported file, by suffix: ``.onnx`` (onnxruntime), ``.nir`` (imported to the IR with
    ``nir_options``, see :func:`spikeport.converter.nir_io.read_nir`), ``.net`` (Loihi:
    :class:`~spikeport.targets.lava.runner.LoihiRunner` with ``lava_backend`` = ``reference``, ``lava`` or
    ``both``, plus the host readout from ``.net.loihi.json``).

    Raises:
        DataError: missing file or unsupported suffix.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such exported file")
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        from spikeport.targets.onnx import OnnxRunner

        return OnnxRunner(p)
    if suffix == ".nir":
        from spikeport.targets.nir import NirRunner

        return NirRunner(p, device=device, **{k: v for k, v in (nir_options or {}).items() if v is not None})
    if suffix in (".net", ".h5", ".hdf5"):
        from spikeport.targets.lava.runner import LoihiRunner

        return LoihiRunner(p, backend=lava_backend, device=device)
    raise DataError(f"{p}: unknown export type '{p.suffix}'; expected .onnx, .nir or .net")
