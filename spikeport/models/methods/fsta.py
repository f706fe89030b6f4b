r"""FSTA: frequency-based spatial-temporal attention (FSTA-SNN, AAAI 2025, arXiv 2501.14744).

Follows the official code (``github.com/yukairong/FSTA-SNN``, ``models/freq_layer.py``
class ``DCTSA`` and ``models/spike_layer.py`` class ``DctSpatialLIF``). Input is the
BN output (input current) :math:`X \in \mathbb{R}^{T \times B \times C \times H \times W}`.

Temporal attention:

.. math::

    a = \alpha\,\mathrm{AvgPool}_{HW}(X) + \beta\,\mathrm{MaxPool}_{HW}(X) \in \mathbb{R}^{B \times T \times C},\quad
    f = W_t a \ (\text{along } T,\ W_t \in \mathbb{R}^{T \times T},\ \text{no bias}),\quad
    w = \sigma(\mathrm{mean}_C f) \in \mathbb{R}^{B \times T},\quad
    X_t = X \odot (1 + w)

Spatial (DCT) attention, with the fixed orthonormal 7x7 2-D DCT-II bases :math:`B_k`
(a buffer, not a parameter) and zero padding 3:

.. math::

    D_k = \Big(\sum_c \mathrm{mean}_T X_t\Big)_c \star B_k,\quad
    s = \mathrm{Conv}_{7\times7}^{49\to1}(D),\quad
    X_s = X_t \odot (1 + \sigma(s))

(filtering the channel sum equals the official channel-repeated DCT weights).
Fusion: :math:`Y = (\theta_t X_t + \theta_s X_s) / 2` with :math:`\theta_t = 0.6`,
:math:`\theta_s = 0.5` learnable. :class:`FSTALIF` feeds Y to the repo's LIF:
:math:`u_t = 0.25\,u_{t-1} + Y_t`, :math:`o_t = 1[u_t > 0.5 V_{th}]` with
:math:`V_{th} = 1`, hard reset :math:`u_t \leftarrow u_t (1 - o_t)`.

Parameters per module: 2401 (7x7 conv, ``reduction=1``; with ``reduction=r > 1``,
:math:`49 \cdot (49 // r) \cdot 49 + (49 // r) \cdot 49`, e.g. 7350 for r = 16) + :math:`T^2` + 4 scalars.
The official ResNet-19 uses r = 1 in its stem and r = 16 in its blocks
(:func:`~spikeport.models.backbones.resnet.fsta_resnet19`).
Deliberately left out: the official unused scalars (``x``, ``t_scale``,
``s_scale``) and the 8x8 DCT option (``freq_num=64`` gives an H-1 output and
crashes upstream; refused here). The 3x3 bases (``freq_num=9``, padding 1) work.

FSTA mixes all timesteps (temporal FC and mean over T), so it is **non-causal**;
:class:`FSTA` must be a torch.fx leaf (its forward checks shapes), while
:class:`FSTALIF` is a plain composition (FSTA leaf -> neuron leaf).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from spikeport.errors import ConfigError
from spikeport.models.neurons.factory import NeuronType, create_neuron
from spikeport.models.neurons.modules import LIF

__all__ = ["dct_basis_2d", "FSTA", "FSTALIF", "fsta_lif", "FSTA_LIF_KW"]

# The official repo's LIF, expressed with our LIF module:
#   u = u - u/tau + y = 0.25 u + y  (tau = 4/3, decay_input=False), fire when u > 0.5 (v_th=1, level 0.5),
#   hard reset to 0. Surrogate: the official one, d/du of [tanh(k(clip(u,0,1)-0.5)) + tanh(k/2)]/(2 tanh(k/2))
#   with k=1 (0.85..1.08 on (0, 1), 0 outside) = our ``tanh_clip`` surrogate with alpha=k=1.
FSTA_LIF_KW: dict[str, Any] = {"tau": 4.0 / 3.0, "decay_input": False, "v_threshold": 0.5, "v_reset": 0.0,
                               "surrogate": "tanh_clip", "alpha": 1.0}

_DCT_SIZES = {49: 7, 9: 3}


def dct_basis_2d(n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Orthonormal 2-D DCT-II bases of size ``n x n``: tensor ``[n*n, n, n]``.

    ``B[u*n + v, i, j] = c(u) c(v) cos(pi (2j+1) u / 2n) cos(pi (2i+1) v / 2n)`` with
    ``c(0) = sqrt(1/n)``, ``c(k>0) = sqrt(2/n)``: the horizontal (column) frequency u is
    the major index, the order of the official table (so its conv weights load as is).
    """
    i = torch.arange(n, dtype=torch.float64)
    u = torch.arange(n, dtype=torch.float64)
    c = torch.full((n,), math.sqrt(2.0 / n), dtype=torch.float64)
    c[0] = math.sqrt(1.0 / n)
    basis_1d = c[:, None] * torch.cos(math.pi * (2 * i[None, :] + 1) * u[:, None] / (2 * n))  # [u, i]
    b = basis_1d[:, None, None, :] * basis_1d[None, :, :, None]  # [u, v, i, j]
    return b.reshape(n * n, n, n).to(dtype)


class FSTA(nn.Module):
    """FSTA attention on the input current (see module docstring for the equations).

    Args:
        channels: C (recorded for checks and repr; the parameters do not depend on it).
        timesteps: T (the temporal FC is T x T); inputs with another T raise ``ConfigError``.
        freq_num: number of DCT bases: 49 (7x7, default) or 9 (3x3). 64 (8x8) is refused.
        reduction: 1 (default: one 7x7 conv 49 -> 1) or r > 1 (49 -> 49 // r -> ReLU -> 1).
    """

    is_causal = False
    dct_basis: torch.Tensor  # buffer [F, 1, k, k]

    def __init__(self, channels: int, timesteps: int, freq_num: int = 49, reduction: int = 1) -> None:
        super().__init__()
        for n, v in (("channels", channels), ("timesteps", timesteps), ("reduction", reduction)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ConfigError(f"FSTA: {n} must be a positive integer, got {v!r}")
        if freq_num == 64:
            raise ConfigError("FSTA: freq_num=64 (8x8 DCT) is not supported: with padding 3 it shrinks the map to "
                              "H-1 (it crashes in the official code); use freq_num=49 (7x7) or 9 (3x3)")
        if freq_num not in _DCT_SIZES:
            raise ConfigError(f"FSTA: freq_num must be 49 (7x7 DCT) or 9 (3x3 DCT), got {freq_num!r}")
        if reduction > freq_num:
            raise ConfigError(f"FSTA: reduction={reduction} exceeds freq_num={freq_num}")
        self.channels, self.timesteps, self.freq_num, self.reduction = channels, timesteps, freq_num, reduction
        k = _DCT_SIZES[freq_num]
        self.dct_padding = k // 2
        self.register_buffer("dct_basis", dct_basis_2d(k).unsqueeze(1), persistent=False)  # [F, 1, k, k]
        self.freq_attention: nn.Module
        if reduction == 1:
            self.freq_attention = nn.Conv2d(freq_num, 1, kernel_size=7, padding=3, bias=False)
        else:
            self.freq_attention = nn.Sequential(
                nn.Conv2d(freq_num, freq_num // reduction, kernel_size=7, padding=3, bias=False), nn.ReLU(),
                nn.Conv2d(freq_num // reduction, 1, kernel_size=7, padding=3, bias=False))
        self.fc_t = nn.Linear(timesteps, timesteps, bias=False)
        self.alpha = nn.Parameter(torch.tensor(0.5))
        self.beta = nn.Parameter(torch.tensor(0.5))
        self.theta_t = nn.Parameter(torch.tensor(0.6))
        self.theta_s = nn.Parameter(torch.tensor(0.5))

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 5:
            raise ConfigError(f"FSTA: expected a 5-D input [T, B, C, H, W], got shape {tuple(x.shape)}")
        if x.shape[0] != self.timesteps:
            raise ConfigError(f"FSTA: built for T={self.timesteps} timesteps but the input has T={x.shape[0]}; "
                              f"rebuild the model with timesteps={x.shape[0]}")
        if x.shape[2] != self.channels:
            raise ConfigError(f"FSTA: built for C={self.channels} channels but the input has C={x.shape[2]}")

    def temporal_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Temporal attention :math:`w` of shape ``[T, B]``."""
        self._check(x)
        a = self.alpha * x.mean(dim=(3, 4)) + self.beta * x.amax(dim=(3, 4))  # [T, B, C]
        f = self.fc_t(a.permute(1, 2, 0))  # [B, C, T]: f[b, c, t'] = sum_t W[t', t] a[t, b, c]
        return torch.sigmoid(f.mean(dim=1)).t()

    def spatial_logits(self, x_t: torch.Tensor) -> torch.Tensor:
        """DCT spatial attention logits :math:`s` of shape ``[B, 1, H, W]``."""
        m = x_t.mean(dim=0).sum(dim=1, keepdim=True)  # channel sum of the time mean: [B, 1, H, W]
        d = F.conv2d(m, self.dct_basis.to(m.dtype), padding=self.dct_padding)  # [B, F, H, W]
        return self.freq_attention(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_t = x * (1.0 + self.temporal_weights(x)[..., None, None, None])
        x_s = x_t * (1.0 + torch.sigmoid(self.spatial_logits(x_t)).unsqueeze(0))
        return (self.theta_t * x_t + self.theta_s * x_s) / 2.0

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, timesteps={self.timesteps}, freq_num={self.freq_num}, "
                f"reduction={self.reduction}")


def fsta_lif() -> LIF:
    """The official repo's LIF as a :class:`~spikeport.models.neurons.LIF` (see ``FSTA_LIF_KW``)."""
    return LIF(**FSTA_LIF_KW)


class FSTALIF(nn.Module):
    """FSTA followed by a spiking neuron (the official ``DctSpatialLIF``).

    Args:
        channels, timesteps, freq_num, reduction: see :class:`FSTA`.
        neuron: ``None`` (default) for the repo's LIF (:func:`fsta_lif`), else any neuron spec
            (e.g. ``'relu'`` for the ANN twin).
        neuron_kw: options for ``neuron``.
    """

    is_causal = False

    def __init__(self, channels: int, timesteps: int, freq_num: int = 49, reduction: int = 1,
                 neuron: NeuronType | None = None, neuron_kw: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.fsta = FSTA(channels, timesteps, freq_num, reduction)
        self.neuron = fsta_lif() if neuron is None else create_neuron(neuron, **dict(neuron_kw or {}))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neuron(self.fsta(x))
