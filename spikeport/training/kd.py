r"""Knowledge-distillation losses for SNN students (registered in :data:`~spikeport.training.losses.LOSSES`).

Every loss follows the registry call convention
``loss(out_seq[T, B, K], target[B], teacher_logits)`` where ``teacher_logits`` is
``[B, K]`` (an ANN teacher) or ``[T', B, K]`` (averaged over its own T' first).
All probabilities are built with ``log_softmax`` so no ``log(0)`` is ever taken.
Notation: :math:`z = \frac{1}{T}\sum_t o_t` are the student's mean-over-time
logits, :math:`p = \mathrm{softmax}(z/\tau)`, :math:`q = \mathrm{softmax}(z_{teacher}/\tau)`.

* ``kl``: Hinton KD, :math:`(1-\alpha)\,\mathrm{CE}(z, y) + \alpha\,\tau^2\,\mathrm{KL}(q\,\|\,p)`.
* ``hta_kl``: head-tail aware KL (HTA-KL, arXiv 2504.20445),
  :math:`\mathrm{CE}(z, y) + \lambda\,\tau^2\,[w_h\,\mathrm{KL}(q\|p) + w_t\,\mathrm{KL}(p\|q)]`.
* ``tser``: temporal separation + entropy regularisation (TSER, arXiv 2503.03144),
  :math:`\frac{1}{T}\sum_t[(1-\alpha)\mathrm{CE}(o_t, y) + \alpha\tau^2\mathrm{KL}(q\|p_t)] -
  \gamma\frac{1}{T}\sum_t H(p_t)`.

The divergence terms are also exposed as functions (:func:`kd_kl_term`,
:func:`hta_kl_term`, :func:`head_tail_mask`, :func:`tser_terms`) for tests and analysis.
Parts of HTA-KL and TSER are reconstructions (RECON) of what the papers' public
pages do not show; each is an option, documented on the factory.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from spikeport.errors import ConfigError
from spikeport.training.losses import LossFn, register_loss

__all__ = ["kl", "hta_kl", "tser", "kd_kl_term", "head_tail_mask", "hta_kl_term", "tser_terms", "TserTerms",
           "teacher_mean"]


# --------------------------------------------------------------------------- helpers


def _check_seq(out_seq: torch.Tensor, name: str) -> None:
    if out_seq.dim() != 3:
        raise ConfigError(f"loss '{name}' expects student per-step logits [T, B, K], got shape {tuple(out_seq.shape)}")


def teacher_mean(teacher_logits: torch.Tensor | None, batch: int, classes: int, name: str) -> torch.Tensor:
    """Teacher logits ``[B, K]`` or ``[T', B, K]`` -> ``[B, K]`` (float32, no gradient).

    Raises:
        ConfigError: teacher missing or its shape does not match the student's ``[B, K]``.
    """
    if teacher_logits is None:
        raise ConfigError(f"loss '{name}' is a distillation loss and needs teacher logits (--teacher CKPT)")
    t = teacher_logits.detach().float()
    if t.dim() == 3:
        t = t.mean(0)
    if t.dim() != 2 or t.shape != (batch, classes):
        raise ConfigError(f"loss '{name}': teacher logits of shape {tuple(teacher_logits.shape)} do not match the "
                          f"student's [B={batch}, K={classes}]; the teacher must be trained on the same classes")
    return t


def _positive(name: str, key: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and math.isfinite(value)):
        raise ConfigError(f"loss '{name}': {key} must be a positive number, got {value!r}")
    return float(value)


def _non_negative(name: str, key: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 and math.isfinite(value)):
        raise ConfigError(f"loss '{name}': {key} must be a number >= 0, got {value!r}")
    return float(value)


def _unit(name: str, key: str, value: float, open_interval: bool = False) -> float:
    v = _non_negative(name, key, value)
    if v > 1 or (open_interval and v in (0.0, 1.0)):
        rng = "(0, 1)" if open_interval else "[0, 1]"
        raise ConfigError(f"loss '{name}': {key} must be in {rng}, got {value!r}")
    return v


def _kl_rows(log_a: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    """Per-row :math:`\\mathrm{KL}(a\\,\\|\\,b) = \\sum_k a_k(\\log a_k - \\log b_k)` from log-probabilities."""
    return (log_a.exp() * (log_a - log_b)).sum(-1)


# --------------------------------------------------------------------------- term functions


def kd_kl_term(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Batch-mean :math:`\\mathrm{KL}(q_\\tau\\,\\|\\,p_\\tau)` between teacher and student ``[B, K]`` logits."""
    log_p = F.log_softmax(student_logits / tau, dim=-1)
    log_q = F.log_softmax(teacher_logits / tau, dim=-1)
    return _kl_rows(log_q, log_p).mean()


def head_tail_mask(q_teacher: torch.Tensor, delta: float = 0.5, include_top1: bool = True) -> torch.Tensor:
    """Boolean head mask ``[B, K]`` (in original class order) from teacher probabilities ``q``.

    Classes are ranked by descending teacher probability with cumulative sums
    :math:`S_i`. With ``include_top1=True`` (RECON, default) class ``i`` is in the
    head when :math:`S_{i-1} < \\delta` (:math:`S_0 = 0`), so the top-1 class is
    always in the head even when the teacher is confident (:math:`q_{top1} > \\delta`);
    ``include_top1=False`` is the literal paper rule :math:`S_i < \\delta`, whose
    head is empty for a confident teacher.
    """
    q_sorted, idx = q_teacher.sort(dim=-1, descending=True)
    cum = q_sorted.cumsum(-1)
    before = cum - q_sorted if include_top1 else cum
    head_sorted = before < delta
    return torch.zeros_like(head_sorted).scatter(-1, idx, head_sorted)


def hta_kl_term(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float, delta: float = 0.5,
                per_sample: bool = True, include_top1: bool = True, detach_weights: bool = True) -> torch.Tensor:
    """The HTA-KL divergence (without CE and without the :math:`\\lambda\\tau^2` factor).

    Args:
        student_logits, teacher_logits: ``[B, K]``.
        tau: softmax temperature.
        delta: head threshold on the teacher's cumulative probability.
        per_sample: head/tail weights per sample (AKL's choice) or one pair per batch.
        include_top1: see :func:`head_tail_mask`.
        detach_weights: treat :math:`w_{head}, w_{tail}` as constants (as AKL does).

    Returns:
        A scalar: mean over the batch of :math:`w_h\\,\\mathrm{KL}(q\\|p) + w_t\\,\\mathrm{KL}(p\\|q)`.
    """
    log_p = F.log_softmax(student_logits / tau, dim=-1)
    log_q = F.log_softmax(teacher_logits / tau, dim=-1)
    p, q = log_p.exp(), log_q.exp()
    head = head_tail_mask(q, delta, include_top1).to(p.dtype)
    gap = (q - p).abs()
    if detach_weights:
        gap = gap.detach()
    d_head = (gap * head).sum(-1)
    d_tail = (gap * (1.0 - head)).sum(-1)
    if not per_sample:
        d_head, d_tail = d_head.sum(), d_tail.sum()
    # identical distributions: both gaps are 0 -> w_head = 0 and both KL terms are 0 anyway
    w_head = d_head / (d_head + d_tail).clamp_min(torch.finfo(p.dtype).tiny)
    w_tail = 1.0 - w_head
    fkl = _kl_rows(log_q, log_p)
    rkl = _kl_rows(log_p, log_q)
    if per_sample:
        return (w_head * fkl + w_tail * rkl).mean()
    return w_head * fkl.mean() + w_tail * rkl.mean()


class TserTerms(NamedTuple):
    """The three TSER components, each already averaged over T and B."""

    ce: torch.Tensor
    kl: torch.Tensor
    entropy: torch.Tensor


def tser_terms(out_seq: torch.Tensor, target: torch.Tensor, teacher_logits: torch.Tensor, tau: float,
               ce_tau: float = 1.0, entropy_where: str = "all") -> TserTerms:
    """Per-timestep CE, per-timestep :math:`\\mathrm{KL}(q\\|p_t)` and entropy :math:`H(p_t)`, averaged over T (and B).

    ``entropy_where="teacher_wrong"`` averages the entropy only over samples the
    teacher misclassifies (0 when there are none); ``"all"`` over every sample.
    """
    t, b, k = out_seq.shape
    ce = F.cross_entropy((out_seq / ce_tau).reshape(t * b, k), target.repeat(t))
    log_p = F.log_softmax(out_seq / tau, dim=-1)  # [T, B, K]
    log_q = F.log_softmax(teacher_logits / tau, dim=-1).unsqueeze(0)  # [1, B, K]
    kl_t = _kl_rows(log_q.expand_as(log_p), log_p)  # [T, B]
    ent = -(log_p.exp() * log_p).sum(-1)  # [T, B]
    if entropy_where == "teacher_wrong":
        wrong = (teacher_logits.argmax(-1) != target).to(ent.dtype)  # [B]
        entropy = (ent * wrong).sum() / (wrong.sum() * t).clamp_min(1.0)
    else:
        entropy = ent.mean()
    return TserTerms(ce=ce, kl=kl_t.mean(), entropy=entropy)


# --------------------------------------------------------------------------- registered losses


@register_loss(name="kl", kd=True)
def kl(alpha: float = 0.5, tau: float = 4.0) -> LossFn:
    """Hinton KD on mean-over-time logits: :math:`(1-\\alpha)\\mathrm{CE} + \\alpha\\tau^2\\mathrm{KL}(q\\|p)`.

    Args:
        alpha: KD weight in [0, 1] (0 = plain CE).
        tau: temperature (> 0).
    """
    alpha = _unit("kl", "alpha", alpha)
    tau = _positive("kl", "tau", tau)

    def loss(out_seq: torch.Tensor, target: torch.Tensor, teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
        _check_seq(out_seq, "kl")
        z = out_seq.mean(0)
        tl = teacher_mean(teacher_logits, z.shape[0], z.shape[1], "kl")
        ce = F.cross_entropy(z, target)
        if alpha == 0.0:
            return ce
        return (1.0 - alpha) * ce + alpha * tau**2 * kd_kl_term(z, tl, tau)

    return loss


@register_loss(name="hta_kl", kd=True)
def hta_kl(tau: float = 4.0, lamb: float = 1.0, delta: float = 0.5, per_sample: bool = True,
           include_top1: bool = True, detach_weights: bool = True) -> LossFn:
    """Head-tail aware KL (HTA-KL): :math:`\\mathrm{CE}(z,y) + \\lambda\\tau^2[w_h\\mathrm{FKL} + w_t\\mathrm{RKL}]`.

    Teacher classes are ranked by probability; those whose cumulative teacher
    probability reaches ``delta`` form the *head*, the rest the *tail*. Forward KL
    :math:`\\mathrm{KL}(q\\|p)` fits the head, reverse KL :math:`\\mathrm{KL}(p\\|q)` covers
    the tail, weighted by the share of the student-teacher L1 gap in each part:
    :math:`w_h = d_h/(d_h+d_t)`, :math:`d_h = \\sum_{i\\in head}|q_i-p_i|`, :math:`w_t = 1-w_h`.

    Reconstructions (RECON), each an option: ``include_top1=True`` puts the top-1
    class always in the head (:math:`S_{i-1} < \\delta`; the literal
    :math:`S_i < \\delta` leaves a confident teacher's head empty); the weight formula
    follows AKL (arXiv 2404.02657) with ``detach_weights=True`` like its code;
    ``per_sample=True`` computes weights per sample (``False``: one pair per batch).
    ``tau=4, lamb=1`` are common SNN-KD values, not the paper's (not recovered).

    Args:
        tau: temperature (> 0).
        lamb: weight :math:`\\lambda` (>= 0) of the KD term.
        delta: head threshold in (0, 1) (paper: 0.5).
        per_sample, include_top1, detach_weights: see above.
    """
    tau = _positive("hta_kl", "tau", tau)
    lamb = _non_negative("hta_kl", "lamb", lamb)
    delta = _unit("hta_kl", "delta", delta, open_interval=True)

    def loss(out_seq: torch.Tensor, target: torch.Tensor, teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
        _check_seq(out_seq, "hta_kl")
        z = out_seq.mean(0)
        tl = teacher_mean(teacher_logits, z.shape[0], z.shape[1], "hta_kl")
        ce = F.cross_entropy(z, target)
        if lamb == 0.0:
            return ce
        term = hta_kl_term(z, tl, tau, delta, per_sample=bool(per_sample), include_top1=bool(include_top1),
                           detach_weights=bool(detach_weights))
        return ce + lamb * tau**2 * term

    return loss


@register_loss(name="tser", kd=True)
def tser(alpha: float = 0.01, gamma: float = 1e-3, tau: float = 5.0, entropy_sign: str = "reward",
         entropy_where: str = "all", ce_tau: float = 1.0) -> LossFn:
    """TSER: per-timestep CE and KL (no temporal fusion) plus entropy regularisation.

    :math:`L = \\frac{1}{T}\\sum_t[(1-\\alpha)\\mathrm{CE}(o_t/\\tau_{ce}, y) + \\alpha\\tau^2\\mathrm{KL}(q\\|p_t)]
    \\mp \\gamma\\frac{1}{T}\\sum_t H(p_t)` with :math:`p_t = \\mathrm{softmax}(o_t/\\tau)`.

    The per-step CE and KL are the paper's (figure caption). The entropy term is
    RECON after the third-party reproduction ``matteogianferrari/tser-kd``, and the
    defaults ``alpha=0.01, gamma=1e-3, tau=5`` are **that reproducer's values**, not
    the paper's (not recovered). Options for the unverified parts:

    Args:
        alpha: KD weight in [0, 1].
        gamma: entropy weight (>= 0).
        tau: temperature (> 0) of the KL and entropy terms.
        entropy_sign: ``"reward"`` (default, :math:`-\\gamma H`: higher student entropy
            lowers the loss, against over-confident copying) or ``"penalty"`` (:math:`+\\gamma H`).
        entropy_where: ``"all"`` samples (default) or only where the teacher is
            wrong (``"teacher_wrong"``, RECON of "away from erroneous knowledge").
        ce_tau: temperature of the CE logits (1 = standard; the reproduction uses ``tau``).
    """
    alpha = _unit("tser", "alpha", alpha)
    gamma = _non_negative("tser", "gamma", gamma)
    tau = _positive("tser", "tau", tau)
    ce_tau = _positive("tser", "ce_tau", ce_tau)
    if entropy_sign not in ("reward", "penalty"):
        raise ConfigError(f"loss 'tser': entropy_sign must be 'reward' or 'penalty', got {entropy_sign!r}")
    if entropy_where not in ("all", "teacher_wrong"):
        raise ConfigError(f"loss 'tser': entropy_where must be 'all' or 'teacher_wrong', got {entropy_where!r}")
    sign = -1.0 if entropy_sign == "reward" else 1.0

    def loss(out_seq: torch.Tensor, target: torch.Tensor, teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
        _check_seq(out_seq, "tser")
        tl = teacher_mean(teacher_logits, out_seq.shape[1], out_seq.shape[2], "tser")
        terms = tser_terms(out_seq, target, tl, tau, ce_tau=ce_tau, entropy_where=entropy_where)
        total = (1.0 - alpha) * terms.ce + alpha * tau**2 * terms.kl
        if gamma:
            total = total + sign * gamma * terms.entropy
        return total

    return loss
