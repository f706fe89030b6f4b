"""Test helper: give a model's BatchNorm layers statistics from one batch, so that its neurons fire."""

from __future__ import annotations

import torch
from torch import nn


def calibrate_batchnorm(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Reset every BatchNorm's running statistics, set them (cumulative average) from one pass over ``x``.

    Returns ``model`` in eval mode. Consumes no random numbers: the caller draws ``x``.
    """
    for mod in model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.momentum = None
            mod.reset_running_stats()
    model.train()
    with torch.no_grad():
        model(x)
    return model.eval()
