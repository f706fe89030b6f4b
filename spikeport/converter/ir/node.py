"""Base class of every IR node, field helpers and the generic dict/JSON codec.

An IR node is a frozen dataclass holding plain data (python scalars, tuples of
ints and read-only numpy arrays); it never holds torch objects. Every node has
a ``name`` (its key in :class:`spikeport.converter.graph.SpikeGraph`) and
computes its per-timestep output shape from its input shapes with
:meth:`IRNode.out_shape`. Shapes never include the time and batch axes: a
``[T, B, C, H, W]`` tensor has per-timestep shape ``(C, H, W)``.

Fields are declared with helpers that say how a value is normalised:

* :func:`array_field`: a numpy array without NaN/Inf (``optional=True`` allows ``None``);
* :func:`param_field`: a neuron/scale parameter, a python ``float`` (shared by
  all neurons) or a numpy array (per element or per channel, see below);
* :func:`ints_field`: a tuple of ``n`` non-negative ints (a scalar is repeated);
* :func:`shape_field`: a tuple of positive ints.

Array parameters broadcast *leading-aligned*: an array of shape ``P`` applied
to a per-timestep shape ``S`` needs ``S[:len(P)] == P`` and acts as if reshaped
to ``P + (1,) * (len(S) - len(P))``. A ``(C,)`` array is therefore per channel
and an array of the full shape ``S`` is per element.

Validation raises :class:`spikeport.errors.GraphError` naming the node and the
field. Nodes are registered by class name in :data:`NODE_TYPES` so that
:meth:`IRNode.from_dict` can rebuild any node from ``{"type": ..., ...}``.
"""

from __future__ import annotations

import base64
import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from spikeport.errors import GraphError

__all__ = [
    "Shape",
    "Param",
    "IRNode",
    "NODE_TYPES",
    "InputShapeError",
    "array_field",
    "param_field",
    "ints_field",
    "shape_field",
    "encode_value",
    "decode_value",
    "param_shape_ok",
]

Shape = tuple[int, ...]
Param = float | np.ndarray

NODE_TYPES: dict[str, type[IRNode]] = {}
"""Every concrete IR node class by class name (filled by ``IRNode.__init_subclass__``)."""

_ARRAY_INLINE_MAX = 16  # arrays up to this size are written as readable lists in JSON


class InputShapeError(GraphError):
    """An input shape does not fit a node (raised by :meth:`IRNode.out_shape`).

    Attributes:
        node: the node's name.
        port: the input index at fault.
        expected: the expected shape as text, e.g. ``"[16, H, W]"``.
        got: the shape that was given.
        reason: why it does not fit.
    """

    def __init__(self, node: IRNode, port: int, expected: str, got: Shape, reason: str) -> None:
        self.node, self.port, self.expected, self.got, self.reason = node.name, port, expected, tuple(got), reason
        super().__init__(f"node '{node.name}' ({type(node).__name__}) input {port}: expected {expected}, "
                         f"got {list(got)} ({reason})")


# ---------------------------------------------------------------- field helpers
def array_field(*, optional: bool = False) -> Any:
    """A numpy array field (stored read-only, float values finite); ``optional`` allows ``None`` (the default)."""
    meta = {"kind": "array", "optional": optional}
    return dataclasses.field(default=None, metadata=meta) if optional else dataclasses.field(metadata=meta)


def param_field(default: Any = dataclasses.MISSING, *, optional: bool = False) -> Any:
    """A scalar-or-array parameter: python float, or a read-only numpy array (leading-aligned)."""
    return dataclasses.field(default=default, metadata={"kind": "param", "optional": optional})


def ints_field(n: int, default: Any = dataclasses.MISSING, *, minimum: int = 0) -> Any:
    """A tuple of ``n`` ints >= ``minimum``; a single int is repeated ``n`` times."""
    return dataclasses.field(default=default, metadata={"kind": "ints", "n": n, "min": minimum})


def shape_field(default: Any = dataclasses.MISSING, *, allow_minus_one: bool = False) -> Any:
    """A shape: tuple of positive ints (``-1`` allowed once when ``allow_minus_one``)."""
    return dataclasses.field(default=default, metadata={"kind": "shape", "minus_one": allow_minus_one})


def param_shape_ok(value: Param | None, shape: Shape) -> bool:
    """Whether parameter ``value`` broadcasts leading-aligned onto per-timestep ``shape``."""
    if value is None or not isinstance(value, np.ndarray) or value.ndim == 0:
        return True
    return value.ndim <= len(shape) and tuple(value.shape) == tuple(shape[: value.ndim])


# ---------------------------------------------------------------- base class
@dataclass(frozen=True, eq=False, repr=False)
class IRNode:
    """Base class of all IR nodes (abstract: instantiate a subclass).

    Class attributes describe the op: ``family`` (file it lives in), ``n_inputs``
    (``None`` = two or more), ``stateful`` (keeps state across timesteps, i.e.
    neurons), ``sequence`` (needs the whole ``[T, ...]`` sequence at once, so it
    cannot run step by step) and ``param_fields`` (fields counted as learnable
    parameters).

    Args:
        name: unique node name inside its graph (for traced models the module's
            qualified path, e.g. ``features.3``).
    """

    name: str

    family: ClassVar[str] = "node"
    n_inputs: ClassVar[int | None] = 1
    stateful: ClassVar[bool] = False
    sequence: ClassVar[bool] = False
    param_fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__name__.startswith("_"):
            return
        prev = NODE_TYPES.get(cls.__name__)
        if prev is not None and prev.__module__ != cls.__module__:
            raise GraphError(f"IR node type '{cls.__name__}' is defined twice ({prev.__module__} and "
                             f"{cls.__module__}); rename one")
        NODE_TYPES[cls.__name__] = cls

    # -- construction / validation
    def __post_init__(self) -> None:
        if type(self) is IRNode:
            raise GraphError("IRNode is abstract; instantiate a node type such as Linear or LIF")
        if not isinstance(self.name, str) or not self.name:
            raise GraphError(f"{type(self).__name__}: field 'name' must be a non-empty string, got {self.name!r}")
        for f in dataclasses.fields(self):
            kind = f.metadata.get("kind")
            if kind is not None:
                object.__setattr__(self, f.name, self._normalise(f, getattr(self, f.name)))
        self._check()

    def _fail(self, field: str, msg: str) -> GraphError:
        """Build the GraphError for a bad ``field`` (caller raises it)."""
        return GraphError(f"node '{self.name}' ({type(self).__name__}): field '{field}' {msg}")

    def _normalise(self, f: dataclasses.Field, value: Any) -> Any:
        kind = f.metadata["kind"]
        if value is None:
            if kind in ("array", "param") and f.metadata.get("optional"):
                return None
            raise self._fail(f.name, "is required (got None)")
        if kind == "array":
            arr = _frozen_array(self, f.name, value)
            if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
                bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
                raise self._fail(f.name, f"must contain only finite values ({bad} of {arr.size} are NaN or Inf)")
            return arr
        if kind == "param":
            if isinstance(value, (bool, np.bool_)):
                raise self._fail(f.name, f"must be a number or an array, got {value!r}")
            if isinstance(value, (int, float, np.integer, np.floating)):
                v = float(value)
                if not math.isfinite(v):
                    raise self._fail(f.name, f"must be finite, got {v}")
                return v
            arr = _frozen_array(self, f.name, value)
            if not np.all(np.isfinite(arr)):
                raise self._fail(f.name, "must contain only finite values")
            return arr
        if kind == "ints":
            n, lo = f.metadata["n"], f.metadata["min"]
            vals = (value,) * n if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
            try:
                out = tuple(int(v) for v in vals)
                ok = len(out) == n and all(int(v) == v and not isinstance(v, bool) for v in vals)
            except (TypeError, ValueError):
                ok = False
            if not ok or any(v < lo for v in out):
                raise self._fail(f.name, f"must be {n} int(s) >= {lo}, got {value!r}")
            return out
        if kind == "shape":
            try:
                out = tuple(int(v) for v in value)
                ok = all(int(v) == v and not isinstance(v, bool) for v in value)
            except (TypeError, ValueError):
                ok = False
            allowed = (lambda v: v > 0 or v == -1) if f.metadata["minus_one"] else (lambda v: v > 0)
            if not ok or not all(allowed(v) for v in out) or out.count(-1) > 1:
                raise self._fail(f.name, f"must be a tuple of positive ints, got {value!r}")
            return out
        raise self._fail(f.name, f"has unknown field kind {kind!r}")  # pragma: no cover - programming error

    def _check(self) -> None:
        """Node-specific validation (override; raise ``self._fail(field, msg)``)."""

    # -- shapes
    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        """Per-timestep output shape for per-timestep ``in_shapes`` (one per input port).

        Raises:
            InputShapeError: an input shape does not fit this node.
            GraphError: wrong number of inputs.
        """
        shapes = [tuple(int(d) for d in s) for s in in_shapes]
        n = self.n_inputs
        if (n is None and len(shapes) < 2) or (n is not None and len(shapes) != n):
            want = "at least 2" if n is None else str(n)
            raise GraphError(f"node '{self.name}' ({type(self).__name__}) takes {want} input(s), got {len(shapes)}")
        return tuple(int(d) for d in self._out_shape(shapes))

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        """Shape rule (override). Default: same shape as the single input."""
        return in_shapes[0]

    def _require_param_shapes(self, shape: Shape, port: int = 0, *names: str) -> None:
        for n in names:
            v = getattr(self, n)
            if not param_shape_ok(v, shape):
                raise InputShapeError(self, port, f"[{', '.join(map(str, v.shape))}, ...]", shape,
                                      f"field '{n}' has shape {list(v.shape)} (leading-aligned broadcast)")

    # -- introspection
    @property
    def op(self) -> str:
        """The op name (the class name)."""
        return type(self).__name__

    def arrays(self) -> dict[str, np.ndarray]:
        """Every numpy-array-valued field, by field name."""
        return {f.name: v for f in dataclasses.fields(self) if isinstance(v := getattr(self, f.name), np.ndarray)}

    @property
    def num_params(self) -> int:
        """Learnable parameter count (fields in ``param_fields``; a python float counts 1)."""
        total = 0
        for n in self.param_fields:
            v = getattr(self, n)
            total += 0 if v is None else (int(v.size) if isinstance(v, np.ndarray) else 1)
        return total

    def fan_in(self) -> int | None:
        """Synaptic inputs per output unit (synapse nodes), else ``None``."""
        return None

    def summary(self) -> str:
        """Short human-readable description of the non-array fields."""
        parts = []
        for f in dataclasses.fields(self):
            if f.name == "name":
                continue
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                v = f"<{'x'.join(map(str, v.shape)) or 'scalar'}>"
            parts.append(f"{f.name}={v}")
        return ", ".join(parts)

    def replace(self, **changes: Any) -> IRNode:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def same_as(self, other: object) -> bool:
        """Structural equality: same type and equal fields (arrays: same dtype, shape and values)."""
        if type(other) is not type(self):
            return False
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
                    return False
                if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
                    return False
            elif a != b:
                return False
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, {self.summary()})"

    # -- serialisation
    def to_dict(self) -> dict[str, Any]:
        """``{"type": class name, <field>: value, ...}`` (arrays stay numpy arrays)."""
        d: dict[str, Any] = {"type": type(self).__name__}
        for f in dataclasses.fields(self):
            d[f.name] = getattr(self, f.name)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IRNode:
        """Rebuild a node from :meth:`to_dict` output (dispatches on ``data["type"]``).

        Raises:
            GraphError: missing/unknown type or unknown fields, naming the node.
        """
        data = dict(data)
        name = data.get("name", "?")
        typ = data.pop("type", None)
        if typ is None:
            raise GraphError(f"node '{name}': missing 'type' in node data")
        target = NODE_TYPES.get(typ)
        if target is None:
            raise GraphError(f"node '{name}': unknown IR node type '{typ}' (known: {', '.join(sorted(NODE_TYPES))})")
        if cls is not IRNode and not issubclass(target, cls):
            raise GraphError(f"node '{name}': type '{typ}' is not a {cls.__name__}")
        names = {f.name for f in dataclasses.fields(target)}
        extra = sorted(set(data) - names)
        if extra:
            raise GraphError(f"node '{name}' ({typ}): unknown field(s) {', '.join(extra)}")
        try:
            return target(**data)
        except TypeError as e:
            raise GraphError(f"node '{name}' ({typ}): bad fields ({e})") from e

    def to_jsonable(self) -> dict[str, Any]:
        """:meth:`to_dict` with every value encoded as JSON-compatible data (exact)."""
        return {k: encode_value(v) for k, v in self.to_dict().items()}

    @classmethod
    def from_jsonable(cls, data: Mapping[str, Any]) -> IRNode:
        """Inverse of :meth:`to_jsonable`."""
        return cls.from_dict({k: decode_value(v) for k, v in data.items()})


def _frozen_array(node: IRNode, field: str, value: Any) -> np.ndarray:
    try:
        arr = np.array(value, copy=True)
    except (TypeError, ValueError) as e:
        raise node._fail(field, f"must be array-like ({e})") from e
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise node._fail(field, f"must be a numeric array, got dtype {arr.dtype}")
    arr.setflags(write=False)
    return arr


# ---------------------------------------------------------------- JSON codec
def encode_value(v: Any) -> Any:
    """Encode a field value as JSON data. Arrays become tagged dicts (exact round trip):
    ``{"__ndarray__": {"dtype", "shape", "values"}}`` for small arrays (nested lists) or
    ``{"__ndarray__": {"dtype", "shape", "b64"}}`` (little-endian raw bytes) for large ones."""
    if isinstance(v, np.ndarray):
        spec: dict[str, Any] = {"dtype": v.dtype.str.lstrip("<>|="), "shape": list(v.shape)}
        if v.size <= _ARRAY_INLINE_MAX:
            spec["values"] = v.tolist()
        else:
            le = v.astype(v.dtype.newbyteorder("<"), copy=False)
            spec["b64"] = base64.b64encode(np.ascontiguousarray(le).tobytes()).decode("ascii")
        return {"__ndarray__": spec}
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, tuple):
        return [encode_value(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return {"__float__": repr(v)}
    return v


def decode_value(v: Any) -> Any:
    """Inverse of :func:`encode_value` (lists stay lists; nodes normalise them)."""
    if isinstance(v, dict) and "__ndarray__" in v:
        spec = v["__ndarray__"]
        try:
            dtype = np.dtype("<" + spec["dtype"]) if spec["dtype"][0] in "fiuc" else np.dtype(spec["dtype"])
            shape = tuple(spec["shape"])
            if "b64" in spec:
                arr = np.frombuffer(base64.b64decode(spec["b64"]), dtype=dtype).reshape(shape)
            else:
                arr = np.array(spec["values"], dtype=dtype).reshape(shape)
        except (KeyError, TypeError, ValueError) as e:
            raise GraphError(f"malformed encoded array {str(v)[:80]!r} ({e})") from e
        return arr.astype(arr.dtype.newbyteorder("="), copy=True)
    if isinstance(v, dict) and "__float__" in v:
        return float(v["__float__"])
    if isinstance(v, list):
        return [decode_value(x) for x in v]
    return v
