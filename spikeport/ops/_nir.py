"""Helpers shared by the op specs' NIR mappings and adapters (value conversions, int tuples; the ``nir`` import)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, overload

import numpy as np

from spikeport.errors import ExportError

__all__ = ["nir", "full", "scalar", "close", "decode", "uniform_or_array", "ints", "gain", "RTOL"]

RTOL = 1e-9


def nir() -> Any:
    """The ``nir`` package (ExportError when missing)."""
    try:
        import nir as _nir
    except ModuleNotFoundError as e:  # pragma: no cover - nir is a dependency
        raise ExportError("the 'nir' package is not installed; pip install nir") from e
    return _nir


def full(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A parameter (float or leading-aligned array) as a float64 array of ``shape``."""
    if isinstance(value, np.ndarray) and value.ndim > 0:
        v = value.astype(np.float64).reshape(*value.shape, *([1] * (len(shape) - value.ndim)))
        return np.broadcast_to(v, shape).copy()
    return np.full(shape, float(value), dtype=np.float64)


def scalar(value: Any) -> float | None:
    """``value`` as one float if it is a float or a uniform array, else None."""
    if isinstance(value, np.ndarray):
        flat = value.ravel()
        return float(flat[0]) if flat.size and np.all(flat == flat[0]) else None
    return float(value)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-12)


def decode(y: float, inverse: Callable[[float], float], forward: Callable[[float], float]) -> float:
    """The shortest-repr float x near ``inverse(y)`` with ``forward(x) == y`` (else ``inverse(y)``)."""
    x0 = inverse(y)
    cands, lo, hi = [x0], x0, x0
    for _ in range(4):
        lo, hi = math.nextafter(lo, -math.inf), math.nextafter(hi, math.inf)
        cands += [lo, hi]
    ok = [c for c in cands if math.isfinite(c) and forward(c) == y]
    return min(ok, key=lambda c: (len(repr(c)), abs(c - x0))) if ok else x0


def uniform_or_array(v: Any) -> Any:
    """A float when every entry of ``v`` is equal, else a float64 array."""
    a = np.asarray(v, dtype=np.float64)
    s = scalar(a)
    return s if s is not None else a


@overload
def ints(v: Any, n: Literal[1]) -> tuple[int]: ...
@overload
def ints(v: Any, n: Literal[2]) -> tuple[int, int]: ...
@overload
def ints(v: Any, n: int) -> tuple[int, ...]: ...
def ints(v: Any, n: int) -> tuple[int, ...]:
    """``n`` ints from a scalar or a sequence (a sequence of another length is returned as is: the IR node's
    field validation rejects it, naming the field)."""
    a = np.asarray(v).ravel()
    return tuple(int(x) for x in (np.repeat(a, n) if a.size == 1 else a))


def gain(name: str, value: Any) -> list[Any]:
    """A ``Scale`` node ``<name>.gain`` for an input gain other than 1 (else nothing)."""
    from spikeport.converter import ir

    s = scalar(np.asarray(value))
    if s is not None and close(s, 1.0):
        return []
    return [ir.Scale(f"{name}.gain", scale=s if s is not None else np.asarray(value, dtype=np.float64))]
