r"""Fused multi-step LIF / PLIF / DA-LIF with hand-written backpropagation through time.

The eager modules loop :func:`~spikeport.models.neurons.functional.lif_step` over
``T`` and let autograd record ~10 small ops per step. The functions here run the
whole ``[T, B, ...]`` sequence inside one :class:`torch.autograd.Function`:

* **forward** writes into preallocated outputs with in-place / ``out=`` float ops
  (bool tensors are several times slower on CPU), builds no autograd graph, and
  repeats the eager arithmetic op for op, so the spikes are bit-identical to the
  eager loop. It saves only the input ``x`` (a reference, no copy).
* **backward** recomputes the charged membrane :math:`H[t]` from ``x`` into the
  gradient buffer (a fresh ``[T, ...]`` CPU allocation costs more than the
  recomputation: thousands of page faults), then runs the BPTT recurrence by
  hand, one step at a time on cache-resident buffers. With
  :math:`H[t] = a_V V[t-1] + a_X X[t] + c` and :math:`V[t] = R(H[t], S[t])`:

  .. math::
      \frac{\partial L}{\partial H[t]} = g_S[t]\,\sigma'(H[t]-V_{th})
          + a_V \frac{\partial V[t]}{\partial H[t]} \frac{\partial L}{\partial H[t+1]},\qquad
      \frac{\partial V[t]}{\partial H[t]} =
      \begin{cases} 1 - S[t] + (V_{reset} - H[t])\,\sigma'(\cdot) & \text{hard reset} \\
                    1 - V_{th}\,\sigma'(\cdot) & \text{soft reset} \end{cases}

  (the :math:`\sigma'` reset terms vanish with ``detach_reset``),
  :math:`\partial L/\partial X[t] = a_X\,\partial L/\partial H[t]`, and coefficient
  gradients sum :math:`\partial L/\partial H[t]\,\partial H[t]/\partial c` over time and
  neurons. Gradients reach ``inv_tau`` (PLIF's ``sigmoid(w)``) and DA-LIF's
  ``alpha``/``beta`` (scalar or per channel); autograd takes them on to ``w``, ``tau_a``, ``tau_b``.

On CUDA with Triton installed the same math runs in the kernels of
:mod:`spikeport.models.neurons.triton_kernels` (one program per block of
neurons, loop over ``T`` in registers). Without Triton, or for inputs those
kernels do not take, the torch-op path below runs on CUDA unchanged. Triton is
imported lazily, never when this module is imported.

``torch.compile`` is not used here. Under compilation (and tracing / ONNX export) the
modules step aside to the eager loop, which inductor fuses itself: on the 2-core CPU
of ``benchmarks/neuron_speed.py`` that is ~1.3x faster forward+backward and ~2.5x faster
forward than this module at steady state, but costs 10-30 s of compilation per
shape and configuration, so it stays the user's choice (``torch.compile(model)``).
"""

from __future__ import annotations

import logging
import math
from typing import NamedTuple

import torch
from torch.autograd.function import once_differentiable
from torch.overrides import has_torch_function_unary

from spikeport.errors import ConfigError
from spikeport.models.neurons.surrogate import Surrogate, get_surrogate, surrogate_grad

__all__ = [
    "BACKENDS",
    "FusedConfig",
    "check_backend",
    "fused_supported",
    "use_fused",
    "triton_available",
    "lif_multistep",
    "dalif_multistep",
]


BACKENDS = ("auto", "eager", "fused")
Param = float | torch.Tensor
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class FusedConfig(NamedTuple):
    """Static description of one fused neuron call.

    Attributes:
        mode: ``lif_di`` (LIF with ``decay_input``), ``lif`` (LIF without) or ``dalif``.
        v_threshold: firing threshold.
        v_reset: hard-reset value, ``None`` for soft reset.
        surrogate: surrogate name (see :mod:`~spikeport.models.neurons.surrogate`).
        alpha: surrogate sharpness.
        detach_reset: no gradient through the reset path.
    """

    mode: str
    v_threshold: float
    v_reset: float | None
    surrogate: str
    alpha: float
    detach_reset: bool

    @property
    def v_leak(self) -> float:
        """Leak target of LIF: ``v_reset`` for hard reset, 0 for soft reset."""
        return 0.0 if self.v_reset is None else self.v_reset


# ----------------------------------------------------------------------------- dispatch helpers
def check_backend(owner: str, backend: str) -> str:
    """Validate a ``backend`` option (``auto``, ``eager`` or ``fused``).

    Raises:
        ConfigError: unknown backend name.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"{owner}: backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return backend


_TRITON: bool | None = None


def triton_available() -> bool:
    """True when Triton imports (checked once, lazily; never at module import)."""
    global _TRITON
    if _TRITON is None:
        try:
            import triton  # noqa: F401  (probe only)
            _TRITON = True
        except Exception as e:  # noqa: BLE001 - a broken Triton install raises anything; eager is the fallback
            logging.getLogger(__name__).debug("triton unavailable (%s: %s); using the eager path",
                                              type(e).__name__, e)
            _TRITON = False
    return _TRITON


def _tracing() -> bool:
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return True
    if hasattr(torch, "onnx") and torch.onnx.is_in_onnx_export():
        return True
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and compiler.is_compiling())


def fused_supported(x: object, *params: Param) -> str | None:
    """Why the fused path cannot take ``x`` (a short reason), or ``None`` if it can.

    The fused path needs a real floating tensor of shape ``[T, ...]`` outside
    tracing/export/compilation (those see the eager loop, which they understand),
    and tensor parameters (beyond 0-d) of the input's dtype and device, so that type
    promotion matches the eager loop.
    """
    if not isinstance(x, torch.Tensor) or has_torch_function_unary(x):
        return "input is not a plain tensor"
    if x.dtype not in _FLOATS:
        return f"dtype {x.dtype} is not a floating type"
    if x.dim() < 2:
        return "input must be [T, B, ...]"
    if _tracing():
        return "tracing, exporting or compiling"
    for p in params:
        if isinstance(p, torch.Tensor):
            if p.device != x.device:
                return f"parameter on {p.device}, input on {x.device}"
            if p.dim() > 0 and p.dtype != x.dtype:
                return f"parameter dtype {p.dtype} differs from input dtype {x.dtype}"
    return None


def use_fused(owner: str, backend: str, x: object, *params: Param) -> bool:
    """Decide eager vs fused for one call of a module's ``forward``.

    Args:
        owner: module name for error messages.
        backend: ``auto`` (fused when supported), ``eager`` or ``fused`` (fused or error).
        x: the multi-step input.
        *params: the neuron's coefficient tensors.

    Raises:
        ConfigError: ``backend='fused'`` but the call is not supported.
    """
    if backend == "eager":
        return False
    why = fused_supported(x, *params)
    if why is None:
        return True
    if backend == "fused":
        raise ConfigError(f"{owner}: backend='fused' cannot run this call ({why}); use backend='auto' or 'eager'")
    return False


# ----------------------------------------------------------------------------- forward (torch ops)
def _scalar(p: Param) -> Param:
    """0-d CPU tensors become Python floats (same rounding, cheaper kernels)."""
    if isinstance(p, torch.Tensor) and p.dim() == 0 and p.device.type == "cpu":
        return float(p)
    return p


def _charge(x_t: torch.Tensor, v: torch.Tensor | None, h: torch.Tensor, tmp: torch.Tensor | None,
            c1: Param, c2: Param, cfg: FusedConfig) -> None:
    """Write :math:`H[t]` into ``h``, repeating the eager op sequence exactly (``v=None``: zero state)."""
    vl = cfg.v_leak
    if cfg.mode == "dalif":  # beta * v + alpha * x
        torch.mul(x_t, c1, out=h)
        if v is not None:
            h.add_(torch.mul(v, c2, out=tmp))  # torch.mul returns ``tmp`` (a fresh tensor only if ``tmp`` is None)
        return
    k = c1
    if v is None and vl != 0.0:  # rare: leak towards a non-zero reset from a zero state
        v = torch.zeros_like(h)
    if cfg.mode == "lif_di":  # v + (x - (v - vl)) * k
        if v is None:
            torch.mul(x_t, k, out=h)
            return
        if vl == 0.0:
            torch.sub(x_t, v, out=h)
        else:
            torch.sub(v, vl, out=h)
            torch.sub(x_t, h, out=h)
        h.mul_(k)
        h.add_(v)
        return
    # lif without decay_input: v - (v - vl) * k + x
    if v is None:
        h.copy_(x_t)
        return
    if vl == 0.0:
        torch.mul(v, k, out=h)
    else:
        torch.sub(v, vl, out=h)
        h.mul_(k)
    torch.sub(v, h, out=h)
    h.add_(x_t)


def _reset(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor, cfg: FusedConfig) -> None:
    """Write :math:`V[t]` into ``v``; exact, since ``s`` is 0 or 1 (float ops: bool tensors are slow on CPU)."""
    if cfg.v_reset is None:  # h - s * vth
        torch.sub(h, s, alpha=cfg.v_threshold, out=v)
        return
    torch.addcmul(h, h, s, value=-1.0, out=v)  # h (1 - s)
    if cfg.v_reset != 0.0:
        v.add_(s, alpha=cfg.v_reset)


def _forward(x: torch.Tensor, c1: Param, c2: Param, cfg: FusedConfig, H: torch.Tensor | None = None,
             spikes: bool = True) -> torch.Tensor | None:
    """Run all ``T`` steps; return the spikes (or ``None`` with ``spikes=False``).

    With ``H`` (a ``[T, ...]`` buffer) the charged membrane of every step is written there.
    """
    T = x.shape[0]
    S = torch.empty(x.shape, dtype=x.dtype, device=x.device) if spikes else None
    one = torch.empty(x.shape[1:], dtype=x.dtype, device=x.device)
    # scratch for S[t] when the spikes are not kept (unused, and not allocated, when they are)
    s_buf = one if S is not None else (torch.empty_like(one) if H is None else one)
    v = torch.empty_like(one) if T > 1 else None
    tmp = torch.empty_like(one) if cfg.mode == "dalif" and T > 1 else None
    for t in range(T):
        h = one if H is None else H[t]  # one == h_buf when H is None
        _charge(x[t], v if t else None, h, tmp, c1, c2, cfg)
        s = s_buf if S is None else S[t]
        torch.ge(h, cfg.v_threshold, out=s)
        if v is not None and t < T - 1:  # v exists whenever T > 1
            _reset(h, s, v, cfg)
    return S


# ----------------------------------------------------------------------------- backward (torch ops)
def _surrogate_step(h: torch.Tensor, out: torch.Tensor, cfg: FusedConfig) -> float:
    """Write ``g`` into ``out`` and return ``scale`` with :math:`\\sigma'(h - V_{th}) = scale \\cdot g`."""
    a = cfg.alpha
    u = torch.sub(h, cfg.v_threshold, out=out)
    if cfg.surrogate == "sigmoid":  # a * s (1 - s), s = sigmoid(a u)
        u.mul_(a).sigmoid_()
        u.addcmul_(u, u, value=-1.0)
        return a
    if cfg.surrogate == "atan":  # (a / 2) / (1 + (pi a u / 2)^2)
        u.mul_(math.pi / 2.0 * a).square_().add_(1.0).reciprocal_()
        return a / 2.0
    if cfg.surrogate == "triangle":  # a * max(0, 1 - a |u|)
        u.abs_().mul_(-a).add_(1.0).clamp_(min=0.0)
        return a
    if cfg.surrogate == "rectangle":  # a * 1[|u| < 1 / (2a)]
        torch.lt(u.abs_(), 0.5 / a, out=u)
        return a
    out.copy_(surrogate_grad(cfg.surrogate, u, a))  # a surrogate registered later by a user
    return 1.0


def _reset_step(h: torch.Tensor, g: torch.Tensor, scale: float, a_v: Param, cfg: FusedConfig,
                out: torch.Tensor) -> tuple[torch.Tensor | None, float]:
    """``(E, c)`` with :math:`a_V\\,\\partial V/\\partial H = c E` at one step (``E=None``: ``E = 1``)."""
    vth, vr = cfg.v_threshold, cfg.v_reset
    live = not cfg.detach_reset
    if vr is None:  # soft: 1 - vth sigma'
        if not live:
            E = None
        else:
            E = torch.mul(g, -vth * scale, out=out).add_(1.0)
    else:  # hard: (1 - S) + (vr - H) sigma'
        E = torch.lt(h, vth, out=out)
        if live:
            if vr == 0.0:
                E.addcmul_(h, g, value=-scale)
            else:
                E.addcmul_(torch.rsub(h, vr), g, value=scale)
    if isinstance(a_v, float):
        return E, a_v
    if E is None:
        return out.copy_(a_v.expand_as(out)), 1.0
    return E.mul_(a_v), 1.0


def _after_reset(h: torch.Tensor, out: torch.Tensor, tmp: torch.Tensor, cfg: FusedConfig) -> torch.Tensor:
    """:math:`V = R(H)` recomputed from a charged membrane ``h`` (into ``out``)."""
    _reset(h, torch.ge(h, cfg.v_threshold, out=tmp), out, cfg)
    return out


def _coefs(c1: Param, c2: Param, cfg: FusedConfig) -> tuple[Param, Param]:
    """``(a_X, a_V)``: input and membrane coefficients of the charge equation."""
    if cfg.mode == "dalif":
        return c1, c2
    return (c1 if cfg.mode == "lif_di" else 1.0), 1.0 - c1


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.dot(a.reshape(-1), b.reshape(-1))


def _acc(acc: torch.Tensor | None, a: torch.Tensor, b: torch.Tensor | None, p: torch.Tensor,
         w: float = 1.0) -> torch.Tensor:
    """``acc + w * sum(a * b)`` reduced to the shape of coefficient ``p`` (``b=None``: ``sum(a)``)."""
    if p.dim() == 0:
        part = a.sum() if b is None else _dot(a, b)
    else:
        part = (a if b is None else a * b).sum_to_size(p.shape)
    if w != 1.0:
        part = part * w
    return part if acc is None else acc + part


def _finish(acc: torch.Tensor | None, scale: float, p: torch.Tensor) -> torch.Tensor:
    if acc is None:
        return torch.zeros_like(p)
    return (acc * scale).reshape(p.shape).to(p.dtype)


def _grad_coef(p: Param, needed: bool, name: str) -> torch.Tensor | None:
    """Coefficient ``p`` when its gradient is ``needed`` (autograd asks only for tensor inputs), else ``None``."""
    if not needed:
        return None
    if not isinstance(p, torch.Tensor):
        raise RuntimeError(f"fused neuron backward: gradient requested for coefficient {name}, "
                           f"which is a {type(p).__name__}, not a tensor")
    return p


def _backward(gs: torch.Tensor, X: torch.Tensor, c1: Param, c2: Param, cfg: FusedConfig,
              need: tuple[bool, bool, bool]) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """BPTT by hand. Returns ``(grad_x, grad_c1, grad_c2)`` (``None`` where not needed).

    ``c1``/``c2`` are the coefficients as given (``inv_tau`` and unused, or ``alpha``
    and ``beta``); their gradients are reduced to their shapes and dtypes.
    The charged membrane is recomputed from ``X`` into the gradient buffer ``G``;
    walking back in time, step ``t`` reads :math:`H[t]` (and :math:`H[t-1]` for the
    coefficient gradients) before overwriting ``G[t]`` with :math:`\\partial L/\\partial H[t]`.
    Fresh ``[T, ...]`` allocations are the costliest thing on CPU (page faults),
    so this needs only one: ``G``, which becomes ``grad_x``.
    """
    T = X.shape[0]
    s1, s2 = _scalar(c1), _scalar(c2)
    a_x, a_v = _coefs(s1, s2, cfg)
    G = torch.empty(X.shape, dtype=X.dtype, device=X.device)
    _forward(X, s1, s2, cfg, H=G, spikes=False)  # G[t] = H[t] for now
    g = torch.empty_like(G[0])
    e = torch.empty_like(G[0]) if T > 1 else None
    dalif = cfg.mode == "dalif"
    t1 = _grad_coef(c1, need[1], "c1")  # the coefficients whose gradients are needed (None: not needed)
    t2 = _grad_coef(c2, need[2] and dalif, "c2")
    need_x1 = t1 is not None and cfg.mode in ("lif_di", "dalif")  # d H / d c1 involves x
    need_v = (t1 is not None and not dalif) or t2 is not None  # ... involves V[t-1]
    # V[t-1] and a scratch buffer for recomputing it
    vbuf = (torch.empty_like(G[0]), torch.empty_like(G[0])) if need_v and T > 1 else None
    acc1: torch.Tensor | None = None
    acc2: torch.Tensor | None = None
    # With a constant a_X (`fold`), G[t] holds a_X * dL/dH[t] = grad_x directly (a_X is folded
    # into the per-step product, saving a pass over [T, ...]); otherwise dL/dH[t] / scale.
    fold_ax = a_x if isinstance(a_x, float) and a_x != 0.0 else None
    zero = torch.zeros((), dtype=G.dtype, device=G.device)
    scale = 1.0
    for t in range(T - 1, -1, -1):
        h = Gt = G[t]  # same memory: H[t] until overwritten below
        scale = _surrogate_step(h, g, cfg)
        E, c = _reset_step(h, g, scale, a_v, cfg, e) if e is not None and t < T - 1 else (None, 0.0)
        torch.addcmul(zero, g, gs[t], value=fold_ax * scale if fold_ax is not None else 1.0, out=Gt)
        if t < T - 1:
            if E is None:
                Gt.add_(G[t + 1], alpha=c)
            else:
                Gt.addcmul_(E, G[t + 1], value=c)
        if t1 is not None:
            if need_x1:
                acc1 = _acc(acc1, Gt, X[t], t1)
            if not dalif and cfg.v_leak != 0.0:
                acc1 = _acc(acc1, Gt, None, t1, cfg.v_leak)
        if vbuf is not None and t > 0:
            vp = _after_reset(G[t - 1], vbuf[0], vbuf[1], cfg)  # V[t-1]: G[t-1] still holds H[t-1]
            if t2 is not None:  # DA-LIF: d H / d beta = V[t-1]
                acc2 = _acc(acc2, Gt, vp, t2)
            elif t1 is not None:  # LIF: d H / d inv_tau involves -V[t-1]
                acc1 = _acc(acc1, Gt, vp, t1, -1.0)
    unit = 1.0 / fold_ax if fold_ax is not None else scale  # turns accumulated G into dL/dH
    g1 = _finish(acc1, unit, t1) if t1 is not None else None
    g2 = _finish(acc2, unit, t2) if t2 is not None else None
    if not need[0]:
        return None, g1, g2
    return (G if fold_ax is not None else G.mul_(a_x).mul_(scale)), g1, g2


class _FusedNeuron(torch.autograd.Function):
    """Whole-sequence neuron: saves only ``x`` (the membrane is recomputed in backward)."""

    @staticmethod
    def forward(ctx, x, c1, c2, cfg):
        spikes = _forward(x, _scalar(c1), _scalar(c2), cfg)
        t1 = c1 if isinstance(c1, torch.Tensor) else None
        t2 = c2 if isinstance(c2, torch.Tensor) else None
        ctx.save_for_backward(x, t1, t2)
        ctx.cfg, ctx.f1, ctx.f2 = cfg, (None if t1 is not None else c1), (None if t2 is not None else c2)
        return spikes

    @staticmethod
    @once_differentiable
    def backward(ctx, gs):
        X, t1, t2 = ctx.saved_tensors
        c1 = ctx.f1 if t1 is None else t1
        c2 = ctx.f2 if t2 is None else t2
        need = tuple(ctx.needs_input_grad[:3])
        gx, g1, g2 = _backward(gs, X, c1, c2, ctx.cfg, need)
        return gx, g1, g2, None


# ----------------------------------------------------------------------------- public API
def _is_cuda(x: torch.Tensor) -> bool:
    return x.device.type == "cuda"


def _load_triton_kernels():
    from spikeport.models.neurons import triton_kernels  # lazy: this imports triton

    return triton_kernels


def _run(x: torch.Tensor, c1: Param, c2: Param, cfg: FusedConfig) -> torch.Tensor:
    """Dispatch: Triton kernels on CUDA when Triton imports and supports the call, else torch ops."""
    if _is_cuda(x) and triton_available():
        kernels = _load_triton_kernels()
        if kernels.supports(x, c1, c2, cfg):
            return kernels.multistep(x, c1, c2, cfg)
    grad = torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad for t in (x, c1, c2))
    if grad:
        return _FusedNeuron.apply(x, c1, c2, cfg)
    spikes = _forward(x, _scalar(c1), _scalar(c2), cfg)
    if spikes is None:  # internal: _forward returns the spikes unless called with spikes=False
        raise RuntimeError("fused neuron: the forward pass returned no spikes")
    return spikes


def _config(mode: str, v_threshold: float, v_reset: float | None, surrogate: str | Surrogate,
            detach_reset: bool) -> FusedConfig:
    sg = get_surrogate(surrogate)
    return FusedConfig(mode, float(v_threshold), None if v_reset is None else float(v_reset), sg.name,
                       sg.sharpness, bool(detach_reset))


def _check_x(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.dtype not in _FLOATS:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ConfigError(f"{name}: expected a floating tensor [T, B, ...], got {shape}")


def lif_multistep(x: torch.Tensor, inv_tau: Param, *, v_threshold: float = 1.0, v_reset: float | None = 0.0,
                  decay_input: bool = True, surrogate: str | Surrogate = "sigmoid",
                  detach_reset: bool = False) -> torch.Tensor:
    """Multi-step LIF / PLIF from zero state, same spikes as looping ``functional.lif_step``.

    Args:
        x: input current ``[T, B, ...]``.
        inv_tau: :math:`1/\tau`, a float (LIF) or a 0-d tensor (PLIF's ``sigmoid(w)``, gets a gradient).
        v_threshold: firing threshold.
        v_reset: hard-reset value, ``None`` for soft reset.
        decay_input: decay the input with the membrane (see :mod:`.functional`).
        surrogate: surrogate name or :class:`Surrogate`.
        detach_reset: no gradient through the reset.

    Returns:
        Spikes ``[T, B, ...]`` (dtype of ``x``).

    Raises:
        ConfigError: ``x`` is not a floating ``[T, B, ...]`` tensor.
    """
    _check_x("lif_multistep", x)
    cfg = _config("lif_di" if decay_input else "lif", v_threshold, v_reset, surrogate, detach_reset)
    return _run(x, inv_tau, 0.0, cfg)  # LIF has no second coefficient: 0.0 is an unused placeholder


def dalif_multistep(x: torch.Tensor, alpha: Param, beta: Param, *, v_threshold: float = 1.0,
                    v_reset: float | None = 0.0, surrogate: str | Surrogate = "sigmoid",
                    detach_reset: bool = False) -> torch.Tensor:
    """Multi-step DA-LIF :math:`H = \beta V + \alpha x` from zero state.

    Args:
        x: input ``[T, B, C, ...]``.
        alpha: spatial (input) decay: float, 0-d tensor, or per-channel tensor shaped
            ``(C, 1, ..., 1)`` (broadcast against one step ``[B, C, ...]``).
        beta: temporal (membrane) decay, same shapes as ``alpha``.
        v_threshold: firing threshold.
        v_reset: hard-reset value, ``None`` for soft reset.
        surrogate: surrogate name or :class:`Surrogate`.
        detach_reset: no gradient through the reset.

    Returns:
        Spikes ``[T, B, C, ...]``.

    Raises:
        ConfigError: ``x`` is not a floating ``[T, B, ...]`` tensor.
    """
    _check_x("dalif_multistep", x)
    cfg = _config("dalif", v_threshold, v_reset, surrogate, detach_reset)
    return _run(x, alpha, beta, cfg)
