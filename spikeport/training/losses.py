r"""Loss registry.

Every loss is built by a registered factory ``LOSSES.get(name)(**options)`` and
called as ``loss(out_seq, target, teacher_logits=None)`` where ``out_seq`` is the
student's per-step logits ``[T, B, K]``, ``target`` the labels ``[B]`` and
``teacher_logits`` (distillation losses only) the teacher's logits ``[B, K]``
(an ANN teacher) or ``[T, B, K]`` (averaged over T before use).

* ``ce``: :math:`\mathrm{CE}(\frac{1}{T}\sum_t o_t, y)` (mean-over-time logits).
* ``tet``: temporal efficient training (Deng et al. 2022):
  :math:`(1-\lambda)\frac{1}{T}\sum_t \mathrm{CE}(o_t, y) + \lambda \frac{1}{T}\sum_t \mathrm{MSE}(o_t, \phi)`.

Distillation losses (``kl``, ``hta_kl``, ``tser``) live in
:mod:`spikeport.training.kd` and register here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from spikeport._imports import optional_import
from spikeport._registry import Registry
from spikeport.errors import ConfigError

__all__ = ["LOSSES", "LossFn", "create_loss", "register_loss", "needs_teacher"]

LossFn = Callable[..., torch.Tensor]
LOSSES: Registry = Registry("loss")


def register_loss(fn=None, *, name: str | None = None, kd: bool = False):
    """Register a loss factory; ``kd=True`` marks losses that need teacher logits."""
    return LOSSES.register(fn, name=name, tags=("kd",) if kd else ())


def _load_all() -> None:
    optional_import("spikeport.training.kd")  # registers the distillation losses


def create_loss(name: str, **options: Any) -> LossFn:
    """Build loss ``name`` with ``options``."""
    _load_all()
    factory = LOSSES.get(name)
    try:
        return factory(**options)
    except TypeError as e:
        raise ConfigError(f"loss '{name}': bad options {sorted(options)} ({e})") from e


def needs_teacher(name: str) -> bool:
    _load_all()
    LOSSES.get(name)
    return "kd" in LOSSES.tags(name)


def _check_seq(out_seq: torch.Tensor) -> None:
    if out_seq.dim() != 3:
        raise ConfigError(f"loss expects per-step logits [T, B, K], got shape {tuple(out_seq.shape)}")


@register_loss(name="ce")
def ce(label_smoothing: float = 0.0) -> LossFn:
    """Cross-entropy on mean-over-time logits."""

    def loss(out_seq: torch.Tensor, target: torch.Tensor, teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
        _check_seq(out_seq)
        return F.cross_entropy(out_seq.mean(0), target, label_smoothing=label_smoothing)

    return loss


@register_loss(name="tet")
def tet(lamb: float = 1e-3, phi: float = 1.0) -> LossFn:
    """TET: per-step CE plus an MSE pull of every step's logits towards ``phi``."""
    if not 0.0 <= lamb <= 1.0:
        raise ConfigError(f"loss 'tet': lamb must be in [0, 1], got {lamb}")

    def loss(out_seq: torch.Tensor, target: torch.Tensor, teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
        _check_seq(out_seq)
        t, b, k = out_seq.shape
        per_step = F.cross_entropy(out_seq.reshape(t * b, k), target.repeat(t))
        if lamb == 0.0:
            return per_step
        mse = F.mse_loss(out_seq, torch.full_like(out_seq, phi))
        return (1.0 - lamb) * per_step + lamb * mse

    return loss
