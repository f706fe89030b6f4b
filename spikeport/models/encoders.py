"""Input encoders: map a static sample batch ``x[B, ...]`` to a sequence ``[T, B, ...]``.

* ``direct``: repeat the analog input at every step; the first synaptic layer
  then receives real values (MACs, not ACs: the energy module accounts for it).
* ``rate`` (Poisson): Bernoulli spikes with probability ``clamp(x, 0, 1)`` per step.
* ``latency``: one spike per element at step ``round((1 - x) * (T - 1))``;
  brighter fires earlier, ``x <= 0`` never fires.

Encoders are deterministic given a ``torch.Generator`` (rate) and have no state.
"""

from __future__ import annotations

import torch

from spikeport._registry import Registry
from spikeport.errors import ConfigError

__all__ = ["ENCODERS", "encode", "check_timesteps"]

ENCODERS: Registry = Registry("encoder")

# Above this many input elements (T*B*...) an encode is refused before allocating.
MAX_ENCODED_ELEMENTS = 2**31


def check_timesteps(t: int, what: str = "timesteps") -> int:
    """Validate a timestep count (positive int)."""
    if isinstance(t, bool) or not isinstance(t, int) or t <= 0:
        raise ConfigError(f"{what} must be a positive integer, got {t!r}")
    return t


@ENCODERS.register(name="direct")
def direct(x: torch.Tensor, timesteps: int, generator: torch.Generator | None = None) -> torch.Tensor:
    return x.unsqueeze(0).expand(timesteps, *x.shape).contiguous()


@ENCODERS.register(name="rate")
def rate(x: torch.Tensor, timesteps: int, generator: torch.Generator | None = None) -> torch.Tensor:
    p = x.clamp(0.0, 1.0).unsqueeze(0).expand(timesteps, *x.shape)
    u = torch.rand(p.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (u < p).to(x.dtype)


@ENCODERS.register(name="latency")
def latency(x: torch.Tensor, timesteps: int, generator: torch.Generator | None = None) -> torch.Tensor:
    xc = x.clamp(0.0, 1.0)
    when = torch.round((1.0 - xc) * (timesteps - 1)).long()
    t = torch.arange(timesteps, device=x.device).view(-1, *([1] * x.dim()))
    return ((t == when.unsqueeze(0)) & (xc > 0).unsqueeze(0)).to(x.dtype)


def encode(x: torch.Tensor, timesteps: int, method: str = "direct",
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Encode ``x[B, ...]`` into ``[T, B, ...]`` with encoder ``method``."""
    check_timesteps(timesteps)
    fn = ENCODERS.get(method)
    if x.numel() * timesteps > MAX_ENCODED_ELEMENTS:
        gib = x.numel() * timesteps * x.element_size() / 2**30
        raise ConfigError(f"encoding {tuple(x.shape)} over T={timesteps} needs {gib:.1f} GiB; "
                          "lower T or the batch size")
    return fn(x, timesteps, generator)
