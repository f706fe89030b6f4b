import os
import zipfile

import pytest
import torch

from spikeport.checkpoint import FORMAT, CheckpointInfo, load_checkpoint, read_checkpoint, save_checkpoint
from spikeport.errors import CheckpointError
from spikeport.models import create_model


def _info(**kw):
    base = {"model": "spiking_cnn_digits", "model_kwargs": {"channels": (4, 8)}, "timesteps": 2,
            "input_shape": (1, 8, 8), "dataset": "digits", "metrics": {"test_acc": 0.5}}
    base.update(kw)
    return CheckpointInfo(**base)


def test_round_trip_is_exact(tmp_path):
    m = create_model("spiking_cnn_digits", channels=(4, 8))
    p = save_checkpoint(tmp_path / "m.pt", m, _info())
    m2, info = load_checkpoint(p)
    assert info.model == "spiking_cnn_digits" and info.timesteps == 2 and info.input_shape == (1, 8, 8)
    assert info.metrics == {"test_acc": 0.5}
    x = torch.rand(2, 3, 1, 8, 8)
    assert torch.equal(m.eval()(x), m2(x))
    assert [f.name for f in tmp_path.iterdir()] == ["m.pt"]  # no temp files left


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_code_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "payload": _Evil(str(marker))}, p)
    with pytest.raises(CheckpointError, match="refused: the file holds pickled Python objects"):
        read_checkpoint(p)
    assert not marker.exists()


@pytest.mark.parametrize("cut", [10, 200, -50])
def test_truncated_checkpoint(tmp_path, cut):
    m = create_model("spiking_cnn_digits", channels=(4, 8))
    good = save_checkpoint(tmp_path / "m.pt", m, _info()).read_bytes()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(good[:cut])
    with pytest.raises(CheckpointError, match=r"bad\.pt: (truncated or corrupt|corrupt|not a spikeport)"):
        read_checkpoint(bad)


def test_corrupt_member_detected(tmp_path):
    m = create_model("spiking_cnn_digits", channels=(4, 8))
    p = save_checkpoint(tmp_path / "m.pt", m, _info())
    data = bytearray(p.read_bytes())
    with zipfile.ZipFile(p) as zf:
        info = max(zf.infolist(), key=lambda i: i.file_size)
    h = info.header_offset
    name_len, extra_len = int.from_bytes(data[h + 26:h + 28], "little"), int.from_bytes(data[h + 28:h + 30], "little")
    off = h + 30 + name_len + extra_len + 8  # a byte inside the largest member's data
    data[off] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="m.pt"):
        read_checkpoint(p)


def test_foreign_files(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt: empty file"):
        read_checkpoint(tmp_path / "empty.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="text.pt: not a spikeport checkpoint"):
        read_checkpoint(tmp_path / "text.pt")
    torch.save({"weight": torch.ones(2)}, tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match="missing format tag"):
        read_checkpoint(tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "nope.pt")


def test_nan_weights_and_mismatched_weights(tmp_path):
    m = create_model("spiking_cnn_digits", channels=(4, 8))
    with torch.no_grad():
        m.head.weight[0, 0] = float("nan")
    p = save_checkpoint(tmp_path / "nan.pt", m, _info())
    with pytest.raises(CheckpointError, match="head.weight' contains NaN"):
        read_checkpoint(p)
    m = create_model("spiking_cnn_digits", channels=(4, 8))
    p = save_checkpoint(tmp_path / "mis.pt", m, _info(model_kwargs={"channels": (4, 16)}))
    with pytest.raises(CheckpointError, match="weights do not fit model"):
        load_checkpoint(p)


def test_failed_save_leaves_nothing(tmp_path, monkeypatch):
    m = create_model("spiking_cnn_digits", channels=(4, 8))

    def boom(obj, f, *a, **k):
        if hasattr(f, "write"):  # save_checkpoint passes a file object (see test_save_is_byte_identical)
            f.write(b"partial")
        else:
            with open(f, "wb") as fh:
                fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "m.pt", m, _info())
    assert list(tmp_path.iterdir()) == []


def test_save_is_byte_identical(tmp_path):
    """Same payload, different paths -> same bytes; the archive root is 'archive', not the temp name."""
    m = create_model("spiking_cnn_digits", channels=(4, 8))
    a = save_checkpoint(tmp_path / "a.pt", m, _info())
    b = save_checkpoint(tmp_path / "sub" / "other_name.pt", m, _info())
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        assert {n.split("/")[0] for n in zf.namelist()} == {"archive"}
    c = save_checkpoint(tmp_path / "c.pt", m, _info(metrics={"test_acc": 0.75}))
    assert c.read_bytes() != a.read_bytes()
