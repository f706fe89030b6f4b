"""Paper-method modules: TS-SNN temporal shift, STAA pieces, FSTA (math pinned on tiny examples)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spikeport.errors import ConfigError
from spikeport.models.methods import (
    FSTA,
    FSTALIF,
    GCBlock,
    STAABlock,
    StepAttention,
    TemporalPositionEncoding,
    TemporalShift,
    TimeStepRandomDropout,
    dct_basis_2d,
    fsta_lif,
)
from spikeport.models.neurons import LIF


def _n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ============================================================== TemporalShift
def test_temporal_shift_hand_example():
    # T=3, B=1, C=4, fold_div=4 -> one channel per segment, fixed split (1, 2):
    # channel 0 reads t+1, channel 1 reads t-1, channels 2 and 3 stay.
    ts = TemporalShift(4, fold_div=4, alpha_init=0.5)
    x = torch.arange(12, dtype=torch.float32).view(3, 1, 4, 1, 1)  # x[t, 0, c] = 4t + c
    z_expected = torch.tensor([[4.0, 0.0, 2.0, 3.0],
                               [8.0, 1.0, 6.0, 7.0],
                               [0.0, 5.0, 10.0, 11.0]])
    assert torch.equal(ts.shift(x).view(3, 4), z_expected)
    out = ts(x).view(3, 4)
    assert torch.allclose(out, 0.5 * z_expected + x.view(3, 4))


def test_temporal_shift_exactly_one_parameter_and_its_gradient():
    ts = TemporalShift(64)
    params = list(ts.parameters())
    assert len(params) == 1 and params[0].numel() == 1
    assert ts.alpha.item() == pytest.approx(0.3)
    x = torch.randn(4, 2, 64, 3, 3)
    ts(x).sum().backward()
    assert ts.alpha.grad is not None
    assert float(ts.alpha.grad) == pytest.approx(float(ts.shift(x).sum()), rel=1e-5)


def test_temporal_shift_default_split_fractions():
    ts = TemporalShift(64)  # C_k=32, C_fold=2, split (8, 16): 16 future, 16 past, 32 unshifted
    assert ts.split == (8, 16) and ts.channel_counts() == (16, 16)
    assert not ts.is_causal


def test_temporal_shift_few_channels_and_remainder():
    small = TemporalShift(8, fold_div=32)  # C < C_k: one channel per segment
    assert small.segments == 8 and small.fold == 1 and small.channel_counts() == (2, 2)
    rescaled = TemporalShift(8, fold_div=32, split=(8, 16))  # explicit split rescaled by 8/32
    assert rescaled.split == (2, 4)
    rem = TemporalShift(10, fold_div=4)  # C_fold = 2, remainder channels unshifted
    assert rem.channel_counts() == (2, 2)
    x = torch.randn(2, 1, 10, 1, 1)
    assert torch.equal(rem.shift(x)[:, :, 4:], x[:, :, 4:])
    tiny = TemporalShift(1)
    assert tiny.channel_counts() == (0, 0) and tiny.is_causal
    assert torch.allclose(tiny(x[:, :, :1]), 1.3 * x[:, :, :1])


def test_temporal_shift_single_step_zero_pads():
    ts = TemporalShift(4, fold_div=4, alpha_init=1.0)
    x = torch.ones(1, 2, 4, 2, 2)
    z = ts.shift(x)
    assert torch.equal(z[:, :, :2], torch.zeros(1, 2, 2, 2, 2))
    assert torch.equal(z[:, :, 2:], x[:, :, 2:])


def test_temporal_shift_causal_split_and_random_mode():
    assert TemporalShift(8, fold_div=8, split=(0, 4)).is_causal  # past only
    ts = TemporalShift(32, fold_div=8, split_mode="random")
    x = torch.randn(3, 2, 32, 2, 2)
    ts.eval()
    fixed = TemporalShift(32, fold_div=8)
    fixed.load_state_dict(ts.state_dict())
    assert torch.equal(ts(x), fixed.eval()(x))  # eval uses the frozen fixed split
    ts.train()
    torch.manual_seed(0)
    draws = {ts._draw_split() for _ in range(50)}
    assert len(draws) > 3 and all(0 < g1 < g2 < 8 for g1, g2 in draws)
    torch.manual_seed(1)
    a = ts(x)
    torch.manual_seed(1)
    assert torch.equal(a, ts(x))  # reproducible under a seed


@pytest.mark.parametrize("kw", [{"channels": 0}, {"channels": 8, "fold_div": 0}, {"channels": 8, "split_mode": "x"},
                                {"channels": 8, "split": (3, 2)}, {"channels": 8, "split": (1, 40)}])
def test_temporal_shift_bad_options(kw):
    with pytest.raises(ConfigError, match="TemporalShift"):
        TemporalShift(**kw)


def test_temporal_shift_wrong_channels():
    with pytest.raises(ConfigError, match=r"TemporalShift\(8\)"):
        TemporalShift(8)(torch.zeros(2, 1, 4, 3, 3))


# ============================================================== STAA
def test_position_encoding_adds_per_step_offset_and_checks_t():
    pe = TemporalPositionEncoding(3, 2)
    with torch.no_grad():
        pe.pos.copy_(torch.arange(6, dtype=torch.float32).view(3, 2, 1, 1))
    x = torch.zeros(3, 4, 2, 2, 2)
    y = pe(x)
    assert torch.equal(y[2, 1, 1], torch.full((2, 2), 5.0))
    assert _n_params(pe) == 6
    with pytest.raises(ConfigError, match=r"TemporalPositionEncoding: built for T=3 .* T=2"):
        pe(torch.zeros(2, 1, 2, 2, 2))


def test_gc_block_matches_loop_reference():
    torch.manual_seed(0)
    gc = GCBlock(8, reduction=4)
    x = torch.randn(2, 3, 8, 3, 4)
    y = gc(x)
    for t in range(2):
        for b in range(3):
            xs = x[t, b]  # [C, H, W]
            logits = (gc.context.weight.view(8, 1, 1) * xs).sum(0) + gc.context.bias
            a = torch.softmax(logits.flatten(), 0).view(3, 4)
            ctx = (xs * a).sum(dim=(1, 2))  # [C]
            w1, b1 = gc.transform[0].weight.view(2, 8), gc.transform[0].bias
            h = w1 @ ctx + b1
            h = (h - h.mean()) / torch.sqrt(h.var(unbiased=False) + 1e-5)
            h = h * gc.transform[1].weight.flatten() + gc.transform[1].bias.flatten()
            v = gc.transform[3].weight.view(8, 2) @ torch.relu(h) + gc.transform[3].bias
            assert torch.allclose(y[t, b], xs * torch.sigmoid(v).view(8, 1, 1), atol=1e-5)
    assert _n_params(gc) == (8 + 1) + (8 * 2 + 2) + 2 * 2 + (2 * 8 + 8)


def test_step_attention_weights_shape_and_values():
    sa = StepAttention(3)
    with torch.no_grad():
        sa.fc[0].weight.copy_(torch.eye(3).view(3, 3, 1))
        sa.fc[0].bias.zero_()
        sa.fc[2].weight.copy_(2 * torch.eye(3).view(3, 3, 1))
        sa.fc[2].bias.fill_(-1.0)
    x = torch.zeros(3, 2, 4, 2, 2)
    x[1, 0] = 1.0  # step 1 of sample 0 fully active
    x[2, 1, :2] = 1.0  # step 2 of sample 1 half active
    w = sa.weights(x)
    assert w.shape == (3, 2)
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.5]])
    assert torch.allclose(w, torch.sigmoid(2 * torch.relu(z) - 1))
    assert torch.allclose(sa(x), x * w[..., None, None, None])
    with pytest.raises(ConfigError, match="StepAttention: built for T=3"):
        sa(torch.zeros(2, 1, 1, 1, 1))


def test_tsrd_inactive_in_eval_and_rate_in_training():
    d = TimeStepRandomDropout(0.5)
    x = torch.ones(64, 64, 1, 1, 1)
    d.eval()
    assert d.keep_mask(x) is None and torch.equal(d(x), x)
    d.train()
    torch.manual_seed(0)
    m = d.keep_mask(x)
    assert m.shape == (64, 64, 1, 1, 1) and set(m.unique().tolist()) == {0.0, 1.0}
    assert 0.45 < float(m.mean()) < 0.55
    with pytest.raises(ConfigError, match="TimeStepRandomDropout"):
        TimeStepRandomDropout(1.0)


def test_staa_block_order_and_bypass():
    torch.manual_seed(0)
    blk = STAABlock(8, timesteps=3, neuron="lif")
    x = 2 * torch.rand(3, 2, 8, 4, 4)
    blk.eval()
    with torch.no_grad():
        blk.pe.pos.normal_()
        s = blk.neuron(blk.gc(blk.pe(x)))
        expected = s * blk.sa.weights(s)[..., None, None, None]
        assert torch.equal(blk(x), expected)
        assert torch.equal(blk(x), blk(x))  # deterministic in eval
    # training with every step dropped: plain neuron, no attention
    blk.train()
    blk.tsrd.keep_mask = lambda t: torch.zeros(t.shape[0], t.shape[1], 1, 1, 1)
    with torch.no_grad():
        assert torch.equal(blk(x), blk.neuron(x))
    with pytest.raises(ConfigError, match="STAABlock: built for T=3"):
        blk(torch.zeros(2, 1, 8, 4, 4))


def test_staa_block_parameter_count_and_default_neuron():
    c, t = 16, 4
    blk = STAABlock(c, timesteps=t)
    h = c // 4
    gc = (c + 1) + (c * h + h) + 2 * h + (h * c + c)
    sa = (t * t + t) * 2
    assert _n_params(blk) == t * c + gc + sa + 2  # + DA-LIF's two decays
    assert type(blk.neuron).__name__ == "DALIF"


# ============================================================== FSTA
def test_dct_basis_orthonormal_and_golden_values():
    for n in (7, 3):
        b = dct_basis_2d(n).view(n * n, n * n)
        assert torch.allclose(b @ b.t(), torch.eye(n * n), atol=1e-6)
    b7 = dct_basis_2d(7)
    # values of the official table (data/dct_filter.py, DCT7x7)
    assert float(b7[0, 2, 5]) == pytest.approx(1 / 7, abs=1e-6)
    assert float(b7[48, 3, 3]) == pytest.approx(0.2857, abs=1e-4)
    assert float(b7[48, 0, 0]) == pytest.approx(0.0141, abs=1e-4)
    # upstream order: basis 1 is constant along each row (varies down the rows), basis 7 along columns
    assert torch.allclose(b7[1], b7[1, :, :1].expand(7, 7))
    assert torch.allclose(b7[7], b7[7, :1, :].expand(7, 7))
    from scipy.fft import idctn

    for k in (5, 23, 40):
        e = np.zeros((7, 7))
        e[k % 7, k // 7] = 1.0  # [row freq, column freq]
        assert np.allclose(b7[k].numpy(), idctn(e, norm="ortho"), atol=1e-6)


@pytest.mark.parametrize("t", [1, 2, 4])
def test_fsta_parameter_count(t):
    m = FSTA(32, timesteps=t)
    assert _n_params(m) == 2401 + t * t + 4
    assert "dct_basis" in dict(m.named_buffers()) and "dct_basis" not in m.state_dict()
    assert not any(p.shape == (49, 1, 7, 7) for p in m.parameters())
    r = FSTA(32, timesteps=t, reduction=2)
    assert _n_params(r) == 49 * 24 * 49 + 24 * 49 + t * t + 4


def test_fsta_refuses_8x8_dct_and_bad_t():
    with pytest.raises(ConfigError, match="freq_num=64"):
        FSTA(8, 2, freq_num=64)
    with pytest.raises(ConfigError, match="freq_num"):
        FSTA(8, 2, freq_num=16)
    with pytest.raises(ConfigError, match="FSTA: built for T=2"):
        FSTA(8, 2)(torch.zeros(3, 1, 8, 4, 4))


def test_fsta_temporal_attention_matches_hand_loop():
    torch.manual_seed(0)
    m = FSTA(2, timesteps=2)
    with torch.no_grad():
        m.fc_t.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
        m.alpha.fill_(0.3)
        m.beta.fill_(0.7)
    x = torch.randn(2, 1, 2, 2, 2)
    w = m.temporal_weights(x).detach()
    a = [[0.3 * float(x[t, 0, c].mean()) + 0.7 * float(x[t, 0, c].max()) for c in range(2)] for t in range(2)]
    wt = m.fc_t.weight.detach()
    for tp in range(2):
        f = [sum(float(wt[tp, t]) * a[t][c] for t in range(2)) for c in range(2)]
        assert float(w[tp, 0]) == pytest.approx(1 / (1 + math.exp(-(f[0] + f[1]) / 2)), rel=1e-5)


def _fsta_reference(m: FSTA, x: torch.Tensor) -> torch.Tensor:
    """The official formulation: [B, T, C, H, W] layout, channel-repeated DCT weight, bias-free conv."""
    t, b, c, h, w = x.shape
    xb = x.permute(1, 0, 2, 3, 4)
    a = m.alpha * xb.mean(dim=(3, 4)) + m.beta * xb.amax(dim=(3, 4))  # [B, T, C]
    f = m.fc_t(a.transpose(1, 2)).transpose(1, 2)  # [B, T, C]
    wt = torch.sigmoid(f.mean(dim=2))[..., None, None, None]
    x_t = xb * wt + xb
    weight = dct_basis_2d(7).unsqueeze(1).repeat(1, c, 1, 1)  # [49, C, 7, 7]
    d = F.conv2d(x_t.mean(dim=1), weight, torch.zeros(49), padding=3)
    s = m.freq_attention(d).unsqueeze(1)
    x_s = x_t * torch.sigmoid(s) + x_t
    return ((x_t * m.theta_t + x_s * m.theta_s) / 2).permute(1, 0, 2, 3, 4)


def test_fsta_forward_matches_official_formulation():
    torch.manual_seed(1)
    m = FSTA(6, timesteps=3)
    x = torch.randn(3, 2, 6, 5, 5)
    assert torch.allclose(m(x), _fsta_reference(m, x), atol=1e-5)


def test_fsta_lif_golden_trajectory():
    lif = fsta_lif()
    assert isinstance(lif, LIF) and lif.inv_tau == pytest.approx(0.75)
    # u: 0.4 -> 0.25*0.4+0.45=0.55 (spike, reset) -> 0.3 -> 0.075+0.6=0.675 (spike)
    y = torch.tensor([0.4, 0.45, 0.3, 0.6]).view(4, 1)
    assert lif(y).flatten().tolist() == [0.0, 1.0, 0.0, 1.0]


def test_fsta_lif_module_composition():
    torch.manual_seed(2)
    m = FSTALIF(4, timesteps=2)
    x = torch.randn(2, 3, 4, 6, 6)
    assert torch.equal(m(x), m.neuron(m.fsta(x)))
    assert _n_params(m) == 2401 + 4 + 4
    relu = FSTALIF(4, timesteps=2, neuron="relu")
    assert torch.allclose(relu(x), torch.relu(relu.fsta(x)))


def test_causality_flags():
    assert not FSTA(4, 2).is_causal and not FSTALIF(4, 2).is_causal
    assert not STAABlock(4, 2).is_causal and not StepAttention(2).is_causal
    assert GCBlock(4).is_causal and TemporalPositionEncoding(2, 4).is_causal


def _fsta_reductions(model: torch.nn.Module) -> dict[str, int]:
    return {name: m.reduction for name, m in model.named_modules() if isinstance(m, FSTA)}


def test_fsta_resnet19_is_wired_as_the_official_code():
    """Official ResNet19: reduction 1 reaches the stem only (its _make_layer does not pass it on), the 16 block
    attentions keep reduction 16; the uniform variant is the named option block_reduction=None."""
    from pathlib import Path

    from spikeport.models import create_model
    from spikeport.training.recipe import load_recipe

    official = create_model("fsta_resnet19", num_classes=100)
    red = _fsta_reductions(official)
    assert red.pop("stem.2.fsta") == 1 and len(red) == 16 and set(red.values()) == {16}
    uniform = create_model("fsta_resnet19", num_classes=100, block_reduction=None)
    assert set(_fsta_reductions(uniform).values()) == {1}
    per_block = 49 * 3 * 49 + 3 * 49 - 49 * 49  # conv weights of a reduction-16 attention minus reduction-1's
    assert _n_params(official) - _n_params(uniform) == 16 * per_block
    # the docstring's measured counts are this model's
    from spikeport.models.backbones.resnet import fsta_resnet19

    assert f"{_n_params(official):,}" in fsta_resnet19.__doc__ and f"{_n_params(uniform):,}" in fsta_resnet19.__doc__
    # the CIFAR-100 recipe builds the official wiring
    recipe = load_recipe(Path(__file__).resolve().parents[2] / "configs" / "fsta_cifar100.toml")
    opts = recipe.train["model_options"]
    assert (opts["reduction"], opts["block_reduction"]) == (1, 16)


def test_fsta_resnet20_passes_reduction_everywhere():
    """Official ResNet20's _make_layer passes reduction on: stem and blocks share it (1 in its config)."""
    from spikeport.models import create_model
    from spikeport.models.backbones.resnet import fsta_resnet20

    m = create_model("fsta_resnet20")
    red = _fsta_reductions(m)
    assert len(red) == 19 and set(red.values()) == {1}
    assert set(_fsta_reductions(create_model("fsta_resnet20", reduction=4)).values()) == {4}
    assert f"{_n_params(m):,}" in fsta_resnet20.__doc__
