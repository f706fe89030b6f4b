"""Loss registry and the non-distillation losses (ce, tet)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spikeport.errors import ConfigError
from spikeport.training.losses import LOSSES, create_loss, register_loss


def _seq(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(3, 4, 5, generator=g), torch.tensor([0, 4, 2, 1])


def test_ce_is_cross_entropy_of_mean_over_time_logits():
    out, y = _seq()
    assert torch.equal(create_loss("ce")(out, y), F.cross_entropy(out.mean(0), y))
    smooth = create_loss("ce", label_smoothing=0.1)(out, y)
    assert torch.equal(smooth, F.cross_entropy(out.mean(0), y, label_smoothing=0.1))


def test_tet_by_hand():
    out, y = _seq(1)
    per_step = sum(F.cross_entropy(out[t], y) for t in range(3)) / 3
    assert torch.allclose(create_loss("tet", lamb=0.0)(out, y), per_step, atol=1e-6)
    mse = ((out - 1.0) ** 2).mean()
    assert torch.allclose(create_loss("tet", lamb=0.2, phi=1.0)(out, y), 0.8 * per_step + 0.2 * mse, atol=1e-6)
    with pytest.raises(ConfigError, match=r"lamb must be in \[0, 1\]"):
        create_loss("tet", lamb=2.0)


def test_losses_reject_logits_without_time_axis():
    out, y = _seq()
    for name in ("ce", "tet"):
        with pytest.raises(ConfigError, match=r"\[T, B, K\]"):
            create_loss(name)(out[0], y)


def test_registry_errors():
    with pytest.raises(ConfigError, match="unknown loss 'cee'.*did you mean 'ce'"):
        create_loss("cee")
    with pytest.raises(ConfigError, match=r"loss 'ce': bad options \['smoothing'\]"):
        create_loss("ce", smoothing=0.1)
    with pytest.raises(ConfigError, match="already registered"):
        register_loss(lambda: None, name="ce")
    assert {"ce", "tet", "kl", "hta_kl", "tser"} <= set(LOSSES.names())
