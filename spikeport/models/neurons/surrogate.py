r"""Surrogate gradients for the Heaviside spike function, chosen by name.

Forward is always the exact Heaviside :math:`\Theta(x) = 1[x \ge 0]` (``x`` is
membrane minus threshold); backward replaces :math:`\delta(x)` by the derivative
of a smooth function :math:`g'(x)`:

=============  ==========================================================  =========
name           :math:`g'(x)`                                               default
=============  ==========================================================  =========
``sigmoid``    :math:`\alpha\,\sigma(\alpha x)(1-\sigma(\alpha x))`         alpha=4
``atan``       :math:`\frac{\alpha}{2}\,/\,(1 + (\frac{\pi}{2}\alpha x)^2)`  alpha=2
``triangle``   :math:`\max(0,\ \alpha - \alpha^2 |x|)`                      alpha=1
``rectangle``  :math:`\alpha\,1[|x| < 1/(2\alpha)]`                         alpha=1
``tanh_clip``  :math:`\frac{k(1-\tanh^2(kx))}{2\tanh(k/2)}\,1[|x| < 1/2]`   k=1
=============  ==========================================================  =========

``tanh_clip`` is FSTA-SNN's official surrogate: the derivative of
:math:`[\tanh(k(\mathrm{clip}(u, 0, 1) - 1/2)) + \tanh(k/2)] / (2\tanh(k/2))` for a
neuron that fires at :math:`u = 1/2`, written in ``x = u - 1/2`` (``alpha`` is ``k``).

Each surrogate integrates to 1 over the real line. Surrogates are frozen
dataclasses (no module instances as default arguments).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from spikeport._registry import Registry
from spikeport.errors import ConfigError

__all__ = ["Surrogate", "SURROGATES", "get_surrogate", "heaviside", "surrogate_grad"]


def _sigmoid(x: torch.Tensor, a: float) -> torch.Tensor:
    s = torch.sigmoid(a * x)
    return a * s * (1.0 - s)


def _atan(x: torch.Tensor, a: float) -> torch.Tensor:
    return (a / 2.0) / (1.0 + (math.pi / 2.0 * a * x) ** 2)


def _triangle(x: torch.Tensor, a: float) -> torch.Tensor:
    return torch.clamp(a - a * a * x.abs(), min=0.0)


def _rectangle(x: torch.Tensor, a: float) -> torch.Tensor:
    return a * (x.abs() < 0.5 / a).to(x.dtype)


def _tanh_clip(x: torch.Tensor, a: float) -> torch.Tensor:
    t = torch.tanh(a * x)
    return (a / (2.0 * math.tanh(a / 2.0))) * (1.0 - t * t) * (x.abs() < 0.5).to(x.dtype)


SURROGATES: Registry = Registry("surrogate")
for _name, _fn in (("sigmoid", _sigmoid), ("atan", _atan), ("triangle", _triangle), ("rectangle", _rectangle),
                   ("tanh_clip", _tanh_clip)):
    SURROGATES.register(_fn, name=_name)
_DEFAULT_ALPHA = {"sigmoid": 4.0, "atan": 2.0, "triangle": 1.0, "rectangle": 1.0, "tanh_clip": 1.0}


def surrogate_grad(name: str, x: torch.Tensor, alpha: float) -> torch.Tensor:
    """:math:`g'(x)` of surrogate ``name`` (used by the fused kernels too)."""
    return SURROGATES.get(name)(x, alpha)


class _Heaviside(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, name: str, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.name, ctx.alpha = name, alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad * surrogate_grad(ctx.name, x, ctx.alpha), None, None


def heaviside(x: torch.Tensor, name: str = "sigmoid", alpha: float | None = None) -> torch.Tensor:
    """Spike function: exact step forward, surrogate ``name`` backward."""
    a = _DEFAULT_ALPHA[name] if alpha is None else alpha
    return _Heaviside.apply(x, name, a)


@dataclass(frozen=True)
class Surrogate:
    """A named surrogate with its sharpness ``alpha`` (``None``: the default for that name)."""

    name: str = "sigmoid"
    alpha: float | None = None

    def __post_init__(self) -> None:
        if self.name not in SURROGATES:
            SURROGATES.get(self.name)  # raises ConfigError with close matches
        if self.alpha is not None and not (self.alpha > 0):
            raise ConfigError(f"surrogate '{self.name}': alpha must be > 0, got {self.alpha}")

    @property
    def sharpness(self) -> float:
        return _DEFAULT_ALPHA[self.name] if self.alpha is None else float(self.alpha)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return heaviside(x, self.name, self.sharpness)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return surrogate_grad(self.name, x, self.sharpness)


def get_surrogate(spec: str | Surrogate | Callable[[torch.Tensor], torch.Tensor]) -> Surrogate:
    """Resolve a surrogate given by name or instance."""
    if isinstance(spec, Surrogate):
        return spec
    if isinstance(spec, str):
        return Surrogate(spec)
    raise ConfigError(f"surrogate must be a name ({', '.join(SURROGATES.names())}) or Surrogate, got {spec!r}")
