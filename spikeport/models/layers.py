"""Multi-step layers: torch layers applied independently at every timestep.

Each class subclasses its torch counterpart (so ``isinstance(m, nn.Conv2d)``
holds for hooks, NeuroBench and exporters) and folds the time axis into the
batch: input ``[T, B, ...]`` -> ``layer(x.flatten(0, 1))`` -> ``[T, B, ...]``.
Batch norm therefore shares its statistics across timesteps (as in the seed
papers' BatchNorm3d over ``[B, C, T, H, W]``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from spikeport.errors import ConfigError

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d", "BatchNorm1d", "BatchNorm2d", "MaxPool2d", "AvgPool2d",
           "AdaptiveAvgPool2d", "Flatten", "Linear", "Dropout", "seq_apply", "MULTISTEP_LAYERS"]


def seq_apply(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, ndim: int, owner: str) -> torch.Tensor:
    """Apply ``fn`` to ``x[T, B, ...]`` with T folded into the batch; ``ndim`` is the expected rank of x."""
    if x.dim() != ndim:
        raise ConfigError(f"{owner}: expected a {ndim}-D input [T, B, ...], got shape {tuple(x.shape)}")
    t, b = x.shape[0], x.shape[1]
    y = fn(x.flatten(0, 1))
    return y.reshape(t, b, *y.shape[1:])


class Conv1d(nn.Conv1d):
    """Conv1d over ``[T, B, C, L]``."""

    def forward(self, x):
        return seq_apply(super().forward, x, 4, "Conv1d")


class Conv2d(nn.Conv2d):
    """Conv2d over ``[T, B, C, H, W]``."""

    def forward(self, x):
        return seq_apply(super().forward, x, 5, "Conv2d")


class ConvTranspose2d(nn.ConvTranspose2d):
    """ConvTranspose2d over ``[T, B, C, H, W]``."""

    def forward(self, x, output_size=None):
        return seq_apply(lambda z: super(ConvTranspose2d, self).forward(z, output_size), x, 5, "ConvTranspose2d")


class BatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d over ``[T, B, F]`` (statistics shared across T)."""

    def forward(self, x):
        return seq_apply(super().forward, x, 3, "BatchNorm1d")


class BatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d over ``[T, B, C, H, W]`` (statistics shared across T)."""

    def forward(self, x):
        return seq_apply(super().forward, x, 5, "BatchNorm2d")


class MaxPool2d(nn.MaxPool2d):
    def forward(self, x):
        return seq_apply(super().forward, x, 5, "MaxPool2d")


class AvgPool2d(nn.AvgPool2d):
    def forward(self, x):
        return seq_apply(super().forward, x, 5, "AvgPool2d")


class AdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    def forward(self, x):
        return seq_apply(super().forward, x, 5, "AdaptiveAvgPool2d")


class Flatten(nn.Flatten):
    """Flatten every dim after ``[T, B]``."""

    def __init__(self) -> None:
        super().__init__(start_dim=2, end_dim=-1)

    def forward(self, x):
        if x.dim() < 3:
            raise ConfigError(f"Flatten: expected input [T, B, ...], got shape {tuple(x.shape)}")
        return super().forward(x)


class Linear(nn.Linear):
    """Linear over ``[T, B, F]`` (torch's Linear already maps the last dim)."""

    def forward(self, x):
        if x.dim() != 3:
            raise ConfigError(f"Linear: expected a 3-D input [T, B, F], got shape {tuple(x.shape)}")
        return super().forward(x)


class Dropout(nn.Dropout):
    """Dropout with one mask per element and timestep (inactive in eval)."""


MULTISTEP_LAYERS = (Conv1d, Conv2d, ConvTranspose2d, BatchNorm1d, BatchNorm2d, MaxPool2d, AvgPool2d,
                    AdaptiveAvgPool2d, Flatten, Linear, Dropout)
