"""ONNX target: whole-sequence and streaming single-step exports, checked by onnxruntime.

Two graph kinds, both with a dynamic batch axis and neuron spikes as extra outputs:

* **sequence** (:func:`export_onnx`): input ``x [T, B, ...]`` -> ``logits [T, B, K]``
  plus ``spikes.<layer> [T, B, ...]`` for every spiking layer. The time loop of
  every neuron is *unrolled* into the graph, so T is fixed at export time and the
  graph grows linearly with T (fine for the usual T <= 8; prefer the streaming
  graph for long sequences). Sequence-level paper-method modules (temporal shift, STAA,
  FSTA attention) are supported here since the whole sequence is present.
* **stream** (:func:`export_onnx_stream`): one timestep ``x [B, ...]`` plus
  every neuron's membrane state ``state.<node>`` -> ``logits [B, K]``,
  ``new_state.<node>`` and ``spikes.<layer> [B, ...]``. Feed zeros as the first
  state and each call's new states into the next. Any T. Needs the IR
  (:meth:`spikeport.converter.LoweredModule.step`); models with sequence-level
  nodes (non-causal ones such as future temporal shift or attention over T) are
  refused with the list of nodes.

Both export the model's IR lowering (bit-identical to the model) through
``torch.onnx.export``; the model is never modified. ``exporter="auto"`` (default)
uses the TorchScript exporter, which with torch 2.14 exports the zoo 3-10x
faster than the ``torch.export``-based ``"dynamo"`` exporter (both give exact
results; dynamo's graph is smaller), and falls back to dynamo when TorchScript
fails (e.g. adaptive pooling to a size that does not divide the input). The
TorchScript exporter is deprecated by torch; its DeprecationWarning is silenced.
``AvgPool2d(divisor_override=...)`` (the IR's SumPool) is exported as an average
pool times a constant: torch.onnx silently drops ``divisor_override``.

Right after writing, :func:`onnx.checker.check_model` runs and
onnxruntime is compared with the torch reference on the check data (``check_data``:
the model's own test split when the caller knows it, else seeded random inputs;
two batch sizes check the dynamic axis): spikes must be identical, or differ
only by threshold ties (see :mod:`spikeport.targets.verify`), logits agree
within ``atol``, and every spike layer must spike on the check data (else the
check is vacuous). Only then is the file renamed into place (atomic write); a
failed or vacuous check leaves nothing unless ``allow_mismatch`` / ``allow_silent``
(:func:`~spikeport.targets.verify.enforce_check`). A silent reference is refused
before the (slow) export itself.

The file's ``metadata_props["spikeport"]`` (JSON) records the kind, T, input
shape, output -> layer names and state specs, so :class:`OnnxRunner` can run
any spikeport ONNX file.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from spikeport._io import atomic_path
from spikeport.errors import DataError, ExportError, SpikeportError, UnsupportedNodeError
from spikeport.targets.torch_runner import RunResult, TorchRunner, check_input_budget, spike_layers
from spikeport.targets.verify import (
    DEFAULT_ATOL,
    DEFAULT_MIN_SPIKES,
    DEFAULT_TIE_EPS,
    CheckData,
    Comparison,
    compare,
    enforce_check,
    random_check_data,
    silent_reference_layers,
    vacuous_message,
)

if TYPE_CHECKING:
    from spikeport.converter import LoweredModule

__all__ = ["OnnxExport", "OnnxRunner", "export_onnx", "export_onnx_stream", "read_onnx_meta", "EXPORTERS",
           "META_KEY", "DEFAULT_OPSET"]

log = logging.getLogger(__name__)

META_KEY = "spikeport"
META_FORMAT = 1
DEFAULT_OPSET = 18
MAX_UNROLLED_T = 1024  # the sequence graph holds T copies of every neuron update
EXPORTERS = ("auto", "torchscript", "dynamo")
_INSTALL = "pip install onnx onnxruntime"


def _require_onnx() -> Any:
    try:
        import onnx
    except ModuleNotFoundError as e:
        raise ExportError(f"the ONNX target needs the 'onnx' package ({_INSTALL})") from e
    return onnx


def _require_ort() -> Any:
    try:
        import onnxruntime
    except ModuleNotFoundError as e:
        raise ExportError(f"checking ONNX files needs 'onnxruntime' ({_INSTALL})") from e
    return onnxruntime


@dataclass
class OnnxExport:
    """What an ONNX export wrote and how it checked.

    Attributes:
        path: the written file; kind: ``sequence`` or ``stream``; meta: the stored metadata;
        check: the onnxruntime-vs-torch :class:`~spikeport.targets.verify.Comparison` (None if skipped);
        nodes: number of ONNX graph nodes; size_bytes: file size.
    """

    path: Path
    kind: str
    meta: dict[str, Any]
    check: Comparison | None = None
    nodes: int = 0
    size_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    check_data: str = ""  # what the check ran on


# ----------------------------------------------------------------------------- wrappers
@contextlib.contextmanager
def _tap(layers: list[tuple[str, nn.Module]]) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Record each layer's outputs (one per call: graphs with recurrent edges call them step by step)."""
    rec: dict[str, list[torch.Tensor]] = {name: [] for name, _ in layers}
    handles = [m.register_forward_hook(lambda _m, _a, out, name=name: rec[name].append(out)) for name, m in layers]
    try:
        yield rec
    finally:
        for h in handles:
            h.remove()


class _SequenceGraph(nn.Module):
    """``x [T, B, ...]`` -> ``(logits, *spikes)`` over the executor."""

    def __init__(self, executor: nn.Module, layers: list[tuple[str, nn.Module]], with_spikes: bool) -> None:
        super().__init__()
        self.executor = executor
        self._layers = layers if with_spikes else []

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with _tap(self._layers) as rec:
            y = self.executor(x)
        y = y[0] if isinstance(y, tuple) else y
        return (y, *(torch.cat(rec[n]) if len(rec[n]) > 1 else rec[n][0] for n, _ in self._layers))


@dataclass(frozen=True)
class _StateSpec:
    key: str  # executor state key (node name or 'src:out')
    field: str | None  # NamedTuple field, None for a plain tensor
    shape: tuple[int, ...]  # with the batch axis set to 1
    batch_axis: int | None

    @property
    def label(self) -> str:
        return self.key if self.field is None else f"{self.key}.{self.field}"


def _flatten_state(state: dict[str, Any], specs: list[_StateSpec]) -> list[torch.Tensor]:
    out = []
    for s in specs:
        v = state[s.key]
        out.append(v if s.field is None else getattr(v, s.field))
    return out


class _StreamGraph(nn.Module):
    """``(x_t, *states)`` -> ``(logits_t, *new_states, *spikes_t)`` over ``LoweredModule.step``."""

    def __init__(self, executor: LoweredModule, specs: list[_StateSpec], templates: dict[str, Callable[..., Any]],
                 layers: list[tuple[str, nn.Module]], with_spikes: bool) -> None:
        super().__init__()
        self.executor = executor
        self._specs = specs
        self._templates = templates
        self._layers = layers if with_spikes else []

    def forward(self, x_t: torch.Tensor, *flat: torch.Tensor) -> tuple[torch.Tensor, ...]:
        state: dict[str, Any] = {}
        fields: dict[str, dict[str, torch.Tensor]] = {}
        for s, v in zip(self._specs, flat, strict=False):
            if s.field is None:
                state[s.key] = v
            else:
                fields.setdefault(s.key, {})[s.field] = v
        for key, kv in fields.items():
            state[key] = self._templates[key](**kv)
        with _tap(self._layers) as rec:
            y, new = self.executor.step(x_t, state=state)
        y = y[0] if isinstance(y, tuple) else y
        return (y, *_flatten_state(new, self._specs), *(rec[n][0][0] for n, _ in self._layers))


def _state_specs(executor: Any, input_shape: tuple[int, ...]
                 ) -> tuple[list[_StateSpec], dict[str, Callable[..., Any]]]:
    """Probe one step at two batch sizes to find every state tensor, its shape and batch axis."""
    probes = []
    with torch.no_grad():
        for b in (2, 3):
            _, st = executor.step(torch.zeros(b, *input_shape), state=None)
            probes.append(st)
    specs: list[_StateSpec] = []
    templates: dict[str, Callable[..., Any]] = {}  # NamedTuple state classes, rebuilt from their fields
    for key in sorted(probes[0]):
        v2, v3 = probes[0][key], probes[1][key]
        if isinstance(v2, torch.Tensor):
            parts = [(None, v2, v3)]
        elif isinstance(v2, tuple) and hasattr(v2, "_fields"):
            templates[key] = type(v2)
            parts = [(f, getattr(v2, f), getattr(v3, f)) for f in v2._fields]
        else:
            raise ExportError(f"node '{key}': state of type {type(v2).__name__} cannot be an ONNX input")
        for f, a, b in parts:
            axes = [i for i, (p, q) in enumerate(zip(a.shape, b.shape, strict=False)) if p != q]
            axis = axes[0] if axes else None
            shape = tuple(1 if i == axis else d for i, d in enumerate(a.shape))
            specs.append(_StateSpec(key, f, shape, axis))
    return specs, templates


# ----------------------------------------------------------------------------- export
def _layers_meta(names: list[str]) -> list[list[str]]:
    return [[f"spikes.{n}", n] for n in names]


def _default_timesteps(model: Any, timesteps: int | None) -> int:
    from spikeport.models.encoders import check_timesteps

    t = timesteps if timesteps is not None else getattr(model, "timesteps", None)
    return check_timesteps(t if t is not None else 4)


def _torch_export(module: nn.Module, args: tuple[torch.Tensor, ...], path: Path, input_names: list[str],
                  output_names: list[str], batch_axes: dict[str, int | None], exporter: str, opset: int,
                  varargs: bool = False) -> str:
    """Run ``torch.onnx.export`` and return the exporter used.

    ``auto`` tries the TorchScript exporter, then the dynamo one if that fails (e.g. adaptive
    pooling to a size that does not divide the input). ``varargs``: the module takes
    ``(first, *rest)`` (nests dynamo's dynamic shapes).
    """
    if exporter not in EXPORTERS:
        raise ExportError(f"unknown ONNX exporter '{exporter}'; use one of {', '.join(EXPORTERS)}")
    if exporter == "auto":
        try:
            return _torch_export(module, args, path, input_names, output_names, batch_axes, "torchscript", opset,
                                 varargs)
        except ExportError as e:
            log.info("TorchScript exporter failed (%s); retrying with the dynamo exporter", e)
            first = e
        try:
            return _torch_export(module, args, path, input_names, output_names, batch_axes, "dynamo", opset,
                                 varargs)
        except ExportError as e:
            raise ExportError(f"{first}; then {e}") from e
    buf = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(buf), torch.no_grad():
            # only the notes this export is known to raise: the legacy exporter's deprecation notices and the
            # tracer's shape-check notes (the exported file is checked numerically against the reference instead)
            warnings.filterwarnings("ignore", message=r"You are using the legacy TorchScript-based ONNX export",
                                    category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=r"The feature will be removed", category=DeprecationWarning,
                                    module=r"torch\.onnx")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            if exporter == "torchscript":
                axes = {n: {a: "batch"} for n, a in batch_axes.items() if a is not None}
                torch.onnx.export(module, args, str(path), input_names=input_names, output_names=output_names,
                                  dynamo=False, dynamic_axes=axes, opset_version=opset)
            else:
                batch = torch.export.Dim("batch", min=1)
                shapes: tuple[Any, ...] = tuple({batch_axes[n]: batch} if batch_axes.get(n) is not None else None
                                                for n in input_names)
                if varargs and len(shapes) > 1:
                    shapes = (shapes[0], tuple(shapes[1:]))
                torch.onnx.export(module, args, str(path), input_names=input_names, output_names=output_names,
                                  dynamo=True, dynamic_shapes=shapes, external_data=False, opset_version=opset,
                                  verbose=False)
    except SpikeportError:
        raise
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"torch.onnx.export ({exporter}) failed: {type(e).__name__}: {msg}") from e
    finally:
        if buf.getvalue().strip():
            log.debug("torch.onnx output:\n%s", buf.getvalue())
    return exporter


def _finish(path: Path, meta: dict[str, Any]) -> int:
    """Check the written model with onnx.checker and store ``meta``; returns the node count."""
    onnx = _require_onnx()
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:
        raise ExportError(f"onnx.checker rejected the exported graph: {str(e).strip().splitlines()[0]}") from e
    props = {p.key: p.value for p in model.metadata_props}
    props[META_KEY] = json.dumps(meta, sort_keys=True)
    onnx.helper.set_model_props(model, props)
    model.producer_name = "spikeport"
    onnx.save(model, str(path))
    return len(model.graph.node)


def _check_data(check_data: CheckData | None, shape: tuple[int, ...], timesteps: int, batch: int, seed: int,
                scale: float, sequence: bool) -> CheckData:
    """The check's inputs: the caller's (checked against the export's T and shape) or seeded random ones."""
    if check_data is None:
        return random_check_data(shape, timesteps=timesteps, batch=batch, seed=seed, scale=scale)
    for x, _ in check_data.batches:
        if tuple(x.shape[2:]) != tuple(shape) or (sequence and x.shape[0] != timesteps):
            raise ExportError(f"check data ({check_data.description}) has inputs {list(x.shape)}, but the export "
                              f"takes [T={timesteps}, B, {', '.join(map(str, shape))}]")
    return check_data


def _precheck(reference: TorchRunner, data: CheckData, dest: Path, min_spikes: int) -> None:
    """Refuse before exporting when the reference is silent on the check data (the check would be vacuous)."""
    silent = silent_reference_layers(reference, data.batches, min_spikes)
    if silent:
        raise ExportError(vacuous_message(dest, silent, min_spikes, data.description))


def _check(path: Path, dest: Path, reference: TorchRunner, data: CheckData, atol: float, tie_eps: float,
           min_spikes: int, allow_mismatch: bool, allow_silent: bool) -> Comparison:
    runner = OnnxRunner(path)
    comp = compare(reference, runner, data.batches, atol=atol, tie_eps=tie_eps, min_spikes=min_spikes,
                   allow_silent=allow_silent)
    enforce_check(comp, dest, allow_mismatch=allow_mismatch, data=data.description, what="onnxruntime")
    if comp.verdict == "ties":
        log.warning("ONNX check: %s", comp.describe())
    return comp


class _SumPool2d(nn.Module):
    """``AvgPool2d(divisor_override=d)`` as ``avg_pool2d(count_include_pad=True) * (kH*kW / d)``.

    torch.onnx (both exporters, torch 2.14) silently drops ``divisor_override``, which the IR
    uses for SumPool; this form exports correctly (exact for power-of-two windows, else within
    float rounding).
    """

    def __init__(self, pool: nn.AvgPool2d) -> None:
        super().__init__()
        k = pool.kernel_size if isinstance(pool.kernel_size, tuple) else (pool.kernel_size, pool.kernel_size)
        self.pool = copy.copy(pool)
        self.pool.divisor_override, self.pool.count_include_pad = None, True
        if pool.divisor_override is None:  # _onnx_friendly replaces only pools with a divisor_override
            raise ExportError(f"_SumPool2d: {pool} has no divisor_override (use it only for SumPool's AvgPool2d)")
        self.factor = float(k[0] * k[1]) / float(pool.divisor_override)
        self.ir_name, self.ir_node = getattr(pool, "ir_name", None), getattr(pool, "ir_node", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x) * self.factor


def _onnx_friendly(executor: nn.Module) -> nn.Module:
    """A copy of ``executor`` with modules torch.onnx exports wrongly replaced (the executor itself if none)."""
    bad = [n for n, m in executor.named_modules() if isinstance(m, nn.AvgPool2d) and m.divisor_override is not None
           and not m.ceil_mode]
    if not bad:
        return executor
    exe = copy.deepcopy(executor)
    for name in bad:
        parent_name, _, child = name.rpartition(".")
        parent = exe.get_submodule(parent_name) if parent_name else exe
        setattr(parent, child, _SumPool2d(getattr(parent, child)))
    return exe


def _prepare(model: Any, input_shape: Sequence[int] | None, use_ir: bool | str) -> tuple[TorchRunner, tuple[int, ...]]:
    ref = TorchRunner(model, device="cpu", input_shape=input_shape, use_ir=use_ir)
    graph = getattr(ref.module, "graph", None) if ref.is_ir else None  # an IR executor's SpikeGraph
    if graph is not None and len(graph.input_nodes()) != 1:
        raise ExportError(f"graph '{graph.name}' has {len(graph.input_nodes())} inputs; the ONNX targets export "
                          "single-input models")
    if ref.input_shape is None:
        raise ExportError(f"{type(model).__name__}: unknown input shape; pass input_shape (e.g. --input-shape 1,8,8)")
    return ref, ref.input_shape


def export_onnx(model: Any, path: str | os.PathLike, *, timesteps: int | None = None,
                input_shape: Sequence[int] | None = None, spikes: bool = True, exporter: str = "auto",
                opset: int = DEFAULT_OPSET, check: bool = True, batch: int = 2, seed: int = 0, scale: float = 1.0,
                atol: float = DEFAULT_ATOL, tie_eps: float = DEFAULT_TIE_EPS, use_ir: bool | str = "auto",
                source: str = "", check_data: CheckData | None = None, min_spikes: int = DEFAULT_MIN_SPIKES,
                allow_mismatch: bool = False, allow_silent: bool = False) -> OnnxExport:
    """Export the whole multi-step model (time loop unrolled over ``timesteps``) to ``path``.

    Args:
        model: ``nn.Module``, ``SpikeGraph`` or ``LoweredModule`` (not modified).
        path: output ``.onnx`` file (written atomically; overwritten if present).
        timesteps: T baked into the graph (default: ``model.timesteps``, else 4).
        input_shape: per-step input shape (default: the model's ``default_input_shape``).
        spikes: add ``spikes.<layer>`` outputs (needed to verify per layer).
        exporter: ``auto`` (TorchScript, dynamo if that fails), ``torchscript`` or ``dynamo``.
        opset: ONNX opset.
        check: compare onnxruntime with the torch reference before keeping the file.
        batch, seed, scale: probe inputs ``rand(T, batch(+1), ...) * scale`` for the check when
            ``check_data`` is not given.
        atol, tie_eps: logit tolerance and threshold-tie margin of the check.
        use_ir: see :func:`spikeport.targets.torch_runner.build_executor`.
        source: model name stored in the metadata.
        check_data: the check's inputs (e.g. the model's test split,
            :func:`~spikeport.targets.verify.dataset_check_data`).
        min_spikes, allow_silent: a layer with fewer reference spikes makes the check vacuous, which
            fails unless ``allow_silent`` (see :mod:`spikeport.targets.verify`).
        allow_mismatch: keep the file although the check failed (its verdict is in ``check``).

    Raises:
        ExportError: export, checker or numeric check failed, or the check is vacuous (nothing is
            left at ``path``).
    """
    t = _default_timesteps(model, timesteps)
    ref, shape = _prepare(model, input_shape, use_ir)
    check_input_budget(t, batch + 1, shape)
    data = _check_data(check_data, shape, t, batch, seed, scale, sequence=True) if check else None
    if t > MAX_UNROLLED_T:
        raise ExportError(f"--target onnx unrolls the time loop: T={t} exceeds {MAX_UNROLLED_T}; use --target "
                          "onnx-stream (one step per call) for long sequences")
    executor = _onnx_friendly(ref.module)
    layers = spike_layers(executor)
    names = [n for n, _ in layers] if spikes else []
    wrapper = _SequenceGraph(executor, layers, spikes).eval()
    outputs = ["logits"] + [f"spikes.{n}" for n in names]
    meta = {"format": META_FORMAT, "kind": "sequence", "timesteps": t, "input_shape": list(shape), "input": "x",
            "logits": "logits", "spikes": _layers_meta(names), "states": [], "exporter": exporter,
            "ir": ref.is_ir, "source": source or getattr(model, "zoo_name", type(model).__name__)}
    dest = Path(path)
    x = torch.zeros(t, batch, *shape)
    try:
        with torch.no_grad():
            executor(x)  # fail early with the executor's own message (e.g. a model built for another T)
    except SpikeportError as e:
        raise ExportError(f"cannot run the model on [T={t}, B, {', '.join(map(str, shape))}]: {e}") from e
    if data is not None and not allow_silent:
        _precheck(ref, data, dest, min_spikes)
    with atomic_path(dest, suffix=".onnx") as tmp:
        meta["exporter"] = _torch_export(wrapper, (x,), tmp, ["x"], outputs, dict.fromkeys(["x", *outputs], 1),
                                         exporter, opset)
        nodes = _finish(tmp, meta)
        comp = (_check(tmp, dest, ref, data, atol, tie_eps, min_spikes, allow_mismatch, allow_silent)
                if data is not None else None)
    return OnnxExport(dest, "sequence", meta, comp, nodes, dest.stat().st_size,
                      check_data=data.description if data is not None else "")


def export_onnx_stream(model: Any, path: str | os.PathLike, *, input_shape: Sequence[int] | None = None,
                       spikes: bool = True, exporter: str = "auto", opset: int = DEFAULT_OPSET,
                       check: bool = True, timesteps: int | None = None, batch: int = 2, seed: int = 0,
                       scale: float = 1.0, atol: float = DEFAULT_ATOL, tie_eps: float = DEFAULT_TIE_EPS,
                       source: str = "", check_data: CheckData | None = None, min_spikes: int = DEFAULT_MIN_SPIKES,
                       allow_mismatch: bool = False, allow_silent: bool = False) -> OnnxExport:
    """Export one timestep with explicit neuron state (see module docstring).

    Args:
        timesteps: T of the check only (the graph runs any T); default ``model.timesteps``, else 4.
        Other arguments: see :func:`export_onnx`.

    Raises:
        UnsupportedNodeError: the model has sequence-level nodes (listed, non-causal ones marked).
        ExportError: the model does not trace to the IR, or export/check failed.
    """
    from spikeport.converter import LoweredModule

    t = _default_timesteps(model, timesteps)
    try:
        ref, shape = _prepare(model, input_shape, True)
    except SpikeportError as e:
        if isinstance(e, ExportError):
            raise
        raise ExportError(f"streaming ONNX export needs the model's IR and tracing failed: {e}") from e
    check_input_budget(t, batch + 1, shape)
    data = _check_data(check_data, shape, t, batch, seed, scale, sequence=False) if check else None
    executor = _onnx_friendly(ref.module)
    if not isinstance(executor, LoweredModule):  # pragma: no cover - use_ir=True guarantees it
        raise ExportError("streaming ONNX export needs an IR lowering")
    seq = executor.sequence_nodes
    if seq:
        desc = []
        for n in seq:
            node = executor.graph.node(n)
            causal = getattr(node, "causal", True)
            desc.append(f"{n} ({node.op}{'' if causal else ', non-causal'})")
        raise UnsupportedNodeError(f"onnx-stream: {len(seq)} node(s) need the whole sequence and cannot run one "
                                   f"step at a time: {', '.join(desc)}; export with --target onnx instead")
    from spikeport.ops import refusal, spec_of

    refused = [f"{n} ({node.op}: {why})" for n, node in executor.graph.nodes().items()
               if (why := refusal(spec_of(node), "onnx_stream", node)) is not None]
    if refused:
        raise UnsupportedNodeError(f"onnx-stream: {len(refused)} node(s) cannot be exported step by step: "
                                   f"{'; '.join(refused)}; export with --target onnx instead")
    layers = spike_layers(executor)
    names = [n for n, _ in layers] if spikes else []
    specs, templates = _state_specs(executor, shape)
    wrapper = _StreamGraph(executor, specs, templates, layers, spikes).eval()
    state_in = [f"state.{s.label}" for s in specs]
    state_out = [f"new_state.{s.label}" for s in specs]
    outputs = ["logits", *state_out] + [f"spikes.{n}" for n in names]
    axes: dict[str, int | None] = {"x": 0, "logits": 0, **{f"spikes.{n}": 0 for n in names}}
    for s, i, o in zip(specs, state_in, state_out, strict=False):
        axes[i] = axes[o] = s.batch_axis
    meta = {"format": META_FORMAT, "kind": "stream", "timesteps": None, "input_shape": list(shape), "input": "x",
            "logits": "logits", "spikes": _layers_meta(names), "exporter": exporter, "ir": True,
            "states": [{"input": i, "output": o, "node": s.key, "field": s.field, "shape": list(s.shape),
                        "batch_axis": s.batch_axis} for s, i, o in zip(specs, state_in, state_out, strict=False)],
            "source": source or getattr(model, "zoo_name", type(model).__name__)}
    x_t = torch.zeros(batch, *shape)
    zeros = [torch.zeros(tuple(batch if i == s.batch_axis else d for i, d in enumerate(s.shape))) for s in specs]
    dest = Path(path)
    if data is not None and not allow_silent:
        _precheck(ref, data, dest, min_spikes)
    with atomic_path(dest, suffix=".onnx") as tmp:
        meta["exporter"] = _torch_export(wrapper, (x_t, *zeros), tmp, ["x", *state_in], outputs, axes, exporter,
                                         opset, varargs=True)
        nodes = _finish(tmp, meta)
        comp = (_check(tmp, dest, ref, data, atol, tie_eps, min_spikes, allow_mismatch, allow_silent)
                if data is not None else None)
    return OnnxExport(dest, "stream", meta, comp, nodes, dest.stat().st_size, {"states": len(specs)},
                      check_data=data.description if data is not None else "")


# ----------------------------------------------------------------------------- running
def read_onnx_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The spikeport metadata of an ONNX file (DataError if absent or unreadable)."""
    onnx = _require_onnx()
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such ONNX file")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as e:
        raise DataError(f"{p}: not a readable ONNX file ({str(e).strip().splitlines()[0] if str(e).strip() else e})"
                        ) from e
    props = {q.key: q.value for q in model.metadata_props}
    if META_KEY not in props:
        raise DataError(f"{p}: no spikeport metadata; export it with `spikeport export --target onnx`")
    try:
        meta = json.loads(props[META_KEY])
    except json.JSONDecodeError as e:
        raise DataError(f"{p}: corrupt spikeport metadata ({e.msg})") from e
    if meta.get("format") != META_FORMAT or meta.get("kind") not in ("sequence", "stream"):
        raise DataError(f"{p}: unsupported spikeport ONNX metadata (format {meta.get('format')!r}, "
                        f"kind {meta.get('kind')!r})")
    return meta


class OnnxRunner:
    """Run a spikeport ONNX file in onnxruntime (CPU) on ``[T, B, ...]`` inputs.

    Args:
        path: ``.onnx`` written by :func:`export_onnx` or :func:`export_onnx_stream`.
        threads: intra-op threads (0 = onnxruntime's default).
    """

    runtime = "onnxruntime"

    def __init__(self, path: str | os.PathLike, threads: int = 0) -> None:
        ort = _require_ort()
        self.path = Path(path)
        self.meta = read_onnx_meta(self.path)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise DataError(f"{self.path}: onnxruntime cannot load it: {str(e).strip().splitlines()[0]}") from e
        self.kind = self.meta["kind"]
        self.input_shape = tuple(self.meta["input_shape"])
        self.timesteps = self.meta.get("timesteps")
        self.layers = [layer for _, layer in self.meta["spikes"]]
        self._outputs = [o.name for o in self.session.get_outputs()]
        declared = self.session.get_inputs()[0].shape
        fixed = list(declared[-len(self.input_shape):]) if self.input_shape else []
        if len(declared) != len(self.input_shape) + (2 if self.kind == "sequence" else 1) or any(
                isinstance(d, int) and d != s for d, s in zip(fixed, self.input_shape, strict=False)):
            raise DataError(f"{self.path}: graph input {declared} does not match its spikeport metadata "
                            f"(per-step shape {list(self.input_shape)}); the file was edited, re-export it")

    def _session_run(self, feed: dict[str, Any]) -> list[Any]:
        try:
            return self.session.run(None, feed)
        except Exception as e:  # onnxruntime raises its own exception types
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(f"{self.path}: onnxruntime failed: {msg}") from e

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != len(self.input_shape) + 2 or tuple(x.shape[2:]) != self.input_shape:
            raise DataError(f"{self.path.name}: expects inputs [T, B, {', '.join(map(str, self.input_shape))}], got "
                            f"{list(x.shape)}")
        if self.kind == "sequence" and x.shape[0] != self.timesteps:
            raise DataError(f"{self.path.name}: exported for T={self.timesteps} (time loop unrolled), got "
                            f"T={x.shape[0]}; "
                            "re-export with --timesteps or use --target onnx-stream")

    def run(self, x: torch.Tensor) -> RunResult:
        """Logits ``[T, B, K]`` and spikes per layer (bool), like the torch reference."""
        self._check_input(x)
        xa = x.detach().to("cpu", torch.float32).numpy()
        spike_out = dict(self.meta["spikes"])
        if self.kind == "sequence":
            res = dict(zip(self._outputs, self._session_run({"x": xa}), strict=False))
            return RunResult(torch.from_numpy(res["logits"]),
                             {spike_out[o]: torch.from_numpy(v) != 0 for o, v in res.items() if o in spike_out},
                             self.runtime)
        return self._run_stream(xa, spike_out)

    def _run_stream(self, xa: Any, spike_out: dict[str, str]) -> RunResult:
        import numpy as np

        b = xa.shape[1]
        states = self.meta["states"]
        feed = {}
        for s in states:
            shape = [b if i == s["batch_axis"] else d for i, d in enumerate(s["shape"])]
            feed[s["input"]] = np.zeros(shape, dtype=np.float32)
        logits: list[Any] = []
        spk: dict[str, list[Any]] = {o: [] for o in spike_out}
        for t in range(xa.shape[0]):
            feed["x"] = xa[t]
            res = dict(zip(self._outputs, self._session_run(feed), strict=False))
            logits.append(res["logits"])
            for o in spk:
                spk[o].append(res[o])
            for s in states:
                feed[s["input"]] = res[s["output"]]
        return RunResult(torch.from_numpy(np.stack(logits)),
                         {spike_out[o]: torch.from_numpy(np.stack(v)) != 0 for o, v in spk.items()}, self.runtime)
