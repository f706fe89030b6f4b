"""CIFAR-10 / CIFAR-100 from the official "python version" archives on local disk.

Expected layout (what ``tar xzf cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``
produce); ``data_dir`` may point at the extracted folder or at its parent::

    cifar-10-batches-py/  data_batch_1 .. data_batch_5, test_batch, batches.meta
    cifar-100-python/     train, test, meta

Nothing is downloaded. The batch files are Python pickles, so they are read with
:class:`RestrictedUnpickler`, which only resolves the few numpy callables needed
to rebuild an ``ndarray`` and refuses every other global (``os.system``,
``builtins.eval``, ...) with a :class:`~spikeport.errors.DataError`.

Samples are ``(x[3,32,32] float32, label)``; ``x`` is scaled to [0, 1] and then
normalised with the dataset's per-channel mean/std. Train-time augmentation is
random crop 32 with padding 4 plus horizontal flip (see
:class:`spikeport.data.transforms.StaticAugment`).
"""

from __future__ import annotations

import io
import logging
import pickle
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import torch
from torch.utils.data import Dataset

from spikeport.data import DATASETS, DatasetSplit
from spikeport.data.transforms import StaticAugment
from spikeport.data.transforms import normalize as normalize_image
from spikeport.errors import ConfigError, DataError

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "RestrictedUnpickler",
    "safe_unpickle",
    "load_cifar_batch",
    "load_cifar_arrays",
    "CifarDataset",
    "cifar10",
    "cifar100",
]

logger = logging.getLogger(__name__)

# Per-channel statistics of the training sets (pixels in [0, 1]).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

_IMAGE_SHAPE = (3, 32, 32)
_IMAGE_SIZE = 3 * 32 * 32


# --------------------------------------------------------------------------- safe unpickling


class _ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle referenced a global outside the allow-list."""


def _latin1_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode`` that only performs the latin-1 encoding pickles use for bytes."""
    enc = str(encoding).lower().replace("-", "").replace("_", "")
    if not isinstance(obj, str) or enc not in {"latin1", "iso88591", "l1"} or errors != "strict":
        raise _ForbiddenGlobal(f"forbidden call _codecs.encode({type(obj).__name__}, {encoding!r})")
    return obj.encode("latin-1")


# the dtypes a CIFAR batch can hold ('b' is the placeholder numpy passes to _reconstruct), nothing else
_PLAIN_DTYPE = re.compile(r"[<>|=]?(b1|[iu][1248]|f[248])|b")


def _plain_dtype(spec: Any) -> np.dtype:
    """``numpy.dtype(spec)`` for a plain numeric dtype string only (no object, struct or void dtypes)."""
    if isinstance(spec, bytes):
        spec = spec.decode("latin-1")
    if not isinstance(spec, str) or not _PLAIN_DTYPE.fullmatch(spec):
        raise _ForbiddenGlobal(f"forbidden dtype {spec!r} (only plain numeric dtypes are allowed)")
    return np.dtype(spec)


def _safe_dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    """Stand-in for ``numpy.dtype``: plain numeric dtypes only, always a fresh copy (BUILD then sets its state)."""
    return np.dtype(_plain_dtype(spec), copy=True)


def _numpy_allow_list() -> dict[tuple[str, str], Callable[..., Any]]:
    """The numpy callables a pickled ``ndarray`` needs, under their numpy 1.x and 2.x module names."""
    try:
        from numpy._core import multiarray, numeric  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]

    def reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        # numpy writes _reconstruct(ndarray, (0,), b'b'); the real contents come with BUILD
        if subtype is not np.ndarray or tuple(shape) != (0,):
            raise _ForbiddenGlobal(f"forbidden call _reconstruct({subtype!r}, {shape!r})")
        # numpy's stubs type _reconstruct as returning object; with subtype ndarray it returns an ndarray
        return cast(np.ndarray, multiarray._reconstruct(np.ndarray, (0,), _plain_dtype(dtype)))

    def frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
        if not isinstance(dtype, np.dtype) or not _PLAIN_DTYPE.fullmatch(dtype.str):
            raise _ForbiddenGlobal(f"forbidden dtype {dtype!r} in _frombuffer")
        return numeric._frombuffer(buf, dtype, shape, order)  # type: ignore[attr-defined]  # private, not in numpy's stubs

    allowed: dict[tuple[str, str], Callable[..., Any]] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _safe_dtype,
        ("_codecs", "encode"): _latin1_encode,  # how protocol-2 pickles written by Python 3 store bytes
    }
    for mod in ("numpy.core", "numpy._core"):
        allowed[(f"{mod}.multiarray", "_reconstruct")] = reconstruct  # protocols 0-4
        allowed[(f"{mod}.numeric", "_frombuffer")] = frombuffer  # protocol 5
    return allowed


def _check_dtype_state(dtype: np.dtype, state: Any) -> None:
    """Allow ``BUILD`` on a dtype only with the state numpy itself writes for it (byte order may differ)."""
    canon = dtype.__reduce__()[2]
    ok = (isinstance(state, tuple) and len(state) == len(canon) and state[0] == canon[0]
          and state[2:] == canon[2:] and state[1] in (("|",) if dtype.itemsize == 1 else ("<", ">", "=")))
    if not ok:
        raise _ForbiddenGlobal(f"forbidden dtype state {state!r} for {dtype} (expected {canon!r})")


class RestrictedUnpickler(pickle._Unpickler):
    """An unpickler that can rebuild dicts, lists, str/bytes, numbers and numpy arrays, and nothing else.

    ``find_class`` returns only callables from an explicit allow-list (checked
    stand-ins for numpy's ``_reconstruct``/``_frombuffer`` and ``dtype``,
    ``ndarray`` and a latin-1-only ``_codecs.encode``); any other global raises
    :class:`pickle.UnpicklingError` before it is imported, so a crafted file
    cannot run code. Dtypes are plain numeric ones only, and ``BUILD`` on a dtype
    must carry the state numpy writes (attacker-chosen dtype flags make numpy
    raise ``SystemError`` or build arrays that claim to hold object references).

    It is based on the pure-Python ``pickle._Unpickler``, whose memo is a dict:
    the C unpickler's flat memo array lets a 13-byte pickle (``LONG_BINPUT
    2**26``) allocate about 1 GiB.
    """

    _allowed: dict[tuple[str, str], Callable[..., Any]] | None = None
    # typeshed types the opcode handlers as taking an Unpickler (not _Unpickler); they take any instance
    dispatch: ClassVar[dict[int, Callable[..., None]]] = dict(pickle._Unpickler.dispatch)
    stack: list[Any]  # pickle._Unpickler's value stack (undocumented, absent from typeshed)

    def find_class(self, module: str, name: str) -> Any:
        allowed = type(self)._allowed
        if allowed is None:
            allowed = type(self)._allowed = _numpy_allow_list()
        try:
            return allowed[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(f"forbidden global {module}.{name}") from None

    def load_build(self) -> None:
        state = self.stack[-1]
        inst = self.stack[-2]
        if isinstance(inst, np.dtype):
            _check_dtype_state(inst, state)
        elif not isinstance(inst, np.ndarray):
            raise _ForbiddenGlobal(f"forbidden BUILD on {type(inst).__name__}")
        super().load_build()  # type: ignore[misc]  # undocumented pure-Python handler, absent from typeshed

    dispatch[pickle.BUILD[0]] = load_build


def safe_unpickle(path: str | Path) -> Any:
    """Load a pickle file with :class:`RestrictedUnpickler` (Python-2 strings decoded as latin-1).

    Raises:
        DataError: the file is missing, truncated, not a pickle, references a forbidden global or
            dtype, or is otherwise corrupt.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()  # a BytesIO never pre-allocates the length a corrupt opcode claims
    except FileNotFoundError as e:
        raise DataError(f"{p} not found") from e
    except IsADirectoryError as e:
        raise DataError(f"{p} is a directory, expected a pickle file") from e
    except OSError as e:
        raise DataError(f"{p}: cannot read ({e})") from e
    try:
        return RestrictedUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except _ForbiddenGlobal as e:
        raise DataError(f"{p}: refusing to unpickle: {e} (only numpy arrays, lists, dicts, str and numbers are "
                        "allowed); replace it with the official file") from e
    except pickle.UnpicklingError as e:
        raise DataError(f"{p}: corrupt pickle ({e}); re-extract the original archive") from e
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, UnicodeDecodeError,
            OverflowError, MemoryError, RecursionError, SystemError, RuntimeError, struct.error) as e:
        raise DataError(f"{p}: truncated or corrupt pickle ({type(e).__name__}: {e}); "
                        "re-extract the original archive") from e


# --------------------------------------------------------------------------- file layout


@dataclass(frozen=True)
class _Layout:
    name: str
    folder: str
    archive: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


_LAYOUTS = {
    "cifar10": _Layout("cifar10", "cifar-10-batches-py", "cifar-10-python.tar.gz",
                       tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "batches.meta",
                       "labels", "label_names", 10, CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": _Layout("cifar100", "cifar-100-python", "cifar-100-python.tar.gz", ("train",), ("test",), "meta",
                        "fine_labels", "fine_label_names", 100, CIFAR100_MEAN, CIFAR100_STD),
}


def _layout(name: str) -> _Layout:
    try:
        return _LAYOUTS[name]
    except KeyError:
        raise ConfigError(f"unknown CIFAR variant '{name}' (known: {', '.join(_LAYOUTS)})") from None


def _find_root(layout: _Layout, data_dir: str | Path | None) -> Path:
    """Return the folder holding the batch files; ``data_dir`` is that folder or its parent."""
    if data_dir is None:
        raise ConfigError(f"dataset '{layout.name}' reads local files: pass data_dir (the folder where "
                          f"{layout.archive} was extracted); nothing is downloaded")
    d = Path(data_dir).expanduser()
    if not d.is_dir():
        raise DataError(f"{d}: data directory not found; extract {layout.archive} into it")
    if (d / layout.folder).is_dir():
        return d / layout.folder
    if any((d / f).is_file() for f in layout.train_files + layout.test_files):
        return d
    raise DataError(f"{d / layout.folder} not found; extract {layout.archive} into {d}")


def _str_keys(obj: Any, path: Path) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict (a CIFAR batch), got {type(obj).__name__}")
    return {(k.decode("latin-1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def load_cifar_batch(path: str | Path, label_key: str = "labels",
                     num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR batch file.

    Args:
        path: a batch file (``data_batch_1``, ``test_batch``, ``train``, ``test``).
        label_key: ``"labels"`` (CIFAR-10) or ``"fine_labels"`` (CIFAR-100).
        num_classes: labels must lie in ``[0, num_classes)``.

    Returns:
        ``(x[N,3,32,32] uint8, y[N] int64)``.

    Raises:
        DataError: the file is missing, unsafe, corrupt or not a CIFAR batch.
    """
    p = Path(path)
    batch = _str_keys(safe_unpickle(p), p)
    data, labels = batch.get("data"), batch.get(label_key)
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != _IMAGE_SIZE or data.dtype != np.uint8:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{p}: 'data' must be a uint8 array of shape [N, {_IMAGE_SIZE}], got {got}; "
                        "is this an official CIFAR python batch?")
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{p}: '{label_key}' is not a list of integers") from e
    if y.shape != (data.shape[0],):
        raise DataError(f"{p}: '{label_key}' has shape {y.shape}, expected ({data.shape[0]},) (one label per image)")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"{p}: labels must lie in [0, {num_classes}), got [{y.min()}, {y.max()}]")
    return np.ascontiguousarray(data.reshape(-1, *_IMAGE_SHAPE)), y


def load_cifar_arrays(name: str, data_dir: str | Path | None,
                      train: bool) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Read the train or test split of ``cifar10``/``cifar100``.

    Returns:
        ``(x[N,3,32,32] uint8, y[N] int64, class_names or None)``; class names come
        from the meta file when it is present.
    """
    layout = _layout(name)
    root = _find_root(layout, data_dir)
    xs, ys = [], []
    for fname in layout.train_files if train else layout.test_files:
        path = root / fname
        if not path.is_file():
            raise DataError(f"{path} not found; extract {layout.archive} into {root.parent}")
        x, y = load_cifar_batch(path, layout.label_key, layout.num_classes)
        xs.append(x)
        ys.append(y)
    names = None
    meta_path = root / layout.meta_file
    if meta_path.is_file():
        meta = _str_keys(safe_unpickle(meta_path), meta_path)
        raw = meta.get(layout.names_key)
        if isinstance(raw, list) and len(raw) == layout.num_classes:
            names = [n.decode("latin-1") if isinstance(n, bytes) else str(n) for n in raw]
        else:
            logger.warning("%s: no list of %d '%s'; class names unavailable", meta_path, layout.num_classes,
                           layout.names_key)
    return np.concatenate(xs), np.concatenate(ys), names


# --------------------------------------------------------------------------- dataset


class CifarDataset(Dataset):
    """In-memory CIFAR images yielding ``(x[3,32,32] float32, label)``.

    Args:
        images: ``[N,3,32,32]`` uint8.
        labels: ``[N]`` int64.
        mean: per-channel mean (pixels in [0, 1]); ``None`` skips normalisation.
        std: per-channel std; required when ``mean`` is given.
        augment: augmentation applied to the [0, 1] image before normalisation, or ``None``.
        classes: optional class names.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean: tuple[float, ...] | None = None,
                 std: tuple[float, ...] | None = None, augment: StaticAugment | None = None,
                 classes: list[str] | None = None) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        self.mean, self.std, self.augment, self.classes = mean, std, augment, classes

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = self.images[index].to(torch.float32).div_(255.0)
        if self.augment is not None:
            x = self.augment(x)
        if self.mean is not None and self.std is not None:
            x = normalize_image(x, self.mean, self.std)
        return x, int(self.labels[index])


def _build(name: str, train: bool, data_dir: str | None, augment: bool, normalize: bool) -> DatasetSplit:
    layout = _layout(name)
    x, y, classes = load_cifar_arrays(name, data_dir, train)
    ds = CifarDataset(x, y, mean=layout.mean if normalize else None, std=layout.std if normalize else None,
                      augment=StaticAugment() if (train and augment) else None, classes=classes)
    return DatasetSplit(dataset=ds, input_shape=_IMAGE_SHAPE, num_classes=layout.num_classes, temporal=False,
                        name=name)


@DATASETS.register(name="cifar10")
def cifar10(*, train: bool, data_dir: str | None = None, seed: int = 0, augment: bool = True,
            normalize: bool = True) -> DatasetSplit:
    """CIFAR-10 split from ``data_dir`` (the ``cifar-10-batches-py`` folder or its parent).

    Args:
        train: the 50000-image train split (5 batches) or the 10000-image test split.
        data_dir: where ``cifar-10-python.tar.gz`` was extracted.
        seed: unused (the split is fixed; augmentation uses the DataLoader's RNG).
        augment: random crop 32 pad 4 + horizontal flip on the train split (never on test).
        normalize: apply the CIFAR-10 mean/std.
    """
    return _build("cifar10", train, data_dir, augment, normalize)


@DATASETS.register(name="cifar100")
def cifar100(*, train: bool, data_dir: str | None = None, seed: int = 0, augment: bool = True,
             normalize: bool = True) -> DatasetSplit:
    """CIFAR-100 (fine labels) from ``data_dir`` (the ``cifar-100-python`` folder or its parent).

    Args are as for :func:`cifar10`.
    """
    return _build("cifar100", train, data_dir, augment, normalize)
