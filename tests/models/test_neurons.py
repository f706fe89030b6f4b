"""Golden-trajectory tests: membrane and spikes pinned step by step (hand-computed)."""

import math

import pytest
import torch

from spikeport.errors import ConfigError
from spikeport.models.neurons import DALIF, IF, LIF, PLIF, CubaLIF, create_neuron
from spikeport.models.neurons import functional as F
from spikeport.models.neurons.surrogate import SURROGATES, Surrogate, get_surrogate, heaviside


def trajectory(neuron, xs):
    """Run ``step`` over scalar inputs, return (spikes, membranes after reset)."""
    x0 = torch.tensor([xs[0]], dtype=torch.float64)
    state = neuron.init_state(x0)
    spikes, mems = [], []
    for x in xs:
        s, state = neuron.step(torch.tensor([x], dtype=torch.float64), state)
        v = state.v if isinstance(state, F.CubaState) else state
        spikes.append(float(s.detach()))
        mems.append(float(v.detach()))
    return spikes, mems


def test_lif_hard_reset_decay_input():
    s, v = trajectory(LIF(tau=2.0), [1.5, 0.5, 1.5, 0.0])
    assert s == [0, 0, 1, 0]
    assert v == pytest.approx([0.75, 0.625, 0.0, 0.0])


def test_lif_soft_reset():
    s, v = trajectory(LIF(tau=2.0, v_reset=None), [1.5, 0.5, 1.5, 0.0])
    assert s == [0, 0, 1, 0]
    assert v == pytest.approx([0.75, 0.625, 0.0625, 0.03125])


def test_lif_no_decay_input():
    s, v = trajectory(LIF(tau=2.0, decay_input=False), [0.6, 0.6, 0.6, 0.6])
    assert s == [0, 0, 1, 0]
    assert v == pytest.approx([0.6, 0.9, 0.0, 0.6])


def test_lif_nonzero_reset_leaks_towards_reset():
    # v_reset=-0.5: H = V + (x - (V - V_reset))/tau
    s, v = trajectory(LIF(tau=2.0, v_reset=-0.5), [0.0, 3.0])
    assert v[0] == pytest.approx(-0.25)  # 0 + (0 - (0 + 0.5))/2
    assert s == [0, 1] and v[1] == pytest.approx(-0.5)


def test_if_hard_and_soft():
    s, v = trajectory(IF(), [0.4, 0.4, 0.4, 0.4])
    assert s == [0, 0, 1, 0] and v == pytest.approx([0.4, 0.8, 0.0, 0.4])
    s, v = trajectory(IF(v_reset=None), [0.4, 0.4, 0.4, 0.4])
    assert s == [0, 0, 1, 0] and v == pytest.approx([0.4, 0.8, 0.2, 0.6])


def test_threshold_tie_fires():
    s, _ = trajectory(IF(), [1.0])
    assert s == [1.0]


def test_dalif_trajectory_and_params():
    n = DALIF(init_alpha=0.9, init_beta=0.25)
    s, v = trajectory(n, [1.0, 1.0, 1.0])
    assert s == [0, 1, 0] and v == pytest.approx([0.9, 0.0, 0.9])
    assert sum(p.numel() for p in n.parameters()) == 2
    assert float(n.alpha.detach()) == pytest.approx(0.9) and float(n.beta.detach()) == pytest.approx(0.25)


def test_dalif_per_channel():
    n = DALIF(per_channel=3)
    assert sum(p.numel() for p in n.parameters()) == 6
    with torch.no_grad():
        n.tau_b[1] = math.atanh(0.5)
    x = torch.ones(2, 1, 3, 2, 2)
    out = n(x)
    assert out.shape == x.shape
    with pytest.raises(ConfigError, match="per_channel=3"):
        n(torch.ones(2, 1, 4, 2, 2))


def test_cuba_lif_trajectory():
    s, v = trajectory(CubaLIF(i_decay=0.5, v_decay=0.5), [1.0, 0.0, 0.0, 0.0])
    assert s == [1, 0, 0, 0]
    assert v == pytest.approx([0.0, 0.5, 0.5, 0.375])


def test_plif_matches_lif_and_learns_tau():
    x = torch.rand(6, 3, 5) * 2
    p, lif = PLIF(init_tau=2.0), LIF(tau=2.0)
    assert torch.equal(p(x), lif(x))
    xr = x.clone().requires_grad_(True)
    p(xr).sum().backward()
    assert p.w.grad is not None and torch.isfinite(p.w.grad)
    assert p.tau == pytest.approx(2.0)


def test_forward_starts_from_zero_state_every_call():
    n = LIF()
    x = torch.rand(4, 2, 3) * 3
    a, b = n(x), n(x)
    assert torch.equal(a, b)


def test_multistep_forward_equals_step_loop():
    n = LIF(tau=3.0, v_reset=None)
    x = torch.randn(5, 2, 4)
    state = n.init_state(x[0])
    outs = []
    for t in range(5):
        s, state = n.step(x[t], state)
        outs.append(s)
    assert torch.equal(n(x), torch.stack(outs))


@pytest.mark.parametrize("name", ["sigmoid", "atan", "triangle", "rectangle"])
def test_surrogate_grad_at_zero_and_unit_integral(name):
    sg = Surrogate(name)
    x = torch.zeros(1, requires_grad=True)
    heaviside(x, name).sum().backward()
    assert float(x.grad) == pytest.approx(1.0)
    grid = torch.linspace(-20, 20, 400001, dtype=torch.float64)
    integral = torch.trapezoid(sg.grad(grid), grid)
    # atan has heavy tails: its mass inside [-20, 20] is (2/pi) atan(pi * alpha * 20 / 2)
    expected = 2 / math.pi * math.atan(math.pi * sg.sharpness * 10) if name == "atan" else 1.0
    assert float(integral) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("k", [1.0, 3.0])
def test_tanh_clip_is_fsta_official_surrogate(k):
    # FSTA-SNN's surrogate: d/du [tanh(k(clip(u,0,1) - 0.5)) + tanh(k/2)] / (2 tanh(k/2)), fire at u = 0.5
    u = torch.tensor([-0.3, 0.0001, 0.2, 0.5, 0.73, 0.9999, 1.4], dtype=torch.float64, requires_grad=True)
    g = (torch.tanh(k * (u.clamp(0, 1) - 0.5)) + math.tanh(k / 2)) / (2 * math.tanh(k / 2))
    (want,) = torch.autograd.grad(g.sum(), u)
    x = (u.detach() - 0.5).requires_grad_(True)
    heaviside(x, "tanh_clip", k).sum().backward()
    assert torch.allclose(x.grad, want, atol=1e-12)
    assert float(x.grad[0]) == 0.0 and float(x.grad[-1]) == 0.0
    grid = torch.linspace(-1, 1, 200001, dtype=torch.float64)
    assert float(torch.trapezoid(Surrogate("tanh_clip", k).grad(grid), grid)) == pytest.approx(1.0, abs=1e-4)


def test_surrogate_forward_is_exact_step():
    x = torch.tensor([-1e-6, 0.0, 1e-6])
    for name in SURROGATES.names():
        assert heaviside(x, name).tolist() == [0.0, 1.0, 1.0]


def test_surrogate_alpha_changes_sharpness():
    x = torch.zeros(1, requires_grad=True)
    n = LIF(surrogate="sigmoid", alpha=8.0)
    assert n.surrogate.sharpness == 8.0
    heaviside(x, "sigmoid", 8.0).sum().backward()
    assert float(x.grad) == pytest.approx(2.0)


def test_detach_reset_changes_gradient_only():
    x = (torch.rand(6, 4, 8) * 2).requires_grad_(True)
    a, b = LIF(detach_reset=False), LIF(detach_reset=True)
    ya, yb = a(x), b(x)
    assert torch.equal(ya, yb)
    ga, = torch.autograd.grad(ya.sum(), x)
    gb, = torch.autograd.grad(b(x).sum(), x)
    assert not torch.allclose(ga, gb)


def test_bad_neuron_options():
    with pytest.raises(ConfigError, match="tau"):
        LIF(tau=0.5)
    with pytest.raises(ConfigError, match="v_threshold"):
        IF(v_threshold=0.0)
    with pytest.raises(ConfigError, match="did you mean 'atan'"):
        get_surrogate("atann")
    with pytest.raises(ConfigError, match="expected input"):
        LIF()(torch.ones(3))
    with pytest.raises(ConfigError, match="unknown neuron"):
        create_neuron("lifx")
    with pytest.raises(ConfigError, match="bad options"):
        create_neuron("lif", taux=3)


def test_relu_neuron_ignores_spiking_options():
    assert isinstance(create_neuron("relu", tau=2.0), torch.nn.ReLU)
