"""Fused multi-step neurons: bit-identical spikes and matching gradients vs the eager step loop.

The reference is the same module with ``backend='eager'`` (``forward`` loops ``step``).
GPU paths cannot run here: the CUDA dispatch is tested by monkeypatching, and the
Triton kernels run on CPU through Triton's interpreter (``TRITON_INTERPRET=1``).
"""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from spikeport.errors import ConfigError
from spikeport.models.neurons import DALIF, LIF, PLIF, fused

SURROGATES = ("sigmoid", "atan", "triangle", "rectangle")
KINDS = [("lif", True), ("lif", False), ("plif", True), ("plif", False), ("dalif", True), ("dalif_ch", True)]
TOL = {torch.float32: 1e-5, torch.float64: 1e-9}


def make(kind, backend, decay_input=True, **kw):
    """One neuron of ``kind``; non-trivial coefficients (tau=3 is not a power of two)."""
    if kind == "lif":
        return LIF(tau=3.0, decay_input=decay_input, backend=backend, **kw)
    if kind == "plif":
        return PLIF(init_tau=3.0, decay_input=decay_input, backend=backend, **kw)
    n = DALIF(per_channel=3 if kind == "dalif_ch" else None, backend=backend, **kw)
    if kind == "dalif_ch":
        with torch.no_grad():
            n.tau_a.copy_(torch.tensor([0.6, 1.2, 2.0]))
            n.tau_b.copy_(torch.tensor([0.1, 0.4, 0.9]))
    return n


def pair(kind, decay_input=True, dtype=torch.float64, **kw):
    eager = make(kind, "eager", decay_input, **kw).to(dtype)
    fast = make(kind, "fused", decay_input, **kw).to(dtype)
    fast.load_state_dict(eager.state_dict())
    return eager, fast


def run(neuron, x, gout):
    """Spikes and gradients w.r.t. ``x`` and every parameter."""
    x = x.detach().clone().requires_grad_(True)
    s = neuron(x)
    grads = torch.autograd.grad(s, [x, *neuron.parameters()], gout)
    return s.detach(), grads


def inputs(shape=(5, 2, 3, 4), dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype) * 1.5 + 1.0
    return x, torch.randn(shape, generator=g, dtype=dtype)


def assert_same(ref, got, tol):
    (s0, g0), (s1, g1) = ref, got
    assert torch.equal(s0, s1), "spikes differ"
    assert len(g0) == len(g1)
    for a, b in zip(g0, g1, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        torch.testing.assert_close(b, a, atol=tol, rtol=tol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("detach_reset", [False, True], ids=["live", "detach"])
@pytest.mark.parametrize("v_reset", [0.0, None, -0.3], ids=["hard0", "soft", "hard-0.3"])
@pytest.mark.parametrize("kind,decay_input", KINDS, ids=[f"{k}-{'di' if d else 'nodi'}" for k, d in KINDS])
def test_fused_matches_eager(kind, decay_input, v_reset, detach_reset, surrogate, dtype):
    eager, fast = pair(kind, decay_input, dtype, v_reset=v_reset, detach_reset=detach_reset, surrogate=surrogate)
    x, gout = inputs(dtype=dtype)
    ref = run(eager, x, gout)
    assert 0.1 < ref[0].mean() < 0.9  # both branches of the reset are exercised
    assert all(g.abs().sum() > 0 for g in ref[1])
    assert_same(ref, run(fast, x, gout), TOL[dtype])


@pytest.mark.parametrize("kind", ["lif", "plif", "dalif_ch"])
def test_float32_spikes_bit_identical_on_a_larger_input(kind):
    eager, fast = pair(kind, dtype=torch.float32)
    x, gout = inputs((4, 8, 3, 16, 16), torch.float32, seed=1)
    assert_same(run(eager, x, gout), run(fast, x, gout), 1e-5)


def test_sequence_of_one_step_and_noncontiguous_input():
    eager, fast = pair("plif", v_reset=None)
    x, gout = inputs((1, 3, 4))
    assert_same(run(eager, x, gout), run(fast, x, gout), 1e-9)
    x, gout = inputs((4, 6, 5))
    xt = x.transpose(1, 2)  # [T, 5, 6], not contiguous
    assert_same(run(eager, xt, gout.transpose(1, 2)), run(fast, xt, gout.transpose(1, 2)), 1e-9)


def test_no_grad_and_parameter_only_gradients():
    eager, fast = pair("dalif_ch")
    x, gout = inputs()
    with torch.no_grad():
        assert torch.equal(eager(x), fast(x))
    # input without grad: only the coefficients get gradients
    g_ref = torch.autograd.grad(eager(x), list(eager.parameters()), gout)
    g_fast = torch.autograd.grad(fast(x), list(fast.parameters()), gout)
    for a, b in zip(g_ref, g_fast, strict=True):
        torch.testing.assert_close(b, a, atol=1e-9, rtol=1e-9)


def test_functional_api_and_float_coefficients():
    x, gout = inputs()
    xg = x.clone().requires_grad_(True)
    s = fused.dalif_multistep(xg, 0.7, 0.3, v_reset=None, surrogate="atan")
    ref = DALIF(init_alpha=0.7, init_beta=0.3, v_reset=None, surrogate="atan", backend="eager").double()
    xr = x.clone().requires_grad_(True)
    assert torch.equal(s, ref(xr))
    (g1,) = torch.autograd.grad(s, xg, gout)
    (g0,) = torch.autograd.grad(ref(xr), xr, gout)
    torch.testing.assert_close(g1, g0, atol=1e-6, rtol=1e-6)  # alpha from tanh(atanh(.)) differs in the last bits
    with pytest.raises(ConfigError, match="lif_multistep"):
        fused.lif_multistep(torch.ones(4), 0.5)


# ----------------------------------------------------------------------------- backend option / dispatch
def test_backend_option_controls_dispatch(monkeypatch):
    calls = []
    real = fused.lif_multistep

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(fused, "lif_multistep", spy)
    x = torch.randn(3, 2, 4)
    LIF(backend="eager")(x)
    assert calls == []
    LIF()(x)  # auto
    PLIF(backend="fused")(x)
    assert len(calls) == 2
    with pytest.raises(ConfigError, match="backend must be one of"):
        LIF(backend="cuda")


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_auto_falls_back_to_eager_when_unsupported(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("fused path taken")

    monkeypatch.setattr(fused, "dalif_multistep", boom)
    monkeypatch.setattr(fused, "lif_multistep", boom)
    # per-channel coefficients of another dtype than the input: type promotion differs, so eager
    n = DALIF(per_channel=3)
    n(torch.randn(2, 2, 3, 4, dtype=torch.float64))
    with pytest.raises(ConfigError, match="backend='fused' cannot run"):
        DALIF(per_channel=3, backend="fused")(torch.randn(2, 2, 3, 4, dtype=torch.float64))
    # tracing sees the eager loop
    traced = torch.jit.trace(LIF(), torch.randn(3, 2, 4), check_trace=False)
    assert traced(torch.zeros(3, 2, 4)).shape == (3, 2, 4)


def test_cuda_without_triton_uses_torch_path(monkeypatch):
    monkeypatch.setattr(fused, "_is_cuda", lambda x: True)
    monkeypatch.setattr(fused, "_TRITON", None)
    monkeypatch.setitem(sys.modules, "triton", None)  # "import triton" now raises ImportError
    assert fused.triton_available() is False

    def no_kernels():
        raise AssertionError("triton kernels loaded")

    monkeypatch.setattr(fused, "_load_triton_kernels", no_kernels)
    eager, fast = pair("plif", dtype=torch.float32)
    x, gout = inputs(dtype=torch.float32)
    assert_same(run(eager, x, gout), run(fast, x, gout), 1e-5)


class FakeKernels:
    """Stands in for ``triton_kernels`` to observe the dispatch."""

    def __init__(self, ok):
        self.ok, self.calls = ok, []

    def supports(self, x, c1, c2, cfg):
        return self.ok

    def multistep(self, x, c1, c2, cfg):
        self.calls.append(cfg)
        return torch.full_like(x, 7.0)


@pytest.mark.parametrize("ok", [True, False])
def test_cuda_with_triton_dispatches_to_kernels_when_supported(monkeypatch, ok):
    fake = FakeKernels(ok)
    monkeypatch.setattr(fused, "_is_cuda", lambda x: True)
    monkeypatch.setattr(fused, "_TRITON", True)
    monkeypatch.setattr(fused, "_load_triton_kernels", lambda: fake)
    x = torch.randn(3, 2, 4)
    s = LIF(tau=2.0, detach_reset=True)(x)
    if ok:
        assert torch.all(s == 7.0) and fake.calls[0].mode == "lif_di" and fake.calls[0].detach_reset
    else:
        assert fake.calls == [] and torch.equal(s, LIF(tau=2.0, backend="eager")(x))


TRITON_SCRIPT = textwrap.dedent("""
    import sys, torch
    from spikeport.models.neurons import LIF, PLIF, DALIF, fused
    x = torch.randn(3, 2, 4, requires_grad=True)
    (LIF()(x).sum() + DALIF()(x).sum()).backward()
    print("TRITON IMPORTED ON CPU", "triton" in sys.modules)  # must stay False
    from spikeport.models.neurons import triton_kernels as tk
    bad = []
    cases = [("lif", 0.0, True, False, "sigmoid"), ("lif", None, False, True, "atan"),
             ("plif", -0.3, True, False, "triangle"), ("plif", None, False, False, "rectangle"),
             ("dalif", 0.0, True, False, "sigmoid"), ("dalif_ch", None, True, False, "atan")]
    for kind, vr, di, det, sg in cases:
        kw = dict(v_reset=vr, detach_reset=det, surrogate=sg)
        m = {"lif": lambda: LIF(tau=3.0, decay_input=di, **kw),
             "plif": lambda: PLIF(init_tau=3.0, decay_input=di, **kw),
             "dalif": lambda: DALIF(**kw), "dalif_ch": lambda: DALIF(per_channel=3, **kw)}[kind]()
        m.backend = "eager"
        x = (torch.randn(5, 2, 3, 4) * 1.2 + 0.6).requires_grad_()
        gout = torch.randn(5, 2, 3, 4)
        ps = list(m.parameters())
        ref = m(x)
        g_ref = torch.autograd.grad(ref, [x] + ps, gout)
        if kind in ("lif", "plif"):
            cfg, c1, c2 = fused._config("lif_di" if di else "lif", 1.0, vr, sg, det), m.inv_tau, None
        else:
            cfg, c1, c2 = fused._config("dalif", 1.0, vr, sg, det), m._bcast(m.alpha, x[0]), m._bcast(m.beta, x[0])
        assert tk.supports(x, c1, c2, cfg)
        s = tk.multistep(x, c1, c2, cfg)
        g = torch.autograd.grad(s, [x] + ps, gout)
        ok = torch.equal(s, ref) and all(torch.allclose(a, b, atol=1e-5, rtol=1e-5) for a, b in zip(g_ref, g))
        with torch.no_grad():
            ok = ok and torch.equal(tk.multistep(x, c1, c2, cfg), ref)
        if not ok:
            bad.append(kind)
    print("BAD", bad)
""")


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton not installed")
def test_triton_kernels_in_interpreter_mode_match_eager():
    """One subprocess: the CPU path never imports triton; the kernels (interpreted) match eager."""
    env = dict(os.environ, TRITON_INTERPRET="1")
    out = subprocess.run([sys.executable, "-c", TRITON_SCRIPT], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "TRITON IMPORTED ON CPU False" in out.stdout, out.stdout
    assert "BAD []" in out.stdout, out.stdout
