"""Time layouts: how a model's tensors carry time and batch, and conversion from spikeport's ``[T, B, ...]``.

spikeport's data and IR are time-first ``[T, B, ...]``. Models from other frameworks take:

===========  ======================  =================================================================
layout       model input             typical source
===========  ======================  =================================================================
``tb``       ``[T, B, ...]``         spikeport, SpikingJelly multi-step (``step_mode='m'``), Norse ``LIF``,
                                     models whose ``forward`` loops over time
``bt``       ``[B, T, ...]``         sinabs ``IAF``/``LIF``
``bt-flat``  ``[B*T, ...]``          sinabs ``*Squeeze`` layers (row ``b*T + t``, batch-major)
``time-last````[B, ..., T]``         lava-dl SLAYER
``step``     ``[B, ...]`` per call   snnTorch, Norse cells, SpikingJelly single-step: the model is
                                     called once per step and keeps (or is handed) its state
===========  ======================  =================================================================

:func:`to_layout` / :func:`from_layout` convert whole sequences (``step`` is handled by the
caller, one ``x[t]`` per call). :data:`LEAD_AXES` is the number of leading non-feature axes a
tensor has in each layout (the tracer maps ``dim`` arguments with it).
"""

from __future__ import annotations

import torch

from spikeport.errors import ConfigError

__all__ = ["TIME_LAYOUTS", "LEAD_AXES", "check_layout", "to_layout", "from_layout", "describe"]

TIME_LAYOUTS = ("tb", "bt", "bt-flat", "time-last", "step")
LEAD_AXES = {"tb": 2, "bt": 2, "bt-flat": 1, "time-last": 1, "step": 1}
_SHAPES = {"tb": "[T, B, ...]", "bt": "[B, T, ...]", "bt-flat": "[B*T, ...] (batch-major)",
           "time-last": "[B, ..., T]", "step": "[B, ...] once per step"}


def check_layout(layout: str) -> str:
    """``layout`` if it is a known time layout (ConfigError listing them otherwise)."""
    if layout not in TIME_LAYOUTS:
        raise ConfigError(f"unknown time layout '{layout}'; use one of: "
                          + ", ".join(f"{k} {v}" for k, v in _SHAPES.items()))
    return layout


def describe(layout: str) -> str:
    """The tensor shape a layout stands for, e.g. ``[B, T, ...]``."""
    return _SHAPES[check_layout(layout)]


def to_layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    """``x`` ``[T, B, ...]`` in ``layout`` (not ``step``)."""
    if layout == "tb":
        return x
    if layout == "bt":
        return x.transpose(0, 1).contiguous()
    if layout == "bt-flat":
        return x.transpose(0, 1).reshape(x.shape[0] * x.shape[1], *x.shape[2:])
    if layout == "time-last":
        return x.movedim(0, -1).contiguous()
    raise ConfigError(f"to_layout: layout '{layout}' is not a whole-sequence layout")


def from_layout(y: torch.Tensor, layout: str, t: int, b: int) -> torch.Tensor:
    """A model output in ``layout`` back to ``[T, B, ...]`` (``t``, ``b``: the input's T and B)."""
    if layout == "tb":
        return y
    if layout == "bt":
        return y.transpose(0, 1)
    if layout == "bt-flat":
        if y.shape[0] != b * t:
            raise ConfigError(f"output has {y.shape[0]} rows; a [B*T, ...] output needs B*T = {b * t}")
        return y.reshape(b, t, *y.shape[1:]).transpose(0, 1)
    if layout == "time-last":
        return y.movedim(-1, 0)
    raise ConfigError(f"from_layout: layout '{layout}' is not a whole-sequence layout")
