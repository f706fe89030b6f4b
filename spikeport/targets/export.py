"""Export dispatcher: ``target name -> function``, atomic outputs and deployability summaries.

:func:`export_model` runs one target (``onnx``, ``onnx-stream``, ``nir``, ``lava``)
and writes, next to the exported file ``PATH``:

* ``PATH.summary.json``: target, file, model, shapes, graph statistics, the
  post-export check (verdict, per-layer spike agreement, logit error) and the
  :func:`deployability` of the model on every target (which nodes block which);
* ``PATH.summary.md``: the same for people;
* target sidecars (:data:`_SIDECARS`), e.g. ``PATH.loihi.json`` for ``lava``: the host readout and input
  encoding that go with the netx file (JSON; see :mod:`spikeport.targets.lava.sidecar`).

All files are first written (atomically) to hidden staging names next to
``PATH`` and renamed into place together only when everything succeeded, so a
failed export leaves nothing behind, and with ``force`` a failure keeps the old
export and its summaries as they were. An existing output is refused unless
``force``. Targets are plain functions registered in
:data:`TARGETS` (``fn(model, path, **options) -> ExportResult``); the model is
never modified.

:func:`open_exported` returns a runner (``run(x) -> RunResult``) for an exported
file, chosen by its suffix, for :mod:`spikeport.targets.verify`.
"""

from __future__ import annotations

import contextlib
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
           "LAVA_LOWERING_MISSING"]

TARGETS: Registry = Registry("export target")

_SIDECARS: dict[str, tuple[str, ...]] = {"lava": (".loihi.json",)}
"""Files a target writes beside ``PATH`` (as ``PATH + suffix``), staged and committed with it."""

LAVA_LOWERING_MISSING = ("the lava target needs an IR -> LoihiNetwork lowering "
                         "(spikeport.targets.lava.deploy_network), which this build does not provide; export to onnx "
                         "or nir instead")


@dataclass
class ExportResult:
    """One export: the target, the written file(s) and its summary (``check`` = the post-export Comparison)."""

    target: str
    path: Path
    summary: dict[str, Any]
    check: Any = None
    files: list[Path] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the CLI."""
        s = self.summary
        size = s.get("size_bytes", 0)
        parts = [f"wrote {self.path} ({self.target}", f"{size / 1024:.1f} KiB"]
        if s.get("timesteps"):
            parts.append(f"T={s['timesteps']}")
        line = ", ".join(parts) + ")"
        if self.check is not None:
            line += f"; check vs torch: {self.check.describe()}"
        return line


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
                                         "exporter": r.meta["exporter"]}, r.check)


@TARGETS.register(name="onnx-stream")
def _onnx_stream(model: Any, path: Path, *, timesteps: int | None = None, input_shape: Sequence[int] | None = None,
                 **opts: Any) -> ExportResult:
    from spikeport.targets.onnx import export_onnx_stream

    r = export_onnx_stream(model, path, timesteps=timesteps, input_shape=input_shape, source=_source(model), **opts)
    return ExportResult("onnx-stream", r.path, {"kind": r.kind, "timesteps": None, "onnx_nodes": r.nodes,
                                                "size_bytes": r.size_bytes, "state_tensors": len(r.meta["states"]),
                                                "spike_outputs": len(r.meta["spikes"]),
                                                "exporter": r.meta["exporter"]}, r.check)


@TARGETS.register(name="nir")
def _nir(model: Any, path: Path, *, timesteps: int | None = None, input_shape: Sequence[int] | None = None,
         **opts: Any) -> ExportResult:
    from spikeport.targets.nir import export_nir

    allowed = {"dt", "check", "batch", "seed", "scale", "atol", "tie_eps"}
    r = export_nir(model, path, input_shape=input_shape, timesteps=timesteps,
                   **{k: v for k, v in opts.items() if k in allowed})
    return ExportResult("nir", r.path, {"nir_nodes": r.nodes, "nir_edges": r.edges, "size_bytes": r.size_bytes,
                                        "timesteps": None}, r.check)


def _lava_lowering() -> Callable[..., Any] | None:
    """The Lava package's IR -> LoihiNetwork lowering, if this build has one."""
    from spikeport._imports import optional_import

    mod = optional_import("spikeport.targets.lava")
    return getattr(mod, "deploy_network", None) if mod is not None else None


LAVA_CHECK_SAMPLES = 32
"""Seeded grid inputs the lava export's float-vs-Loihi check runs (Lava itself: the first 4)."""


@TARGETS.register(name="lava")
def _lava(model: Any, path: Path, *, timesteps: int | None = None, input_shape: Sequence[int] | None = None,
          check: bool = True, lava_check: bool | None = None, scale: float | str = "auto",
          input_scale: int | None = None, input_bits: int | None = None, **opts: Any) -> ExportResult:
    """netx ``path`` + ``path.loihi.json`` (host readout, input encoding); see :mod:`spikeport.targets.lava.deploy`.

    ``check``: compare the float model with the Loihi-exact reference on seeded inputs on the input grid.
    ``lava_check``: also run Lava (``fixed_pt``) on a few of them and require identical spikes (default:
    when Lava is installed).
    """
    from spikeport.targets.nir import to_graph

    if _lava_lowering() is None:
        raise ExportError(LAVA_LOWERING_MISSING)
    from spikeport.targets.lava import lava_available
    from spikeport.targets.lava.contract import fresh_network_agreement
    from spikeport.targets.lava.cores import loihi_summary
    from spikeport.targets.lava.deploy import DEFAULT_INPUT_SCALE, deploy_graph, grid_inputs
    from spikeport.targets.lava.runner import LoihiRunner
    from spikeport.targets.lava.runner import lava_check as run_check
    from spikeport.targets.lava.sidecar import write_deployment

    dep = deploy_graph(to_graph(model, input_shape), scale=scale,
                       input_scale=DEFAULT_INPUT_SCALE if input_scale is None else input_scale,
                       input_bits=input_bits)
    t = timesteps or 4
    written = write_deployment(dep, path, timesteps=t)
    summary: dict[str, Any] = {"layers": len(dep.graph.populations), "size_bytes": Path(path).stat().st_size,
                               "timesteps": t, "readout_suffix": written[1].name[len(written[0].name):],
                               "loihi": loihi_summary(dep)}
    x = grid_inputs(dep.network.input_shape, timesteps=t, samples=LAVA_CHECK_SAMPLES, input_scale=dep.input_scale)
    contract = json.loads(written[1].read_text(encoding="utf-8"))["runtime"]
    summary["lava_contract"] = {**contract, "fresh_network_spike_agreement": {
        "layers": fresh_network_agreement(dep, dep.encode_input(x)), "samples": LAVA_CHECK_SAMPLES,
        "what": "a fresh network per sample without the reset schedule (biases integrate during the latency) vs "
                "the contract, measured with the Loihi-exact reference on the check inputs"}}
    comparison = None
    if check:
        from spikeport.targets.torch_runner import TorchRunner
        from spikeport.targets.verify import compare

        comparison = compare(TorchRunner(model, input_shape=input_shape), LoihiRunner(path), [(x, None)])
        if lava_check if lava_check is not None else lava_available():
            summary["lava_check"] = {**run_check(path, x[:, :4]), "timesteps": t}
    return ExportResult("lava", Path(path), summary, comparison)


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
    lowering = _lava_lowering()
    if lowering is None:
        out["lava"] = {"ok": False, "blocking": [], "note": LAVA_LOWERING_MISSING}
    else:
        try:
            lowering(graph)
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
    chk = s.get("check")
    lines += ["", "## Check against the torch reference", ""]
    if chk is None:
        lines.append("not run")
    else:
        lines += [f"verdict: {chk['description']}", "",
                  "| layer | agreement | mismatches | ref rate | target rate |", "|---|---|---|---|---|"]
        lines += [f"| {r['layer']} | {100 * r['agreement']:.4f}% | {r['mismatches']}/{r['total']} | "
                  f"{r['ref_rate']:.4f} | {r['target_rate']:.4f} |" for r in chk["layers"]]
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
            lines += ["", f"Lava fixed_pt vs Loihi reference: spikes identical on {s['lava_check']['samples']} "
                          f"samples"]
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
        **options: passed to the target function (e.g. ``exporter``, ``spikes``, ``check``).

    Raises:
        ConfigError: unknown target, or outputs exist without ``force``.
        ExportError / UnsupportedNodeError: the export failed (nothing is left behind).
    """
    fn = TARGETS.get(target)
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
    for p, sfx in zip(sidecars, _SIDECARS.get(target, ()), strict=True):  # a target writes its sidecars beside the file
        staged[p] = staged[dest].with_name(staged[dest].name + sfx)
    try:
        try:
            result = fn(model, staged[dest], timesteps=timesteps, input_shape=input_shape, **options)
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
            doc["deployability"] = deployability(g) if g is not None else {}
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
def open_exported(path: str | os.PathLike, *, device: str = "cpu", lava_backend: str = "reference") -> Any:
    """A runner for an exported file, by suffix: ``.onnx`` (onnxruntime), ``.nir`` (imported to the IR),
    ``.net`` (Loihi: :class:`~spikeport.targets.lava.runner.LoihiRunner` with ``lava_backend`` =
    ``reference``, ``lava`` or ``both``, plus the host readout from ``.net.loihi.json``).

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

        return NirRunner(p, device=device)
    if suffix in (".net", ".h5", ".hdf5"):
        from spikeport.targets.lava.runner import LoihiRunner

        return LoihiRunner(p, backend=lava_backend, device=device)
    raise DataError(f"{p}: unknown export type '{p.suffix}'; expected .onnx, .nir or .net")
