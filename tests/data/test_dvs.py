"""DVS loaders on tiny AEDAT 2.0 / 3.1 files with hand-placed events."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeport.data import get_dataset
from spikeport.data.dvs import (
    CIFAR10DVS_CLASSES,
    Events,
    integrate_frames,
    load_cifar10dvs_events,
    read_aedat2,
    read_aedat31,
    resize_frames,
)
from spikeport.data.transforms import EventAugment, random_roll
from spikeport.errors import ConfigError, DataError

AEDAT2_HEADER = (b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
                 b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event\r\n"
                 b"# Timestamps tick is 1 us\r\n# created Mon Jan 01 00:00:00 CST 2017\r\n")
AEDAT31_HEADER = (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
                  b"#Start-Time: 2016-04-20 15:30:00 (TZ+0000)\r\n#!END-HEADER\r\n")


def dvs128_address(x_raw: int, y_raw: int, bit: int) -> int:
    """jAER DVS128 address: y in bits 8..14, x in bits 1..7, polarity bit 0."""
    return (y_raw << 8) | (x_raw << 1) | bit


def write_aedat2(path: Path, addresses: list[int], timestamps: list[int]) -> Path:
    body = np.stack([np.asarray(addresses), np.asarray(timestamps)], axis=1).astype(">u4").tobytes()
    path.write_bytes(AEDAT2_HEADER + body)
    return path


def polarity_word(x: int, y: int, p: int, valid: int = 1) -> int:
    """AEDAT 3.1 polarity event data: x bits 17..31, y bits 2..16, polarity bit 1, valid mark bit 0."""
    return (x << 17) | (y << 2) | (p << 1) | valid


def aedat31_packet(etype: int, words: list[int], timestamps: list[int], ts_overflow: int = 0) -> bytes:
    n = len(words)
    valid = sum(w & 1 for w in words)
    header = struct.pack("<hhiiiiii", etype, 1, 8, 4, ts_overflow, n, n, valid)
    return header + np.stack([np.asarray(words), np.asarray(timestamps)], axis=1).astype("<u4").tobytes()


def write_aedat31(path: Path, packets: list[bytes]) -> Path:
    path.write_bytes(AEDAT31_HEADER + b"".join(packets))
    return path


def _events(t, x, y, p) -> Events:
    return Events(*(np.asarray(v, dtype=np.int64) for v in (t, x, y, p)))


# ---------------------------------------------------------------- decoding


def test_aedat2_cifar10dvs_decoding(tmp_path):
    raw = [(0, 0, 0, 10), (127, 0, 1, 20), (5, 100, 0, 30), (64, 127, 1, 4_000_000_000)]
    f = write_aedat2(tmp_path / "a.aedat", [dvs128_address(x, y, b) for x, y, b, _ in raw], [r[3] for r in raw])
    t, addr = read_aedat2(f)
    np.testing.assert_array_equal(addr, [0, 255, 0x640A, 0x7F81])
    ev = load_cifar10dvs_events(f)
    np.testing.assert_array_equal(ev.t, [10, 20, 30, 4_000_000_000])
    # SpikingJelly orientation: x = 127 - y_raw, y = 127 - x_raw, p = 1 - bit0
    np.testing.assert_array_equal(ev.x, [127, 127, 27, 0])
    np.testing.assert_array_equal(ev.y, [127, 0, 122, 63])
    np.testing.assert_array_equal(ev.p, [1, 0, 1, 0])


def test_aedat31_decoding(tmp_path):
    special = aedat31_packet(0, [0x11, 0x21], [5, 6])  # a special-event packet: skipped
    pol1 = aedat31_packet(1, [polarity_word(3, 7, 1), polarity_word(127, 0, 0, valid=0), polarity_word(0, 127, 0)],
                          [100, 101, 102])
    pol2 = aedat31_packet(1, [polarity_word(64, 65, 1), polarity_word(1, 2, 0)], [7, 2_147_483_000], ts_overflow=1)
    f = write_aedat31(tmp_path / "g.aedat", [special, pol1, pol2])
    ev = read_aedat31(f)
    np.testing.assert_array_equal(ev.t, [100, 102, 2**31 + 7, 2**31 + 2_147_483_000])
    np.testing.assert_array_equal(ev.x, [3, 0, 64, 1])
    np.testing.assert_array_equal(ev.y, [7, 127, 65, 2])
    np.testing.assert_array_equal(ev.p, [1, 0, 1, 0])
    assert read_aedat31(f, valid_only=False).x.tolist() == [3, 127, 0, 64, 1]


def test_truncated_and_foreign_event_files(tmp_path):
    good2 = write_aedat2(tmp_path / "a.aedat", [1, 2], [3, 4]).read_bytes()
    (tmp_path / "t2.aedat").write_bytes(good2[:-4])
    with pytest.raises(DataError, match=r"t2.aedat: truncated AEDAT 2.0 file"):
        read_aedat2(tmp_path / "t2.aedat")
    (tmp_path / "x.aedat").write_bytes(b"\x00\x01" + good2)
    with pytest.raises(DataError, match="not an AEDAT 2.0 file"):
        read_aedat2(tmp_path / "x.aedat")
    packet = aedat31_packet(1, [polarity_word(1, 1, 1)] * 3, [1, 2, 3])
    good3 = write_aedat31(tmp_path / "g.aedat", [packet]).read_bytes()
    hdr = len(AEDAT31_HEADER)
    for cut, what in ((hdr + 10, "truncated AEDAT 3.1 packet header"), (hdr + 28 + 12, "truncated AEDAT 3.1 packet")):
        (tmp_path / "t3.aedat").write_bytes(good3[:cut])
        with pytest.raises(DataError, match=what) as e:
            read_aedat31(tmp_path / "t3.aedat")
        assert "t3.aedat" in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "h.aedat").write_bytes(AEDAT31_HEADER[:40])
    with pytest.raises(DataError, match="END-HEADER"):
        read_aedat31(tmp_path / "h.aedat")
    with pytest.raises(DataError, match="not an AEDAT 3.x file"):
        read_aedat31(tmp_path / "a.aedat")
    with pytest.raises(DataError, match="missing.aedat not found"):
        read_aedat2(tmp_path / "missing.aedat")


# ---------------------------------------------------------------- frames


def test_integrate_by_number_hand_computed():
    ev = _events(t=[0, 1, 2, 3, 4, 5, 6], x=[0, 0, 1, 2, 3, 3, 3], y=[0, 0, 1, 2, 3, 3, 4], p=[1, 1, 0, 1, 0, 0, 1])
    fr = integrate_frames(ev, T=3, split_by="number", sensor_size=(5, 4))
    assert fr.shape == (3, 2, 5, 4) and fr.dtype == np.float32
    assert fr.sum(axis=(1, 2, 3)).tolist() == [2, 2, 3]  # 7 // 3 = 2 per frame, the last takes the rest
    assert fr[0, 1, 0, 0] == 2  # two ON events on pixel (y=0, x=0) accumulate
    assert fr[1, 0, 1, 1] == 1 and fr[1, 1, 2, 2] == 1
    assert fr[2, 0, 3, 3] == 2 and fr[2, 1, 4, 3] == 1
    few = integrate_frames(_events([0, 1], [1, 2], [1, 2], [0, 1]), T=4, sensor_size=(5, 4))
    assert few.sum(axis=(1, 2, 3)).tolist() == [0, 0, 0, 2]  # N < T: all in the last frame (as SpikingJelly)
    assert integrate_frames(_events([], [], [], []), T=2, sensor_size=(5, 4)).sum() == 0


def test_integrate_by_time_hand_computed():
    ev = _events(t=[0, 1, 2, 5, 9, 10, 10], x=[0] * 7, y=[0] * 7, p=[1] * 7)
    assert integrate_frames(ev, 2, "time", (2, 2))[:, 1, 0, 0].tolist() == [3, 4]  # dt = 5
    assert integrate_frames(ev, 3, "time", (2, 2))[:, 1, 0, 0].tolist() == [3, 1, 3]  # dt = 3
    with pytest.raises(ConfigError, match="split_by"):
        integrate_frames(ev, 2, "bogus", (2, 2))


def test_out_of_sensor_events_are_dropped():
    ev = _events(t=[0, 1], x=[1, 300], y=[1, 1], p=[1, 1])
    assert integrate_frames(ev, 1, sensor_size=(4, 4)).sum() == 1


def test_resize_area_and_bilinear():
    fr = np.zeros((1, 2, 128, 128), np.float32)
    fr[0, 1, 10, 21] = 1.0
    small = resize_frames(fr, (64, 64), "area")
    assert small.shape == (1, 2, 64, 64) and small[0, 1, 5, 10] == pytest.approx(0.25) and small.sum() == 0.25
    assert resize_frames(fr, (48, 48), "bilinear").shape == (1, 2, 48, 48)
    assert resize_frames(fr, (128, 128)) is fr


# ---------------------------------------------------------------- CIFAR10-DVS dataset


def _cifar10dvs_tree(root: Path, files_per_class: int = 11) -> dict[Path, int]:
    counts = {}
    for c, cls in enumerate(CIFAR10DVS_CLASSES):
        (root / cls).mkdir(parents=True)
        for k in range(files_per_class):
            n = 3 + (c + k) % 4
            addr = [dvs128_address((k + i) % 128, (c + i) % 128, i % 2) for i in range(n)]
            f = write_aedat2(root / cls / f"cifar10_{cls}_{k}.aedat", addr, list(range(0, 10 * n, 10)))
            counts[f] = n
    return counts


def test_cifar10dvs_ordered_split_frames_and_labels(tmp_path):
    counts = _cifar10dvs_tree(tmp_path / "CIFAR10DVS")
    tr = get_dataset("cifar10dvs", train=True, data_dir=str(tmp_path), T=4, augment=False)
    te = get_dataset("cifar10dvs", train=False, data_dir=str(tmp_path / "CIFAR10DVS"), T=4)
    assert (tr.input_shape, tr.num_classes, tr.temporal, tr.name) == ((2, 128, 128), 10, True, "cifar10dvs")
    assert len(tr.dataset) == 100 and len(te.dataset) == 10  # ceil(0.9 * 11) = 10 per class
    # name order as SpikingJelly/torchvision (_0, _1, _10, _2, ..., _9): the held-out file is _9
    assert [s.path.name for s in te.dataset.samples] == [f"cifar10_{c}_9.aedat" for c in CIFAR10DVS_CLASSES]
    assert te.dataset.labels == list(range(10)) and te.dataset.augment is None
    x, y = tr.dataset[13]
    sample = tr.dataset.samples[13]
    assert x.shape == (4, 2, 128, 128) and x.dtype == torch.float32 and y == 1 == sample.label
    assert x.sum().item() == counts[sample.path]
    assert x.sum(dim=(1, 2, 3)).tolist() == integrate_frames(load_cifar10dvs_events(sample.path), 4).sum(
        axis=(1, 2, 3)).tolist()
    small = get_dataset("cifar10dvs", train=False, data_dir=str(tmp_path), T=2, size=48, split_by="time")
    assert small.input_shape == (2, 48, 48) and small.dataset[0][0].shape == (2, 2, 48, 48)


def test_cifar10dvs_seeded_split_is_deterministic(tmp_path):
    _cifar10dvs_tree(tmp_path)

    def paths(train, seed):
        ds = get_dataset("cifar10dvs", train=train, data_dir=str(tmp_path), split_seed=seed).dataset
        return [s.path for s in ds.samples]

    a_tr, a_te = paths(True, 7), paths(False, 7)
    assert a_tr == paths(True, 7) and a_te == paths(False, 7)
    assert len(a_tr) == 100 and len(a_te) == 10 and not set(a_tr) & set(a_te)
    assert paths(False, 8) != a_te


def test_cifar10dvs_missing_data(tmp_path):
    with pytest.raises(ConfigError, match="data_dir"):
        get_dataset("cifar10dvs", train=True)
    with pytest.raises(DataError, match="class folders airplane/"):
        get_dataset("cifar10dvs", train=True, data_dir=str(tmp_path))
    (tmp_path / "airplane").mkdir()
    with pytest.raises(DataError, match=r"automobile not found; CIFAR10-DVS needs all 10 class folders"):
        get_dataset("cifar10dvs", train=True, data_dir=str(tmp_path))


# ---------------------------------------------------------------- DVS128 Gesture dataset


def _gesture_tree(root: Path) -> Path:
    g = root / "DvsGesture"
    g.mkdir(parents=True)
    (g / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n\n")
    (g / "trials_to_test.txt").write_text("user24_led.aedat\n")
    ts = [50, 100, 150, 199, 200, 250, 300, 350, 399, 400]
    words = [polarity_word(i, 2 * i, i % 2) for i in range(len(ts))]
    write_aedat31(g / "user01_fluorescent.aedat", [aedat31_packet(1, words[:5], ts[:5]),
                                                   aedat31_packet(1, words[5:], ts[5:])])
    (g / "user01_fluorescent_labels.csv").write_text(
        "class,startTime_usec,endTime_usec\r\n1,100,200\r\n8,200,300\r\n8,350,400\r\n")
    write_aedat31(g / "user24_led.aedat", [aedat31_packet(1, words, [1000 + t for t in ts])])
    (g / "user24_led_labels.csv").write_text("class,startTime_usec,endTime_usec\n11,1000,1500\n")
    return g


def test_dvs128gesture_samples_labels_and_frames(tmp_path):
    g = _gesture_tree(tmp_path)
    tr = get_dataset("dvs128gesture", train=True, data_dir=str(tmp_path), T=2, augment=False)
    te = get_dataset("dvs128gesture", train=False, data_dir=str(g), T=2)
    assert (tr.input_shape, tr.num_classes, tr.temporal) == ((2, 128, 128), 11, True)
    assert tr.dataset.labels == [0, 7, 7] and te.dataset.labels == [10]
    sums = [tr.dataset[i][0].sum().item() for i in range(3)]
    assert sums == [3, 2, 2]  # events in [100,200), [200,300), [350,400)
    x, _ = tr.dataset[0]  # events 1, 2, 3 (t=100,150,199): x=i, y=2i, p=i%2; T=2 -> [1], [2, 3]
    assert x[0, 1, 2, 1] == 1 and x[1, 0, 4, 2] == 1 and x[1, 1, 6, 3] == 1
    assert te.dataset[0][0].sum().item() == 10


def test_dvs128gesture_missing_data(tmp_path):
    g = _gesture_tree(tmp_path)
    (g / "user01_fluorescent_labels.csv").write_text("class,startTime_usec,endTime_usec\n1,abc,200\n")
    with pytest.raises(DataError, match=r"user01_fluorescent_labels.csv:2: expected"):
        get_dataset("dvs128gesture", train=True, data_dir=str(g))
    (g / "user01_fluorescent_labels.csv").unlink()
    with pytest.raises(DataError, match="user01_fluorescent_labels.csv not found"):
        get_dataset("dvs128gesture", train=True, data_dir=str(g))
    (g / "user24_led.aedat").unlink()
    with pytest.raises(DataError, match=r"user24_led.aedat not found \(listed in .*trials_to_test.txt\)"):
        get_dataset("dvs128gesture", train=False, data_dir=str(g))


def test_frame_cache_roundtrip(tmp_path):
    g = _gesture_tree(tmp_path / "data")
    cache = tmp_path / "cache"
    ds = get_dataset("dvs128gesture", train=True, data_dir=str(g), T=3, size=64, cache_dir=str(cache),
                     augment=False).dataset
    first = ds[1][0]
    files = sorted((cache / "dvs128gesture").iterdir())
    assert len(files) == 3 and all(f.suffix == ".npz" for f in files)  # all samples of the decoded trial
    with np.load(files[1], allow_pickle=False) as z:
        assert z["frames"].shape == (3, 2, 64, 64) and z["frames"].dtype == np.float32
    ds2 = get_dataset("dvs128gesture", train=True, data_dir=str(g), T=3, size=64, cache_dir=str(cache),
                      augment=False).dataset

    def boom(path):
        raise AssertionError("cache miss")

    ds2.reader = boom
    assert torch.equal(ds2[1][0], first) and ds2[0][0].shape == (3, 2, 64, 64)
    files[1].write_bytes(b"not a zip")  # a corrupt entry is converted again
    ds3 = get_dataset("dvs128gesture", train=True, data_dir=str(g), T=3, size=64, cache_dir=str(cache),
                      augment=False).dataset
    assert torch.equal(ds3[1][0], first)
    with np.load(files[1], allow_pickle=False) as z:
        assert np.array_equal(z["frames"], first.numpy())
    assert sorted(p.name for p in (cache / "dvs128gesture").iterdir()) == [f.name for f in files]  # no temp files


# ---------------------------------------------------------------- augmentation


def test_event_augmentation_flip_and_roll(tmp_path):
    g = _gesture_tree(tmp_path)
    ds = get_dataset("dvs128gesture", train=True, data_dir=str(g), T=2).dataset
    assert isinstance(ds.augment, EventAugment) and ds.augment.max_shift == 5
    plain = ds.frames(0)
    torch.manual_seed(0)
    x, _ = ds[0]
    assert x.shape == (2, 2, 128, 128) and x.sum().item() == plain.sum()
    base = torch.from_numpy(plain)
    candidates = (torch.roll(b, (dy, dx), (-2, -1)) for b in (base, base.flip(-1))
                  for dy in range(-5, 6) for dx in range(-5, 6))
    assert any(torch.equal(x, c) for c in candidates)  # a flip (or not) followed by a roll of <= 5 pixels
    f = torch.zeros(3, 2, 8, 8)
    f[:, 0, 1, 2] = 1.0
    out = EventAugment(max_shift=2, flip_p=1.0)(f, torch.Generator().manual_seed(1))
    assert out.shape == f.shape and out.sum() == 3 and torch.equal(out[0], out[2])  # same shift for every step
    assert torch.equal(random_roll(f, 0), f)
