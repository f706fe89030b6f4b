"""Run a model over data while recording (the engine behind ``spikeport energy``)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sized
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset

from spikeport.energy.record import Recording, record_spikes
from spikeport.energy.report import EnergyReport, estimate
from spikeport.energy.rules import OpRule
from spikeport.errors import ConfigError, DataError

__all__ = ["analyze", "record_model", "load_npy_input", "recording_target"]


def load_npy_input(path: str, temporal: bool = False) -> np.ndarray:
    """Load a numeric ``.npy`` array of samples ``[N, ...]`` (never unpickles).

    Args:
        path: the ``.npy`` file.
        temporal: the samples are sequences ``[N, T, ...]`` (then T must be positive).

    Raises:
        DataError: missing file, object arrays, non-numeric, empty or non-finite data.
    """
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: no such input file") from None
    except ValueError as e:
        raise DataError(f"{path}: not a plain numeric .npy array ({e}); save it with np.save(..., allow_pickle=False)"
                        ) from e
    except OSError as e:
        raise DataError(f"{path}: cannot read .npy input ({e})") from e
    if not isinstance(arr, np.ndarray) or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise DataError(f"{path}: expected a numeric array, got dtype {getattr(arr, 'dtype', type(arr).__name__)}")
    if arr.ndim < 2 or arr.shape[0] == 0:
        raise DataError(f"{path}: expected samples along axis 0 ([N, ...] with N > 0), got shape {list(arr.shape)}")
    if temporal and (arr.ndim < 3 or arr.shape[1] == 0):
        raise DataError(f"{path}: expected sequences [N, T, ...] with T > 0, got shape {list(arr.shape)}")
    if arr.size == 0:
        raise DataError(f"{path}: shape {list(arr.shape)} has a zero-length axis (sequences [N, T, ...] need T > 0); "
                        "every axis needs at least one element")
    if np.issubdtype(arr.dtype, np.inexact) and not np.isfinite(arr).all():
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise DataError(f"{path}: {bad} of {arr.size} values are NaN or infinite; clean the input (e.g. "
                        "np.nan_to_num) before measuring energy")
    return arr


def _batches(data: Any, batch_size: int, samples: int | None) -> tuple[Iterable[Any], int]:
    """A batch iterable over ``data`` (DatasetSplit, Dataset, tensor/array or iterable of batches) and its length."""
    from spikeport.data import DatasetSplit

    if isinstance(data, DatasetSplit):
        data = data.dataset
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(np.ascontiguousarray(data)).float()
    if isinstance(data, torch.Tensor):
        data = TensorDataset(data)
    if isinstance(data, torch.utils.data.Dataset):
        if not isinstance(data, Sized):
            raise ConfigError(f"{type(data).__name__} has no length (an IterableDataset?): pass a DataLoader "
                              "over it instead, which is recorded batch by batch")
        n = len(data)
        if samples is not None:
            n = min(n, samples)
            data = Subset(data, range(n))
        return DataLoader(data, batch_size=batch_size, shuffle=False), math.ceil(n / batch_size)
    if samples is not None:
        raise ConfigError("samples= needs a dataset, tensor or array (not an iterable of batches)")
    try:
        n_batches = len(data)
    except TypeError:  # a generator, or a DataLoader over an IterableDataset: no progress total
        n_batches = 0
    return data, n_batches


def record_model(model: nn.Module, data: Any, *, timesteps: int, encoder: str = "direct", temporal: bool = False,
                 batch_size: int = 64, samples: int | None = None, device: str = "cpu", seed: int = 0,
                 rules: Mapping[type, OpRule] | None = None, graph: Any = None, progress: bool = False,
                 count_active: bool = False, allow_unmeasured: bool = False) -> Recording:
    """Run ``model`` in eval mode over ``data`` inside :func:`record_spikes` and return the recording.

    The model is moved to ``device`` and set to eval mode for the run; its device and
    train/eval mode are restored afterwards.

    Args:
        model: a multi-step model (``[T, B, ...]`` -> anything).
        data: a :class:`~spikeport.data.DatasetSplit`, a Dataset of ``(x, ...)``, a tensor or
            array ``[N, ...]``, or an iterable of batches (tensors or ``(x, ...)`` tuples).
        timesteps: T for static data (ignored for temporal data, which carries its own T).
        encoder: static-data encoder (``direct``, ``rate``, ``latency``).
        temporal: samples already are ``[T, ...]`` sequences (batches ``[B, T, ...]``).
        batch_size: samples per forward call.
        samples: use only the first ``samples`` samples.
        device: ``cpu`` or ``cuda``.
        seed: seeds the encoder's generator (rate coding), so reruns are identical.
        rules, graph, count_active, allow_unmeasured: passed to :func:`record_spikes`.
        progress: show a tqdm progress bar (on stderr).
    """
    from spikeport.runtime import resolve_device

    if batch_size <= 0:
        raise ConfigError(f"batch size must be positive, got {batch_size}")
    if samples is not None and samples <= 0:
        raise ConfigError(f"samples must be positive, got {samples}")
    dev = resolve_device(device)
    was_training, home = model.training, _device_of(model)
    model.to(dev).eval()
    try:
        return _record(model, data, dev, timesteps=timesteps, encoder=encoder, temporal=temporal,
                       batch_size=batch_size, samples=samples, seed=seed, rules=rules, graph=graph, progress=progress,
                       count_active=count_active, allow_unmeasured=allow_unmeasured)
    finally:  # the caller's model keeps its device and mode
        model.train(was_training)
        if home is not None:
            model.to(home)


def _device_of(model: nn.Module) -> torch.device | None:
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return None


def _record(model: nn.Module, data: Any, dev: torch.device, *, timesteps: int, encoder: str, temporal: bool,
            batch_size: int, samples: int | None, seed: int, rules: Mapping[type, OpRule] | None, graph: Any,
            progress: bool, count_active: bool, allow_unmeasured: bool) -> Recording:
    from spikeport.runtime import to_sequence

    it, n_batches = _batches(data, batch_size, samples)
    gen = torch.Generator().manual_seed(seed)
    bar: Iterator[Any] = iter(it)
    if progress:
        from tqdm import tqdm

        bar = tqdm(it, total=n_batches or None, desc="energy", unit="batch", leave=False,
                   disable=None)  # off when stderr is not a tty
    with record_spikes(model, rules=rules, graph=graph, count_active=count_active,
                       allow_unmeasured=allow_unmeasured) as rec, torch.no_grad():
        for batch in bar:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            if not isinstance(x, torch.Tensor):
                raise DataError(f"expected tensor batches, got {type(x).__name__}")
            x = x.to(dev, dtype=torch.float32)
            seq = to_sequence(x, temporal, timesteps, encoder, gen if dev.type == "cpu" else None)
            model(seq)
    if rec.samples == 0:
        raise DataError("no samples were processed (empty data)")
    return rec


def recording_target(model: nn.Module, input_shape: tuple[int, ...], *,
                     no_trace: bool = False) -> tuple[nn.Module, str]:
    """What to record: the lowered IR executor of ``model`` (rules keyed by IR node type), or ``model`` itself.

    Falls back to the torch modules (with a logged warning) when the model cannot be traced.

    Args:
        model: a multi-step model.
        input_shape: one sample's shape without T and B.
        no_trace: record the torch modules directly (element-wise ops written inline in
            ``forward()``, e.g. residual adds, are then not counted).

    Returns:
        ``(module to run, description of what is recorded)``.
    """
    from spikeport.errors import SpikeportError

    if any(hasattr(m, "ir_node") for m in model.modules()):
        return model, "IR graph (imported)"
    if no_trace:
        return model, "torch modules (--no-trace)"
    try:
        from spikeport.converter import lower, trace

        return lower(trace(model, input_shape)), "IR graph (traced)"
    except SpikeportError as e:
        logging.getLogger(__name__).warning("tracing failed, recording the torch modules instead: %s", e)
        return model, f"torch modules (tracing failed: {e})"


def analyze(model: nn.Module, data: Any, *, timesteps: int, hardware: Any = "horowitz45", encoder: str = "direct",
            temporal: bool = False, batch_size: int = 64, samples: int | None = None, device: str = "cpu",
            seed: int = 0, rules: Mapping[type, OpRule] | None = None, graph: Any = None, progress: bool = False,
            meta: Mapping[str, Any] | None = None, allow_unmeasured: bool = False) -> EnergyReport:
    """Record ``model`` on ``data`` and estimate its energy (see :func:`record_model`, :func:`estimate`).

    Active membrane updates are counted when the energy model prices them apart from idle ones.
    """
    from spikeport.energy.hardware import get_hardware

    hw = get_hardware(hardware)
    rec = record_model(model, data, timesteps=timesteps, encoder=encoder, temporal=temporal, batch_size=batch_size,
                       samples=samples, device=device, seed=seed, rules=rules, graph=graph, progress=progress,
                       count_active=hw.e_neuron_active_pj != hw.e_neuron_idle_pj, allow_unmeasured=allow_unmeasured)
    info = {"encoder": "none (temporal data)" if temporal else encoder, "seed": seed}
    info.update(dict(meta or {}))
    return estimate(rec, hw, meta=info)
