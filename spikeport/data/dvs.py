"""Event-camera datasets from their original releases: DVS128 Gesture and CIFAR10-DVS.

Nothing is downloaded; ``data_dir`` points at the user's extracted release.

**DVS128 Gesture** (``dvs128gesture``, 11 classes, 128x128): the ``DvsGesture/``
folder with ``user*_*.aedat`` (AEDAT 3.1), ``user*_*_labels.csv``
(``class,startTime_usec,endTime_usec``, classes 1..11) and
``trials_to_train.txt`` / ``trials_to_test.txt``. Every CSV row is one sample:
the events with ``start <= t < end`` (as SpikingJelly does: 1176 train / 288 test).

AEDAT 3.1 (libcaer ``common.h``/``polarity.h``): ASCII header lines starting
with ``#`` up to ``#!END-HEADER\\r\\n``, then packets. A packet is a 28-byte
little-endian header ``int16 eventType, int16 eventSource, int32 eventSize,
int32 eventTSOffset, int32 eventTSOverflow, int32 eventCapacity, int32 eventNumber,
int32 eventValid`` followed by ``eventCapacity * eventSize`` bytes. Polarity
packets (type 1) hold 8-byte events ``uint32 data, int32 timestamp``; in ``data``
bit 0 is the valid mark, bit 1 the polarity (1 = ON), bits 2..16 ``y`` and bits
17..31 ``x``. The full timestamp (us) is ``timestamp | eventTSOverflow << 31``.

**CIFAR10-DVS** (``cifar10dvs``, 10 classes, 128x128): ten class folders
(``airplane/`` .. ``truck/``) of AEDAT 2.0 files (jAER): header lines starting
with ``#`` (the first is ``#!AER-DAT2.0``), then big-endian 8-byte events
``uint32 address, uint32 timestamp``. DVS128 address: bit 0 polarity (1 = OFF in
jAER), bits 1..7 ``x``, bits 8..14 ``y``. Coordinates follow SpikingJelly's
``cifar10_dvs.py`` so frames match models trained with it:
``x = 127 - y_raw``, ``y = 127 - x_raw``, ``p = 1 - bit0``. The split is per class:
the first ``ceil(0.9 n)`` files (name order, SpikingJelly's
``split_to_train_test_set(0.9, random_split=False)``) train, the rest test; or a
seeded per-class shuffle with ``split_seed``.

**Frames**: events are integrated into ``T`` frames ``[T, 2, H, W]`` float32 of
event counts (channel 0 = OFF, 1 = ON), either by event count (``split_by="number"``:
frame ``j`` gets events ``[j*N//T, (j+1)*N//T)``, the last frame takes the rest) or
by time (``split_by="time"``: bins of width ``(t_last - t_0) // T``, the last bin
takes the rest), both as in SpikingJelly. ``size`` optionally resizes (area
averaging or bilinear). Converted frames may be cached as ``.npz`` in a
user-given ``cache_dir`` (written atomically, read with ``allow_pickle=False``).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import struct
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from spikeport._io import atomic_path
from spikeport.data import DATASETS, DatasetSplit
from spikeport.data.transforms import EventAugment
from spikeport.errors import ConfigError, DataError

__all__ = [
    "SENSOR_SIZE",
    "CIFAR10DVS_CLASSES",
    "GESTURE_NUM_CLASSES",
    "Events",
    "read_aedat2",
    "decode_dvs128_address",
    "load_cifar10dvs_events",
    "read_aedat31",
    "integrate_frames",
    "resize_frames",
    "EventSample",
    "EventFrameDataset",
    "cifar10dvs_samples",
    "dvs128gesture_samples",
    "cifar10dvs",
    "dvs128gesture",
]

logger = logging.getLogger(__name__)

SENSOR_SIZE = (128, 128)  # (H, W) of the DVS128 sensor used by both datasets
CIFAR10DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
GESTURE_NUM_CLASSES = 11
_CACHE_VERSION = 1

_AEDAT31_HEADER = struct.Struct("<hhiiiiii")  # 28 bytes
_POLARITY_EVENT = 1


class Events(NamedTuple):
    """Decoded events, one entry per event (file order).

    Attributes:
        t: int64 timestamps in microseconds.
        x: int64 column in ``[0, W)``.
        y: int64 row in ``[0, H)``.
        p: int64 polarity, 0 (OFF) or 1 (ON).
    """

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray

    def select(self, mask: np.ndarray) -> Events:
        return Events(self.t[mask], self.x[mask], self.y[mask], self.p[mask])


# --------------------------------------------------------------------------- AEDAT 2.0 (CIFAR10-DVS)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        raise DataError(f"{path} not found") from e
    except IsADirectoryError as e:
        raise DataError(f"{path} is a directory, expected an .aedat file") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from e


def read_aedat2(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a jAER AEDAT 2.0 file.

    Returns:
        ``(t[N] int64 us, address[N] uint32)`` in file order.

    Raises:
        DataError: missing file, wrong magic line, or a body that is not a whole number of 8-byte events.
    """
    p = Path(path)
    raw = _read_bytes(p)
    if not raw.startswith(b"#!AER-DAT2"):
        first = raw[:20]
        raise DataError(f"{p}: not an AEDAT 2.0 file (first bytes {first!r}, expected b'#!AER-DAT2.0')")
    pos = 0
    while pos < len(raw) and raw[pos : pos + 1] == b"#":  # header: whole lines starting with '#'
        nl = raw.find(b"\n", pos)
        if nl < 0:
            raise DataError(f"{p}: truncated AEDAT 2.0 header (no end of line after byte {pos})")
        pos = nl + 1
    body = raw[pos:]
    if len(body) % 8:
        raise DataError(f"{p}: truncated AEDAT 2.0 file: {len(body)} data bytes is not a multiple of 8 "
                        f"(address + timestamp per event)")
    words = np.frombuffer(body, dtype=">u4").reshape(-1, 2)
    return words[:, 1].astype(np.int64), words[:, 0].astype(np.uint32)


def decode_dvs128_address(address: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split jAER DVS128 addresses into raw ``(x, y, polarity_bit)`` (bits 1..7, 8..14 and 0), int64."""
    a = address.astype(np.int64)
    return (a >> 1) & 0x7F, (a >> 8) & 0x7F, a & 0x1


def load_cifar10dvs_events(path: str | Path) -> Events:
    """Decode one CIFAR10-DVS ``.aedat`` file in SpikingJelly's orientation (see the module docstring)."""
    t, addr = read_aedat2(path)
    x_raw, y_raw, bit = decode_dvs128_address(addr)
    return Events(t=t, x=127 - y_raw, y=127 - x_raw, p=1 - bit)


# --------------------------------------------------------------------------- AEDAT 3.1 (DVS128 Gesture)


def read_aedat31(path: str | Path, valid_only: bool = True) -> Events:
    """Read the polarity events of an AEDAT 3.1 file (other packet types are skipped).

    Args:
        path: the ``.aedat`` file.
        valid_only: drop events whose valid mark (bit 0) is clear, as libcaer readers do.

    Raises:
        DataError: missing file, not AEDAT 3.x, no end of header, or a truncated/corrupt packet.
    """
    p = Path(path)
    raw = _read_bytes(p)
    if not raw.startswith(b"#!AER-DAT3"):
        raise DataError(f"{p}: not an AEDAT 3.x file (first bytes {raw[:20]!r}, expected b'#!AER-DAT3.1')")
    end = raw.find(b"#!END-HEADER")
    nl = raw.find(b"\n", end) if end >= 0 else -1
    if nl < 0:
        raise DataError(f"{p}: AEDAT 3.1 header has no '#!END-HEADER' line; the file is truncated or corrupt")
    pos, n = nl + 1, len(raw)
    data_parts: list[np.ndarray] = []
    ts_parts: list[np.ndarray] = []
    while pos < n:
        if n - pos < _AEDAT31_HEADER.size:
            raise DataError(f"{p}: truncated AEDAT 3.1 packet header at byte {pos} ({n - pos} of 28 bytes)")
        etype, _src, esize, ts_off, ts_ovf, capacity, number, _valid = _AEDAT31_HEADER.unpack_from(raw, pos)
        pos += _AEDAT31_HEADER.size
        if esize <= 0 or capacity < 0 or number < 0 or number > capacity:
            raise DataError(f"{p}: corrupt AEDAT 3.1 packet header at byte {pos - 28} (eventSize={esize}, "
                            f"eventCapacity={capacity}, eventNumber={number})")
        length = capacity * esize
        if n - pos < length:
            raise DataError(f"{p}: truncated AEDAT 3.1 packet at byte {pos - 28}: needs {length} bytes of events, "
                            f"{n - pos} left")
        if etype == _POLARITY_EVENT and number:
            if esize < 8 or esize % 4 or ts_off not in range(4, esize - 3, 4):
                raise DataError(f"{p}: polarity packet at byte {pos - 28} has eventSize={esize}, "
                                f"eventTSOffset={ts_off}; expected 8 and 4")
            words = np.frombuffer(raw, dtype="<u4", count=number * (esize // 4), offset=pos).reshape(number, -1)
            data_parts.append(words[:, 0])
            ts_parts.append(words[:, ts_off // 4].astype(np.int64) | (np.int64(ts_ovf) << 31))
        pos += length
    data = np.concatenate(data_parts) if data_parts else np.zeros(0, np.uint32)
    t = np.concatenate(ts_parts) if ts_parts else np.zeros(0, np.int64)
    d = data.astype(np.int64)
    ev = Events(t=t, x=(d >> 17) & 0x7FFF, y=(d >> 2) & 0x7FFF, p=(d >> 1) & 0x1)
    return ev.select((d & 0x1) == 1) if valid_only else ev


# --------------------------------------------------------------------------- frames


def integrate_frames(events: Events, T: int, split_by: str = "number",
                     sensor_size: tuple[int, int] = SENSOR_SIZE) -> np.ndarray:
    """Accumulate events into ``T`` two-channel count frames.

    Args:
        events: decoded events (file order).
        T: number of frames.
        split_by: ``"number"`` (equal event counts) or ``"time"`` (equal time bins); see the module docstring.
        sensor_size: ``(H, W)``; events outside are dropped with a warning.

    Returns:
        ``[T, 2, H, W]`` float32 event counts (channel 0 = OFF, 1 = ON).
    """
    if T < 1:
        raise ConfigError(f"number of frames T must be >= 1, got {T}")
    h, w = sensor_size
    n = events.t.shape[0]
    if split_by == "number":
        step = n // T
        bins = np.minimum(np.arange(n) // step, T - 1) if step else np.full(n, T - 1)
    elif split_by == "time":
        if n:
            dt = max(int(events.t[-1] - events.t[0]) // T, 1)
            bins = np.clip((events.t - events.t[0]) // dt, 0, T - 1)
        else:
            bins = np.zeros(0, np.int64)
    else:
        raise ConfigError(f"split_by must be 'number' or 'time', got {split_by!r}")
    inside = (events.x >= 0) & (events.x < w) & (events.y >= 0) & (events.y < h)
    if not inside.all():
        logger.warning("dropping %d events outside the %dx%d sensor", int((~inside).sum()), h, w)
    pol = (events.p[inside] != 0).astype(np.int64)
    flat = ((bins[inside] * 2 + pol) * h + events.y[inside]) * w + events.x[inside]
    counts = np.bincount(flat.astype(np.int64), minlength=T * 2 * h * w)
    return counts.reshape(T, 2, h, w).astype(np.float32)


def resize_frames(frames: np.ndarray, size: tuple[int, int], mode: str = "area") -> np.ndarray:
    """Resize ``[T, C, H, W]`` frames to ``size`` = ``(H', W')``.

    ``mode="area"`` averages over source pixels (adaptive average pooling);
    ``"bilinear"`` interpolates (align_corners=False, no antialiasing).
    """
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    if mode not in ("area", "bilinear"):
        raise ConfigError(f"resize mode must be 'area' or 'bilinear', got {mode!r}")
    x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    kw = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(x, size=tuple(size), mode=mode, **kw).numpy()


# --------------------------------------------------------------------------- dataset


@dataclass(frozen=True)
class EventSample:
    """One sample: events of ``path`` (within ``t_range`` = ``[start, end)`` if given) and its label."""

    path: Path
    label: int
    key: str
    t_range: tuple[int, int] | None = None


class EventFrameDataset(Dataset):
    """Event samples integrated on the fly into ``(x[T,2,H,W] float32, label)``.

    Args:
        samples: the samples of this split.
        reader: decodes one file into :class:`Events`.
        T: frames per sample.
        split_by: ``"number"`` or ``"time"``.
        size: output ``(H, W)``; the sensor size means no resize.
        resize_mode: ``"area"`` or ``"bilinear"``.
        augment: train-time augmentation or ``None``.
        cache_dir: optional folder for converted frames (``.npz``); ``None`` disables caching.
        name: dataset name (a sub-folder of ``cache_dir``).
    """

    def __init__(self, samples: Sequence[EventSample], reader: Callable[[Path], Events], *, T: int,
                 split_by: str = "number", size: tuple[int, int] = SENSOR_SIZE, resize_mode: str = "area",
                 augment: EventAugment | None = None, cache_dir: str | Path | None = None,
                 name: str = "events") -> None:
        if T < 1:
            raise ConfigError(f"{name}: number of frames T must be >= 1, got {T}")
        if split_by not in ("number", "time"):
            raise ConfigError(f"{name}: split_by must be 'number' or 'time', got {split_by!r}")
        if resize_mode not in ("area", "bilinear"):
            raise ConfigError(f"{name}: resize_mode must be 'area' or 'bilinear', got {resize_mode!r}")
        if len(size) != 2:
            raise ConfigError(f"{name}: size must be (H, W), got {size!r}")
        self.samples = list(samples)
        self.reader, self.T, self.split_by, self.size = reader, T, split_by, (size[0], size[1])
        self.resize_mode, self.augment, self.name = resize_mode, augment, name
        self.cache_dir = Path(cache_dir).expanduser() / name if cache_dir is not None else None
        self._by_path: dict[Path, list[int]] = {}
        for i, s in enumerate(self.samples):
            self._by_path.setdefault(s.path, []).append(i)
        self._last: tuple[Path, Events] | None = None  # one decoded file, for consecutive samples of it

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(self.frames(index))
        if self.augment is not None:
            x = self.augment(x)
        return x, self.samples[index].label

    def frames(self, index: int) -> np.ndarray:
        """Un-augmented frames ``[T, 2, H, W]`` of sample ``index`` (from the cache when possible)."""
        sample = self.samples[index]
        cache_dir = self.cache_dir
        if cache_dir is None:
            return self._convert(sample)
        cached = self._load_cached(self._cache_path(cache_dir, sample))
        if cached is not None:
            return cached
        result = None
        for j in self._by_path[sample.path]:  # the file is decoded anyway: convert all its samples
            other = self.samples[j]
            out = self._convert(other)
            self._save_cached(self._cache_path(cache_dir, other), out)
            if j == index:
                result = out
        return result if result is not None else self._convert(sample)

    def _events(self, path: Path) -> Events:
        if self._last is None or self._last[0] != path:
            self._last = (path, self.reader(path))
        return self._last[1]

    def _convert(self, sample: EventSample) -> np.ndarray:
        ev = self._events(sample.path)
        if sample.t_range is not None:
            ev = ev.select((ev.t >= sample.t_range[0]) & (ev.t < sample.t_range[1]))
        frames = integrate_frames(ev, self.T, self.split_by, SENSOR_SIZE)
        return np.ascontiguousarray(resize_frames(frames, self.size, self.resize_mode), dtype=np.float32)

    def _cache_path(self, cache_dir: Path, sample: EventSample) -> Path:
        try:
            st = sample.path.stat()
        except OSError as e:
            raise DataError(f"{sample.path}: cannot read ({e.strerror})") from e
        ident = (f"{sample.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{sample.t_range}|{self.T}|{self.split_by}|"
                 f"{self.size}|{self.resize_mode}|v{_CACHE_VERSION}")
        digest = hashlib.sha1(ident.encode("utf-8")).hexdigest()[:12]
        return cache_dir / f"{sample.key}-{digest}.npz"

    def _load_cached(self, path: Path) -> np.ndarray | None:
        if not path.is_file():
            return None
        expected = (self.T, 2, *self.size)
        try:
            with np.load(path, allow_pickle=False) as z:
                frames = z["frames"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            logger.warning("%s: unreadable cache entry (%s); converting again", path, e)
            return None
        if frames.shape != expected or frames.dtype != np.float32:
            logger.warning("%s: cached frames %s %s, expected %s float32; converting again", path, frames.dtype,
                           frames.shape, expected)
            return None
        return frames

    def _save_cached(self, path: Path, frames: np.ndarray) -> None:
        with atomic_path(path) as tmp, tmp.open("wb") as f:
            np.savez_compressed(f, frames=frames)


# --------------------------------------------------------------------------- sample lists


def _find_dir(data_dir: str | Path | None, name: str, is_root: Callable[[Path], bool], expected: str) -> Path:
    """``data_dir`` itself if ``is_root`` holds, else its single matching sub-folder."""
    if data_dir is None:
        raise ConfigError(f"dataset '{name}' reads local files: pass data_dir (the folder holding {expected}); "
                          "nothing is downloaded")
    d = Path(data_dir).expanduser()
    if not d.is_dir():
        raise DataError(f"{d}: data directory not found; it should hold {expected}")
    if is_root(d):
        return d
    for sub in sorted(p for p in d.iterdir() if p.is_dir()):
        if is_root(sub):
            return sub
    raise DataError(f"{d}: no {expected} found in it or its sub-folders; extract the {name} release into it")


def cifar10dvs_samples(data_dir: str | Path | None, train: bool, train_ratio: float = 0.9,
                       split_seed: int | None = None) -> list[EventSample]:
    """List the CIFAR10-DVS samples of one split (see the module docstring for the split rule)."""
    if not 0.0 < train_ratio < 1.0:
        raise ConfigError(f"cifar10dvs: train_ratio must be in (0, 1), got {train_ratio}")
    root = _find_dir(data_dir, "cifar10dvs", lambda p: (p / CIFAR10DVS_CLASSES[0]).is_dir(),
                     f"class folders {CIFAR10DVS_CLASSES[0]}/ .. {CIFAR10DVS_CLASSES[-1]}/ of .aedat files")
    missing = [cls for cls in CIFAR10DVS_CLASSES if not (root / cls).is_dir()]
    if missing:
        raise DataError(f"{root / missing[0]} not found; CIFAR10-DVS needs all 10 class folders "
                        f"({', '.join(CIFAR10DVS_CLASSES)}) in {root}; missing: {', '.join(missing)}")
    samples: list[EventSample] = []
    for label, cls in enumerate(CIFAR10DVS_CLASSES):
        folder = root / cls
        files = sorted(p for p in folder.iterdir() if p.suffix == ".aedat" and p.is_file())
        if not files:
            raise DataError(f"{folder}: no .aedat files; extract {cls}.zip of the CIFAR10-DVS release here")
        order = np.arange(len(files))
        if split_seed is not None:
            order = np.random.default_rng([split_seed, label]).permutation(len(files))
        cut = math.ceil(len(files) * train_ratio)
        chosen = order[:cut] if train else order[cut:]
        samples += [EventSample(files[i], label, f"{cls}_{files[i].stem}") for i in sorted(chosen)]
    return samples


def _read_label_csv(path: Path) -> list[tuple[int, int, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise DataError(f"{path} not found; every DvsGesture .aedat needs its _labels.csv") from e
    rows = []
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip() or (lineno == 1 and not row[0].strip().isdigit()):
            continue  # blank line or the 'class,startTime_usec,endTime_usec' header
        try:
            cls, start, end = (int(v) for v in row)
        except ValueError:
            raise DataError(f"{path}:{lineno}: expected 'class,startTime_usec,endTime_usec' integers, "
                            f"got {','.join(row)!r}") from None
        if not 1 <= cls <= GESTURE_NUM_CLASSES:
            raise DataError(f"{path}:{lineno}: class {cls} outside 1..{GESTURE_NUM_CLASSES}")
        rows.append((cls - 1, start, end))
    return rows


def dvs128gesture_samples(data_dir: str | Path | None, train: bool) -> list[EventSample]:
    """List the DVS128 Gesture samples of one split (one per labels-CSV row of each listed trial)."""
    trials = "trials_to_train.txt" if train else "trials_to_test.txt"
    root = _find_dir(data_dir, "dvs128gesture", lambda p: (p / "trials_to_train.txt").is_file(),
                     "the DvsGesture/ folder (trials_to_train.txt, user*.aedat)")
    listing = root / trials
    if not listing.is_file():
        raise DataError(f"{listing} not found; extract DvsGesture.tar.gz into {root.parent}")
    samples: list[EventSample] = []
    for name in listing.read_text(encoding="utf-8").split():
        aedat = root / name
        if not aedat.is_file():
            raise DataError(f"{aedat} not found (listed in {listing}); re-extract DvsGesture.tar.gz")
        for i, (label, start, end) in enumerate(_read_label_csv(root / f"{aedat.stem}_labels.csv")):
            samples.append(EventSample(aedat, label, f"{aedat.stem}_{i}", (start, end)))
    if not samples:
        raise DataError(f"{listing}: lists no trials")
    return samples


# --------------------------------------------------------------------------- registry entries


def _size(size: int | tuple[int, int] | None) -> tuple[int, int]:
    if size is None:
        return SENSOR_SIZE
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or min(hw) < 1:
        raise ConfigError(f"size must be a positive int or (H, W), got {size!r}")
    return (int(hw[0]), int(hw[1]))


def _split(name: str, samples: list[EventSample], reader: Callable[[Path], Events], num_classes: int, train: bool,
           T: int, split_by: str, size: int | tuple[int, int] | None, resize_mode: str, augment: bool,
           max_shift: int, cache_dir: str | None) -> DatasetSplit:
    hw = _size(size)
    ds = EventFrameDataset(samples, reader, T=T, split_by=split_by, size=hw, resize_mode=resize_mode,
                           augment=EventAugment(max_shift=max_shift) if (train and augment) else None,
                           cache_dir=cache_dir, name=name)
    return DatasetSplit(dataset=ds, input_shape=(2, *hw), num_classes=num_classes, temporal=True, name=name)


@DATASETS.register(name="cifar10dvs", tags=("events",))
def cifar10dvs(*, train: bool, data_dir: str | None = None, seed: int = 0, T: int = 10, split_by: str = "number",
               size: int | tuple[int, int] | None = None, resize_mode: str = "area", augment: bool = True,
               max_shift: int = 5, cache_dir: str | None = None, train_ratio: float = 0.9,
               split_seed: int | None = None) -> DatasetSplit:
    """CIFAR10-DVS from the original AEDAT 2.0 release.

    Args:
        train: train (first 90% of each class) or test split.
        data_dir: folder holding the 10 class folders (or its parent).
        seed: unused (augmentation uses the DataLoader's RNG).
        T: frames per sample.
        split_by: ``"number"`` (SpikingJelly default) or ``"time"``.
        size: output side (e.g. 48 or 64) or ``(H, W)``; ``None`` keeps 128x128.
        resize_mode: ``"area"`` (adaptive average pooling) or ``"bilinear"``.
        augment: horizontal flip + random roll (train split only).
        max_shift: largest roll in output pixels.
        cache_dir: cache converted frames here (``None``: no cache).
        train_ratio: fraction of each class used for training.
        split_seed: ``None`` for the ordered split, an int for a seeded per-class shuffle.
    """
    samples = cifar10dvs_samples(data_dir, train, train_ratio, split_seed)
    return _split("cifar10dvs", samples, load_cifar10dvs_events, len(CIFAR10DVS_CLASSES), train, T, split_by, size,
                  resize_mode, augment, max_shift, cache_dir)


@DATASETS.register(name="dvs128gesture", tags=("events",))
def dvs128gesture(*, train: bool, data_dir: str | None = None, seed: int = 0, T: int = 16, split_by: str = "number",
                  size: int | tuple[int, int] | None = None, resize_mode: str = "area", augment: bool = True,
                  max_shift: int = 5, cache_dir: str | None = None) -> DatasetSplit:
    """DVS128 Gesture from the original ``DvsGesture`` release (AEDAT 3.1).

    Args are as for :func:`cifar10dvs` (T defaults to 16); the split comes from
    ``trials_to_train.txt`` / ``trials_to_test.txt``. Decoding a trial file takes
    a while, so pass ``cache_dir`` when training for several epochs.
    """
    samples = dvs128gesture_samples(data_dir, train)
    return _split("dvs128gesture", samples, read_aedat31, GESTURE_NUM_CLASSES, train, T, split_by, size, resize_mode,
                  augment, max_shift, cache_dir)
