"""Run an exported file in its own runtime on user input and return its predictions (``spikeport run``).

The runtime is chosen by the file's suffix (:func:`~spikeport.targets.export.open_exported`): ``.onnx`` in
onnxruntime, ``.nir`` imported by spikeport and run by its executor, ``.net`` (Loihi) by the Loihi-exact
integer reference or by Lava's ``fixed_pt`` simulation, both following the runtime contract of the
``.loihi.json`` sidecar (input encoding, latency, reset schedule, host readout).

Input (``.npy``, loaded without pickle): one frame ``[*shape]``, a batch of frames ``[B, *shape]`` (direct
encoding: the same frame at each of the T steps) or an encoded sequence ``[T, B, *shape]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spikeport.errors import ConfigError, DataError

__all__ = ["ExportRun", "ExportedModel", "EXPORT_SUFFIXES", "load_input", "input_sequence", "run_exported"]

EXPORT_SUFFIXES = (".onnx", ".nir", ".net", ".h5", ".hdf5")
"""Suffixes of exported files (the rest are checkpoints or model sources)."""


@dataclass
class ExportRun:
    """Predictions of an exported file on some input.

    Attributes:
        predictions: ``[B]`` int64, argmax over classes of the mean over T of the logits.
        logits: ``[B, K]`` mean over T of the logits.
        runtime: what ran it (``onnxruntime``, ``nir-import``, ``loihi-reference``, ``lava-fixed_pt``).
        timesteps: T.
    """

    predictions: torch.Tensor
    logits: torch.Tensor
    runtime: str
    timesteps: int


def load_input(path: str | os.PathLike) -> np.ndarray:
    """A numeric ``.npy`` array (never unpickled)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such input file")
    try:
        arr = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{p}: not a numeric .npy array ({e}); save the input with numpy.save") from e
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf" or arr.size == 0:
        raise DataError(f"{p}: expected a non-empty numeric array, got dtype {getattr(arr, 'dtype', type(arr))}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise DataError(f"{p}: the input holds NaN or infinite values")
    return arr


def input_sequence(arr: np.ndarray, input_shape: tuple[int, ...], timesteps: int | None, where: str
                   ) -> torch.Tensor:
    """``[*shape]``, ``[B, *shape]`` or ``[T, B, *shape]`` -> the float ``[T, B, *shape]`` sequence."""
    shape = tuple(input_shape)
    x = torch.from_numpy(np.array(arr, dtype=np.float32))
    rank = len(shape)
    if x.dim() < rank or tuple(x.shape[x.dim() - rank:]) != shape or x.dim() > rank + 2:
        raise DataError(f"{where}: input of shape {list(x.shape)} does not end with the export's per-step shape "
                        f"{list(shape)} (expected [*shape], [B, *shape] or [T, B, *shape])")
    if x.dim() == rank + 2:
        if timesteps is not None and x.shape[0] != timesteps:
            raise DataError(f"{where}: the input sequence has T={x.shape[0]} steps but T={timesteps} was asked "
                            f"(the export's contract or -T); pass -T {x.shape[0]} to run it as it is")
        return x
    if timesteps is None:
        raise ConfigError(f"{where}: the export does not record T; pass -T/--timesteps (or an encoded [T, B, ...] "
                          "input)")
    if x.dim() == rank:
        x = x.unsqueeze(0)
    return x.unsqueeze(0).expand(timesteps, *x.shape).contiguous()


class ExportedModel:
    """An exported file opened in its runtime, predicting on ``[T, B, ...]`` sequences.

    Args:
        path: ``.onnx``, ``.nir`` or ``.net`` (with its ``.loihi.json``).
        backend: ``.net`` only: ``reference`` (Loihi-exact integer reference) or ``lava`` (Lava ``fixed_pt``).
        device: torch device of the reference runtimes.

    Attributes:
        input_shape: per-step input shape; timesteps: the export's own T (``None`` when it records none);
        runtime: what runs it.
    """

    def __init__(self, path: str | os.PathLike, *, backend: str = "reference", device: str = "cpu") -> None:
        from spikeport.targets.export import open_exported

        if backend not in ("reference", "lava"):
            raise ConfigError(f"--backend must be reference or lava, got {backend!r}")
        self.path = Path(path)
        if backend != "reference" and self.path.suffix.lower() not in (".net", ".h5", ".hdf5"):
            raise ConfigError(f"{self.path}: --backend {backend} applies to Loihi exports (.net) only")
        self.runner = open_exported(self.path, device=device, lava_backend=backend)
        shape = getattr(self.runner, "input_shape", None)
        if shape is None:
            raise DataError(f"{self.path}: the export does not record its input shape")
        self.input_shape = tuple(shape)
        self.timesteps: int | None = getattr(self.runner, "timesteps", None)
        self.runtime: str = self.runner.runtime

    def predict(self, x: torch.Tensor, batch_size: int = 256) -> ExportRun:
        """Predictions for the float sequence ``x`` ``[T, B, *input_shape]``, ``batch_size`` samples per run."""
        from spikeport.targets.verify import predictions

        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ConfigError(f"batch size must be a positive int, got {batch_size!r}")
        means, preds = [], []
        for i in range(0, x.shape[1], batch_size):
            res = self.runner.run(x[:, i:i + batch_size])
            means.append(res.logits.float().mean(0))
            preds.append(predictions(res.logits))
        return ExportRun(torch.cat(preds).to(torch.int64), torch.cat(means), self.runtime, int(x.shape[0]))


def run_exported(path: str | os.PathLike, arr: np.ndarray, *, timesteps: int | None = None,
                 backend: str = "reference", batch_size: int = 256, device: str = "cpu") -> ExportRun:
    """Run the exported file ``path`` on ``arr`` (see the module docstring) and return its predictions.

    Args:
        timesteps: T (default: the export's own: the ONNX sequence length or the Loihi runtime contract).
        backend, device: as :class:`ExportedModel`; batch_size: samples per run.

    Raises:
        ConfigError: bad options; DataError: bad input or file.
    """
    model = ExportedModel(path, backend=backend, device=device)
    t = timesteps if timesteps is not None else model.timesteps
    return model.predict(input_sequence(arr, model.input_shape, t, str(model.path)), batch_size)
