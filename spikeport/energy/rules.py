"""Op-counting rules: how a node is observed while recording and what it costs.

An :class:`OpRule` says how one op is counted; each op declares its rule once,
in its op spec (:mod:`spikeport.ops`), and :func:`resolve_rule` finds it for an
IR node type or, for models recorded without a graph, a torch module class (via
the module's adapter); lookup walks the class MRO, so a subclass inherits its
parent's rule. Users extend or override rules with the ``rules=`` argument of
:func:`spikeport.energy.record_spikes` (at each class of the MRO a user entry
wins over the built-in one). An op whose energy capability is refused, or a
module no rule covers, is never counted as zero: the recorder raises (or marks
it unmeasured when asked to).

This module holds the rule type and the exact counting machinery the rules use
(fan-out maps, dense counts, value classes).

Roles:

* ``synapse``: a linear weighted op (Linear, Conv, ConvTranspose). The recorder
  keeps, per input value class, :math:`\\sum_i n_i F_i` where :math:`n_i` is the
  number of nonzero inputs at per-item position *i* (summed over the batch
  first, which is exact because counting is linear) and :math:`F_i` the exact
  fan-out of that position: the number of nonzero weights it meets, honouring
  borders, stride, padding, dilation and groups. For integer-valued inputs it
  also keeps :math:`\\sum_i |x|_i F_i` (value-weighted ACs).
* ``pool``: an average/sum pool; each nonzero input costs one addition per
  window that contains it (same fan-out machinery, weights all one).
* ``neuron``: a stateful spiking neuron (rates per layer, channel and timestep;
  one membrane update per neuron and step); ``activation``: a stateless
  activation (ReLU, Threshold): rates only.
* ``custom``: ``count(module, node, inputs, output) -> {column: value}`` per call
  (element-wise arithmetic and the paper methods' attention modules).
* ``free``: costs nothing (reshapes, dropout, batch norm folded into the
  preceding synapse, max pooling).
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from spikeport.errors import ConfigError, GraphError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from spikeport.ops.spec import Refused

__all__ = ["OpRule", "ROLES", "VALUE_CLASSES", "CUSTOM_COLUMNS", "resolve_rule", "value_class", "is_unit",
           "axis_taps", "conv_fanout", "autograd_fanout", "linear_fanout", "pool_fanout", "adaptive_pool_fanout",
           "dense_linear", "dense_conv", "dense_conv_transpose", "tensors", "worst_class"]

ROLES = ("synapse", "pool", "neuron", "activation", "custom", "free")
VALUE_CLASSES = ("binary", "signed_binary", "integer", "real")
"""Input value classes, from cheapest to dearest: {0,1}, {-1,0,1}, other integers, anything else."""

CUSTOM_COLUMNS = ("elem_adds", "elem_macs")
"""Columns a ``custom`` rule may return: element-wise additions (AC cost) and products (MAC cost)."""

FanoutFn = Callable[[nn.Module, Any, tuple[int, ...]], tuple[torch.Tensor, torch.Tensor]]
DenseFn = Callable[[nn.Module, Any, tuple[int, ...], tuple[int, ...]], int]
CountFn = Callable[[nn.Module, Any, tuple[Any, ...], Any], Mapping[str, float]]
# The built-in synapse functions below take ``module: Any``: they read ``weight`` (and ``groups``) from a module
# of any framework that maps to the op, not only from torch's own classes.


@dataclass(frozen=True)
class OpRule:
    """How one node type is recorded and counted.

    Args:
        role: one of :data:`ROLES`.
        item_ndim: ``synapse``/``pool``: number of trailing per-item axes of the input
            (Linear 1, Conv1d 2, Conv2d 3); the leading axes are ``[T, B, ...]``.
        fanout: ``synapse``/``pool``: ``fanout(module, node, item_shape) -> (F_eff, F_valid)``,
            float64 tensors of ``item_shape``: per input position, the number of nonzero
            weights it meets and the number of (valid, non-padding) taps it meets.
        dense: ``synapse``: ``dense(module, node, in_item, out_item) -> int``, the
            ANN-equivalent MACs per item and timestep (counts padding taps, as FLOP counters do).
        count: ``custom``: ``count(module, node, inputs, output) -> {column: value}`` with
            columns from :data:`CUSTOM_COLUMNS`, called on every forward.
        neuron_ops: ``neuron``: ``(multiplications, additions)`` of one membrane update
            (the Lemaire-style model charges them; compare counts as an addition).
        binary_output: ``neuron``: the node emits exactly 0/1 by construction (a Heaviside of
            the membrane). For module classes defined inside spikeport the recorder verifies
            this on a layer's first call and then skips the value check (one pass fewer).
        binary_if: ``neuron``: for an op whose nodes are binary or not by a parameter (graded
            spikes, spike counts), ``binary_if(node) -> bool`` says which (the recorder then
            treats a binary node like ``binary_output``, any module class included).
        leaf: do not hook the module's children (the rule accounts for them).
        note: assumption stated in every report that uses this rule.
    """

    role: str
    item_ndim: int = 0
    fanout: FanoutFn | None = None
    dense: DenseFn | None = None
    count: CountFn | None = None
    neuron_ops: tuple[int, int] = (0, 0)
    binary_output: bool = False
    binary_if: Callable[[Any], bool] | None = None
    leaf: bool = True
    note: str = ""

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(f"OpRule: role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if self.role in ("synapse", "pool") and (self.item_ndim <= 0 or self.fanout is None):
            raise ConfigError(f"OpRule(role={self.role!r}) needs item_ndim > 0 and a fanout function")
        if self.role == "synapse" and self.dense is None:
            raise ConfigError("OpRule(role='synapse') needs a dense function (ANN-equivalent MACs)")
        if self.role == "custom" and self.count is None:
            raise ConfigError("OpRule(role='custom') needs a count function")


# ---------------------------------------------------------------- value classes
def is_unit(a: torch.Tensor, x: torch.Tensor) -> bool:
    """Whether every ``a`` (``x`` or ``|x|``, known to lie in [0, 1]) is exactly 0 or 1.

    ``a - x*x`` is 0 exactly at 0 and 1 and strictly positive in float arithmetic for
    any value in (0, 1) (the rounded square of such a value is below it), so a zero
    maximum proves binarity without accumulating anything.
    """
    return float(torch.addcmul(a, x, x, value=-1.0).max()) == 0.0


@torch.no_grad()
def value_class(x: torch.Tensor) -> str:
    """Classify the values of ``x``: ``binary``, ``signed_binary``, ``integer`` or ``real``."""
    if x.numel() == 0 or x.dtype == torch.bool:
        return "binary"
    if not torch.is_floating_point(x):
        lo, hi = int(x.min()), int(x.max())
        return "binary" if lo >= 0 and hi <= 1 else ("signed_binary" if lo >= -1 and hi <= 1 else "integer")
    mn, mx = float(x.min()), float(x.max())
    if not (math.isfinite(mn) and math.isfinite(mx)):
        return "real"
    if mn >= -1.0 and mx <= 1.0 and is_unit(x if mn >= 0.0 else x.abs(), x):
        return "binary" if mn >= 0.0 else "signed_binary"
    if bool(torch.equal(x, torch.round(x))):
        return "integer"
    return "real"


def worst_class(classes: Any) -> str:
    """The dearest value class among ``classes`` (``binary`` when empty)."""
    ranks = [VALUE_CLASSES.index(c) for c in classes]
    return VALUE_CLASSES[max(ranks)] if ranks else "binary"


# ---------------------------------------------------------------- fan-out maps
def _grad_of_sum(fn: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...],
                 upstream: torch.Tensor | None = None) -> torch.Tensor:
    """d/dx of ``sum(upstream * fn(x))`` at ``x = ones(shape)`` in float64 (works under inference mode)."""
    with torch.inference_mode(False), torch.enable_grad():
        x = torch.ones(shape, dtype=torch.float64, requires_grad=True)
        y = fn(x)
        g = torch.ones_like(y) if upstream is None else upstream.to(y.dtype).expand_as(y)
        (grad,) = torch.autograd.grad(y, x, grad_outputs=g)
    return grad.detach().clone()


def linear_fanout(module: Any, node: Any, item_shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear: input feature *i* meets the nonzero entries of weight column *i*."""
    w = module.weight.detach()
    eff = (w != 0).sum(0).to(torch.float64)
    return eff, torch.full_like(eff, float(w.shape[0]))


def _zero_padded(module: nn.Module) -> bool:
    return getattr(module, "padding_mode", "zeros") == "zeros" and not isinstance(getattr(module, "padding", 0), str)


def _tup(v: Any, n: int) -> tuple[int, ...]:
    return tuple(int(a) for a in v) if isinstance(v, (tuple, list)) else (int(v),) * n


def axis_taps(n_in: int, k: int, stride: int, pad: int, dilation: int, n_out: int) -> torch.Tensor:
    """``V[i, j] = 1`` when input index ``i`` meets kernel tap ``j`` at some output in ``[0, n_out)``.

    Output ``o`` reads input ``o * stride - pad + j * dilation`` through tap ``j``.
    """
    i = torch.arange(n_in, dtype=torch.int64)[:, None]
    j = torch.arange(k, dtype=torch.int64)[None, :]
    num = i + pad - j * dilation
    o = torch.div(num, stride, rounding_mode="floor")
    return ((num % stride == 0) & (o >= 0) & (o < n_out)).to(torch.float64)


def _conv_out(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


_EINSUM = {1: "ak,ck->ca", 2: "ak,bl,ckl->cab", 3: "ak,bl,cm,nklm->nabc"}


def conv_fanout(module: Any, node: Any, item_shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Conv1d/2d/3d with zero padding: exact per-position fan-out, analytically.

    The binarized kernel is summed over each group's output channels, giving one
    ``k``-sized kernel ``K_c`` per input channel. Validity is separable per axis,
    so the fan-out of input ``(c, h, w)`` is ``sum_{k,l} K_c[k, l] V_h[h, k] V_w[w, l]``
    with :func:`axis_taps` (borders, stride, padding and dilation exact). Other
    padding modes fall back to :func:`autograd_fanout`.
    """
    w = module.weight.detach()
    nd = w.dim() - 2
    if not _zero_padded(module) or nd not in _EINSUM or len(item_shape) != nd + 1:
        return autograd_fanout(module, node, item_shape)
    g = int(module.groups)
    c_out, c_in_g = int(w.shape[0]), int(w.shape[1])
    k = tuple(int(v) for v in w.shape[2:])
    per_ch = (w != 0).to(torch.float64).reshape(g, c_out // g, c_in_g, *k).sum(1).reshape(g * c_in_g, *k)
    st, pad, dil = _tup(module.stride, nd), _tup(module.padding, nd), _tup(module.dilation, nd)
    taps = [axis_taps(item_shape[a + 1], k[a], st[a], pad[a], dil[a],
                      _conv_out(item_shape[a + 1], k[a], st[a], pad[a], dil[a])) for a in range(nd)]
    eff = torch.einsum(_EINSUM[nd], *taps, per_ch)
    valid = torch.full((g * c_in_g, *k), float(c_out // g), dtype=torch.float64)
    return eff.contiguous(), torch.einsum(_EINSUM[nd], *taps, valid).contiguous()


def autograd_fanout(module: nn.Module, node: Any, item_shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Generic fan-out of any weighted linear module through autograd.

    Runs ``module`` with its parameter ``weight`` binarized (``!= 0``) or set to
    ones and every other parameter zeroed, on an all-ones float64 input, and takes
    the gradient of the output sum. Exact for any linear op; costs one forward and
    backward on a single item. Multi-step layers get a ``[1, 1, *item]`` input,
    plain torch layers ``[1, *item]``. The module runs as a hook-free copy, so the
    recorder's own hooks never see these probe calls.
    """
    params = dict(module.named_parameters(recurse=False))
    if "weight" not in params:
        raise GraphError(f"{type(module).__name__}: no 'weight' parameter to derive a fan-out from; give its rule a "
                         "fanout function")
    module = copy.copy(module)  # shallow: shares parameters, own (empty) hook tables
    module._forward_hooks, module._forward_pre_hooks = OrderedDict(), OrderedDict()

    def run(lead: int, binary: bool) -> torch.Tensor:
        repl = {n: (((p.detach() != 0) if binary else torch.ones_like(p)).to(torch.float64) if n == "weight"
                    else torch.zeros_like(p, dtype=torch.float64)) for n, p in params.items()}
        def fn(x: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(module, repl, (x,))

        return _grad_of_sum(fn, (1,) * lead + tuple(item_shape))[(0,) * lead]

    errors = []
    for lead in (2, 1):  # multi-step layers first, then plain torch layers
        try:
            return run(lead, True), run(lead, False)
        except Exception as e:  # noqa: BLE001 - the module rejects this input rank; try the next one
            errors.append(f"{type(e).__name__}: {e}")
    raise GraphError(f"{type(module).__name__}: could not derive the fan-out map for input {list(item_shape)} "
                     f"({'; '.join(errors)}); give its rule a fanout function")


def _pool_params(module: nn.Module, node: Any) -> tuple[Any, Any, Any, bool]:
    src = module if hasattr(module, "kernel_size") else node
    k = src.kernel_size
    s = getattr(src, "stride", None) or k
    return k, s, getattr(src, "padding", 0), bool(getattr(src, "ceil_mode", False))


def _pool_out(n: int, k: int, s: int, p: int, ceil: bool) -> int:
    """torch's pooling output size (ceil mode drops a last window starting in the right padding)."""
    if not ceil:
        return (n + 2 * p - k) // s + 1
    out = -(-(n + 2 * p - k) // s) + 1
    if (out - 1) * s >= n + p:
        out -= 1
    return out


def pool_fanout(module: nn.Module, node: Any, item_shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Average/sum pooling: the number of windows that contain each input position (padding excluded)."""
    k, s, p, ceil = _pool_params(module, node)
    k, s, p = _tup(k, 2), _tup(s, 2), _tup(p, 2)
    c, h, w = item_shape
    counts = [axis_taps(n, k[a], s[a], p[a], 1, _pool_out(n, k[a], s[a], p[a], ceil)).sum(1)
              for a, n in enumerate((h, w))]
    cnt = torch.outer(*counts).expand(c, h, w).contiguous()
    return cnt, cnt.clone()


def _adaptive_counts(n_in: int, n_out: int) -> torch.Tensor:
    cnt = torch.zeros(n_in, dtype=torch.float64)
    for o in range(n_out):
        start, end = (o * n_in) // n_out, -(-((o + 1) * n_in) // n_out)
        cnt[start:end] += 1
    return cnt


def adaptive_pool_fanout(module: nn.Module, node: Any,
                         item_shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive average pooling (torch's window bounds): windows per input position."""
    out = getattr(module, "output_size", None) if hasattr(module, "output_size") else node.output_size
    if isinstance(out, int) or out is None:
        out = (out, out)
    c, h, w = item_shape
    oh, ow = (h if out[0] is None else out[0]), (w if out[1] is None else out[1])
    cnt = torch.outer(_adaptive_counts(h, oh), _adaptive_counts(w, ow)).expand(c, h, w).clone()
    return cnt, cnt.clone()


# ---------------------------------------------------------------- dense (ANN-equivalent) counts
def dense_conv(module: Any, node: Any, in_item: tuple[int, ...], out_item: tuple[int, ...]) -> int:
    """Output elements x (C_in / groups) x prod(kernel): torch's FLOP counter / 2."""
    return math.prod(out_item) * int(module.weight[0].numel())


def dense_conv_transpose(module: Any, node: Any, in_item: tuple[int, ...], out_item: tuple[int, ...]) -> int:
    """Input elements x (C_out / groups) x prod(kernel): torch's FLOP counter / 2."""
    return math.prod(in_item) * int(module.weight[0].numel())


def dense_linear(module: Any, node: Any, in_item: tuple[int, ...], out_item: tuple[int, ...]) -> int:
    return int(module.weight.numel())


# ---------------------------------------------------------------- helpers for count rules
def tensors(inputs: tuple[Any, ...]) -> list[torch.Tensor]:
    """The tensor arguments of a hooked call."""
    return [t for t in inputs if isinstance(t, torch.Tensor)]


def resolve_rule(obj_type: type, rules: Mapping[type, OpRule] | None = None) -> OpRule | Refused | None:
    """The rule for ``obj_type`` (an IR node type or a torch module class), walking its MRO.

    Built-in rules come from the op registry (:mod:`spikeport.ops`): an IR node type's
    op spec, or a module class's adapter. At each class a user rule (``rules``) wins
    over the built-in one, so a user rule for a base class does not override a built-in
    rule for a more specific class.

    Returns:
        The rule, the op's :class:`~spikeport.ops.Refused` energy capability, or ``None``
        when no class in the MRO declares one.
    """
    from spikeport.ops.spec import MISSING, energy_rule_at

    for klass in obj_type.__mro__:
        if rules and klass in rules:
            return rules[klass]
        rule = energy_rule_at(klass)
        if rule is not MISSING:
            return rule
    return None
