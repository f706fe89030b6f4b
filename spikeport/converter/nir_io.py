r"""Exchange with NIR (the Neuromorphic Intermediate Representation, ``nir`` package 1.0.x).

NIR describes neurons as continuous-time ODEs; spikeport neurons are discrete.
With step ``dt`` (default :data:`DEFAULT_DT` = 1e-4 s, the value SpikingJelly,
snnTorch and Norse use, so files interoperate) NIR's forward-Euler update is

.. math:: v \leftarrow v + \frac{dt}{\tau}\,(v_{leak} - v + R\,I)

and our neurons map onto it exactly as follows (SpikingJelly's convention):

============  =====================================================================================
spikeport     NIR
============  =====================================================================================
IF            ``IF(r = 1/dt, v_threshold, v_reset)``  (so :math:`v \leftarrow v + dt\,r\,x = v + x`)
LIF           ``LIF(tau = tau*dt, r = 1 (decay_input) or tau (not), v_leak = v_reset, v_threshold, v_reset)``
PLIF          as LIF with ``tau = 1/inv_tau`` (imports back as LIF)
DALIF         ``LIF(tau = dt/(1-beta), r = alpha/(1-beta), v_leak = 0, ...)`` (imports back as DALIF
              when ``v_reset != 0``)
CubaLIF       ``CubaLIF(tau_syn = dt/i_decay, tau_mem = dt/v_decay, w_in = 1/i_decay, r = 1/v_decay,
              v_leak = 0, ...)``
Threshold     ``Threshold(threshold)``
============  =====================================================================================

Parameters are written as float64 arrays of the neuron's shape. Import inverts
the table; any extra input gain (``r`` or ``w_in`` not as above) becomes a
:class:`~spikeport.converter.ir.Scale` node in front of the neuron. Time
constants are decoded to the shortest decimal float that re-encodes to the
stored value, so export -> import is exact for IF/LIF/CubaLIF (tested).

Not representable in NIR (export lists *every* blocking node in one
:class:`~spikeport.errors.UnsupportedNodeError`): soft reset (NIR neurons reset
to ``v_reset``), BatchNorm that cannot be folded into a conv/linear, MaxPool,
ConvTranspose2d, Reshape, Mul, Concat, ReLU, the seed modules, CubaLIF with a
zero decay (infinite time constant). Two semantic differences remain: NIR fires
on :math:`v > v_{th}`, spikeport on :math:`v \ge v_{th}` (they differ only at
exact equality), and NIR sums all edges into a node, so ``Add`` nodes are
exported as several edges into their consumers (and imported back as ``Add``).

Import supports Input, Output, Affine, Linear, Conv1d, Conv2d, SumPool2d,
AvgPool2d, Flatten, Scale, Threshold, IF, LIF, CubaLIF and nested NIRGraphs
(flattened; cycles become recurrent edges).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from spikeport._hdf5_guard import check_hdf5_readable
from spikeport._io import atomic_path
from spikeport.converter import ir
from spikeport.converter.graph import SpikeGraph
from spikeport.errors import ExportError, GraphError, UnsupportedNodeError

__all__ = ["DEFAULT_DT", "to_nir", "write_nir", "from_nir", "read_nir", "load_nir_model", "IMPORTABLE_TYPES"]

DEFAULT_DT = 1e-4
IMPORTABLE_TYPES = ("Input", "Output", "Affine", "Linear", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten",
                    "Scale", "Threshold", "IF", "LIF", "CubaLIF", "NIRGraph")
_RTOL = 1e-9


def _nir() -> Any:
    try:
        import nir
    except ModuleNotFoundError as e:  # pragma: no cover - nir is a dependency
        raise ExportError("the 'nir' package is not installed; pip install nir") from e
    return nir


def _check_dt(dt: float) -> float:
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise GraphError(f"dt must be a positive number of seconds, got {dt!r}")
    return float(dt)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_RTOL, abs_tol=1e-12)


def _decode(y: float, inverse: Callable[[float], float], forward: Callable[[float], float]) -> float:
    """The shortest-repr float x near ``inverse(y)`` with ``forward(x) == y`` (else ``inverse(y)``)."""
    x0 = inverse(y)
    cands, lo, hi = [x0], x0, x0
    for _ in range(4):
        lo, hi = math.nextafter(lo, -math.inf), math.nextafter(hi, math.inf)
        cands += [lo, hi]
    ok = [c for c in cands if math.isfinite(c) and forward(c) == y]
    return min(ok, key=lambda c: (len(repr(c)), abs(c - x0))) if ok else x0


# ====================================================================== export
def _full(value: Any, shape: ir.Shape) -> np.ndarray:
    """A parameter (float or leading-aligned array) as a float64 array of ``shape``."""
    if isinstance(value, np.ndarray) and value.ndim > 0:
        v = value.astype(np.float64).reshape(*value.shape, *([1] * (len(shape) - value.ndim)))
        return np.broadcast_to(v, shape).copy()
    return np.full(shape, float(value), dtype=np.float64)


def _scalar(value: Any) -> float | None:
    """``value`` as one float if it is a float or a uniform array, else None."""
    if isinstance(value, np.ndarray):
        flat = value.ravel()
        return float(flat[0]) if flat.size and np.all(flat == flat[0]) else None
    return float(value)


def _export_node(node: ir.IRNode, g: SpikeGraph, dt: float) -> tuple[Any, str | None]:
    """``(nir node, None)`` or ``(None, reason it is not representable)``."""
    nir = _nir()
    shape = g.shape(node.name)
    ins = g.in_shapes(node.name)
    if isinstance(node, ir.Input):
        return nir.Input(input_type=np.array(node.shape)), None
    if isinstance(node, ir.Output):
        return nir.Output(output_type=np.array(shape)), None
    if isinstance(node, ir.Linear):
        if len(ins[0]) != 1:
            return None, f"Linear on a rank-{len(ins[0])} per-step input (NIR Affine takes vectors)"
        if node.bias is None:
            return nir.Linear(weight=np.array(node.weight)), None
        return nir.Affine(weight=np.array(node.weight), bias=np.array(node.bias)), None
    if isinstance(node, (ir.Conv1d, ir.Conv2d)):
        bias = np.zeros(node.weight.shape[0], node.weight.dtype) if node.bias is None else np.array(node.bias)
        if isinstance(node, ir.Conv1d):
            return nir.Conv1d(input_shape=int(ins[0][1]), weight=np.array(node.weight), stride=node.stride[0],
                              padding=node.padding[0], dilation=node.dilation[0], groups=node.groups, bias=bias), None
        return nir.Conv2d(input_shape=tuple(ins[0][1:]), weight=np.array(node.weight), stride=node.stride,
                          padding=node.padding, dilation=node.dilation, groups=node.groups, bias=bias), None
    if isinstance(node, ir.SumPool):
        return nir.SumPool2d(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride),
                             padding=np.array(node.padding)), None
    if isinstance(node, ir.AdaptiveAvgPool):
        eq = node.as_avg_pool(ins[0])
        if eq is None:
            return None, f"AdaptiveAvgPool from {list(ins[0][1:])} to {list(node.output_size)} is not a fixed window"
        node = eq
    if isinstance(node, ir.AvgPool):
        if node.ceil_mode or node.divisor_override is not None or (any(node.padding) and not node.count_include_pad):
            return None, "AvgPool with ceil_mode, divisor_override or count_include_pad=False"
        return nir.AvgPool2d(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride),
                             padding=np.array(node.padding)), None
    if isinstance(node, ir.Flatten):
        return nir.Flatten(input_type={"input": np.array(ins[0])}, start_dim=node.start_dim, end_dim=node.end_dim), None
    if isinstance(node, ir.Scale):
        return nir.Scale(scale=_full(node.scale, shape)), None
    if isinstance(node, ir.Threshold):
        return nir.Threshold(threshold=_full(node.threshold, shape)), None
    if isinstance(node, ir.NeuronNode):
        return _export_neuron(node, shape, dt)
    if isinstance(node, ir.BatchNorm):
        return None, "BatchNorm not directly after a conv/linear with no other consumer (cannot be folded)"
    return None, f"{node.op} has no NIR primitive"


def _export_neuron(node: ir.NeuronNode, shape: ir.Shape, dt: float) -> tuple[Any, str | None]:
    nir = _nir()
    if node.v_reset is None:
        return None, "soft reset (NIR neurons reset to v_reset)"
    vth, vr = _full(node.v_threshold, shape), _full(node.v_reset, shape)
    if isinstance(node, ir.IF):
        return nir.IF(r=np.full(shape, 1.0 / dt), v_threshold=vth, v_reset=vr), None
    if isinstance(node, (ir.LIF, ir.PLIF)):
        tau = _full(node.tau, shape) if isinstance(node, ir.LIF) else 1.0 / _full(node.inv_tau, shape)
        r = np.ones(shape) if node.decay_input else tau.copy()
        return nir.LIF(tau=tau * dt, r=r, v_leak=vr.copy(), v_threshold=vth, v_reset=vr), None
    if isinstance(node, ir.DALIF):
        a, b = _full(node.alpha, shape), _full(node.beta, shape)
        if np.any(b >= 1.0):
            return None, "DALIF with beta >= 1 (no leak: infinite time constant)"
        return nir.LIF(tau=dt / (1.0 - b), r=a / (1.0 - b), v_leak=np.zeros(shape), v_threshold=vth,
                       v_reset=vr), None
    if isinstance(node, ir.CubaLIF):
        di, dv = _full(node.i_decay, shape), _full(node.v_decay, shape)
        if np.any(di <= 0) or np.any(dv <= 0):
            return None, "CubaLIF with a zero decay (infinite NIR time constant)"
        return nir.CubaLIF(tau_syn=dt / di, tau_mem=dt / dv, r=1.0 / dv, v_leak=np.zeros(shape), v_threshold=vth,
                           v_reset=vr, w_in=1.0 / di), None
    return None, f"{node.op} has no NIR neuron model"  # pragma: no cover


def to_nir(graph: SpikeGraph, dt: float = DEFAULT_DT, *, fold: bool = True) -> Any:
    """Convert ``graph`` to a ``nir.NIRGraph`` (see the module docstring for the mapping).

    Args:
        graph: the IR graph (not modified).
        dt: timestep in seconds used to express time constants.
        fold: first fold BatchNorm and scalar multiplies into neighbouring synapses.

    Raises:
        UnsupportedNodeError: one message listing every node NIR cannot represent, with the reason.
    """
    from spikeport.converter.passes import fold_batchnorm, fold_constants, remove_dead_nodes

    nir = _nir()
    dt = _check_dt(dt)
    g = graph.copy().validate()
    if fold:
        for p in (fold_batchnorm, fold_constants, remove_dead_nodes):
            g, _ = p(g)
        g.validate()
    nodes: dict[str, Any] = {}
    blocking: list[str] = []
    elided: set[str] = set()
    for name, node in g.nodes().items():
        if isinstance(node, ir.Add):
            elided.add(name)
            continue
        out, why = _export_node(node, g, dt)
        if out is None:
            blocking.append(f"'{name}' ({node.op}: {why})")
        else:
            nodes[name] = out

    def sources(name: str) -> list[str]:
        return [s for e in g.in_edges(name) for s in sources(e.src)] if name in elided else [name]

    edges: list[tuple[str, str]] = []
    for name in nodes:
        srcs = [s for e in g.in_edges(name) for s in sources(e.src)]
        if len(set(srcs)) != len(srcs):
            blocking.append(f"'{name}' ({g.node(name).op}: sums the same source twice, which NIR edges cannot express)")
        edges += [(s, name) for s in dict.fromkeys(srcs)]
    if blocking:
        raise UnsupportedNodeError(f"cannot export graph '{g.name}' to NIR: {len(blocking)} node(s) not representable: "
                                   f"{'; '.join(blocking)}. Replace or remove them, or export to another target")
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"source": "spikeport", "dt": dt}, type_check=True)
    except (ValueError, AssertionError, TypeError, KeyError) as e:
        raise ExportError(f"graph '{g.name}': NIR rejected the exported graph ({type(e).__name__}: {e})") from e


def write_nir(graph: SpikeGraph, path: str | os.PathLike, dt: float = DEFAULT_DT, *, fold: bool = True) -> Path:
    """Export ``graph`` with :func:`to_nir` and write it atomically to ``path`` (read back as a check)."""
    nir = _nir()
    ng = to_nir(graph, dt, fold=fold)
    with atomic_path(path) as tmp:
        nir.write(tmp, ng)
        back = nir.read(tmp)
        if set(back.nodes) != set(ng.nodes):
            raise ExportError(f"{path}: NIR file read back with different nodes")
    return Path(path)


# ====================================================================== import
class _Flat:
    """A NIR graph flattened to one level: name -> node ('identity' for inner Input/Output), edge list."""

    def __init__(self, graph: Any) -> None:
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []
        self._walk(graph, "")
        self._contract()

    def _walk(self, g: Any, prefix: str) -> None:
        nir = _nir()
        entry: dict[str, str] = {}
        exit_: dict[str, str] = {}
        for k, n in g.nodes.items():
            full = prefix + k
            if isinstance(n, nir.NIRGraph):
                self._walk(n, full + ".")
                ins = [a for a, b in n.nodes.items() if isinstance(b, nir.Input)]
                outs = [a for a, b in n.nodes.items() if isinstance(b, nir.Output)]
                if len(ins) != 1 or len(outs) != 1:
                    raise GraphError(f"NIR subgraph '{full}' must have exactly one Input and one Output node "
                                     f"(has {len(ins)} and {len(outs)})")
                entry[full], exit_[full] = f"{full}.{ins[0]}", f"{full}.{outs[0]}"
            elif prefix and isinstance(n, (nir.Input, nir.Output)):
                self.nodes[full] = "identity"
            else:
                self.nodes[full] = n
        for a, b in g.edges:
            src, dst = prefix + str(a), prefix + str(b)
            for x in (src, dst):
                if x not in self.nodes and x not in entry:
                    raise GraphError(f"NIR edge ({src} -> {dst}) references unknown node '{x}'")
            self.edges.append((exit_.get(src, src), entry.get(dst, dst)))

    def _contract(self) -> None:
        for name in [n for n, v in self.nodes.items() if isinstance(v, str)]:
            preds = [a for a, b in self.edges if b == name]
            succs = [b for a, b in self.edges if a == name]
            self.edges = [e for e in self.edges if name not in e] + [(p, s) for p in preds for s in succs]
            del self.nodes[name]


def _uniform_or_array(v: Any) -> Any:
    a = np.asarray(v, dtype=np.float64)
    s = _scalar(a)
    return s if s is not None else a


def _ints(v: Any, n: int) -> tuple[int, ...]:
    a = np.asarray(v).ravel()
    return tuple(int(x) for x in (np.repeat(a, n) if a.size == 1 else a))


def _conv_padding(node: Any, n: int) -> tuple[int, ...]:
    p = node.padding
    if isinstance(p, str):
        if p == "valid":
            return (0,) * n
        k, d = node.weight.shape[2:], _ints(node.dilation, n)
        total = [d[i] * (k[i] - 1) for i in range(n)]
        if any(t % 2 for t in total):
            raise GraphError("NIR conv with padding='same' and an even kernel is asymmetric; not supported")
        return tuple(t // 2 for t in total)
    return _ints(p, n)


def _check_finite(name: str, node: Any) -> None:
    """Refuse NaN/Inf in any numeric parameter of a NIR node (weights, bias, tau, thresholds, ...)."""
    for key, value in vars(node).items():
        if key in ("metadata", "input_type", "output_type") or isinstance(value, (str, bytes, dict)):
            continue
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError):
            continue
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            raise GraphError(f"NIR node '{name}' ({type(node).__name__}): '{key}' has {bad} NaN/Inf value(s) "
                             f"of {arr.size}; re-export the model with finite parameters")


def _import_node(name: str, node: Any, dt: float, n_inputs: int, outputs_seen: int) -> list[ir.IRNode]:
    """IR node(s) for one NIR node; a leading Scale node is named ``<name>.gain``."""
    t = type(node).__name__
    _check_finite(name, node)
    if t == "Input":
        return [ir.Input(name, shape=tuple(int(d) for d in np.asarray(node.input_type["input"]).ravel()),
                         index=n_inputs)]
    if t == "Output":
        return [ir.Output(name, index=outputs_seen)]
    if t in ("Affine", "Linear"):
        w = np.asarray(node.weight)
        if w.ndim != 2:
            raise GraphError(f"NIR node '{name}' ({t}): weight must be 2-D, got shape {list(w.shape)}")
        return [ir.Linear(name, weight=w, bias=np.asarray(node.bias) if t == "Affine" else None)]
    if t in ("Conv1d", "Conv2d"):
        n = 1 if t == "Conv1d" else 2
        b = np.asarray(node.bias)
        bias = None if not np.any(b) else b
        cls = ir.Conv1d if n == 1 else ir.Conv2d
        return [cls(name, weight=np.asarray(node.weight), bias=bias, stride=_ints(node.stride, n),
                    padding=_conv_padding(node, n), dilation=_ints(node.dilation, n), groups=int(node.groups))]
    if t in ("SumPool2d", "AvgPool2d"):
        cls = ir.SumPool if t == "SumPool2d" else ir.AvgPool
        return [cls(name, kernel_size=_ints(node.kernel_size, 2), stride=_ints(node.stride, 2),
                    padding=_ints(node.padding, 2))]
    if t == "Flatten":
        return [ir.Flatten(name, start_dim=int(node.start_dim), end_dim=int(node.end_dim))]
    if t == "Scale":
        return [ir.Scale(name, scale=_uniform_or_array(node.scale))]
    if t == "Threshold":
        return [ir.Threshold(name, threshold=_uniform_or_array(node.threshold))]
    if t in ("IF", "LIF", "CubaLIF"):
        return _import_neuron(name, t, node, dt)
    raise GraphError(f"NIR node '{name}' has type '{t}', which spikeport cannot import "
                     f"(supported: {', '.join(IMPORTABLE_TYPES)})")


def _gain(name: str, gain: Any) -> list[ir.IRNode]:
    s = _scalar(np.asarray(gain))
    if s is not None and _close(s, 1.0):
        return []
    return [ir.Scale(f"{name}.gain", scale=s if s is not None else np.asarray(gain, dtype=np.float64))]


def _import_neuron(name: str, t: str, node: Any, dt: float) -> list[ir.IRNode]:
    vth, vr = _uniform_or_array(node.v_threshold), _uniform_or_array(node.v_reset)
    scal = _scalar
    if t == "IF":
        return [*_gain(name, np.asarray(node.r, np.float64) * dt), ir.IF(name, v_threshold=vth, v_reset=vr)]
    if t == "LIF":
        tau_nir, r, v_leak = (np.asarray(x, np.float64) for x in (node.tau, node.r, node.v_leak))
        ts = scal(tau_nir)
        tau = _decode(ts, lambda y: y / dt, lambda x: x * dt) if ts is not None else tau_nir / dt
        leak_is_reset = np.allclose(v_leak, np.asarray(node.v_reset, np.float64), rtol=_RTOL, atol=1e-12)
        if leak_is_reset:
            rs, tss = scal(r), scal(np.asarray(tau, dtype=np.float64))
            if rs is not None and _close(rs, 1.0):
                return [ir.LIF(name, tau=tau, decay_input=True, v_threshold=vth, v_reset=vr)]
            if rs is not None and tss is not None and _close(rs, tss):
                return [ir.LIF(name, tau=tau, decay_input=False, v_threshold=vth, v_reset=vr)]
            return [*_gain(name, r), ir.LIF(name, tau=tau, decay_input=True, v_threshold=vth, v_reset=vr)]
        if np.all(v_leak == 0):  # leak towards 0 with a non-zero reset: DA-LIF form H = beta V + alpha x
            k = dt / tau_nir
            return [ir.DALIF(name, alpha=_uniform_or_array(k * r), beta=_uniform_or_array(1.0 - k), v_threshold=vth,
                             v_reset=vr)]
        raise GraphError(f"NIR node '{name}' (LIF): v_leak must equal v_reset or be 0 to be represented "
                         "(spikeport LIF leaks towards v_reset)")
    # CubaLIF
    ts_, tm_, r, w_in, v_leak = (np.asarray(x, np.float64) for x in
                                 (node.tau_syn, node.tau_mem, node.r, node.w_in, node.v_leak))
    if np.any(v_leak != 0):
        raise GraphError(f"NIR node '{name}' (CubaLIF): v_leak must be 0 (spikeport CubaLIF has no leak potential)")
    if np.any(ts_ < dt) or np.any(tm_ < dt):
        raise GraphError(f"NIR node '{name}' (CubaLIF): tau_syn and tau_mem must be >= dt = {dt}")
    s_syn, s_mem = scal(ts_), scal(tm_)
    di = _decode(s_syn, lambda y: dt / y, lambda x: dt / x) if s_syn is not None else dt / ts_
    dv = _decode(s_mem, lambda y: dt / y, lambda x: dt / x) if s_mem is not None else dt / tm_
    gain = (np.asarray(di) * w_in) * (np.asarray(dv) * r)
    return [*_gain(name, gain), ir.CubaLIF(name, i_decay=_uniform_or_array(di), v_decay=_uniform_or_array(dv),
                                           v_threshold=vth, v_reset=vr)]


def from_nir(graph: Any, dt: float = DEFAULT_DT, name: str = "nir") -> SpikeGraph:
    """Convert a ``nir.NIRGraph`` to a validated :class:`SpikeGraph`.

    Nodes with several incoming edges get an ``Add`` node ``<name>.sum`` (NIR sums
    inputs); edges closing a cycle become recurrent (one-step delay).

    Raises:
        GraphError: unsupported node types (named), unrepresentable parameters or
            shape mismatches (``"a.out [..] -> b.in [..]"``).
    """
    dt = _check_dt(dt)
    flat = _Flat(graph)
    preds: dict[str, list[str]] = {n: [] for n in flat.nodes}
    for a, b in flat.edges:
        preds[b].append(a)
    recurrent = _back_edges(flat)
    g = SpikeGraph(name, {"source": "nir", "dt": dt})
    created: dict[str, list[ir.IRNode]] = {}
    n_in = n_out = 0
    for n, node in flat.nodes.items():
        try:
            nodes = _import_node(n, node, dt, n_in, n_out)
        except GraphError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, ZeroDivisionError) as e:
            raise GraphError(f"NIR node '{n}' ({type(node).__name__}): invalid parameters "
                             f"({type(e).__name__}: {e})") from None
        n_in += isinstance(nodes[0], ir.Input)
        n_out += isinstance(nodes[-1], ir.Output)
        created[n] = nodes
    # add in an order where feed-forward predecessors come first
    order = _ff_order(flat, recurrent)
    for n in order:
        srcs = preds[n]
        nodes = created[n]
        first_inputs: list[str]
        rec_flags: list[bool]
        if len(srcs) > 1:
            flags = [(s, n) in recurrent for s in srcs]
            g.add(ir.Add(f"{n}.sum"), [_exit(created, s) for s in srcs], recurrent=flags)
            first_inputs, rec_flags = [f"{n}.sum"], [False]
        else:
            first_inputs = [_exit(created, s) for s in srcs]
            rec_flags = [(s, n) in recurrent for s in srcs]
        prev, flags = first_inputs, rec_flags
        for node in nodes:
            g.add(node, prev, recurrent=flags)
            prev, flags = [node.name], [False]
    return g.validate()


def _exit(created: dict[str, list[ir.IRNode]], name: str) -> str:
    return created[name][-1].name


def _back_edges(flat: _Flat) -> set[tuple[str, str]]:
    """Edges closing a cycle (DFS from the inputs, in file order)."""
    succ: dict[str, list[str]] = {n: [] for n in flat.nodes}
    for a, b in flat.edges:
        succ[a].append(b)
    nir = _nir()
    roots = [n for n, v in flat.nodes.items() if isinstance(v, nir.Input)] + list(flat.nodes)
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    for r in roots:
        if r in state:
            continue
        stack = [(r, iter(succ[r]))]
        state[r] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    return back


def _ff_order(flat: _Flat, recurrent: set[tuple[str, str]]) -> list[str]:
    indeg = {n: 0 for n in flat.nodes}
    for a, b in flat.edges:
        if (a, b) not in recurrent:
            indeg[b] += 1
    ready = [n for n in flat.nodes if indeg[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for a, b in flat.edges:
            if a == n and (a, b) not in recurrent:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
    return order


def _scan_types(path: Path) -> None:
    """Name every node of an unknown type before nir.read fails on it."""
    import h5py

    known = set(IMPORTABLE_TYPES) | {"LI", "CubaLI", "I", "Delay"}
    bad: list[str] = []

    def walk(group: Any, prefix: str) -> None:
        for k in group:
            item = group[k]
            if not isinstance(item, h5py.Group) or "type" not in item:
                continue
            t = item["type"][()]
            t = t.decode() if isinstance(t, bytes) else str(t)
            if t not in known:
                bad.append(f"'{prefix}{k}' (type '{t}')")
            elif t == "NIRGraph" and "nodes" in item:
                walk(item["nodes"], f"{prefix}{k}.")

    try:
        with h5py.File(path, "r") as f:
            if "node" not in f:
                raise GraphError(f"{path}: HDF5 file is not a NIR graph (no 'node' group)")
            root = f["node"]
            if not isinstance(root, h5py.Group) or "nodes" not in root:
                raise GraphError(f"{path}: NIR file has no 'node/nodes' group")
            walk(root["nodes"], "")
    except GraphError:
        raise
    except Exception as e:  # h5py raises OSError/KeyError/RuntimeError/TypeError/... on corrupt files
        raise GraphError(f"{path}: corrupt or unreadable NIR file ({type(e).__name__}: {e})") from None
    if bad:
        raise GraphError(f"{path}: unknown NIR node type(s): {', '.join(bad)} "
                         f"(supported: {', '.join(IMPORTABLE_TYPES)})")


def _read_nir_graph(p: Path) -> Any:
    """Every HDF5 access of :func:`read_nir`: the node-type scan and ``nir.read``."""
    _scan_types(p)
    try:
        return _nir().read(p, type_check=False)
    except Exception as e:  # nir raises assorted errors (KeyError, AssertionError, ValueError) on malformed files
        raise GraphError(f"{p}: cannot read NIR graph ({type(e).__name__}: {e})") from None


def read_nir(path: str | os.PathLike, dt: float = DEFAULT_DT) -> SpikeGraph:
    """Read a ``.nir`` file (written by any framework) into a validated :class:`SpikeGraph`.

    The file is first probed in a forked child (:func:`spikeport._hdf5_guard.check_hdf5_readable`)
    because libhdf5 can segfault on corrupt files.

    Raises:
        GraphError: missing file, not HDF5/NIR, a file that crashes libhdf5, unknown node types
            (named), NaN/Inf parameters (node and field named) or an invalid graph.
    """
    import h5py

    _nir()  # import before forking the probe
    p = Path(path)
    if not p.is_file():
        raise GraphError(f"{p}: no such NIR file")
    try:
        is_hdf5 = h5py.is_hdf5(p)
    except OSError as e:
        raise GraphError(f"{p}: cannot read NIR file ({e})") from None
    if not is_hdf5:
        raise GraphError(f"{p}: not a NIR file (not HDF5); expected a file written by nir.write")
    check_hdf5_readable(p, "NIR", _read_nir_graph, error=GraphError)  # libhdf5 can segfault on a corrupt file
    ng = _read_nir_graph(p)
    try:
        return from_nir(ng, dt, name=p.stem)
    except GraphError as e:
        raise GraphError(f"{p}: {e}") from None
    except Exception as e:  # a structurally odd graph that nir.read accepted
        raise GraphError(f"{p}: malformed NIR graph ({type(e).__name__}: {e})") from None


def load_nir_model(path: str | os.PathLike, device: str = "cpu", dt: float = DEFAULT_DT) -> Any:
    """Import a ``.nir`` file as a runnable model (``LoadedModel`` of :mod:`spikeport.models.loading`).

    The model is the reference executor (:class:`~spikeport.converter.lower.LoweredModule`);
    ``meta["graph"]`` holds the IR graph.
    """
    from spikeport.converter.lower import lower
    from spikeport.models.loading import LoadedModel

    graph = read_nir(path, dt)
    module = lower(graph, device)
    return LoadedModel(module, str(path), "nir", None, tuple(graph.input_nodes()[0].shape),
                       meta={"graph": graph, "dt": dt})
