"""Train-time augmentations for static images and event frames.

All functions act on torch tensors whose last two dimensions are ``(H, W)``:
an image ``[C, H, W]`` or event frames ``[T, C, H, W]``. One random draw is made
per call and applied to the whole tensor, so every time step of an event sample
gets the same flip and shift. Randomness comes from ``generator`` when given,
otherwise from torch's global RNG (which DataLoader seeds per worker).

Recipes used by the seed papers:

* CIFAR-10/100: random crop 32 with zero padding 4, then horizontal flip with
  p=0.5 (:class:`StaticAugment`), applied to pixels in [0, 1] *before* the
  mean/std normalisation (as torchvision's ``RandomCrop`` on PIL images does).
* DVS data (NDA-style, as in TET / SpikingJelly examples): horizontal flip
  with p=0.5, then a random roll of up to ``max_shift`` pixels along H and W
  (:class:`EventAugment`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from spikeport.errors import ConfigError

__all__ = [
    "random_crop",
    "random_hflip",
    "random_roll",
    "normalize",
    "StaticAugment",
    "EventAugment",
]


def _randint(low: int, high: int, generator: torch.Generator | None) -> int:
    """Uniform integer in ``[low, high]`` (inclusive)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator).item())


def random_crop(x: torch.Tensor, padding: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad the last two dims by ``padding`` and crop back to the original size at a random offset.

    Args:
        x: tensor ``[..., H, W]``.
        padding: pixels of zero padding on every side (0 returns ``x`` unchanged).
        generator: optional RNG.

    Returns:
        A tensor of the same shape and dtype as ``x``.
    """
    if padding < 0:
        raise ConfigError(f"random_crop: padding must be >= 0, got {padding}")
    if padding == 0:
        return x
    h, w = x.shape[-2:]
    top = _randint(0, 2 * padding, generator)
    left = _randint(0, 2 * padding, generator)
    padded = F.pad(x, (padding, padding, padding, padding))
    return padded[..., top : top + h, left : left + w].contiguous()


def random_hflip(x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror the last dim (W) with probability ``p``."""
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"random_hflip: p must be in [0, 1], got {p}")
    if float(torch.rand((1,), generator=generator).item()) < p:
        return x.flip(-1)
    return x


def random_roll(x: torch.Tensor, max_shift: int = 5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Cyclically shift the last two dims by independent offsets drawn from ``[-max_shift, max_shift]``."""
    if max_shift < 0:
        raise ConfigError(f"random_roll: max_shift must be >= 0, got {max_shift}")
    if max_shift == 0:
        return x
    dy = _randint(-max_shift, max_shift, generator)
    dx = _randint(-max_shift, max_shift, generator)
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Per-channel ``(x - mean) / std`` for ``x`` of shape ``[C, H, W]`` (or ``[..., C, H, W]``)."""
    if len(mean) != x.shape[-3] or len(std) != x.shape[-3]:
        raise ConfigError(f"normalize: {len(mean)} means / {len(std)} stds for {x.shape[-3]} channels")
    m = torch.tensor(mean, dtype=x.dtype).view(-1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(-1, 1, 1)
    return (x - m) / s


@dataclass(frozen=True)
class StaticAugment:
    """Random crop with zero padding, then horizontal flip (CIFAR recipe).

    Attributes:
        padding: zero padding of the random crop (4 for CIFAR).
        flip_p: probability of a horizontal flip.
    """

    padding: int = 4
    flip_p: float = 0.5

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return random_hflip(random_crop(x, self.padding, generator), self.flip_p, generator)


@dataclass(frozen=True)
class EventAugment:
    """NDA-style event-frame augmentation: horizontal flip, then random roll.

    Attributes:
        max_shift: largest roll in pixels along H and W (5 in TET's CIFAR10-DVS recipe).
        flip_p: probability of a horizontal flip.
    """

    max_shift: int = 5
    flip_p: float = 0.5

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return random_roll(random_hflip(x, self.flip_p, generator), self.max_shift, generator)
