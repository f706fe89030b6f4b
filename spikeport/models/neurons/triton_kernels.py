r"""Triton kernels for the fused multi-step neurons (CUDA; imported lazily).

:mod:`spikeport.models.neurons.fused` imports this module only when the input is
on CUDA and Triton imports, so importing spikeport never imports Triton.

One program handles ``BLOCK`` neurons and loops over ``T`` with the membrane in
registers. The forward writes spikes and (for training) the charged membrane
:math:`H[t]`; the backward walks ``t = T-1 .. 0`` carrying :math:`\partial L/\partial V`
in registers, recomputes the surrogate and the reset factor from :math:`H[t]`, writes
:math:`\partial L/\partial X[t]` and, if asked, per-neuron partial sums of the
coefficient gradients (reduced to the coefficient's shape afterwards by torch).
The math is the one documented in :mod:`~spikeport.models.neurons.fused`;
``enable_fp_fusion=False`` keeps the forward's rounding that of the eager loop.

Coefficients (``inv_tau``; DA-LIF's ``alpha``/``beta``) are loaded from device
memory (no host sync): one value, or one per channel (dim 2 of ``[T, B, C, ...]``).
Only float32 inputs and the four built-in surrogates are handled here; everything
else takes the torch-op path of :mod:`.fused`, which also runs on CUDA.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from spikeport.models.neurons.fused import FusedConfig, Param

__all__ = ["supports", "multistep", "BLOCK"]

BLOCK = 1024
_MODES = {"lif_di": 0, "lif": 1, "dalif": 2}
_SURROGATES = {"sigmoid": 0, "atan": 1, "triangle": 2, "rectangle": 3}


@triton.jit
def _surrogate(u, a, SG: tl.constexpr):
    if SG == 0:  # sigmoid: a s (1 - s)
        s = 1.0 / (1.0 + tl.exp(-a * u))
        g = a * s * (1.0 - s)
    elif SG == 1:  # atan: (a/2) / (1 + (pi a u / 2)^2)
        z = 1.5707963267948966 * a * u
        g = (0.5 * a) / (1.0 + z * z)
    elif SG == 2:  # triangle: max(0, a - a^2 |u|)
        g = tl.maximum(a - a * a * tl.abs(u), 0.0)
    else:  # rectangle: a 1[|u| < 1/(2a)]
        g = tl.where(tl.abs(u) < 0.5 / a, a, 0.0)
    return g


@triton.jit
def _fwd_kernel(x_ptr, s_ptr, h_ptr, p1_ptr, p2_ptr, N, T, inner, C, vth, vreset, vleak,
                MODE: tl.constexpr, HARD: tl.constexpr, KEEP_H: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < N
    ci = (offs // inner) % C
    c1 = tl.load(p1_ptr + ci, mask=m, other=0.0)
    c2 = tl.load(p2_ptr + ci, mask=m, other=0.0)
    v = tl.zeros([BLOCK], dtype=tl.float32)
    xp, sp, hp = x_ptr + offs, s_ptr + offs, h_ptr + offs  # pointers step by N (64-bit, no t * N overflow)
    for _ in range(T):
        x = tl.load(xp, mask=m, other=0.0)
        if MODE == 0:
            h = v + (x - (v - vleak)) * c1
        elif MODE == 1:
            h = v - (v - vleak) * c1 + x
        else:
            h = c2 * v + c1 * x
        s = tl.where(h >= vth, 1.0, 0.0)
        tl.store(sp, s, mask=m)
        if KEEP_H:
            tl.store(hp, h, mask=m)
        if HARD:
            v = tl.where(h >= vth, vreset, h)
        else:
            v = h - s * vth
        xp += N
        sp += N
        hp += N


@triton.jit
def _bwd_kernel(gs_ptr, h_ptr, x_ptr, gx_ptr, g1_ptr, g2_ptr, p1_ptr, p2_ptr, N, T, inner, C,
                vth, vreset, vleak, a,
                MODE: tl.constexpr, HARD: tl.constexpr, DETACH: tl.constexpr, SG: tl.constexpr,
                NEED_X: tl.constexpr, NEED_1: tl.constexpr, NEED_2: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < N
    ci = (offs // inner) % C
    c1 = tl.load(p1_ptr + ci, mask=m, other=0.0)
    c2 = tl.load(p2_ptr + ci, mask=m, other=0.0)
    if MODE == 0:
        a_x = c1
        a_v = 1.0 - c1
    elif MODE == 1:
        a_x = tl.full([BLOCK], 1.0, tl.float32)
        a_v = 1.0 - c1
    else:
        a_x = c1
        a_v = c2
    gv = tl.zeros([BLOCK], dtype=tl.float32)  # dL/dV[t] arriving from step t+1
    acc1 = tl.zeros([BLOCK], dtype=tl.float32)
    acc2 = tl.zeros([BLOCK], dtype=tl.float32)
    # the *_ptr arguments point at step T-1; walk back by N per step
    hp, gsp, xp, gxp = h_ptr + offs, gs_ptr + offs, x_ptr + offs, gx_ptr + offs
    for i in range(T):
        t = T - 1 - i
        h = tl.load(hp, mask=m, other=0.0)
        gs = tl.load(gsp, mask=m, other=0.0)
        sg = _surrogate(h - vth, a, SG)
        fired = h >= vth
        if HARD:
            dv = tl.where(fired, 0.0, 1.0)
            if not DETACH:
                dv += (vreset - h) * sg
        else:
            dv = tl.full([BLOCK], 1.0, tl.float32)
            if not DETACH:
                dv -= vth * sg
        gh = gs * sg + gv * dv
        if NEED_X:
            tl.store(gxp, a_x * gh, mask=m)
        if NEED_1 or NEED_2:
            hprev = tl.load(hp - N, mask=m & (t > 0), other=0.0)
            if HARD:
                vp = tl.where(hprev >= vth, vreset, hprev)
            else:
                vp = hprev - tl.where(hprev >= vth, vth, 0.0)
            vp = tl.where(t > 0, vp, 0.0)  # V[t-1], zero initial state
            if MODE == 0:
                x = tl.load(xp, mask=m, other=0.0)
                acc1 += gh * (x - vp + vleak)
            elif MODE == 1:
                acc1 += gh * (vleak - vp)
            else:
                if NEED_1:
                    x = tl.load(xp, mask=m, other=0.0)
                    acc1 += gh * x
                acc2 += gh * vp
        gv = a_v * gh
        hp -= N
        gsp -= N
        xp -= N
        gxp -= N
    if NEED_1:
        tl.store(g1_ptr + offs, acc1, mask=m)
    if NEED_2:
        tl.store(g2_ptr + offs, acc2, mask=m)


# ----------------------------------------------------------------------------- host side
def _layout(x: torch.Tensor, p: Param) -> int | None:
    """Channels of coefficient ``p`` (1 = one value), or ``None`` if the kernels cannot index it."""
    if not isinstance(p, torch.Tensor) or p.numel() == 1:
        return 1
    C = x.shape[2] if x.dim() >= 3 else -1
    if tuple(p.shape) == (C,) + (1,) * (x.dim() - 3):
        return C
    return None


def supports(x: torch.Tensor, c1: Param, c2: Param, cfg: FusedConfig) -> bool:
    """True when the kernels handle this call (float32, built-in surrogate, scalar or per-channel coefficients)."""
    if x.dtype != torch.float32 or x.numel() == 0 or cfg.surrogate not in _SURROGATES or cfg.mode not in _MODES:
        return False
    for p in (c1, c2):
        if isinstance(p, torch.Tensor) and p.device != x.device:
            return False
    return _layout(x, c1) is not None and _layout(x, c2) is not None


def _coef(p: Param, C: int, x: torch.Tensor) -> torch.Tensor:
    if p is None:
        p = 0.0
    if not isinstance(p, torch.Tensor):
        return torch.full((C,), float(p), dtype=torch.float32, device=x.device)
    return p.detach().reshape(-1).to(torch.float32).expand(C).contiguous()


def _geometry(x: torch.Tensor, c1: Param, c2: Param) -> tuple[int, int, torch.Tensor, torch.Tensor]:
    l1, l2 = _layout(x, c1), _layout(x, c2)
    if l1 is None or l2 is None:
        raise ValueError(f"triton kernels: coefficient {'c1' if l1 is None else 'c2'} is neither one value nor one "
                         f"per channel (dim 2) of the input {tuple(x.shape)}; check supports() first")
    C = max(l1, l2)
    inner = math.prod(x.shape[3:]) if C > 1 else 1
    return C, inner, _coef(c1, C, x), _coef(c2, C, x)


def _grid(N: int):
    return (triton.cdiv(N, BLOCK),)


def _reset_args(cfg: FusedConfig) -> tuple[bool, float, float]:
    return cfg.v_reset is not None, 0.0 if cfg.v_reset is None else cfg.v_reset, cfg.v_leak


def _forward(x: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor, C: int, inner: int, cfg: FusedConfig,
             keep_h: bool) -> tuple[torch.Tensor, torch.Tensor]:
    T, N = x.shape[0], x[0].numel()
    s = torch.empty_like(x)
    h = torch.empty_like(x) if keep_h else s  # not written when keep_h is False
    hard, vreset, vleak = _reset_args(cfg)
    _fwd_kernel[_grid(N)](x, s, h, p1, p2, N, T, inner, C, cfg.v_threshold, vreset, vleak,
                          MODE=_MODES[cfg.mode], HARD=hard, KEEP_H=keep_h, BLOCK=BLOCK,
                          enable_fp_fusion=False)
    return s, h


def _reduce(part: torch.Tensor, p: torch.Tensor, step_shape: torch.Size) -> torch.Tensor:
    return part.view(step_shape).sum_to_size(p.shape).to(p.dtype)


class _TritonNeuron(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, c1, c2, cfg):
        xc = x.contiguous()
        C, inner, p1, p2 = _geometry(xc, c1, c2)
        s, h = _forward(xc, p1, p2, C, inner, cfg, keep_h=True)
        need_x = ctx.needs_input_grad[1] and cfg.mode in ("lif_di", "dalif")
        ctx.save_for_backward(h, xc if need_x else None, p1, p2,
                              c1 if isinstance(c1, torch.Tensor) else None,
                              c2 if isinstance(c2, torch.Tensor) else None)
        ctx.cfg, ctx.geom = cfg, (C, inner)
        return s

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gs):
        h, xc, p1, p2, t1, t2 = ctx.saved_tensors
        cfg, (C, inner) = ctx.cfg, ctx.geom
        need_x, need_1, need_2 = ctx.needs_input_grad[:3]
        if cfg.mode != "dalif":
            need_2 = False
        T, N = h.shape[0], h[0].numel()
        gs = gs.contiguous()
        gx = torch.empty_like(h) if need_x else h
        g1 = torch.empty(N, dtype=torch.float32, device=h.device) if need_1 else h
        g2 = torch.empty(N, dtype=torch.float32, device=h.device) if need_2 else h
        hard, vreset, vleak = _reset_args(cfg)
        xs = xc if xc is not None else h
        _bwd_kernel[_grid(N)](gs[-1], h[-1], xs[-1], gx[-1], g1, g2, p1, p2, N, T, inner, C,
                              cfg.v_threshold, vreset, vleak, cfg.alpha,
                              MODE=_MODES[cfg.mode], HARD=hard, DETACH=cfg.detach_reset,
                              SG=_SURROGATES[cfg.surrogate], NEED_X=need_x, NEED_1=need_1, NEED_2=need_2,
                              BLOCK=BLOCK)
        step = h.shape[1:]
        return (gx if need_x else None, _reduce(g1, t1, step) if need_1 else None,
                _reduce(g2, t2, step) if need_2 else None, None)


def multistep(x: torch.Tensor, c1: Param, c2: Param, cfg: FusedConfig) -> torch.Tensor:
    """Spikes of the fused neuron ``cfg`` on ``x`` (``[T, B, ...]``, float32); see :func:`supports`."""
    grad = torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad for t in (x, c1, c2))
    if grad:
        return _TritonNeuron.apply(x, c1, c2, cfg)
    xc = x.contiguous()
    C, inner, p1, p2 = _geometry(xc, c1, c2)
    return _forward(xc, p1, p2, C, inner, cfg, keep_h=False)[0]
