r"""Temporal shift module of TS-SNN (Yu et al., ICML 2025, arXiv 2505.04165).

The C channels of a multi-step tensor :math:`X \in \mathbb{R}^{T \times B \times C \times H \times W}`
are cut into :math:`C_k` segments of :math:`C_{fold} = \lfloor C / C_k \rfloor` channels
(``fold_div`` is :math:`C_k`). With split points :math:`0 \le g_1 \le g_2 \le C_k`:

.. math::

    Z[t]_c = \begin{cases}
        X[t+1]_c & c < g_1 C_{fold}                 \quad\text{(future)}\\
        X[t-1]_c & g_1 C_{fold} \le c < g_2 C_{fold} \quad\text{(past)}\\
        X[t]_c   & \text{otherwise (unshifted)}
    \end{cases}
    \qquad Z' = \alpha Z + X

Frames outside ``[0, T)`` are zeros (zero padding at both ends of time), and
:math:`\alpha` ("penalty factor") is the module's only learnable parameter.
Channels left over by the integer division (``C mod C_k``) stay unshifted.

**[RECON] choices** (the paper's exact policy was not recoverable):

* ``split_mode='fixed'`` (default): :math:`g_1 = \lfloor C_k/4 \rfloor`,
  :math:`g_2 = \lfloor C_k/2 \rfloor` (a quarter of the channels read the future,
  a quarter the past), or the explicit ``split=(g1, g2)``.
* ``split_mode='random'``: in training, :math:`0 < g_1 < g_2 < C_k` are drawn
  uniformly at every forward (``torch.randint``, so ``torch.manual_seed`` makes it
  reproducible); in eval the frozen fixed split above is used, so inference is
  deterministic.
* ``alpha_init = 0.3`` (the paper reports a typical range of 0.2-0.5).
* Small layers: when ``channels < fold_div`` the effective :math:`C_k` is
  ``channels`` (one channel per segment) and an explicit ``split`` is rescaled by
  ``channels / fold_div``, so the same fractions of channels are shifted.

The module is **non-causal** when any channel reads the future (``is_causal`` is
False): step t needs input t+1, so it cannot run step by step on Loihi.
"""

from __future__ import annotations

import torch
from torch import nn

from spikeport.errors import ConfigError

__all__ = ["TemporalShift"]

_SPLIT_MODES = ("fixed", "random")


class TemporalShift(nn.Module):
    """TS-SNN temporal shift with a learnable residual scale (one parameter).

    Args:
        channels: number of input channels C (dim 2 of ``[T, B, C, H, W]``).
        fold_div: number of channel segments :math:`C_k` (default 32, the paper's value per
            third-party reimplementations).
        split: explicit split points ``(g1, g2)`` in segments of the nominal ``fold_div``;
            ``None`` gives the fixed fractions 1/4 and 1/2.
        split_mode: ``'fixed'`` or ``'random'`` (see module docstring, [RECON]).
        alpha_init: initial value of the residual scale :math:`\\alpha`.

    Raises:
        ConfigError: non-positive sizes, a bad split or an unknown ``split_mode``.
    """

    def __init__(self, channels: int, fold_div: int = 32, split: tuple[int, int] | None = None,
                 split_mode: str = "fixed", alpha_init: float = 0.3) -> None:
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels <= 0:
            raise ConfigError(f"TemporalShift: channels must be a positive integer, got {channels!r}")
        if isinstance(fold_div, bool) or not isinstance(fold_div, int) or fold_div <= 0:
            raise ConfigError(f"TemporalShift: fold_div must be a positive integer, got {fold_div!r}")
        if split_mode not in _SPLIT_MODES:
            raise ConfigError(f"TemporalShift: split_mode must be one of {_SPLIT_MODES}, got {split_mode!r}")
        self.channels = channels
        self.fold_div = fold_div
        self.segments = min(fold_div, channels)  # effective C_k
        self.fold = channels // self.segments  # C_fold
        self.split_mode = split_mode
        if split is None:
            g1, g2 = self.segments // 4, self.segments // 2
        else:
            if len(split) != 2 or not all(isinstance(g, int) and not isinstance(g, bool) for g in split):
                raise ConfigError(f"TemporalShift: split must be two integers (g1, g2), got {split!r}")
            if not 0 <= split[0] <= split[1] <= fold_div:
                raise ConfigError(f"TemporalShift: split {tuple(split)} must satisfy 0 <= g1 <= g2 <= fold_div "
                                  f"({fold_div})")
            g1, g2 = (g * self.segments // fold_div for g in split)
        self.split = (int(g1), int(g2))
        self.alpha = nn.Parameter(torch.tensor(float(alpha_init)))

    # ------------------------------------------------------------------ split
    def channel_counts(self, split: tuple[int, int] | None = None) -> tuple[int, int]:
        """``(n_future, n_past)`` channel counts for ``split`` (default: the eval split)."""
        g1, g2 = self.split if split is None else split
        return g1 * self.fold, (g2 - g1) * self.fold

    def _draw_split(self) -> tuple[int, int]:
        if self.segments < 3:  # no 0 < g1 < g2 < C_k exists
            return self.split
        g = torch.randperm(self.segments - 1)[:2] + 1
        g1, g2 = sorted(int(v) for v in g)
        return g1, g2

    @property
    def is_causal(self) -> bool:
        """True when no channel reads the future frame in eval (step-by-step executable).

        In ``split_mode='random'`` training always reads the future; this property
        describes the frozen eval split used by exporters.
        """
        return self.channel_counts()[0] == 0

    # ------------------------------------------------------------------ forward
    def shift(self, x: torch.Tensor, split: tuple[int, int] | None = None) -> torch.Tensor:
        """The shifted tensor Z (no residual, no alpha)."""
        nf, npast = self.channel_counts(split)
        fut, past, rest = x[:, :, :nf], x[:, :, nf:nf + npast], x[:, :, nf + npast:]
        pad_f = torch.zeros_like(fut[:1])
        pad_p = torch.zeros_like(past[:1])
        fut = torch.cat([fut[1:], pad_f], dim=0)  # Z[t] = X[t+1], zero at t = T-1
        past = torch.cat([pad_p, past[:-1]], dim=0)  # Z[t] = X[t-1], zero at t = 0
        return torch.cat([fut, past, rest], dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3 or x.shape[2] != self.channels:
            raise ConfigError(f"TemporalShift({self.channels}): expected input [T, B, {self.channels}, ...], "
                              f"got shape {tuple(x.shape)}")
        split = self._draw_split() if (self.training and self.split_mode == "random") else None
        return self.alpha * self.shift(x, split) + x

    def extra_repr(self) -> str:
        nf, npast = self.channel_counts()
        return (f"channels={self.channels}, fold_div={self.fold_div}, split={self.split}, mode={self.split_mode}, "
                f"future={nf}, past={npast}")
