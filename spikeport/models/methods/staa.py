r"""STAA-SNN building blocks (Zhang et al., CVPR 2025, arXiv 2503.02689).

Only the paper's overview was recoverable; everything marked **[RECON]** is our
reconstruction. All modules take multi-step tensors ``[T, B, C, H, W]``.

* :class:`TemporalPositionEncoding` (PE): :math:`X'_t = X_t + P_t`, learnable
  :math:`P \in \mathbb{R}^{T \times C \times 1 \times 1}` ([RECON] zero init).
* :class:`GCBlock` ([RECON] GCNet style, bottleneck ``r = 4``), per step t:
  :math:`a = \mathrm{softmax}_{HW}(W_k * X)`,
  :math:`c = \sum_{HW} a \cdot X \in \mathbb{R}^C`,
  :math:`v = W_2\,\mathrm{ReLU}(\mathrm{LN}(W_1 c))`, output :math:`X \cdot \sigma(v)`.
* :class:`StepAttention` (SA) ([RECON] squeeze-excitation over time, as in TA-SNN):
  :math:`z_t = \mathrm{mean}_{CHW} X_t`,
  :math:`w = \sigma(W_b\,\mathrm{ReLU}(W_a z)) \in \mathbb{R}^T` (two 1x1 convs over the
  T "channels"), output :math:`w_t X_t`. One weight per timestep and sample.
* :class:`TimeStepRandomDropout` (TSRD): training only, each (timestep, sample) is
  dropped with probability :math:`\beta = 0.1`; a dropped step bypasses the
  attention ([RECON] the enrichment PE+GC and the SA weight are skipped for that
  step). Inactive (all steps kept) in eval, so inference is deterministic.
* :class:`STAABlock`: input + PE -> GC -> adaptive LIF (default DA-LIF, the
  paper's :math:`V = M \odot H + N \odot I` with learnable per-layer M, N) -> SA.

SA mixes all timesteps (the weight of step t depends on steps after t), so
:class:`StepAttention` and :class:`STAABlock` are **non-causal**; PE and GC act on
each step alone. Every module checks its input and raises ``ConfigError`` naming
itself; they must be torch.fx leaf modules (their forward inspects shapes).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from spikeport.errors import ConfigError
from spikeport.models.neurons.factory import NeuronType, create_neuron

__all__ = ["TemporalPositionEncoding", "GCBlock", "StepAttention", "TimeStepRandomDropout", "STAABlock"]


def _check_int(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return value


def _check_input(owner: str, x: torch.Tensor, timesteps: int | None = None, channels: int | None = None) -> None:
    if x.dim() != 5:
        raise ConfigError(f"{owner}: expected a 5-D input [T, B, C, H, W], got shape {tuple(x.shape)}")
    if timesteps is not None and x.shape[0] != timesteps:
        raise ConfigError(f"{owner}: built for T={timesteps} timesteps but the input has T={x.shape[0]}; "
                          f"rebuild the model with timesteps={x.shape[0]}")
    if channels is not None and x.shape[2] != channels:
        raise ConfigError(f"{owner}: built for C={channels} channels but the input has C={x.shape[2]}")


class TemporalPositionEncoding(nn.Module):
    """Learnable per-step, per-channel offset ``P[T, C, 1, 1]`` added to the input."""

    is_causal = True

    def __init__(self, timesteps: int, channels: int) -> None:
        super().__init__()
        self.timesteps = _check_int("TemporalPositionEncoding", "timesteps", timesteps)
        self.channels = _check_int("TemporalPositionEncoding", "channels", channels)
        self.pos = nn.Parameter(torch.zeros(timesteps, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input("TemporalPositionEncoding", x, self.timesteps, self.channels)
        return x + self.pos.unsqueeze(1)

    def extra_repr(self) -> str:
        return f"timesteps={self.timesteps}, channels={self.channels}"


class GCBlock(nn.Module):
    """Global-context attention applied independently at every timestep ([RECON] GCNet style).

    Args:
        channels: C.
        reduction: bottleneck ratio r of the transform (hidden = max(1, C // r)).
    """

    is_causal = True

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.channels = _check_int("GCBlock", "channels", channels)
        self.reduction = _check_int("GCBlock", "reduction", reduction)
        hidden = max(1, channels // reduction)
        self.context = nn.Conv2d(channels, 1, kernel_size=1)
        self.transform = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=1), nn.LayerNorm([hidden, 1, 1]), nn.ReLU(),
            nn.Conv2d(hidden, channels, kernel_size=1),
        )

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """Channel gate :math:`\\sigma(v)` of shape ``[T, B, C, 1, 1]``."""
        _check_input("GCBlock", x, channels=self.channels)
        t, b, c, h, w = x.shape
        z = x.flatten(0, 1)
        attn = torch.softmax(self.context(z).flatten(1), dim=-1)  # [TB, HW]
        ctx = torch.einsum("nch,nh->nc", z.flatten(2), attn)[..., None, None]  # [TB, C, 1, 1]
        return torch.sigmoid(self.transform(ctx)).view(t, b, c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class StepAttention(nn.Module):
    """One sigmoid weight per timestep (and sample) from the step's mean activity.

    Args:
        timesteps: T (the two 1x1 convs map T -> hidden -> T).
        reduction: hidden = max(1, T // reduction) ([RECON] default 1).
    """

    is_causal = False

    def __init__(self, timesteps: int, reduction: int = 1) -> None:
        super().__init__()
        self.timesteps = _check_int("StepAttention", "timesteps", timesteps)
        hidden = max(1, timesteps // _check_int("StepAttention", "reduction", reduction))
        self.fc = nn.Sequential(nn.Conv1d(timesteps, hidden, kernel_size=1), nn.ReLU(),
                                nn.Conv1d(hidden, timesteps, kernel_size=1))

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Step weights ``w`` of shape ``[T, B]`` (values in (0, 1))."""
        _check_input("StepAttention", x, self.timesteps)
        z = x.mean(dim=(2, 3, 4)).t().unsqueeze(-1)  # [B, T, 1]
        return torch.sigmoid(self.fc(z)).squeeze(-1).t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)[..., None, None, None]


class TimeStepRandomDropout(nn.Module):
    """TSRD: per (timestep, sample) keep mask; drops with probability ``p`` in training only."""

    is_causal = True

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"TimeStepRandomDropout: p must be in [0, 1), got {p}")
        self.p = float(p)

    def keep_mask(self, x: torch.Tensor) -> torch.Tensor | None:
        """Float mask ``[T, B, 1, 1, 1]`` (1 = keep), or ``None`` when nothing can be dropped (eval, p=0)."""
        if not self.training or self.p == 0.0:
            return None
        keep = torch.rand(x.shape[0], x.shape[1], device=x.device) >= self.p
        return keep.to(x.dtype)[..., None, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Zero the dropped steps (standalone use; :class:`STAABlock` uses :meth:`keep_mask`)."""
        m = self.keep_mask(x)
        return x if m is None else x * m

    def extra_repr(self) -> str:
        return f"p={self.p}"


class STAABlock(nn.Module):
    """STAA layer: ``x + PE -> GC -> neuron -> SA`` with TSRD on the attention path.

    Replaces a block's output neuron: it takes the input current ``[T, B, C, H, W]``
    and returns spikes rescaled by the step weights (values in ``[0, 1)``, not binary).

    Args:
        channels: C.
        timesteps: T (PE and SA have T-sized parameters); other T raise ``ConfigError``.
        reduction: GC bottleneck ratio (default 4).
        tsrd_p: TSRD drop probability :math:`\\beta` (default 0.1).
        neuron: the adaptive LIF (default ``'dalif'``) or any neuron spec.
        neuron_kw: options for ``neuron``.
        sa_reduction: SA hidden-size ratio.
    """

    is_causal = False

    def __init__(self, channels: int, timesteps: int, reduction: int = 4, tsrd_p: float = 0.1,
                 neuron: NeuronType = "dalif", neuron_kw: dict[str, Any] | None = None, sa_reduction: int = 1) -> None:
        super().__init__()
        self.channels, self.timesteps = channels, timesteps
        self.pe = TemporalPositionEncoding(timesteps, channels)
        self.gc = GCBlock(channels, reduction)
        self.neuron = create_neuron(neuron, **dict(neuron_kw or {}))
        self.sa = StepAttention(timesteps, sa_reduction)
        self.tsrd = TimeStepRandomDropout(tsrd_p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input("STAABlock", x, self.timesteps, self.channels)
        enriched = self.gc(self.pe(x))
        keep = self.tsrd.keep_mask(x)
        if keep is not None:
            enriched = keep * enriched + (1.0 - keep) * x
        s = self.neuron(enriched)
        w = self.sa.weights(s)[..., None, None, None]
        if keep is not None:
            w = keep * w + (1.0 - keep)
        return s * w

    def extra_repr(self) -> str:
        return f"channels={self.channels}, timesteps={self.timesteps}"
