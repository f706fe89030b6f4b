"""Trace a multi-step PyTorch SNN into a :class:`~spikeport.converter.graph.SpikeGraph`.

:class:`SpikeTracer` is a ``torch.fx.Tracer`` whose leaf modules are exactly the
modules that have a *handler*: a function ``handler(module, name)`` returning
an IR node, a sequence of IR nodes (chained in order, for composite modules),
or ``None`` to bypass the module as the identity (e.g. Dropout). Every other
module is traced through (containers, user blocks); a parameterised module
with no children and no handler, or a torch built-in without one, is an
*unknown module* and raises a :class:`GraphError` naming its path and type.

Handler lookup (documented precedence, tested):

1. ``extra_handlers`` passed to :func:`trace` (this call only);
2. handlers registered with :func:`register_handler` (process-wide, user);
3. the built-in module adapters of the op registry (:mod:`spikeport.ops`).

Within each table the most specific class in the module's MRO wins, so a user
handler for ``torch.nn.Conv2d`` overrides the built-in handler for
``spikeport.models.layers.Conv2d`` too. A table value of ``None`` means
"bypass this module type".

Besides modules, the tracer understands residual/elementwise code in forward
functions: ``+``/``torch.add`` (Add), ``*``/``torch.mul`` (Mul, or Scale by a
python number), ``/`` by a number (Scale by its inverse: not bit-exact),
``torch.cat`` (Concat), ``flatten`` (Flatten), ``relu`` (ReLU) and the no-ops
``contiguous``/``clone``/``detach``. Tensors are ``[T, B, ...]``: operations on
the T or B axes are refused.

**Time layouts.** ``trace(model, shape, time_layout=...)`` traces a model whose tensors
are laid out otherwise (:mod:`spikeport.converter.layout`): ``bt`` ``[B, T, ...]``,
``bt-flat`` ``[B*T, ...]``, ``time-last`` ``[B, ..., T]``, or ``step`` (a model called once
per step with ``[B, ...]``; its graph is the per-step network, executed over every step).
Every per-step op is the same in all layouts; ``dim`` arguments and ``Flatten`` modules are
mapped through the layout's leading axes, and framework neuron adapters check that the
module is called the way the layout says (:func:`current_layout`). Leaf modules that return
``(output, state)`` (Norse cells, ``SequentialState``) are followed through ``[0]``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as TF
from torch import fx, nn

from spikeport.converter.graph import SpikeGraph
from spikeport.converter.ir import Add, Concat, Flatten, Input, IRNode, Mul, Output, ReLU, Scale
from spikeport.errors import GraphError

__all__ = ["Handler", "register_handler", "unregister_handler", "resolve_handler", "convert_module", "SpikeTracer",
           "trace", "current_layout", "layout_scope", "step_axis"]

log = logging.getLogger(__name__)

HandlerResult = IRNode | Sequence[IRNode] | None
Handler = Callable[[nn.Module, str], HandlerResult]
HandlerTable = Mapping[type, Handler | None]

_USER_HANDLERS: dict[type, Handler | None] = {}
_MISSING = object()
_NO_HANDLERS: HandlerTable = MappingProxyType({})
_ACTIVE_EXTRA: contextvars.ContextVar[HandlerTable] = contextvars.ContextVar("spikeport_extra_handlers",
                                                                             default=_NO_HANDLERS)
_LAYOUT: contextvars.ContextVar[str] = contextvars.ContextVar("spikeport_time_layout", default="tb")
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_ROOT = "_spikeport_root"


def current_layout() -> str:
    """The time layout the module being converted is called with (``tb`` outside a trace)."""
    return _LAYOUT.get()


@contextlib.contextmanager
def layout_scope(layout: str) -> Iterator[None]:
    """Convert modules under ``layout`` (e.g. the per-step children of a multi-step container)."""
    from spikeport.converter.layout import check_layout

    tok = _LAYOUT.set(check_layout(layout))
    try:
        yield
    finally:
        _LAYOUT.reset(tok)


def step_axis(dim: int, what: str) -> int:
    """A ``dim`` of a tensor in the current layout as a per-step axis (GraphError for time/batch axes)."""
    from spikeport.converter.layout import LEAD_AXES, describe

    layout = current_layout()
    lead = LEAD_AXES[layout]
    if dim < 0:
        if layout == "time-last":
            if dim == -1:
                raise GraphError(f"{what} over dim -1 touches the time axis of a time-last tensor [B, ..., T]")
            return dim + 1
        return dim
    if dim < lead:
        raise GraphError(f"{what} over dim {dim} touches the time/batch axes of a {describe(layout)} tensor; only "
                         f"per-step axes (dim >= {lead}) can be traced")
    return dim - lead


def register_handler(cls: type, fn: Handler | None = None, *, replace: bool = False) -> Any:
    """Register a user handler for modules of type ``cls`` (and subclasses); usable as a decorator.

    User handlers override the built-in ones (see module docstring). To bypass a
    module type, register a handler that returns ``None`` (or pass
    ``extra_handlers={cls: None}`` to :func:`trace`).

    Example::

        @register_handler(MyScale)
        def _my_scale(module, name):
            return ir.Scale(name, scale=float(module.factor))

    Args:
        cls: module class.
        fn: handler ``fn(module, name) -> IRNode | [IRNode, ...] | None``.
        replace: allow replacing an earlier user handler for ``cls``.

    Raises:
        GraphError: ``cls`` is not a module class, or already has a user handler and ``replace`` is False.
    """
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise GraphError(f"register_handler: expected a torch.nn.Module subclass, got {cls!r}")

    def deco(f: Handler) -> Handler:
        if cls in _USER_HANDLERS and not replace:
            raise GraphError(f"a user handler for {_qualname(cls)} is already registered; pass replace=True to "
                             "replace it")
        _USER_HANDLERS[cls] = f
        return f

    return deco(fn) if fn is not None else deco


def unregister_handler(cls: type) -> None:
    """Remove the user handler for ``cls`` (built-in handlers stay)."""
    _USER_HANDLERS.pop(cls, None)


def _lookup(table: HandlerTable, cls: type) -> Any:
    for k in cls.__mro__:
        if k in table:
            return table[k]
    return _MISSING


def resolve_handler(module: nn.Module, extra_handlers: HandlerTable | None = None) -> Any:
    """The handler for ``module`` (``None`` = bypass), or the private ``_MISSING`` sentinel if there is none.

    Built-in handlers are the op registry's module adapters (:func:`spikeport.ops.module_adapter`).
    """
    from spikeport.ops import module_adapter

    cls = type(module)
    for table in (extra_handlers if extra_handlers is not None else _ACTIVE_EXTRA.get(), _USER_HANDLERS):
        h = _lookup(table, cls)
        if h is not _MISSING:
            return h
    adapter = module_adapter(cls)
    return _MISSING if adapter is dataclasses.MISSING else adapter


def convert_module(module: nn.Module, name: str) -> list[IRNode]:
    """Run the handler for ``module`` (for composite handlers converting child modules).

    Returns:
        The IR nodes (empty list = bypass).

    Raises:
        GraphError: no handler (unknown module) or the handler failed.
    """
    h = resolve_handler(module)
    if h is _MISSING:
        raise _unknown_module(module, name)
    if h is None:
        return []
    try:
        out = h(module, name)
    except GraphError:
        raise
    except Exception as e:  # a handler bug or an unsupported configuration
        raise GraphError(f"handler for {_qualname(type(module))} failed on module '{name}': "
                         f"{type(e).__name__}: {e}") from e
    if out is None:
        return []
    nodes = [out] if isinstance(out, IRNode) else list(out)
    if not all(isinstance(n, IRNode) for n in nodes):
        raise GraphError(f"handler for {_qualname(type(module))} returned {out!r} for module '{name}'; expected an "
                         "IR node, a sequence of IR nodes or None")
    return nodes


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _unknown_module(module: nn.Module, name: str) -> GraphError:
    cls = type(module)
    return GraphError(
        f"unknown module '{name or '<root>'}' of type {_qualname(cls)}: no converter handler is registered for it. "
        f"Register one with @spikeport.converter.register_handler({cls.__name__}) returning an IR node (or None to "
        f"bypass it as the identity), or pass extra_handlers={{{cls.__name__}: handler_or_None}} to trace()")


# ---------------------------------------------------------------- fx tracer
class SpikeTracer(fx.Tracer):
    """fx tracer: leaves = modules with a handler; unknown leaf-like modules raise GraphError."""

    def __init__(self) -> None:
        super().__init__()

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if resolve_handler(m) is not _MISSING:
            return True
        if isinstance(m, _CONTAINERS):
            return False
        childless = next(m.children(), None) is None
        own_state = (next(m.parameters(recurse=False), None) is not None
                     or next(m.buffers(recurse=False), None) is not None)
        builtin = type(m).__module__.startswith("torch.")
        if childless and (own_state or builtin):
            raise _unknown_module(m, module_qualified_name)
        return False

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        try:
            return super().call_module(m, forward, args, kwargs)
        except GraphError:
            raise
        except Exception as e:
            path = self.path_of_module(m) or "<root>"
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise GraphError(f"torch.fx cannot trace through module '{path}' ({_qualname(type(m))}): "
                             f"{type(e).__name__}: {msg}. Register a handler for {type(m).__name__} so it becomes a "
                             "leaf (see spikeport.converter.register_handler)") from e


@contextlib.contextmanager
def _active_extra(extra: HandlerTable) -> Iterator[None]:
    tok = _ACTIVE_EXTRA.set(dict(extra))
    try:
        yield
    finally:
        _ACTIVE_EXTRA.reset(tok)


class _Root(nn.Module):
    """Wraps a root module that is itself a leaf (e.g. a Norse SequentialState) so fx calls it as one."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        setattr(self, _ROOT, net)

    def forward(self, x: Any) -> Any:
        return getattr(self, _ROOT)(x)


_LOOP_HINTS = ("cannot be iterated", "control flow", "cannot be interpreted as an integer", "Proxy")


def _trace_error(model: nn.Module, e: Exception, layout: str) -> GraphError:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    text = f"torch.fx cannot trace {type(model).__name__}.forward: {type(e).__name__}: {msg}"
    if any(h in msg for h in _LOOP_HINTS):
        text += (f". The forward looks like a loop over time steps (or other data-dependent Python). spikeport traces "
                 f"one step at a time: give it the per-step network (e.g. an nn.Sequential of the layers with "
                 f"stateful neurons such as snnTorch init_hidden=True) and --time-layout step; `spikeport energy "
                 f"--no-trace` measures this model as it is with runtime hooks (traced with time layout '{layout}')")
    return GraphError(text)


def trace(model: nn.Module, input_shape: Sequence[int] | Sequence[Sequence[int]] | None = None, *,
          extra_handlers: HandlerTable | None = None, name: str | None = None,
          time_layout: str | None = None) -> SpikeGraph:
    """Trace ``model`` into a validated :class:`SpikeGraph` (shapes inferred; the model is not run or changed).

    The IR captures inference semantics (BatchNorm running statistics, dropout
    off, paper-method modules' eval behaviour), whatever mode ``model`` is in.

    Args:
        model: a multi-step model taking ``[T, B, *input_shape]``, a model in another time layout
            (see ``time_layout``), or a :class:`spikeport.frameworks.ForeignModel` (its layout is used).
        input_shape: per-timestep input shape ``(C, H, W)`` / ``(F,)`` (one per forward
            argument for multi-input models); default ``model.default_input_shape``.
        extra_handlers: ``{module class: handler or None}`` for this call; overrides all others.
        name: graph name (default: the zoo name or the model's class name).
        time_layout: how ``model`` lays out time and batch (:mod:`spikeport.converter.layout`); default
            ``tb`` (``[T, B, ...]``). The graph is always executed on ``[T, B, ...]``.

    Raises:
        GraphError: unknown modules, untraceable code or inconsistent shapes (naming the module/node).
    """
    from spikeport.converter.layout import check_layout

    if not isinstance(model, nn.Module):
        raise GraphError(f"trace: expected a torch.nn.Module, got {type(model).__name__}")
    inner = getattr(model, "spikeport_inner", None)
    if isinstance(inner, nn.Module):  # a ForeignModel: trace the user's module in its own layout
        time_layout = time_layout or getattr(model, "time_layout", None)
        if input_shape is None:
            input_shape = getattr(model, "default_input_shape", None)
        model = inner
    layout = check_layout(time_layout or "tb")
    if input_shape is None:
        input_shape = getattr(model, "default_input_shape", None)
        if input_shape is None:
            raise GraphError(f"trace: {type(model).__name__} has no default_input_shape; pass input_shape, "
                             "e.g. (1, 8, 8)")
    shapes = _input_shapes(input_shape)
    gname = name or getattr(model, "zoo_name", None) or type(model).__name__
    with _active_extra(extra_handlers or {}), layout_scope(layout):
        root = _Root(model) if resolve_handler(model) is not _MISSING else model
        tracer = SpikeTracer()
        try:
            fx_graph = tracer.trace(root)
        except GraphError:
            raise
        except Exception as e:
            raise _trace_error(model, e, layout) from e
        graph = _FxToIR(root, fx_graph, shapes, gname).run()
    graph.meta.update({"source": gname, "input_shape": shapes[0] if len(shapes) == 1 else shapes,
                       "time_layout": layout})
    return graph.validate()


def _input_shapes(input_shape: Any) -> list[tuple[int, ...]]:
    seq = list(input_shape)
    if seq and all(isinstance(s, (int,)) and not isinstance(s, bool) for s in seq):
        seq = [tuple(seq)]
    out = []
    for s in seq:
        try:
            t = tuple(int(d) for d in s)
        except (TypeError, ValueError):
            raise GraphError(f"trace: bad input_shape {input_shape!r}; expected e.g. (1, 8, 8)") from None
        if not t or any(d <= 0 for d in t):
            raise GraphError(f"trace: bad input_shape {input_shape!r}; expected positive ints, e.g. (1, 8, 8)")
        out.append(t)
    return out


# ---------------------------------------------------------------- fx graph -> IR
_ADD = {operator.add, operator.iadd, torch.add, "add", "add_", "__add__", "__radd__"}
_MUL = {operator.mul, operator.imul, torch.mul, "mul", "mul_", "__mul__", "__rmul__"}
_DIV = {operator.truediv, operator.itruediv, torch.div, "div", "__truediv__"}
_CAT = {torch.cat, torch.concat, torch.concatenate}
_FLATTEN = {torch.flatten, "flatten"}
_RELU = {torch.relu, TF.relu, "relu", "relu_"}
_IDENTITY = {"contiguous", "clone", "detach", torch.clone}


class _FxToIR:
    def __init__(self, model: nn.Module, fx_graph: fx.Graph, shapes: list[tuple[int, ...]], name: str) -> None:
        self.model, self.fx, self.shapes = model, fx_graph, shapes
        self.g = SpikeGraph(name)
        self.env: dict[fx.Node, Any] = {}  # fx node -> IR node name (str) or ('const', value)
        self.calls: dict[str, int] = {}
        self.taken: set[str] = set(dict(model.named_modules()).keys())
        self.tuples: set[fx.Node] = set()  # leaf calls returning (output, state, ...)

    def unique(self, base: str) -> str:
        """``base`` or ``base_k``: not yet in the graph and not the name of a (differently placed) module."""
        name, k = base, 1
        while name in self.g or name in self.taken:
            name = f"{base}_{k}"
            k += 1
        return name

    def run(self) -> SpikeGraph:
        placeholders = [n for n in self.fx.nodes if n.op == "placeholder"]
        if len(placeholders) != len(self.shapes):
            raise GraphError(f"trace: {type(self.model).__name__}.forward takes {len(placeholders)} input(s) but "
                             f"{len(self.shapes)} input shape(s) were given")
        for n in self.fx.nodes:
            handler = getattr(self, f"_op_{n.op}")
            handler(n)
        return self.g

    # -- helpers
    def where(self, n: fx.Node) -> str:
        stack = n.meta.get("nn_module_stack") or {}
        if stack:
            qual, typ = list(stack.values())[-1]
            tname = typ if isinstance(typ, str) else getattr(typ, "__qualname__", str(typ))
            return f" inside module '{qual}' ({tname})"
        return ""

    def tensor_inputs(self, n: fx.Node, args: Sequence[Any]) -> list[str]:
        out = []
        for a in args:
            v = self.env.get(a) if isinstance(a, fx.Node) else None
            if isinstance(v, tuple) and v and v[0] == "state":
                raise GraphError(f"operation '{n.name}'{self.where(n)} uses item {v[2]} of the output of '{v[1]}' "
                                 "(its state); spikeport traces the spike output (item 0) only. Keep the state "
                                 "inside the module (e.g. snnTorch init_hidden=True) or pass only the spikes on")
            if isinstance(a, fx.Node) and not isinstance(v, str):
                raise GraphError(f"operation '{n.name}'{self.where(n)} uses a constant tensor ({a.target}); only "
                                 "activations flowing from the inputs are supported")
            if isinstance(v, str):
                out.append(v)
        return out

    def add_nodes(self, nodes: list[IRNode], inputs: list[str], n: fx.Node, meta: dict[str, Any]) -> None:
        if not nodes:  # bypass
            if len(inputs) != 1:
                raise GraphError(f"'{n.name}'{self.where(n)} is bypassed but has {len(inputs)} tensor inputs; "
                                 "a bypass handler needs exactly one")
            self.env[n] = inputs[0]
            return
        prev = inputs
        for node in nodes:
            if node.name in self.g:
                node = node.replace(name=self.unique(node.name))
            self.g.add(node, prev, meta=dict(meta))
            prev = [node.name]
        self.env[n] = prev[0]

    def unsupported(self, n: fx.Node, what: str) -> GraphError:
        return GraphError(f"unsupported operation {what} at fx node '{n.name}'{self.where(n)}: spikeport traces "
                          "modules with handlers plus add/mul/cat/flatten/relu; wrap the operation in a module and "
                          "register a handler for it (spikeport.converter.register_handler)")

    # -- opcodes
    def _op_placeholder(self, n: fx.Node) -> None:
        idx = sum(1 for x in self.env.values() if isinstance(x, str) and isinstance(self.g.node(x), Input))
        base = "input" if len(self.shapes) == 1 else f"input_{n.name}"
        node = Input(self.unique(base), shape=self.shapes[idx], index=idx)
        self.g.add(node)
        self.env[n] = node.name

    def _op_get_attr(self, n: fx.Node) -> None:
        self.env[n] = ("const", n.target)

    def _op_call_module(self, n: fx.Node) -> None:
        target = str(n.target)
        mod = self.model.get_submodule(target)
        k = self.calls.get(target, 0)
        self.calls[target] = k + 1
        name = target if k == 0 else f"{target}@{k}"
        if n.kwargs and any(isinstance(v, fx.Node) for v in n.kwargs.values()):
            raise GraphError(f"module '{target}' is called with tensor keyword arguments; pass tensors positionally")
        inputs = self.tensor_inputs(n, [a for a in n.args if not (isinstance(a, fx.Node) and
                                                                    self._is_state(a))])
        if target == _ROOT:
            name = "" if next(mod.children(), None) is not None else type(mod).__name__
        nodes = convert_module(mod, name)
        meta = {"module": target if target != _ROOT else "", "module_type": _qualname(type(mod))}
        self.add_nodes(nodes, inputs, n, meta)
        handler = resolve_handler(mod)
        if callable(getattr(handler, "returns_tuple", None)) and handler.returns_tuple(mod):
            self.tuples.add(n)

    def _is_state(self, a: fx.Node) -> bool:
        """A state argument handed back to a stateful module (``None`` placeholders are not fx nodes)."""
        v = self.env.get(a)
        return isinstance(v, tuple) and bool(v) and v[0] == "state"

    def _op_call_function(self, n: fx.Node) -> None:
        self._elementwise(n, n.target, list(n.args), dict(n.kwargs))

    def _op_call_method(self, n: fx.Node) -> None:
        self._elementwise(n, n.target, list(n.args), dict(n.kwargs))

    def _op_output(self, n: fx.Node) -> None:
        res = n.args[0]
        outs = list(res) if isinstance(res, (tuple, list)) else [res]
        outs = [o for o in outs if not (isinstance(o, fx.Node) and self._is_state(o))]  # returned neuron states
        for i, o in enumerate(outs):
            if not isinstance(o, fx.Node) or not isinstance(self.env.get(o), str):
                raise GraphError(f"{type(self.model).__name__}.forward returns {type(o).__name__} at output {i}; "
                                 "outputs must be tensors (a tensor or a tuple of tensors)")
            base = "output" if len(outs) == 1 else f"output_{i}"
            self.g.add(Output(self.unique(base), index=i), [self.env[o]])

    def _elementwise(self, n: fx.Node, target: Any, args: list[Any], kwargs: dict[str, Any]) -> None:
        if target is operator.getitem and args and isinstance(args[0], fx.Node) and args[0] in self.tuples:
            src, idx = args[0], args[1]
            self.env[n] = self.env[src] if idx == 0 else ("state", self.env[src], idx)
            return
        tname = getattr(target, "__name__", str(target))
        key: Any = target
        name = self.unique(n.name)
        meta = {"function": tname}
        try:
            hash(key)
        except TypeError:
            raise self.unsupported(n, tname) from None
        if key in _IDENTITY:
            self.add_nodes([], self.tensor_inputs(n, args[:1]), n, meta)
            return
        if key in _ADD or key in _MUL or key in _DIV:
            tensors = [a for a in args[:2] if isinstance(a, fx.Node)]
            scalars = [a for a in args[:2] if isinstance(a, (int, float)) and not isinstance(a, bool)]
            if kwargs.get("alpha", 1) != 1:
                raise self.unsupported(n, f"{tname} with alpha")
            ins = self.tensor_inputs(n, tensors)
            if len(ins) == 2 and key in _ADD:
                self.add_nodes([Add(name)], ins, n, meta)
            elif len(ins) == 2 and key in _MUL:
                self.add_nodes([Mul(name)], ins, n, meta)
            elif len(ins) == 1 and len(scalars) == 1 and key in _MUL:
                self.add_nodes([Scale(name, scale=float(scalars[0]))], ins, n, meta)
            elif len(ins) == 1 and len(scalars) == 1 and key in _DIV and isinstance(args[1], (int, float)):
                if float(args[1]) == 0.0:
                    raise self.unsupported(n, "division by zero")
                self.add_nodes([Scale(name, scale=1.0 / float(args[1]))], ins, n, meta)
            else:
                raise self.unsupported(n, f"{tname} of {[type(a).__name__ for a in args]}")
            return
        if key in _CAT:
            seq = args[0] if args else kwargs.get("tensors")
            if seq is None:
                raise self.unsupported(n, f"{tname} without tensors")
            dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
            ins = self.tensor_inputs(n, list(seq))
            self.add_nodes([Concat(name, axis=self._axis(n, dim, "cat"))], ins, n, meta)
            return
        if key in _FLATTEN:
            start = args[1] if len(args) > 1 else kwargs.get("start_dim", 0)
            end = args[2] if len(args) > 2 else kwargs.get("end_dim", -1)
            node = Flatten(name, start_dim=self._axis(n, start, "flatten"), end_dim=self._axis(n, end, "flatten"))
            self.add_nodes([node], self.tensor_inputs(n, args[:1]), n, meta)
            return
        if key in _RELU:
            self.add_nodes([ReLU(name)], self.tensor_inputs(n, args[:1]), n, meta)
            return
        raise self.unsupported(n, tname)

    def _axis(self, n: fx.Node, dim: Any, what: str) -> int:
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise self.unsupported(n, f"{what} with dim={dim!r}")
        if dim < 0:
            return dim
        if dim < 2:
            raise GraphError(f"'{n.name}'{self.where(n)}: {what} over dim {dim} touches the time/batch axes of a "
                             "[T, B, ...] tensor; only per-timestep axes (dim >= 2) can be traced")
        return dim - 2
