"""The op registry: everything spikeport knows about an IR op type, declared once.

Each IR node type (:mod:`spikeport.converter.ir`) has one :class:`OpSpec` that
states, capability by capability, how the toolchain handles it:

============  =======================================================================================
capability    what the spec holds
============  =======================================================================================
``trace``     :class:`ModuleAdapter` s: the torch module classes recognised as this op and the
              function turning such a module into the IR node (used by the tracer and by the
              hook-based energy recorder)
``execute``   ``execute(node, in_shapes) -> nn.Module``: the reference executor's module (every op
              has one; a neuron's module calls its :class:`NeuronDynamics`)
``energy``    an :class:`~spikeport.energy.rules.OpRule`: how the op is observed and counted
``nir_*``     :class:`NirMapping`: export to a NIR node (``nir_export``) and the NIR node types
              that import as this op (``nir_import``)
``onnx*``     :class:`OnnxSupport`: the sequence export (``onnx``, through the executor) and,
              unless the op needs the whole sequence, the single-step export (``onnx_stream``)
``loihi``     :class:`LoihiMapping`: the op's role in a Loihi 2 network (synapse, neuron with its
              CUBA mapping, flatten, io, merge, pool / or with its window)
============  =======================================================================================

A capability an op lacks is an explicit :class:`Refused` carrying the reason,
which every caller (export errors, ``spikeport ops``, energy) shows as is.
:func:`register_op` adds a spec (user code may add its own op types);
:func:`spec_of` looks one up by node or node type (walking the MRO).

Module classes that are not one IR op have *module adapters* of their own:
bypassed identities (Dropout) and composite modules that expand to several
nodes (an STAA block); see :func:`register_adapter`.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Union

from spikeport.errors import GraphError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from dataclasses import _MISSING_TYPE

    from torch import nn

    from spikeport.converter.ir import IRNode, Shape
    from spikeport.energy.rules import OpRule

__all__ = ["CAPABILITIES", "Refused", "Refusal", "ModuleAdapter", "NeuronDynamics", "NirMapping", "NirContext",
           "OnnxSupport", "LoihiMapping", "PoolWindow", "LOIHI_ROLES", "OpSpec",
           "register_op", "register_adapter", "spec_of", "find_spec",
           "all_specs", "module_adapter", "builtin_adapters", "refusal", "iter_capabilities",
           "AdapterResult", "MISSING", "energy_rule_at", "unregister_op", "qualified_name"]

MISSING: Final = dataclasses.MISSING
"""What :func:`module_adapter` returns for a module class no adapter knows."""

CAPABILITIES = ("trace", "execute", "energy", "nir_export", "nir_import", "onnx", "onnx_stream", "loihi")
"""Capability names, in the order ``spikeport ops`` shows them (``nir`` and ``onnx`` have two directions/forms)."""

AdapterResult = Union["IRNode", Sequence["IRNode"], None]
ConvertFn = Callable[[Any, str], AdapterResult]


@dataclass(frozen=True)
class Refused:
    """A capability an op does not have, and why (shown to the user verbatim).

    Args:
        reason: the reason and, where there is one, the way around it.
        detail: optional ``detail(node) -> str`` adding node-specific facts (e.g. non-causal).
    """

    reason: str
    detail: Callable[[Any], str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise GraphError("Refused: a refusal needs a non-empty reason")

    def why(self, node: Any = None) -> str:
        """The reason, specialised to ``node`` when a ``detail`` function is given."""
        if node is not None and self.detail is not None:
            return self.detail(node)
        return self.reason


def qualified_name(cls: type) -> str:
    """``package.module.Class`` of a class (how adapters name classes of other frameworks)."""
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True)
class ModuleAdapter:
    """How torch modules of class ``module`` become IR node(s).

    Args:
        module: the module class (subclasses match too, see ``known``), or its qualified name
            ``"package.module.Class"``: a class of another framework is then matched without importing
            that framework.
        convert: ``convert(module, name) -> IRNode | [IRNode, ...] | None`` (``None``: bypass as identity).
        known: classes whose implementation of ``methods`` the adapter knows; a subclass overriding one
            of them elsewhere is refused (its equation is unknown). Default: ``(module,)``.
        methods: the methods checked (``forward`` for layers, ``step`` for spikeport neurons).
        energy: rule for the hook-based recorder when the adapter expands a module into several nodes
            (composite modules); single-op adapters use their op's rule.
        framework: where the class comes from (``torch``, ``spikeport``, ``spikingjelly``, ...).
        op: the IR node type a single-op adapter produces (set by :func:`register_op`).
        tuple_output: the module returns ``(output, state, ...)`` (a bool, or ``fn(module) -> bool``):
            the tracer follows ``[0]`` as the node's output and refuses uses of the other items.
    """

    module: type | str
    convert: ConvertFn
    known: tuple[type | str, ...] = ()
    methods: tuple[str, ...] = ("forward",)
    energy: OpRule | Refused | None = None
    framework: str = "torch"
    op: type | None = None
    tuple_output: bool | Callable[[Any], bool] = False

    def returns_tuple(self, m: Any) -> bool:
        """Whether module ``m`` returns a tuple whose first item is the node's output."""
        return bool(self.tuple_output(m)) if callable(self.tuple_output) else bool(self.tuple_output)

    def check(self, m: Any, name: str) -> None:
        """Refuse ``m`` if its class overrides a checked method outside the known classes (and their bases)."""
        known = self.known or (self.module,)
        allowed: set[str] = set()
        for c in known:
            if isinstance(c, str):  # a class named, not imported: its bases are those in m's own MRO
                allowed.add(c)
                for k in type(m).__mro__:
                    if qualified_name(k) == c:
                        allowed |= {qualified_name(b) for b in k.__mro__}
            else:
                allowed |= {qualified_name(b) for b in c.__mro__}
        for method in self.methods:
            owner = next((k for k in type(m).__mro__ if method in vars(k)), None)
            if owner is not None and qualified_name(owner) not in allowed:
                label = known[0] if isinstance(known[0], str) else known[0].__name__
                raise GraphError(
                    f"module '{name}' ({qualified_name(type(m))}) overrides {method}() of {label}; its equation is "
                    f"unknown to the built-in adapter. Register an adapter for {type(m).__name__} with "
                    "spikeport.converter.register_handler (see docs/extending.md)")

    def __call__(self, m: Any, name: str) -> list[IRNode]:
        self.check(m, name)
        out = self.convert(m, name)
        if out is None:
            return []
        return list(out) if isinstance(out, Sequence) else [out]


@dataclass(frozen=True)
class NeuronDynamics:
    """A neuron op's discrete-time step for the reference executor.

    Args:
        params: node fields the step reads (floats stay floats; arrays become buffers shaped
            leading-aligned to the per-step rank).
        step: ``step(x, state, p) -> (spikes, new_state)`` with ``p`` a mapping of the prepared
            parameters and ``spikes`` from ``p["surrogate"]`` (the executor's Heaviside); it calls
            the pure functions of :mod:`spikeport.models.neurons.functional`.
        init_state: ``init_state(x_t, p) -> state`` (zeros of one step's input by default; ``p`` as for
            ``step``, e.g. for a membrane that starts at a leak potential).
        derived: ``derived(p) -> {name: value}`` extra parameters computed once (e.g. ``1 / tau``
            exactly as the model's module computes it).
    """

    params: tuple[str, ...]
    step: Callable[[Any, Any, Mapping[str, Any]], tuple[Any, Any]]
    init_state: Callable[[Any, Mapping[str, Any]], Any] | None = None
    derived: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None


@dataclass(frozen=True)
class NirContext:
    """What a NIR export/import function knows besides the node.

    Attributes:
        dt: seconds per step.
        shape: the node's per-step output shape (export); in_shapes: its input shapes (export).
        n_inputs, n_outputs: Input/Output nodes created so far (import, for their indices).
        options: the reading (import) or writing (export) conventions, see
            :mod:`spikeport.converter.nir_io.dialects`: ``producer`` (the dialect), ``integration``
            (``euler`` or ``exact``), ``reset`` (a reset the file cannot state, e.g. snnTorch's ``subtract``),
            ``spike`` (``>=`` or ``>``), ``notes`` (a list an importer appends warnings to, naming node and
            field); on export ``consumer`` (the importer the file is written for). An export function may
            set the NIR node's ``metadata``: ``spikeport_op`` (the op, so spikeport reads the node back as
            it), ``nir_faithful`` (whether NIR's own equations reproduce the op; if not, ``nir_note`` says
            why and other importers are refused the node).
    """

    dt: float
    shape: tuple[int, ...] = ()
    in_shapes: tuple[tuple[int, ...], ...] = ()
    n_inputs: int = 0
    n_outputs: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NirMapping:
    """NIR exchange of an op.

    Args:
        export: ``export(node, ctx) -> nir node``, or a :class:`Refused` (the op has no NIR primitive).
            The function raises :class:`Refusal` when a particular node's parameters cannot be expressed.
        imports: ``{NIR type name: importer(name, nir_node, ctx) -> [IRNode, ...]}`` for the NIR types
            that import as this op.
        dialects: the producer presets (``--nir-from``, :data:`spikeport.converter.nir_io.dialects.DIALECTS`)
            under which ``imports`` apply, for all of them or per NIR type (``{"IF": ("snntorch", ...)}``);
            none: the default reading, used by every preset that declares no importer of its own for the
            NIR type.
    """

    export: Callable[[Any, NirContext], Any] | Refused
    imports: Mapping[str, Callable[[str, Any, NirContext], list[Any]]] = field(default_factory=dict)
    dialects: tuple[str, ...] | Mapping[str, tuple[str, ...]] = ()

    def dialects_of(self, nir_type: str) -> tuple[str, ...]:
        """The presets under which the importer of ``nir_type`` applies (empty: the default reading)."""
        if isinstance(self.dialects, Mapping):
            return tuple(self.dialects.get(nir_type, ()))
        return tuple(self.dialects)
    import_note: str = ""
    """Why no NIR type imports as this op, when ``imports`` is empty (e.g. "imports back as LIF")."""
    imported_by: str = ""
    """The importer that creates this op although no NIR type is named after it (e.g. ``LIF`` for DALIF)."""


@dataclass(frozen=True)
class OnnxSupport:
    """ONNX export: the sequence graph (always, through the executor) and the streaming step graph."""

    stream: bool | Refused = True


@dataclass(frozen=True)
class PoolWindow:
    """A pooling op as the uniform depthwise kernel the Loihi lowering folds or wires (see ``LoihiMapping.window``).

    Attributes:
        kernel, stride, padding, dilation: the window geometry, ``(H, W)``.
        weight: the value of every kernel tap (``1 / window size`` for averages, 1 for sums and OR neurons).
    """

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    weight: float = 1.0


LOIHI_ROLES = ("synapse", "neuron", "flatten", "io", "merge", "pool", "or")
"""Roles an op can play in a Loihi 2 deployment (:class:`LoihiMapping`)."""


@dataclass(frozen=True)
class LoihiMapping:
    """The op's role in a Loihi 2 deployment (see :mod:`spikeport.targets.lava`).

    Args:
        role: ``synapse`` (Dense/Conv weights into a neuron population), ``neuron`` (a CUBA population),
            ``flatten`` (a netx flatten layer / flattened connection), ``io`` (graph input/output), ``merge``
            (an element-wise sum: currents fan into one population, spikes split into one synapse per
            operand), ``pool`` (a linear window, folded into the next synapse), ``or`` (a window over binary
            spikes computed by OR neurons: a depthwise sum into threshold-0 neurons).
        neuron: ``neuron(node) -> FloatNeuron``: the float CUBA-LIF the neuron maps onto (raises
            ExportError with the reason when this node's parameters cannot be mapped).
        window: ``pool`` and ``or`` roles: ``window(node, in_shape) -> PoolWindow`` (raises :class:`Refusal`
            with the reason when this node's window cannot be expressed).
    """

    role: str
    neuron: Callable[[Any], Any] | None = None
    window: Callable[[Any, tuple[int, ...]], PoolWindow] | None = None

    def __post_init__(self) -> None:
        if self.role not in LOIHI_ROLES:
            raise GraphError(f"LoihiMapping: role must be one of {', '.join(LOIHI_ROLES)}, got {self.role!r}")
        if (self.role == "neuron") != (self.neuron is not None):
            raise GraphError("LoihiMapping: a neuron role needs a neuron mapping function (and only it)")
        if (self.role in ("pool", "or")) != (self.window is not None):
            raise GraphError("LoihiMapping: the pool and or roles need a window function (and only they)")


class Refusal(GraphError):
    """Raised by an export/mapping function when a specific node cannot be expressed (message = reason)."""


@dataclass(frozen=True)
class OpSpec:
    """Everything the toolchain knows about one IR op type (see the module docstring).

    Args:
        node: the IR node class.
        summary: one line for ``spikeport ops``.
        execute: the executor's module builder (required: every op runs in the reference).
        modules: module adapters recognising torch modules as this op, or a refusal.
        energy: the op-counting rule, or a refusal (the recorder then errors unless unmeasured
            layers are allowed).
        nir, onnx, loihi: target mappings, or refusals.
        dynamics: neurons only: the step the executor runs.
    """

    node: type
    summary: str
    execute: Callable[[Any, list[Shape]], nn.Module]
    modules: tuple[ModuleAdapter, ...] | Refused = ()
    energy: OpRule | Refused = Refused("no energy rule declared")
    nir: NirMapping | Refused = Refused("no NIR mapping declared")
    onnx: OnnxSupport | Refused = OnnxSupport()
    loihi: LoihiMapping | Refused = Refused("no Loihi mapping declared")
    dynamics: NeuronDynamics | None = None

    def __post_init__(self) -> None:
        if getattr(self.node, "family", None) == "neuron" and getattr(self.node, "stateful", False) \
                and self.dynamics is None:
            raise GraphError(f"OpSpec({self.node.__name__}): a stateful neuron needs dynamics (its step function)")

    @property
    def name(self) -> str:
        return self.node.__name__


# ---------------------------------------------------------------- the registry
_OPS: dict[type, OpSpec] = {}
_ADAPTERS: dict[type | str, ModuleAdapter | None] = {}  # module class (or qualified name) -> adapter; None: bypass
_LOADED = False


def _ensure_loaded() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        importlib.import_module("spikeport.ops.builtin")  # declares the built-in specs


def register_op(spec: OpSpec, *, replace: bool = False) -> OpSpec:
    """Add ``spec`` to the registry (its module adapters too).

    Raises:
        GraphError: the node type already has a spec (pass ``replace=True``), or an adapter's module
            class is already claimed by another op.
    """
    if not isinstance(spec, OpSpec):
        raise GraphError(f"register_op: expected an OpSpec, got {type(spec).__name__}")
    if spec.node in _OPS and not replace:
        raise GraphError(f"op {spec.name} is already registered; pass replace=True to replace its spec")
    if isinstance(spec.modules, tuple):
        adapters = tuple(dataclasses.replace(a, op=spec.node) for a in spec.modules)
        spec = dataclasses.replace(spec, modules=adapters)
        for a in adapters:
            register_adapter(a, replace=replace)
    _OPS[spec.node] = spec
    return spec


def unregister_op(node_type: type) -> None:
    """Remove the spec of ``node_type``, its module adapters and its IR type name (a plugin, e.g. in a notebook)."""
    from spikeport.converter.ir.node import NODE_TYPES

    _ensure_loaded()
    if NODE_TYPES.get(node_type.__name__) is node_type:
        del NODE_TYPES[node_type.__name__]
    spec = _OPS.pop(node_type, None)
    if spec is not None and isinstance(spec.modules, tuple):
        for a in spec.modules:
            if _ADAPTERS.get(a.module) is a:
                del _ADAPTERS[a.module]


def register_adapter(adapter: ModuleAdapter | type | str, *, replace: bool = False) -> None:
    """Register a module adapter (or ``register_adapter(cls)`` alone: bypass ``cls`` as the identity)."""
    if isinstance(adapter, (type, str)):
        cls, value = adapter, None
    else:
        cls, value = adapter.module, adapter
    prev = _ADAPTERS.get(cls, dataclasses.MISSING)
    if prev is not dataclasses.MISSING and not replace and prev is not value:
        label = cls if isinstance(cls, str) else qualified_name(cls)
        raise GraphError(f"module class {label} already has an adapter; pass replace=True to replace it")
    _ADAPTERS[cls] = value


def all_specs() -> list[OpSpec]:
    """Every registered spec, built-ins first, in declaration order."""
    _ensure_loaded()
    return list(_OPS.values())


def find_spec(node_type: type) -> OpSpec | None:
    """The spec of ``node_type`` (walking its MRO), or ``None``."""
    _ensure_loaded()
    for k in node_type.__mro__:
        if k in _OPS:
            return _OPS[k]
    return None


def spec_of(node: Any) -> OpSpec:
    """The spec of an IR node or node type.

    Raises:
        GraphError: naming the node and how to register its type.
    """
    t = node if isinstance(node, type) else type(node)
    spec = find_spec(t)
    if spec is None:
        label = f"node '{node.name}' ({t.__name__})" if not isinstance(node, type) else f"IR type {t.__name__}"
        raise GraphError(f"{label} has no op spec; declare one with spikeport.ops.register_op (see "
                         "docs/extending.md)")
    return spec


def builtin_adapters() -> Mapping[type | str, ModuleAdapter | None]:
    """Every registered module adapter by module class or qualified class name (``None`` = bypass)."""
    _ensure_loaded()
    return _ADAPTERS


def _adapter_at(k: type) -> ModuleAdapter | None | object:
    if k in _ADAPTERS:
        return _ADAPTERS[k]
    return _ADAPTERS.get(qualified_name(k), dataclasses.MISSING)


def module_adapter(cls: type) -> ModuleAdapter | None | object:
    """The adapter for module class ``cls`` (MRO walk, by class or qualified name): an adapter, ``None``
    (bypass) or ``MISSING``."""
    _ensure_loaded()
    for k in cls.__mro__:
        a = _adapter_at(k)
        if a is not dataclasses.MISSING:
            return a
    return dataclasses.MISSING


def energy_rule_at(cls: type) -> OpRule | Refused | None | _MISSING_TYPE:
    """The built-in energy rule declared *at* class ``cls`` (no MRO walk; the recorder walks it).

    Returns the op's rule for an IR node type, the rule of a module adapter (its own for
    composite/record-only adapters, its op's otherwise, ``free`` for a bypass), or
    :data:`MISSING` when nothing is declared at ``cls``.
    """
    _ensure_loaded()
    if cls in _OPS:
        return _OPS[cls].energy
    a = _adapter_at(cls)
    if a is None:
        from spikeport.energy.rules import OpRule

        return OpRule("free")
    if isinstance(a, ModuleAdapter):
        if a.energy is not None:
            return a.energy
        if a.op is not None and a.op in _OPS:
            return _OPS[a.op].energy
    return MISSING


def refusal(spec: OpSpec, name: str, node: Any = None) -> str | None:
    """The refusal reason of capability ``name`` (:data:`CAPABILITIES`) of ``spec``; ``None`` when implemented."""
    if name not in CAPABILITIES:
        raise GraphError(f"unknown capability '{name}' (known: {', '.join(CAPABILITIES)})")
    if name == "trace":
        if isinstance(spec.modules, Refused):
            return spec.modules.why(node)
        return None if spec.modules else "no torch module maps to this op"
    if name == "execute":
        return None
    if name in ("energy", "loihi"):
        value = getattr(spec, name)
        return value.why(node) if isinstance(value, Refused) else None
    if name.startswith("nir"):
        if isinstance(spec.nir, Refused):
            return spec.nir.why(node)
        if name == "nir_export":
            return spec.nir.export.why(node) if isinstance(spec.nir.export, Refused) else None
        if spec.nir.imports or spec.nir.imported_by:
            return None
        return spec.nir.import_note or f"no NIR node type imports as {spec.name}"
    if isinstance(spec.onnx, Refused):
        return spec.onnx.why(node)
    if name == "onnx_stream" and isinstance(spec.onnx.stream, Refused):
        return spec.onnx.stream.why(node)
    return None


def iter_capabilities() -> Iterator[tuple[OpSpec, str, str | None]]:
    """``(spec, capability, refusal reason or None)`` for every registered op and capability."""
    for spec in all_specs():
        for cap in CAPABILITIES:
            yield spec, cap, refusal(spec, cap)
