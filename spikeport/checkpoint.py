"""The spikeport checkpoint format: one file, safe to load.

A checkpoint is a ``torch.save`` archive of a plain dict (tensors, numbers,
strings, lists, dicts only), so it loads with ``torch.load(weights_only=True)``:

========================  ====================================================
key                       meaning
========================  ====================================================
``format``                ``"spikeport-checkpoint"``
``version``               format version (int, currently 1)
``model``                 zoo model name (``create_model`` key)
``model_kwargs``          keyword arguments for ``create_model``
``state_dict``            the model weights
``timesteps``             T used for training / evaluation
``input_shape``           one sample's shape without T and B, e.g. ``[1, 8, 8]``
``encoder``               input encoder (``direct``, ``rate``, ``latency``, ``none``)
``dataset``               dataset name it was trained on (or ``""``)
``metrics``               training metrics (floats), e.g. ``{"test_acc": 0.97}``
========================  ====================================================

Files are written atomically. Loading refuses pickled code (anything that is
not plain data) without executing it, and reports truncated, foreign or
mismatched files as a one-line :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import math
import pickle
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spikeport._io import atomic_path
from spikeport.errors import CheckpointError, SpikeportError

__all__ = ["FORMAT", "VERSION", "CheckpointInfo", "save_checkpoint", "read_checkpoint", "load_checkpoint"]

FORMAT = "spikeport-checkpoint"
VERSION = 1
_REQUIRED = ("format", "version", "model", "model_kwargs", "state_dict", "timesteps", "input_shape")
# What zipfile / torch.load raise on damaged bytes (found by tests/adversarial/test_fuzz_readers.py).
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError, UnicodeDecodeError, ValueError,
               OverflowError, zlib.error)
_LOAD_ERRORS = (RuntimeError, EOFError, OSError, ValueError, NotImplementedError, UnicodeDecodeError, OverflowError,
                KeyError, IndexError, TypeError, AttributeError, AssertionError, struct.error, zlib.error,
                MemoryError, RecursionError)


def _known_encoders() -> set[str]:
    from spikeport.models.encoders import ENCODERS

    return {*ENCODERS.names(), "none"}  # "none": samples are already sequences (event data)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@dataclass(frozen=True)
class CheckpointInfo:
    """Everything in a checkpoint except the weights."""

    model: str
    model_kwargs: dict[str, Any]
    timesteps: int
    input_shape: tuple[int, ...]
    encoder: str = "direct"
    dataset: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    path: str = ""


def _plain(obj: Any, where: str) -> Any:
    """Check ``obj`` is plain data (what ``weights_only`` can load back); convert tuples to lists."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [_plain(v, where) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _plain(v, where) for k, v in obj.items()}
    raise CheckpointError(f"{where}: value {obj!r} of type {type(obj).__name__} cannot be stored in a checkpoint; "
                          "use numbers, strings, lists or dicts")


def save_checkpoint(path: str | Path, model: nn.Module, info: CheckpointInfo) -> Path:
    """Write ``model``'s weights and ``info`` to ``path`` atomically.

    The bytes depend only on the payload: saving the same weights and info twice
    (to any path) gives identical files.
    """
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model": info.model,
        "model_kwargs": _plain(info.model_kwargs, "model_kwargs"),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "timesteps": int(info.timesteps),
        "input_shape": [int(s) for s in info.input_shape],
        "encoder": info.encoder,
        "dataset": info.dataset,
        "metrics": {k: float(v) for k, v in info.metrics.items()},
    }
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        # a file object, not a path: torch names the archive's root folder after a path's stem (here the random
        # temp name), while a file object gives the fixed root 'archive' -> equal payloads, equal bytes
        torch.save(payload, fh)
    return Path(path)


def read_checkpoint(path: str | Path) -> tuple[CheckpointInfo, dict[str, torch.Tensor]]:
    """Read and validate a checkpoint without building the model.

    Raises:
        CheckpointError: missing, empty, truncated, foreign, unsafe or malformed file.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint file")
    size = p.stat().st_size
    if size == 0:
        raise CheckpointError(f"{p}: empty file, not a checkpoint")
    with p.open("rb") as fh:
        head = fh.read(4)
    if head != b"PK\x03\x04":
        raise CheckpointError(f"{p}: not a spikeport checkpoint (not a torch zip archive); "
                              "create one with `spikeport train ... --out FILE.pt`")
    try:
        with zipfile.ZipFile(p) as zf:
            bad = zf.testzip()
    except _ZIP_ERRORS as e:  # zipfile raises all of these on damaged headers
        raise CheckpointError(f"{p}: truncated or corrupt checkpoint ({_first_line(e)})") from e
    if bad is not None:
        raise CheckpointError(f"{p}: corrupt checkpoint (member {bad} fails its CRC)")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{p}: refused: the file holds pickled Python objects, not plain weights "
                              "(loading it could run code); re-save the weights with spikeport") from e
    except _LOAD_ERRORS as e:
        raise CheckpointError(f"{p}: truncated or corrupt checkpoint ({_first_line(e)})") from e
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a spikeport checkpoint (missing format tag '{FORMAT}'); "
                              "a bare state_dict can be used as `--weights` with a model factory")
    if obj.get("version") != VERSION:
        raise CheckpointError(f"{p}: checkpoint version {obj.get('version')!r} is not supported (expected {VERSION}); "
                              "upgrade spikeport or re-export the checkpoint")
    missing = [k for k in _REQUIRED if k not in obj]
    if missing:
        raise CheckpointError(f"{p}: malformed checkpoint, missing keys {missing}")
    sd = obj["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{p}: malformed checkpoint, 'state_dict' is not a dict of tensors")
    for k, v in sd.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"{p}: weight '{k}' contains NaN or Inf; retrain or fix the checkpoint")
    t = obj["timesteps"]
    if isinstance(t, bool) or not isinstance(t, int) or t <= 0:
        raise CheckpointError(f"{p}: malformed checkpoint, timesteps={t!r} must be a positive integer")
    shape = obj["input_shape"]
    if not isinstance(shape, (list, tuple)) or not all(isinstance(s, int) and s > 0 for s in shape):
        raise CheckpointError(f"{p}: malformed checkpoint, input_shape={shape!r}")
    if not isinstance(obj["model_kwargs"], dict):
        raise CheckpointError(f"{p}: malformed checkpoint, model_kwargs is not a dict")
    encoder = obj.get("encoder", "direct")
    if not isinstance(encoder, str) or encoder not in _known_encoders():
        raise CheckpointError(f"{p}: malformed checkpoint, encoder={encoder!r} is not one of "
                              f"{', '.join(sorted(_known_encoders()))}")
    metrics = {str(k): float(v) for k, v in (obj.get("metrics") or {}).items()
               if isinstance(v, (int, float)) and math.isfinite(float(v))}
    info = CheckpointInfo(model=str(obj["model"]), model_kwargs=dict(obj["model_kwargs"]), timesteps=t,
                          input_shape=tuple(shape), encoder=encoder,
                          dataset=str(obj.get("dataset", "")), metrics=metrics, path=str(p))
    return info, sd


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, CheckpointInfo]:
    """Rebuild the zoo model stored in ``path`` and load its weights (eval mode)."""
    from spikeport.models import create_model

    info, sd = read_checkpoint(path)
    kwargs = dict(info.model_kwargs)
    for k in ("channels", "hidden", "input_shape"):  # stored as lists; factories expect tuples
        if isinstance(kwargs.get(k), list):
            kwargs[k] = tuple(kwargs[k])
    try:
        model = create_model(info.model, **kwargs)
    except SpikeportError as e:
        raise CheckpointError(f"{path}: cannot rebuild model: {e}") from e
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit model '{info.model}' ({first})") from e
    return model.to(map_location).eval(), info
