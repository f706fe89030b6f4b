"""Distillation losses: limiting cases, hand-computed values, head/tail masks, registry."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from spikeport.errors import ConfigError
from spikeport.training import kd
from spikeport.training.losses import LOSSES, create_loss, needs_teacher


def _logits(t: int, b: int, k: int, seed: int = 0, scale: float = 2.0) -> torch.Tensor:
    return torch.randn(t, b, k, generator=torch.Generator().manual_seed(seed)) * scale


def _manual_kl(a_logits: torch.Tensor, b_logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Per-row KL(softmax(a/tau) || softmax(b/tau)) written out with probabilities."""
    pa, pb = torch.softmax(a_logits / tau, -1), torch.softmax(b_logits / tau, -1)
    return (pa * (pa.log() - pb.log())).sum(-1)


# ---------------------------------------------------------------- registry


def test_kd_losses_are_registered_with_the_kd_tag():
    create_loss("ce")  # loads kd
    assert set(LOSSES.names("kd")) == {"kl", "hta_kl", "tser"}
    assert needs_teacher("hta_kl") and needs_teacher("tser") and needs_teacher("kl")
    assert not needs_teacher("ce") and not needs_teacher("tet")


@pytest.mark.parametrize("bad, close", [("hta-kl", "hta_kl"), ("tsr", "tser"), ("htakl", "hta_kl")])
def test_unknown_loss_lists_close_matches(bad, close):
    with pytest.raises(ConfigError, match=f"unknown loss '{bad}'.*did you mean '{close}'"):
        create_loss(bad)


@pytest.mark.parametrize("name, opts, what", [
    ("kl", {"alpha": 1.5}, "alpha"), ("kl", {"tau": 0}, "tau"), ("hta_kl", {"delta": 1.0}, "delta"),
    ("hta_kl", {"lamb": -1}, "lamb"), ("tser", {"entropy_sign": "up"}, "entropy_sign"),
    ("tser", {"entropy_where": "some"}, "entropy_where"), ("tser", {"gamma": float("nan")}, "gamma"),
    ("kl", {"temperature": 4}, "bad options"),
])
def test_bad_options_raise_config_error(name, opts, what):
    with pytest.raises(ConfigError, match=what):
        create_loss(name, **opts)


@pytest.mark.parametrize("name", ["kl", "hta_kl", "tser"])
def test_missing_or_mismatched_teacher_is_a_config_error(name):
    loss = create_loss(name)
    out, y = _logits(2, 4, 5), torch.tensor([0, 1, 2, 3])
    with pytest.raises(ConfigError, match="needs teacher logits"):
        loss(out, y, None)
    with pytest.raises(ConfigError, match=r"do not match the student's \[B=4, K=5\]"):
        loss(out, y, torch.zeros(4, 7))
    with pytest.raises(ConfigError, match=r"per-step logits \[T, B, K\]"):
        loss(out[0], y, torch.zeros(4, 5))


# ---------------------------------------------------------------- limiting cases


@pytest.mark.parametrize("name", ["kl", "hta_kl", "tser"])
def test_identical_student_and_teacher_give_exactly_zero_kd_term(name):
    # every step equals the teacher, so mean-over-time and per-step logits both match it
    step = _logits(1, 6, 10, seed=3)[0]
    out = step.unsqueeze(0).expand(3, 6, 10).clone()
    y = torch.arange(6) % 10
    teacher = step.clone()
    if name == "kl":
        assert kd.kd_kl_term(out.mean(0), teacher, 4.0).item() == 0.0
        got = create_loss("kl", alpha=0.7, tau=4.0)(out, y, teacher)
        assert torch.equal(got, 0.3 * F.cross_entropy(out.mean(0), y))
    elif name == "hta_kl":
        for per_sample in (True, False):
            assert kd.hta_kl_term(out.mean(0), teacher, 4.0, per_sample=per_sample).item() == 0.0
        got = create_loss("hta_kl")(out, y, teacher)
        assert torch.equal(got, F.cross_entropy(out.mean(0), y))
    else:
        terms = kd.tser_terms(out, y, teacher, tau=5.0)
        assert terms.kl.item() == 0.0


def test_teacher_given_over_time_is_averaged():
    out, y = _logits(2, 5, 4, seed=1), torch.tensor([0, 1, 2, 3, 0])
    t_seq = _logits(3, 5, 4, seed=2)
    for name in ("kl", "hta_kl", "tser"):
        loss = create_loss(name)
        assert torch.allclose(loss(out, y, t_seq), loss(out, y, t_seq.mean(0)), atol=1e-6)


@pytest.mark.parametrize("name", ["kl", "hta_kl", "tser"])
def test_gradients_finite_for_extreme_logits(name):
    out = (_logits(2, 8, 10, seed=4, scale=1.0) * 1e4).requires_grad_(True)
    teacher = _logits(1, 8, 10, seed=5, scale=1.0)[0] * 1e4
    y = torch.arange(8) % 10
    loss = create_loss(name)(out, y, teacher)
    loss.backward()
    assert math.isfinite(loss.item())
    assert torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0


def test_kl_matches_hinton_formula():
    out, y, t = _logits(3, 5, 6, seed=6), torch.tensor([1, 2, 3, 4, 5]), _logits(1, 5, 6, seed=7)[0]
    alpha, tau = 0.4, 3.0
    z = out.mean(0)
    want = (1 - alpha) * F.cross_entropy(z, y) + alpha * tau**2 * _manual_kl(t, z, tau).mean()
    assert torch.allclose(create_loss("kl", alpha=alpha, tau=tau)(out, y, t), want, atol=1e-6)
    # alpha=0 is plain CE on mean-over-time logits
    assert torch.equal(create_loss("kl", alpha=0.0)(out, y, t), F.cross_entropy(z, y))


# ---------------------------------------------------------------- HTA-KL head/tail


def test_head_mask_on_hand_example():
    q = torch.tensor([[0.30, 0.15, 0.35, 0.20],   # sorted: c2 .35, c0 .30, c3 .20, c1 .15
                      [0.10, 0.60, 0.20, 0.10]])  # confident teacher: top-1 c1 = .60 > delta
    head = kd.head_tail_mask(q, delta=0.5)
    # S_{i-1} < 0.5: c2 (0) and c0 (.35) in head; c3 (.65), c1 (.85) tail
    assert head.tolist() == [[True, False, True, False], [False, True, False, False]]
    literal = kd.head_tail_mask(q, delta=0.5, include_top1=False)
    # S_i < 0.5: only c2 (.35); the confident teacher's head is empty
    assert literal.tolist() == [[False, False, True, False], [False, False, False, False]]
    assert head.sum(-1).min() >= 1  # the RECON rule never leaves the head empty


def test_hta_kl_term_matches_hand_formula_per_sample_and_batch():
    tau = 2.0
    s = torch.tensor([[1.0, 0.0, -1.0, 0.5], [0.2, 2.0, 0.1, -0.3]])
    t = torch.tensor([[2.0, -1.0, 0.0, 1.0], [0.0, 3.0, 0.5, 0.5]])
    p, q = torch.softmax(s / tau, -1), torch.softmax(t / tau, -1)
    head = kd.head_tail_mask(q).float()
    gap = (q - p).abs()
    dh, dt = (gap * head).sum(-1), (gap * (1 - head)).sum(-1)
    fkl, rkl = _manual_kl(t, s, tau), _manual_kl(s, t, tau)
    wh = dh / (dh + dt)
    want_sample = (wh * fkl + (1 - wh) * rkl).mean()
    assert torch.allclose(kd.hta_kl_term(s, t, tau, per_sample=True), want_sample, atol=1e-6)
    whb = dh.sum() / (dh.sum() + dt.sum())
    want_batch = whb * fkl.mean() + (1 - whb) * rkl.mean()
    assert torch.allclose(kd.hta_kl_term(s, t, tau, per_sample=False), want_batch, atol=1e-6)
    assert not torch.allclose(want_sample, want_batch)
    # total loss = CE + lamb * tau^2 * term
    out, y = s.unsqueeze(0), torch.tensor([0, 1])
    got = create_loss("hta_kl", tau=tau, lamb=0.5)(out, y, t)
    assert torch.allclose(got, F.cross_entropy(s, y) + 0.5 * tau**2 * want_sample, atol=1e-6)


def test_hta_kl_weights_are_detached_by_default():
    s = torch.tensor([[1.0, 0.0, -1.0, 0.5]], requires_grad=True)
    t = torch.tensor([[2.0, -1.0, 0.0, 1.0]])
    g_det = torch.autograd.grad(kd.hta_kl_term(s, t, 2.0), s)[0]
    g_live = torch.autograd.grad(kd.hta_kl_term(s, t, 2.0, detach_weights=False), s)[0]
    assert torch.isfinite(g_det).all() and not torch.allclose(g_det, g_live)


def test_hta_kl_single_class_head_splits_the_l1_gap_evenly():
    # probabilities sum to 1, so a one-class head carries exactly half of the L1 gap
    s = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    t = torch.tensor([[6.0, 0.0, 0.0, 0.0]])
    q, p = torch.softmax(t / 4, -1), torch.softmax(s / 4, -1)
    head = kd.head_tail_mask(q)
    assert head.tolist() == [[True, False, False, False]]
    gap = (q - p).abs()
    w_head = (gap * head).sum() / gap.sum()
    assert w_head.item() == pytest.approx(0.5, abs=1e-6)  # L1 mass is balanced: |dq_top| = sum of tail gaps


# ---------------------------------------------------------------- TSER


def test_tser_t1_equals_per_step_formula_by_hand():
    alpha, gamma, tau = 0.3, 0.05, 5.0
    o = torch.tensor([[[1.0, -0.5, 0.2], [0.0, 2.0, -1.0]]])  # T=1, B=2, K=3
    t = torch.tensor([[0.5, 0.5, -1.0], [-1.0, 1.0, 3.0]])
    y = torch.tensor([0, 2])
    logp = torch.log(torch.softmax(o[0], -1))
    ce = -(logp[0, 0] + logp[1, 2]) / 2
    p, q = torch.softmax(o[0] / tau, -1), torch.softmax(t / tau, -1)
    kl = (q * (q.log() - p.log())).sum(-1).mean()
    ent = -(p * p.log()).sum(-1).mean()
    want = (1 - alpha) * ce + alpha * tau**2 * kl - gamma * ent
    got = create_loss("tser", alpha=alpha, gamma=gamma, tau=tau)(o, y, t)
    assert torch.allclose(got, want, atol=1e-6)


def test_tser_is_per_step_not_fused():
    # two steps whose mean equals the teacher: fused KD would be 0, TSER's per-step KL is not
    t = torch.tensor([[1.0, 0.0, -1.0]])
    o = torch.stack([t + torch.tensor([[2.0, -2.0, 0.0]]), t - torch.tensor([[2.0, -2.0, 0.0]])])
    y = torch.tensor([0])
    assert kd.kd_kl_term(o.mean(0), t, 5.0).item() == pytest.approx(0.0, abs=1e-7)
    terms = kd.tser_terms(o, y, t, tau=5.0)
    want_kl = (_manual_kl(t, o[0], 5.0) + _manual_kl(t, o[1], 5.0)).mean() / 2
    assert terms.kl.item() > 1e-3 and torch.allclose(terms.kl, want_kl, atol=1e-6)
    want_ce = (F.cross_entropy(o[0], y) + F.cross_entropy(o[1], y)) / 2
    assert torch.allclose(terms.ce, want_ce, atol=1e-6)


def test_tser_entropy_sign_and_where():
    out, y, t = _logits(2, 6, 5, seed=8), torch.tensor([0, 1, 2, 3, 4, 0]), _logits(1, 6, 5, seed=9)[0]
    ent = kd.tser_terms(out, y, t, tau=5.0).entropy
    assert ent.item() > 0
    base = create_loss("tser", gamma=0.0)(out, y, t)
    reward = create_loss("tser", gamma=0.1)(out, y, t)
    penalty = create_loss("tser", gamma=0.1, entropy_sign="penalty")(out, y, t)
    assert torch.allclose(reward, base - 0.1 * ent, atol=1e-6)  # higher entropy -> lower loss
    assert torch.allclose(penalty, base + 0.1 * ent, atol=1e-6)
    # a gradient step on the reward term alone raises the student's entropy
    x = out.clone().requires_grad_(True)
    (-kd.tser_terms(x, y, t, tau=5.0).entropy).backward()
    with torch.no_grad():
        stepped = kd.tser_terms(x - 0.5 * x.grad, y, t, tau=5.0).entropy
    assert stepped > ent
    # only where the teacher is wrong: a teacher right on every sample removes the term
    right = F.one_hot(y, 5).float() * 10
    only_wrong = create_loss("tser", gamma=0.1, entropy_where="teacher_wrong")
    assert torch.equal(only_wrong(out, y, right), create_loss("tser", gamma=0.0)(out, y, right))
    wrong_mask = t.argmax(-1) != y
    assert wrong_mask.any() and not wrong_mask.all()
    ent_t = kd.tser_terms(out, y, t, tau=5.0, entropy_where="teacher_wrong").entropy
    p = torch.softmax(out / 5.0, -1)
    h = -(p * p.log()).sum(-1)  # [T, B]
    assert torch.allclose(ent_t, h[:, wrong_mask].mean(), atol=1e-6)


def test_tser_ce_tau_option():
    out, y, t = _logits(2, 4, 3, seed=10), torch.tensor([0, 1, 2, 0]), _logits(1, 4, 3, seed=11)[0]
    terms = kd.tser_terms(out, y, t, tau=5.0, ce_tau=5.0)
    want = F.cross_entropy((out / 5.0).reshape(8, 3), y.repeat(2))
    assert torch.allclose(terms.ce, want, atol=1e-6)
