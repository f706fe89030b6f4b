"""CIFAR-10/100 loaders on tiny batch files written in the official pickle format."""

from __future__ import annotations

import pickle
import pickletools
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeport.data import get_dataset
from spikeport.data.cifar import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    load_cifar_batch,
    safe_unpickle,
)
from spikeport.data.transforms import StaticAugment, random_crop, random_hflip
from spikeport.errors import ConfigError, DataError

N_PER_BATCH = 3


def _images(n: int, offset: int) -> np.ndarray:
    """Deterministic uint8 pixels [n, 3072] (R plane, G plane, B plane, row-major)."""
    i = np.arange(n)[:, None]
    j = np.arange(3072)[None, :]
    return ((i * 97 + j * 7 + offset * 13) % 256).astype(np.uint8)


# ---------------------------------------------------------------- Python-2 cPickle protocol 2, byte by byte


def _py2_str(b: bytes) -> bytes:
    return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<I", len(b)) + b)


def _py2_int(v: int) -> bytes:
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    return b"J" + struct.pack("<i", v)


def _py2_uint8_array(a: np.ndarray) -> bytes:
    """What Python 2's cPickle (protocol 2) writes for a C-contiguous uint8 ndarray."""
    shape = b"".join(_py2_int(s) for s in a.shape) + {1: b"\x85", 2: b"\x86"}[a.ndim]
    dtype = (b"cnumpy\ndtype\n" + _py2_str(b"u1") + _py2_int(0) + _py2_int(1) + b"\x87R"
             + b"(" + _py2_int(3) + _py2_str(b"|") + b"NNN" + _py2_int(-1) + _py2_int(-1) + _py2_int(0) + b"tb")
    return (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + _py2_int(0) + b"\x85"
            + _py2_str(b"b") + b"\x87R" + b"(" + _py2_int(1) + shape + dtype + b"\x89" + _py2_str(a.tobytes())
            + b"tb")


def _py2_batch(data: np.ndarray, labels: list[int], label_key: bytes = b"labels") -> bytes:
    items = [
        (_py2_str(b"batch_label"), _py2_str(b"training batch 1 of 5")),
        (_py2_str(label_key), b"](" + b"".join(_py2_int(v) for v in labels) + b"e"),
        (_py2_str(b"data"), _py2_uint8_array(data)),
        (_py2_str(b"filenames"), b"](" + b"".join(_py2_str(b"img_%d.png" % k) for k in range(len(labels))) + b"e"),
    ]
    return b"\x80\x02}(" + b"".join(k + v for k, v in items) + b"u."  # SETITEMS, STOP


def _write_cifar10(root: Path, py2: bool = True) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for b, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        data, labels = _images(N_PER_BATCH, b), [(b * N_PER_BATCH + k) % 10 for k in range(N_PER_BATCH)]
        if py2:
            (folder / name).write_bytes(_py2_batch(data, labels))
        else:
            (folder / name).write_bytes(pickle.dumps({"data": data, "labels": labels}, protocol=2))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names, "num_vis": 3072}, protocol=2))
    return folder


# ---------------------------------------------------------------- decoding


def test_py2_batch_decodes_exact_pixels_and_labels(tmp_path):
    data, labels = _images(4, 1), [3, 1, 4, 1]
    blob = _py2_batch(data, labels)
    ops = {op.name for op, _, _ in pickletools.genops(blob)}
    assert {"GLOBAL", "SHORT_BINSTRING", "BINSTRING"} <= ops and "BINUNICODE" not in ops  # really Python-2 style
    (tmp_path / "data_batch_1").write_bytes(blob)
    x, y = load_cifar_batch(tmp_path / "data_batch_1")
    assert x.dtype == np.uint8 and x.shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(x.reshape(4, -1), data)
    assert x[2, 1, 5, 7] == data[2, 1024 + 5 * 32 + 7]  # channel-major planes, row-major pixels
    np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("bytes_keys", [False, True])
def test_stock_pickler_batches_load(tmp_path, protocol, bytes_keys):
    data, labels = _images(5, 2), [9, 0, 5, 5, 2]
    k = (lambda s: s.encode()) if bytes_keys else (lambda s: s)
    (tmp_path / "b").write_bytes(pickle.dumps({k("data"): data, k("labels"): np.array(labels)}, protocol=protocol))
    x, y = load_cifar_batch(tmp_path / "b")
    np.testing.assert_array_equal(x.reshape(5, -1), data)
    np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize("as_parent", [True, False])
def test_cifar10_dataset_values_shapes_and_split(tmp_path, as_parent):
    folder = _write_cifar10(tmp_path)
    data_dir = tmp_path if as_parent else folder
    tr = get_dataset("cifar10", train=True, data_dir=str(data_dir), augment=False)
    te = get_dataset("cifar10", train=False, data_dir=str(data_dir))
    assert (tr.input_shape, tr.num_classes, tr.temporal, tr.name) == ((3, 32, 32), 10, False, "cifar10")
    assert len(tr.dataset) == 5 * N_PER_BATCH and len(te.dataset) == N_PER_BATCH
    assert tr.dataset.classes[0] == "airplane" and len(tr.dataset.classes) == 10
    x, y = tr.dataset[N_PER_BATCH + 1]  # second image of data_batch_2
    raw = _images(N_PER_BATCH, 1)[1].reshape(3, 32, 32).astype(np.float32) / 255.0
    mean, std = np.array(CIFAR10_MEAN, np.float32)[:, None, None], np.array(CIFAR10_STD, np.float32)[:, None, None]
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32)
    np.testing.assert_allclose(x.numpy(), (raw - mean) / std, rtol=0, atol=1e-6)
    assert y == (N_PER_BATCH + 1) % 10
    assert [te.dataset[i][1] for i in range(N_PER_BATCH)] == [(5 * N_PER_BATCH + k) % 10 for k in range(N_PER_BATCH)]
    assert te.dataset.augment is None  # never augment the test split
    raw_ds = get_dataset("cifar10", train=True, data_dir=str(data_dir), augment=False, normalize=False).dataset
    np.testing.assert_array_equal(raw_ds[0][0].numpy() * 255.0, _images(N_PER_BATCH, 0)[0].reshape(3, 32, 32))


def test_stock_protocol2_folder_loads(tmp_path):
    _write_cifar10(tmp_path, py2=False)
    assert len(get_dataset("cifar10", train=True, data_dir=str(tmp_path)).dataset) == 5 * N_PER_BATCH


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, off in (("train", 0), ("test", 1)):
        fine = [99, 0, 42] if name == "train" else [7, 8, 9]
        batch = {"data": _images(3, off), "fine_labels": fine, "coarse_labels": [1, 2, 3]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"c{i}" for i in range(100)]}, protocol=2))
    tr = get_dataset("cifar100", train=True, data_dir=str(tmp_path), augment=False)
    assert tr.num_classes == 100 and [tr.dataset[i][1] for i in range(3)] == [99, 0, 42]
    x, _ = tr.dataset[2]
    raw = _images(3, 0)[2].reshape(3, 32, 32).astype(np.float32) / 255.0
    mean, std = np.array(CIFAR100_MEAN, np.float32)[:, None, None], np.array(CIFAR100_STD, np.float32)[:, None, None]
    np.testing.assert_allclose(x.numpy(), (raw - mean) / std, atol=1e-6)
    assert [get_dataset("cifar100", train=False, data_dir=str(folder)).dataset[i][1] for i in range(3)] == [7, 8, 9]


# ---------------------------------------------------------------- augmentation


def test_train_augmentation_is_a_padded_crop_and_flip(tmp_path):
    _write_cifar10(tmp_path)
    ds = get_dataset("cifar10", train=True, data_dir=str(tmp_path), normalize=False).dataset
    assert isinstance(ds.augment, StaticAugment) and (ds.augment.padding, ds.augment.flip_p) == (4, 0.5)
    img = torch.from_numpy(_images(N_PER_BATCH, 0)[0].reshape(3, 32, 32).astype(np.float32) / 255.0)
    padded = torch.nn.functional.pad(img, (4, 4, 4, 4))
    candidates = [c for t in range(9) for left in range(9)
                  for c in (padded[:, t:t + 32, left:left + 32], padded[:, t:t + 32, left:left + 32].flip(-1))]
    torch.manual_seed(0)
    seen = set()
    for _ in range(12):
        x, _ = ds[0]
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32
        matches = [k for k, c in enumerate(candidates) if torch.equal(x, c)]
        assert matches, "augmented image is not a crop (+flip) of the zero-padded image"
        seen.add(matches[0])
    assert len(seen) > 1  # it is random


def test_crop_and_flip_with_generator():
    x = torch.arange(2 * 5 * 6, dtype=torch.float32).reshape(2, 5, 6)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(random_crop(x, 2, g1), random_crop(x, 2, g2))
    assert torch.equal(random_hflip(x, p=1.0), x.flip(-1)) and torch.equal(random_hflip(x, p=0.0), x)
    assert torch.equal(random_crop(x, 0), x)
    with pytest.raises(ConfigError):
        random_crop(x, -1)


# ---------------------------------------------------------------- refusal of unsafe / broken files


class _OsSystemPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch '{self.marker}'",))


class _EvalPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"__import__('pathlib').Path({str(self.marker)!r}).touch()",))


def test_malicious_os_system_pickle_is_refused_and_not_executed(tmp_path):
    folder = _write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    blob = pickle.dumps({"data": _OsSystemPayload(marker), "labels": [0]}, protocol=2)
    assert b"system" in blob
    (folder / "data_batch_3").write_bytes(blob)
    with pytest.raises(DataError) as e:
        get_dataset("cifar10", train=True, data_dir=str(tmp_path))
    msg = str(e.value)
    assert "data_batch_3" in msg and "forbidden global" in msg and "system" in msg and "\n" not in msg
    assert not marker.exists()


def test_malicious_eval_pickle_is_live_but_refused(tmp_path):
    marker = tmp_path / "pwned_eval"
    blob = pickle.dumps({"data": _EvalPayload(marker), "labels": [0]}, protocol=4)
    pickle.loads(blob)  # the payload is real: the stock unpickler runs it
    assert marker.exists()
    marker.unlink()
    (tmp_path / "test_batch").write_bytes(blob)
    with pytest.raises(DataError, match="forbidden global builtins.eval"):
        safe_unpickle(tmp_path / "test_batch")
    assert not marker.exists()


def test_codecs_encode_other_than_latin1_is_refused(tmp_path):
    blob = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x04\x00\x00\x00zlib\x86R."
    (tmp_path / "b").write_bytes(blob)
    with pytest.raises(DataError, match="forbidden call _codecs.encode"):
        safe_unpickle(tmp_path / "b")


@pytest.mark.parametrize("flags", [1, 11])
@pytest.mark.parametrize("protocol", [2, 4])
def test_tampered_dtype_state_is_refused(tmp_path, flags, protocol):
    """BUILD on numpy.dtype with other flags than numpy writes (flags=1 claims object references)."""
    blob = pickle.dumps({"data": _images(2, 0), "labels": [1, 2]}, protocol=protocol)
    at = blob.index(b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00") + 10
    (tmp_path / "b").write_bytes(blob[:at] + bytes([ord("K"), flags]) + blob[at + 2:])
    with pytest.raises(DataError, match=r"b: refusing to unpickle: forbidden dtype state"):
        load_cifar_batch(tmp_path / "b")


@pytest.mark.parametrize("spec", ["O", "V8", "S4", "M8[s]", "u1,u1"])
def test_non_numeric_dtypes_are_refused(tmp_path, spec):
    blob = b"\x80\x02cnumpy\ndtype\nX" + struct.pack("<I", len(spec)) + spec.encode() + b"\x89\x88\x87R."
    (tmp_path / "b").write_bytes(blob)
    with pytest.raises(DataError, match="forbidden dtype"):
        safe_unpickle(tmp_path / "b")


def test_huge_memo_index_is_cheap(tmp_path):
    """LONG_BINPUT 2**30 would make the C unpickler allocate an 8 GiB memo array."""
    (tmp_path / "b").write_bytes(b"\x80\x02N" + b"r" + struct.pack("<I", 1 << 30) + b"h\x00.")
    with pytest.raises(DataError, match="b: corrupt pickle"):  # BINGET 0 is not in the memo
        safe_unpickle(tmp_path / "b")
    (tmp_path / "b").write_bytes(b"\x80\x02N" + b"r" + struct.pack("<I", 1 << 30) + b".")
    assert safe_unpickle(tmp_path / "b") is None


@pytest.mark.parametrize("keep", [0, 10, 1000, 3100])
def test_truncated_batch_is_a_data_error(tmp_path, keep):
    blob = _py2_batch(_images(2, 0), [1, 2])
    assert keep < len(blob)
    (tmp_path / "data_batch_1").write_bytes(blob[:keep])
    with pytest.raises(DataError, match="data_batch_1"):
        load_cifar_batch(tmp_path / "data_batch_1")


def test_wrong_content_is_a_data_error(tmp_path):
    p = tmp_path / "b"
    p.write_bytes(pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}))
    with pytest.raises(DataError, match=r"\[N, 3072\]"):
        load_cifar_batch(p)
    p.write_bytes(pickle.dumps({"data": _images(2, 0), "labels": [0, 10]}))
    with pytest.raises(DataError, match=r"labels must lie in \[0, 10\)"):
        load_cifar_batch(p)
    p.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(DataError, match="expected a pickled dict"):
        load_cifar_batch(p)


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(ConfigError, match="data_dir"):
        get_dataset("cifar10", train=True, data_dir=None)
    with pytest.raises(DataError) as e:
        get_dataset("cifar10", train=True, data_dir=str(tmp_path))
    assert "cifar-10-batches-py not found" in str(e.value) and "cifar-10-python.tar.gz" in str(e.value)
    folder = _write_cifar10(tmp_path)
    (folder / "data_batch_4").unlink()
    with pytest.raises(DataError, match=r"data_batch_4 not found; extract cifar-10-python.tar.gz"):
        get_dataset("cifar10", train=True, data_dir=str(tmp_path))
    assert len(get_dataset("cifar10", train=False, data_dir=str(tmp_path)).dataset) == N_PER_BATCH
    with pytest.raises(DataError, match="not found"):
        get_dataset("cifar100", train=True, data_dir=str(tmp_path / "nope"))
