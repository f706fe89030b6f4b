"""Streaming recording of spikes and synaptic input statistics with forward hooks.

``with record_spikes(model) as rec: model(x)`` hooks every node that has a rule
(:mod:`spikeport.energy.rules`) and accumulates, per node, only reduced
statistics: nothing proportional to the number of samples is ever kept, so the
recorder's state has a fixed size (see :meth:`Recording.state_nbytes`).

* neuron layers: spike counts per timestep and channel, neuron-steps per
  timestep, nonzero input currents per timestep (active membrane updates);
* synapse and pool nodes, per input value class: calls, items, nonzero inputs,
  elements, :math:`\\sum_i n_i F_i` (exact effective ops) and, for integer
  inputs, :math:`\\sum_i |x|_i F_i` (value-weighted ACs), plus nonzero inputs
  per timestep;
* custom nodes: the column totals their rule returns;
* *unmeasured* layers: a module or op no rule covers (an unknown neuron type, say)
  is never counted as zero. :func:`record_spikes` raises an error naming it and how
  to register a rule, unless ``allow_unmeasured=True``: then the layer is hooked
  only to note that it ran and whether its outputs were binary (a spiking neuron
  the toolchain does not know), and every report marks it "unmeasured".

Tensors follow the time-first convention ``[T, B, ...]``: the model input's
axis 1 counts samples and a node input's leading axes are ``(T, B, ...)``; a
node called on ``[N, ...]`` (one leading axis) is counted as one timestep.
A :class:`~spikeport.frameworks.ForeignModel` (a model of another framework or
time layout) is recorded on the user's own modules, each call placed in time by
its layout (:class:`_CallView`): per-step calls count one step each. Neurons emitting
spike counts (sinabs' multi-spike) count every spike of a count.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from spikeport.energy.rules import VALUE_CLASSES, OpRule, is_unit, resolve_rule, worst_class
from spikeport.errors import ConfigError, GraphError, SpikeportError

__all__ = ["record_spikes", "Recording", "NeuronRecord", "SynapseRecord", "CustomRecord", "UnmeasuredRecord",
           "ClassTotals", "UnmeasuredError"]


class UnmeasuredError(GraphError):
    """The model has layers no energy rule covers (listed); nothing was recorded."""

log = logging.getLogger(__name__)


def _grow(vec: torch.Tensor, n: int) -> torch.Tensor:
    """``vec`` padded with zeros along axis 0 to length ``n`` (unchanged when long enough)."""
    if vec.shape[0] >= n:
        return vec
    pad = torch.zeros((n - vec.shape[0], *vec.shape[1:]), dtype=vec.dtype)
    return torch.cat([vec, pad])


@dataclass
class ClassTotals:
    """Totals of one synapse/pool node over the calls whose input had one value class.

    Attributes:
        calls: forward calls; items: (timestep, sample) items seen.
        nonzero, elements: nonzero and total input elements.
        nz_fan: :math:`\\sum n_i F_i`, effective synaptic ops (nonzero input x nonzero weight).
        abs_fan: :math:`\\sum |x|_i F_i` (value-weighted ops; equals ``nz_fan`` for spikes).
        valid_fan: :math:`\\sum F^{valid}_i` per item x items: NeuroBench's dense count.
        dense: ANN-equivalent MACs (padding taps included).
        out_elements: output elements produced.
        max_abs: largest input magnitude.
    """

    calls: int = 0
    items: int = 0
    nonzero: int = 0
    elements: int = 0
    nz_fan: int = 0
    abs_fan: int = 0
    valid_fan: int = 0
    dense: int = 0
    out_elements: int = 0
    max_abs: float = 0.0


@dataclass
class _NodeBase:
    name: str
    type_name: str
    rule: OpRule
    node: Any = None
    order: int = -1
    calls: int = 0


@dataclass
class SynapseRecord(_NodeBase):
    """Streaming statistics of a ``synapse`` or ``pool`` node."""

    item_shape: tuple[int, ...] = ()
    out_item_shape: tuple[int, ...] = ()
    weight_count: int = 0
    classes: dict[str, ClassTotals] = field(default_factory=dict)
    nonzero_t: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.int64))
    elements_t: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.int64))
    _fan: dict[tuple[int, ...], tuple[torch.Tensor, int]] = field(default_factory=dict, repr=False)

    @property
    def value_class(self) -> str:
        """The dearest input class seen (``binary`` when never called)."""
        return worst_class(self.classes)

    def total(self, attr: str, classes: tuple[str, ...] = VALUE_CLASSES) -> int:
        return sum(getattr(self.classes[c], attr) for c in classes if c in self.classes)


@dataclass
class NeuronRecord(_NodeBase):
    """Streaming statistics of a ``neuron`` or ``activation`` node."""

    neurons: int = 0  # per item (sample and timestep)
    channels: int = 1
    spikes_tc: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 1, dtype=torch.int64))
    elements_t: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.int64))
    active_t: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.int64))
    graded: bool = False  # some output was neither 0 nor 1
    counts: bool = False  # outputs are spike counts (non-negative integers): spikes sum their values
    verified: bool = False  # the first call's output was checked to be binary
    declared_binary: bool = False  # the op's rule says this node emits 0/1 (binary_if)


@dataclass
class CustomRecord(_NodeBase):
    """Column totals of a ``custom`` node."""

    totals: dict[str, float] = field(default_factory=dict)


@dataclass
class UnmeasuredRecord(_NodeBase):
    """A layer no rule covers: only whether it ran and what its outputs looked like (no counts).

    Attributes:
        reason: why it is not measured (no rule, or the op's refusal).
        binary_outputs: ``True`` when every output seen was 0/1 (it looks like a spiking neuron),
            ``False`` when some was not, ``None`` when it never ran.
    """

    reason: str = ""
    binary_outputs: bool | None = None


@dataclass
class Recording:
    """What :func:`record_spikes` accumulated (reduced statistics only).

    Attributes:
        model_name: class name of the recorded model.
        records: per node name, in first-execution order after recording.
        samples: samples seen (axis 1 of the model input).
        timesteps: largest T seen (axis 0 of the model input).
        forward_calls: model forward calls.
        unmeasured: ``(name, type, reason)`` of the layers no rule covers (see :class:`UnmeasuredRecord`).
        graph_bound: whether rules were resolved from IR node types.
        active_counted: whether membrane updates with nonzero input were counted.
    """

    model_name: str = ""
    records: dict[str, _NodeBase] = field(default_factory=dict)
    samples: int = 0
    timesteps: int = 0
    forward_calls: int = 0
    unmeasured: list[tuple[str, str, str]] = field(default_factory=list)
    graph_bound: bool = False
    active_counted: bool = False
    _seq: int = 0

    def nodes(self, kind: type | None = None) -> list[_NodeBase]:
        """Records in execution order (never-called ones last), optionally of one record class."""
        recs = sorted(self.records.values(), key=lambda r: (r.order < 0, r.order))
        return [r for r in recs if kind is None or isinstance(r, kind)]

    def state_nbytes(self) -> int:
        """Bytes held by the accumulators (excluding cached fan-out maps, which depend only on shapes)."""
        total = 0
        for r in self.records.values():
            for v in vars(r).values():
                if isinstance(v, torch.Tensor):
                    total += v.numel() * v.element_size()
            if isinstance(r, SynapseRecord):
                total += 8 * len(vars(ClassTotals())) * len(r.classes)
            if isinstance(r, CustomRecord):
                total += 16 * len(r.totals)
        return total


# ---------------------------------------------------------------- observers
def _first_tensor(obj: Any) -> torch.Tensor | None:
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (tuple, list)):
        for o in obj:
            t = _first_tensor(o)
            if t is not None:
                return t
    return None


@dataclass
class _TensorStats:
    """Reduced statistics of one ``[T, N, *item]`` tensor (shared by the hooks that read it)."""

    cls: str
    t: int
    nonzero: int
    countmap: torch.Tensor  # [T, P] float64: nonzeros at each flattened item position, summed over the batch
    absmap: torch.Tensor | None = None  # [P] float64: sum over T and batch of |x| (integer inputs only)
    max_abs: float = 0.0
    _total: torch.Tensor | None = None

    @property
    def total_map(self) -> torch.Tensor:
        """[P] float64: nonzeros per position summed over time and batch."""
        if self._total is None:
            self._total = self.countmap.sum(0)
        return self._total


def _tensor_stats(x: torch.Tensor, t: int, item_ndim: int) -> _TensorStats:
    """Classify ``x`` and count its nonzeros per position, in a few fast passes.

    Spike tensors (the common case) cost one fused ``x - x*x`` with a max-abs
    reduction (zero exactly when every value is 0 or 1, see
    :func:`~spikeport.energy.rules.is_unit`) and one sum over the batch axis, which
    for binary values *is* the nonzero count (exact in float32 below 2**24 samples).
    Other tensors (the first layer's real input, pooled or scaled spikes, signed
    spikes) take a slower path that counts ``x != 0`` and checks for integer values.
    """
    p = math.prod(x.shape[x.dim() - item_ndim:]) if item_ndim else 1
    xs = x.reshape(t, -1, p)
    if x.numel() == 0:
        return _TensorStats("binary", t, 0, torch.zeros(t, p, dtype=torch.float64))
    if not torch.is_floating_point(xs):
        xs = xs.to(torch.float32)
    acc = torch.float64 if xs.dtype == torch.float64 else torch.float32
    small = xs.shape[1] < 2**24
    if small and float(torch.linalg.vector_norm(torch.addcmul(xs, xs, xs, value=-1.0), float("inf"))) == 0.0:
        m = xs.sum(1, dtype=acc).to(torch.float64)
        nz = int(round(float(m.sum())))
        return _TensorStats("binary", t, nz, m, max_abs=1.0 if nz else 0.0)
    lo, hi = torch.aminmax(xs)
    mn, mx = float(lo), float(hi)
    if small and mn < 0.0 and mn >= -1.0 and mx <= 1.0:
        a = xs.abs()
        if is_unit(a, xs):
            m = a.sum(1, dtype=acc).to(torch.float64)
            nz = int(round(float(m.sum())))
            return _TensorStats("signed_binary", t, nz, m, max_abs=1.0 if nz else 0.0)
    countmap = (xs != 0).sum(1).to(torch.float64)
    nz = int(countmap.sum())
    max_abs = max(abs(mn), abs(mx)) if math.isfinite(mn) and math.isfinite(mx) else float("inf")
    unit_range = small and mn >= 0.0 and mx <= 1.0  # in [0, 1] and not binary (checked above): not integer
    if math.isfinite(max_abs) and not unit_range and bool(torch.equal(xs, torch.round(xs))):
        return _TensorStats("integer", t, nz, countmap, xs.abs().sum(dim=(0, 1), dtype=torch.float64), max_abs)
    return _TensorStats("real", t, nz, countmap, max_abs=max_abs)


_CACHE_SIZE = 4  # tensors whose statistics are kept for reuse (a block input read by conv1 and the shortcut)


def _binary_stats(x: torch.Tensor, t: int, item_ndim: int) -> _TensorStats:
    """Statistics of a tensor known to hold only 0 and 1: one sum over the batch axis."""
    p = math.prod(x.shape[x.dim() - item_ndim:]) if item_ndim else 1
    xs = x.reshape(t, -1, p)
    acc = torch.float64 if xs.dtype == torch.float64 else torch.float32
    m = xs.sum(1, dtype=acc).to(torch.float64)
    nz = int(round(float(m.sum())))
    return _TensorStats("binary", t, nz, m, max_abs=1.0 if nz else 0.0)


def _trusted(module: nn.Module) -> bool:
    """Neuron modules whose class spikeport defines (user subclasses may emit graded values)."""
    return type(module).__module__.startswith("spikeport.")


class _CallView:
    """Places the tensors a hook sees in time when the model is not ``[T, B, ...]`` throughout.

    A :class:`~spikeport.frameworks.ForeignModel` is fed ``[T, B, ...]`` but its modules see its
    own layout: the whole sequence (``[B, T, ...]``, ``[B*T, ...]``, ``[B, ..., T]``) or one step
    ``[B, ...]`` per call (snnTorch, Norse cells, loops over time in ``forward``). Each hooked
    tensor is brought to ``[t, N, ...]``; a one-step call is step *k* of the sequence, *k*
    counting that module's calls since the model's call (runtime hooks count per call).
    """

    def __init__(self, layout: str) -> None:
        self.layout = layout
        self.t = self.b = 0
        self.calls: dict[str, int] = {}

    def start(self, x: torch.Tensor) -> None:
        self.t, self.b = int(x.shape[0]), int(x.shape[1])
        self.calls.clear()

    def view(self, key: str, x: torch.Tensor, *more: Any) -> tuple[list[Any], int]:
        """``[x, *more]`` as ``[t, N, ...]`` tensors (``None`` passes through) and the first step they hold."""
        t, b, s, lay = self.t, self.b, tuple(x.shape), self.layout
        fn = None
        if len(s) >= 2 and lay == "tb" and s[:2] == (t, b):
            fn = _identity
        elif len(s) >= 2 and lay == "bt" and s[:2] == (b, t):
            fn = _swap01
        elif len(s) >= 2 and lay == "time-last" and s[0] == b and s[-1] == t:
            fn = _time_last
        elif lay == "bt-flat" and t > 1 and s[0] == b * t:
            fn = _unfold_bt
        if fn is not None:
            return [fn(v, b, t) if isinstance(v, torch.Tensor) else v for v in (x, *more)], 0
        k = self.calls.get(key, 0)
        self.calls[key] = k + 1
        return [v.unsqueeze(0) if isinstance(v, torch.Tensor) else v for v in (x, *more)], k


def _identity(v: torch.Tensor, b: int, t: int) -> torch.Tensor:
    return v


def _swap01(v: torch.Tensor, b: int, t: int) -> torch.Tensor:
    return v.transpose(0, 1)


def _time_last(v: torch.Tensor, b: int, t: int) -> torch.Tensor:
    return v.movedim(-1, 0)


def _unfold_bt(v: torch.Tensor, b: int, t: int) -> torch.Tensor:
    return v.reshape(b, t, *v.shape[1:]).transpose(0, 1)


class _Observer:
    """Forward hooks updating one :class:`Recording`.

    The statistics of the last few tensors seen are cached (by tensor identity and
    version; the cache holds references, so an identity cannot be reused while
    cached), so the synapses that read a neuron's spikes reuse them. The cache is
    cleared at every model call.
    """

    def __init__(self, rec: Recording, batch_dim: int, count_active: bool, layout: str | None = None) -> None:
        self.rec = rec
        self.batch_dim = batch_dim
        self.count_active = count_active
        self.calls = _CallView(layout) if layout is not None else None
        self._binary: list[tuple[torch.Tensor, int]] = []  # outputs known to hold 0/1 only
        self._cache: list[tuple[torch.Tensor, int, tuple[int, int], _TensorStats]] = []

    def _touch(self, r: _NodeBase) -> None:
        if r.order < 0:
            r.order = self.rec._seq
            self.rec._seq += 1
        r.calls += 1

    def _stats(self, x: torch.Tensor, t: int, item_ndim: int, binary: bool = False,
               key: torch.Tensor | None = None) -> _TensorStats:
        """Statistics of ``x``, reused when the same unmodified tensor reaches the next hook (a neuron's
        spikes feeding one or more synapses). ``key``: the tensor object the hook received, when ``x`` is a
        view of it placed in time. ``binary``: the producer guarantees 0/1 values (skip the value check),
        also known for the outputs of value-preserving modules fed with binary tensors (max pooling, flatten)."""
        k = x if key is None else key
        for c in self._cache:
            if c[0] is k and c[1] == k._version and c[2] == (t, item_ndim):
                return c[3]
        binary = binary or any(b[0] is k and b[1] == k._version for b in self._binary)
        with torch.no_grad():
            st = (_binary_stats if binary and x.numel() and x.shape[1 if x.dim() > 1 else 0] < 2**24
                  else _tensor_stats)(x.detach(), t, item_ndim)
        self._cache = [(k, k._version, (t, item_ndim), st)] + self._cache[:_CACHE_SIZE - 1]
        return st

    def passthrough(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        """A value-preserving module (max pooling, flatten): a binary input makes its output known binary."""
        x, y = _first_tensor(args), _first_tensor(output)
        if x is None or y is None:
            return
        known = any(b[0] is x and b[1] == x._version for b in self._binary) or \
            any(c[0] is x and c[1] == x._version and c[3].cls == "binary" for c in self._cache)
        if known:
            self._binary = [(y, y._version)] + self._binary[:_CACHE_SIZE - 1]

    # -- model input
    def root(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self.rec.forward_calls += 1
        self._cache = []
        self._binary = []
        x = _first_tensor(args)
        if self.calls is not None and x is not None and x.dim() >= 2:
            self.calls.start(x)
        if x is not None and x.dim() > self.batch_dim:
            self.rec.samples += int(x.shape[self.batch_dim])
            self.rec.timesteps = max(self.rec.timesteps, int(x.shape[0]) if self.batch_dim == 1 else 1)

    # -- synapse / pool
    def synapse(self, r: SynapseRecord, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        x = _first_tensor(args)
        if x is None:
            return
        out = _first_tensor(output)
        off, key = 0, x
        if self.calls is not None:
            (x, out), off = self.calls.view(r.name, x, out)
        with torch.no_grad():
            nd = r.rule.item_ndim
            if x.dim() < nd:
                raise GraphError(f"node '{r.name}' ({r.type_name}): input of shape {list(x.shape)} has fewer than "
                                 f"{nd} per-item axes; fix the rule's item_ndim")
            item = tuple(int(d) for d in x.shape[x.dim() - nd:])
            lead = x.shape[:x.dim() - nd]
            t = int(lead[0]) if len(lead) >= 2 else 1
            n_items = int(x.numel() // max(1, math.prod(item)))
            st = self._stats(x, t, nd, key=key)
            fan, valid_sum = self._fanout(r, module, item)
            flat_fan = fan.reshape(-1)
            total_map = st.total_map
            nz_fan = int(round(float(torch.dot(total_map, flat_fan))))
            abs_fan = int(round(float(torch.dot(st.absmap.reshape(-1), flat_fan)))) if st.absmap is not None \
                else nz_fan
            nz_t = st.countmap.sum(1).round().to(torch.int64)
            out_item = tuple(int(d) for d in out.shape[len(lead):]) if out is not None else ()
            if not r.out_item_shape:
                r.out_item_shape = out_item
            self._touch(r)
            ct = r.classes.setdefault(st.cls, ClassTotals())
            ct.calls += 1
            ct.items += n_items
            ct.nonzero += st.nonzero
            ct.elements += int(x.numel())
            ct.nz_fan += nz_fan
            ct.abs_fan += abs_fan
            ct.valid_fan += valid_sum * n_items
            if r.rule.dense is not None:
                ct.dense += int(r.rule.dense(module, r.node, item, out_item)) * n_items
            ct.out_elements += int(out.numel()) if out is not None else 0
            ct.max_abs = max(ct.max_abs, st.max_abs)
            r.nonzero_t = _grow(r.nonzero_t, off + t)
            r.elements_t = _grow(r.elements_t, off + t)
            r.nonzero_t[off:off + t] += nz_t.cpu()
            r.elements_t[off:off + t] += n_items // t * math.prod(item)

    def _fanout(self, r: SynapseRecord, module: nn.Module, item: tuple[int, ...]) -> tuple[torch.Tensor, int]:
        cached = r._fan.get(item)
        if cached is None:
            fanout = r.rule.fanout
            if fanout is None:  # OpRule requires one for synapse and pool rules
                raise GraphError(f"node '{r.name}' ({r.type_name}): its {r.rule.role} rule has no fanout function")
            try:
                eff, valid = fanout(module, r.node, item)
            except GraphError:
                raise
            except Exception as e:  # a rule or module that cannot take this shape
                raise GraphError(f"node '{r.name}' ({r.type_name}): computing the fan-out map for input "
                                 f"{list(item)} failed ({type(e).__name__}: {e})") from e
            if tuple(eff.shape) != item:
                raise GraphError(f"node '{r.name}' ({r.type_name}): fan-out map has shape {list(eff.shape)}, "
                                 f"expected {list(item)}")
            cached = (eff.to(torch.float64).contiguous(), int(round(float(valid.sum()))))
            r._fan[item] = cached
            if not r.item_shape:
                r.item_shape = item
        return cached

    # -- neurons
    def neuron(self, r: NeuronRecord, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        s = _first_tensor(output)
        x = _first_tensor(args)
        if s is None:
            return
        off, key = 0, s
        if self.calls is not None:
            (s, x), off = self.calls.view(r.name, s, x)
        with torch.no_grad():
            t = int(s.shape[0]) if s.dim() >= 2 else 1
            item = tuple(int(d) for d in s.shape[2:]) if s.dim() >= 2 else ()
            c = int(item[0]) if item else 1
            trust = r.verified and (r.declared_binary or (r.rule.binary_output and _trusted(module)))
            st = self._stats(s, t, len(item), binary=trust, key=key)
            if st.cls == "integer" and float(s.min()) >= 0:  # spike counts (multi-spike neurons): sum them
                counts = s.detach().reshape(t, -1, c, max(1, math.prod(item) // c) if item else 1).sum(
                    dim=(1, 3), dtype=torch.float64).round().to(torch.int64)
                r.counts = True
            else:
                counts = st.countmap.reshape(t, c, -1).sum(2).round().to(torch.int64)  # [T, C]
            if st.cls != "binary":
                r.graded = True
            elif r.calls == 0:
                r.verified = True  # first call checked in full: later calls may take the fast path
            self._touch(r)
            if r.calls == 1 or r.channels != c:
                if r.calls > 1:
                    raise GraphError(f"node '{r.name}' ({r.type_name}): channel count changed between calls "
                                     f"({r.channels} -> {c}); record one input shape per recording")
                r.channels, r.neurons = c, max(1, math.prod(item)) if item else 1
                r.spikes_tc = torch.zeros(0, c, dtype=torch.int64)
            end = off + t
            r.spikes_tc = _grow(r.spikes_tc, end)
            r.elements_t = _grow(r.elements_t, end)
            r.active_t = _grow(r.active_t, end)
            r.spikes_tc[off:end] += counts.cpu()
            r.elements_t[off:end] += s.numel() // t
            if self.count_active and x is not None and x.shape[:1] == s.shape[:1] and x.numel() == s.numel():
                xd = x.detach()
                r.active_t[off:end] += torch.stack([torch.count_nonzero(xd[i]) for i in range(t)]).cpu()

    # -- custom
    def custom(self, r: CustomRecord, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        count = r.rule.count
        if count is None:  # OpRule requires one for custom rules
            raise GraphError(f"node '{r.name}' ({r.type_name}): its custom rule has no count function")
        with torch.no_grad():
            vals = count(module, r.node, tuple(args), output)
        self._touch(r)
        for k, v in dict(vals).items():
            if k not in ("elem_adds", "elem_macs"):
                raise GraphError(f"node '{r.name}' ({r.type_name}): count rule returned unknown column '{k}'; "
                                 "use elem_adds or elem_macs")
            r.totals[k] = r.totals.get(k, 0) + v


    # -- unmeasured
    def unmeasured(self, r: UnmeasuredRecord, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        s = _first_tensor(output)
        self._touch(r)
        if s is None:
            return
        with torch.no_grad():
            binary = s.numel() == 0 or (torch.is_floating_point(s) and bool(((s == 0) | (s == 1)).all()))
        r.binary_outputs = binary if r.binary_outputs is None else (r.binary_outputs and binary)


# ---------------------------------------------------------------- binding
def _graph_nodes(graph: Any) -> dict[str, Any]:
    """``name -> IR node`` from a SpikeGraph, a mapping, or anything with ``.nodes``."""
    if graph is None:
        return {}
    if isinstance(graph, Mapping):
        return dict(graph)
    nodes = getattr(graph, "nodes", None)
    if callable(nodes):
        nodes = nodes()
    if isinstance(nodes, Mapping):
        return dict(nodes)
    if nodes is not None:
        out = {}
        for n in nodes:
            out[n.name if hasattr(n, "name") else str(n)] = n
        return out
    raise ConfigError(f"graph: expected a SpikeGraph or a mapping of node names to IR nodes, got "
                      f"{type(graph).__name__}")


def _attach(rec: Recording, obs: _Observer, name: str, module: nn.Module, rule: OpRule, node: Any,
            handles: list[Any]) -> None:
    type_name = type(node).__name__ if node is not None else type(module).__name__
    fn: Callable[[Any, nn.Module, tuple[Any, ...], Any], None]  # the observer method for the record's kind
    if rule.role in ("synapse", "pool"):
        w = getattr(module, "weight", None)
        r: _NodeBase = SynapseRecord(name, type_name, rule, node,
                                     weight_count=int(w.numel()) if isinstance(w, torch.Tensor) else 0)
        fn = obs.synapse
    elif rule.role in ("neuron", "activation"):
        r = NeuronRecord(name, type_name, rule, node, declared_binary=_declared_binary(rule, node, module, name))
        fn = obs.neuron
    elif rule.role == "custom":
        r = CustomRecord(name, type_name, rule, node)
        fn = obs.custom
    else:
        if _preserves_binary(module, node):
            handles.append(module.register_forward_hook(obs.passthrough))
        return
    rec.records[name] = r
    handles.append(module.register_forward_hook(lambda m, a, o, _r=r, _f=fn: _f(_r, m, a, o)))


_BINARY_PRESERVING_OPS = ("MaxPool", "Flatten", "Reshape", "Delay")
_BINARY_PRESERVING_MODULES = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.Flatten, nn.Unflatten, nn.Identity)


def _preserves_binary(module: nn.Module, node: Any) -> bool:
    """Whether a free module maps 0/1 inputs to 0/1 outputs (max pooling, reshapes, delays)."""
    if node is not None:
        return type(node).__name__ in _BINARY_PRESERVING_OPS
    return isinstance(module, _BINARY_PRESERVING_MODULES)


def _declared_binary(rule: OpRule, node: Any, module: nn.Module, name: str) -> bool:
    """Whether ``rule.binary_if`` says this node emits 0/1 (the node is built from the module when not given)."""
    if rule.binary_if is None:
        return False
    if node is None:
        from spikeport.converter.tracer import convert_module, layout_scope
        from spikeport.frameworks.state import neuron_layout

        try:
            with layout_scope(neuron_layout(module) or "tb"):
                nodes = convert_module(module, name or type(module).__name__)
        except SpikeportError:  # no node: the values are checked on every call instead
            return False
        node = nodes[0] if len(nodes) == 1 else None
    try:
        return node is not None and bool(rule.binary_if(node))
    except (AttributeError, TypeError, ValueError):
        return False


_UNMEASURED_RULE = OpRule("free", note="")


def _attach_unmeasured(rec: Recording, obs: _Observer, name: str, module: nn.Module, node: Any, reason: str,
                       handles: list[Any]) -> None:
    type_name = type(node).__name__ if node is not None else type(module).__name__
    r = UnmeasuredRecord(name, type_name, _UNMEASURED_RULE, node, reason=reason)
    rec.records[name] = r
    rec.unmeasured.append((name, f"{type(module).__module__}.{type(module).__qualname__}"
                           if node is None else type_name, reason))
    handles.append(module.register_forward_hook(lambda m, a, o, _r=r: obs.unmeasured(_r, m, a, o)))


def _has_own_state(m: nn.Module) -> bool:
    return next(m.parameters(recurse=False), None) is not None or next(m.buffers(recurse=False), None) is not None


def _walk(rec: Recording, obs: _Observer, module: nn.Module, prefix: str, nodes: Mapping[str, Any],
          rules: Mapping[type, OpRule] | None, handles: list[Any]) -> None:
    from spikeport.ops import Refused

    for child_name, child in module.named_children():
        name = f"{prefix}.{child_name}" if prefix else child_name
        node = getattr(child, "ir_node", None)  # a lowered IR executor names its node modules
        if node is not None:
            name = str(getattr(child, "ir_name", None) or name)
        else:
            node = nodes.get(name)
        rule = resolve_rule(type(node) if node is not None else type(child), rules)
        if node is not None and rule is None:
            rule = resolve_rule(type(child), rules)
        if isinstance(rule, Refused):
            _attach_unmeasured(rec, obs, name, child, node, f"its op refuses energy counting: {rule.why(node)}",
                               handles)
            continue
        if rule is None:
            if next(child.children(), None) is not None and not _has_own_state(child):
                _walk(rec, obs, child, name, nodes, rules, handles)
            else:
                where = f" inside '{prefix}' ({type(module).__name__})" if prefix else ""
                _attach_unmeasured(rec, obs, name, child, node, f"no energy rule for {type(child).__name__}{where}",
                                   handles)
            continue
        _attach(rec, obs, name, child, rule, node, handles)
        if not rule.leaf:
            _walk(rec, obs, child, name, nodes, rules, handles)


def _unmeasured_error(rec: Recording) -> UnmeasuredError:
    listed = "; ".join(f"'{n}' ({t}: {why})" for n, t, why in rec.unmeasured[:10])
    more = f" and {len(rec.unmeasured) - 10} more" if len(rec.unmeasured) > 10 else ""
    cls = rec.unmeasured[0][1].rsplit(".", 1)[-1]
    return UnmeasuredError(
        f"{len(rec.unmeasured)} layer(s) of {rec.model_name} have no energy rule, so their spikes and operations "
        f"cannot be measured: {listed}{more}. Register the module class (spikeport.ops.register_op with a module "
        f"adapter, or record_spikes(rules={{{cls}: OpRule(...)}}); see docs/extending.md), or pass "
        f"--allow-unmeasured (allow_unmeasured=True) to report these layers as 'unmeasured'")


@contextlib.contextmanager
def record_spikes(model: nn.Module, *, rules: Mapping[type, OpRule] | None = None, graph: Any = None,
                  batch_dim: int = 1, count_active: bool = False,
                  allow_unmeasured: bool = False) -> Iterator[Recording]:
    """Hook ``model`` and accumulate streaming statistics while the block runs.

    Args:
        model: any ``nn.Module`` taking ``[T, B, ...]`` input (or a lowered IR module).
        rules: extra/overriding rules keyed by IR node type or torch module type.
        graph: a :class:`~spikeport.converter.graph.SpikeGraph` (or ``{name: IRNode}``) whose node
            names equal the model's qualified module names; those modules are counted with the
            rule of their IR node type. Modules carrying ``ir_node``/``ir_name`` (the node
            modules of :func:`spikeport.converter.lower`) are bound to their node directly, so
            ``record_spikes(lower(trace(model)))`` counts every IR node, element-wise ones included.
        batch_dim: axis of the model input that counts samples (1 for ``[T, B, ...]``).
        count_active: also count membrane updates whose input current is nonzero (one more
            pass over every neuron input; the ``loihi`` model prices active and idle updates
            differently, otherwise every update is taken as active).
        allow_unmeasured: record layers no rule covers as "unmeasured" instead of raising.

    Yields:
        The :class:`Recording`, complete once the block exits (hooks are always removed).

    Raises:
        UnmeasuredError: a layer has no rule (or its op refuses energy) and ``allow_unmeasured`` is False.

    Example:
        >>> with record_spikes(model) as rec:
        ...     model(x)
        >>> report = estimate(rec, hardware="horowitz45")
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"record_spikes: expected a torch.nn.Module, got {type(model).__name__}")
    nodes = _graph_nodes(graph)
    inner = getattr(model, "spikeport_inner", None)  # a ForeignModel: record the user's modules, per call
    target = inner if isinstance(inner, nn.Module) else model
    rec = Recording(model_name=str(getattr(getattr(model, "graph", None), "name", "") or type(target).__name__))
    rec.active_counted = bool(count_active)
    layout = getattr(model, "time_layout", None) if target is inner else None
    obs = _Observer(rec, batch_dim, bool(count_active), layout)
    handles: list[Any] = [model.register_forward_pre_hook(obs.root)]
    try:
        root_rule = resolve_rule(type(target), rules)
        if isinstance(root_rule, OpRule) and root_rule.role != "free" and \
                (root_rule.leaf or not list(target.children())):
            _attach(rec, obs, type(target).__name__, target, root_rule, None, handles)
        else:
            _walk(rec, obs, target, "", nodes, rules, handles)
        rec.graph_bound = any(r.node is not None for r in rec.records.values())
        if rec.unmeasured:
            if not allow_unmeasured:
                raise _unmeasured_error(rec)
            log.warning("%d layer(s) unmeasured (no energy rule): %s", len(rec.unmeasured),
                        ", ".join(f"{n} ({t})" for n, t, _ in rec.unmeasured))
        yield rec
    finally:
        for h in handles:
            h.remove()
