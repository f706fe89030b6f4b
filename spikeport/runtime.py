"""Run-time helpers shared by training, energy analysis and the targets: devices and model inputs.

Kept below :mod:`spikeport.training`, :mod:`spikeport.energy` and
:mod:`spikeport.targets` so that none of them imports another for these.
"""

from __future__ import annotations

import torch

from spikeport.errors import ConfigError

__all__ = ["resolve_device", "to_sequence"]


def resolve_device(device: str | torch.device) -> torch.device:
    """Check ``device`` is ``cpu`` or an available ``cuda[:i]`` and return it.

    Raises:
        ConfigError: not a device name, a device type other than cpu/cuda, CUDA requested but absent
            (naming the torch build), or a CUDA index that does not exist.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"unknown device '{device}': not a device name; use cpu or cuda") from e
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise ConfigError(f"device '{device}' is not supported: only cpu and cuda are supported")
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only"
        raise ConfigError(f"device '{device}' requested but no CUDA GPU is available: CUDA is not available on this "
                          f"machine (torch {torch.__version__}, {build} build); use --device cpu")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device '{device}': only {torch.cuda.device_count()} CUDA device(s) present")
    return dev


def to_sequence(x: torch.Tensor, split_temporal: bool, timesteps: int, encoder: str,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Batch from a DataLoader -> model input ``[T, B, ...]``.

    Temporal datasets yield ``[B, T, ...]`` (transposed); static ones are encoded
    (:func:`spikeport.models.encoders.encode`).
    """
    from spikeport.models.encoders import encode

    if split_temporal:
        return x.transpose(0, 1).contiguous()
    if encoder == "none":
        raise ConfigError("encoder 'none' needs a temporal dataset (samples shaped [T, ...])")
    return encode(x, timesteps, encoder, generator)
