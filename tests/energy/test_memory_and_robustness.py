"""Up-front memory estimates (spikeport._memory), all-or-nothing reports, bounded figures, strict profiles."""

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import spikeport._memory as memory
from spikeport.energy import analyze, load_hardware_toml, load_npy_input, write_report
from spikeport.energy.report import MAX_FIG_INCHES, REPORT_FILES, figures
from spikeport.errors import ConfigError, DataError
from spikeport.models import create_model

GIB = 2**30


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    model = create_model("spiking_mlp_digits", hidden=(8,))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4.0)
    return model


def test_activation_elements_counts_input_and_every_layer_output(mlp):
    mlp.train()
    rng = torch.get_rng_state()
    # input 64 + Flatten 64 + Linear 8 + LIF 8 + head Linear 10
    assert memory.activation_elements(mlp, (1, 8, 8)) == 154
    assert mlp.training and all(m.training for m in mlp.modules())  # modes restored
    assert torch.equal(torch.get_rng_state(), rng)  # global RNG untouched
    assert memory.estimate_bytes(154, 100, 64, "eval") == 154 * 100 * 64 * 4
    assert memory.estimate_bytes(154, 100, 64, "train") == 154 * 100 * 64 * 4 * 4


def test_check_memory_refuses_with_numbers(mlp, monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda device="cpu": (GIB, "of available RAM"))
    assert memory.check_memory(mlp, (1, 8, 8), timesteps=4, batch=64) == 154 * 4 * 64 * 4
    with pytest.raises(ConfigError) as e:
        memory.check_memory(mlp, (1, 8, 8), timesteps=100_000, batch=64, mode="train", what="mlp")
    msg = str(e.value)
    # 154 x 1e5 x 64 x 4 B x 4 = 14.7 GiB
    assert msg == ("T=100000 needs about 14.7 GiB for training (BPTT) mlp with batch 64, more than the 1.0 GiB of "
                   "available RAM; lower --timesteps or --batch-size")
    with pytest.raises(ConfigError, match="T=100000 needs about 14.7 GiB for training"):
        memory.check_train_memory("spiking_mlp_digits", {"hidden": (8,)}, timesteps=100_000, batch_size=64)
    # options the zoo refuses are left to the real run (which names them)
    assert memory.check_train_memory("spiking_mlp_digits", {"bogus": 1}, timesteps=100_000, batch_size=64) == 0
    # temporal data carry their own T; the batch is capped by the sample count
    seqs = np.zeros((3, 7, 1, 8, 8), np.float32)
    assert memory.check_data_memory(mlp, seqs, timesteps=10**9, batch_size=64, temporal=True) == 154 * 7 * 3 * 4


def test_available_memory_is_measured():
    got = memory.available_memory()
    assert got is not None and got[0] > 0


def test_figures_stay_bounded_for_long_runs(mlp):
    """The rate heatmap grew 0.6 inch per timestep (T=1e5 -> a 60,000-inch PNG, ~22 GB): now capped."""
    import matplotlib.image as mpimg

    x = np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32)
    rep = analyze(mlp, x, timesteps=400, batch_size=2)
    for name, png in figures(rep).items():
        h, w = mpimg.imread(io.BytesIO(png)).shape[:2]
        assert w <= MAX_FIG_INCHES * 100 * 1.1 and h <= MAX_FIG_INCHES * 100 * 1.1, (name, w, h)


def test_report_is_all_or_nothing(mlp, tmp_path, monkeypatch):
    x = np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32)
    rep = analyze(mlp, x, timesteps=2, batch_size=2)
    out = tmp_path / "rep"
    files = write_report(rep, out)
    assert sorted(p.name for p in files) == sorted(REPORT_FILES)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(os.listdir(tmp_path)) == ["rep"]  # no staging folder left
    real = Path.write_bytes
    calls = []

    def failing(self, data):
        calls.append(self.name)
        if len(calls) == 4:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing)
    rep2 = analyze(mlp, x, timesteps=3, batch_size=2)
    with pytest.raises(OSError, match="No space"):
        write_report(rep2, out, force=True)  # overwriting: the old report stays whole
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    calls.clear()
    with pytest.raises(OSError, match="No space"):
        write_report(rep2, tmp_path / "new")  # a new folder: nothing appears
    assert sorted(os.listdir(tmp_path)) == ["rep"]


def test_hardware_profiles_must_charge_something(tmp_path):
    f = tmp_path / "mem_only.toml"
    f.write_text("memory = true\nsram = [[1024, 5.0]]\n")  # SRAM accesses only: a meaningful profile
    assert load_hardware_toml(f).access_pj(10) == 5.0
    for text, msg in [("", "every energy cost is 0"), ("e_ac_pj = 0\n", "every energy cost is 0"),
                      ("e_ac_pj = 1\nneuron_ops = 1\n", "neuron_ops must be true or false"),
                      ("e_ac_pj = 1\nmemory = 'yes'\n", "memory must be true or false"),
                      ('base = "nosuch"\n', "unknown energy model 'nosuch'")]:
        f.write_text(text)
        with pytest.raises(ConfigError, match=msg) as e:
            load_hardware_toml(f)
        assert str(e.value).startswith(str(f))
    f.write_bytes(b"e_ac_pj = 1 # \xff\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_hardware_toml(f)


def test_npy_input_refuses_non_finite_and_empty_time(tmp_path):
    p = tmp_path / "x.npy"
    np.save(p, np.array([[0.5, np.nan], [np.inf, 1.0]], np.float32))
    with pytest.raises(DataError, match=r"x\.npy: 2 of 4 values are NaN or infinite"):
        load_npy_input(str(p))
    np.save(p, np.zeros((2, 0, 4), np.float32))
    with pytest.raises(DataError, match=r"x\.npy: expected sequences \[N, T, \.\.\.\] with T > 0"):
        load_npy_input(str(p), temporal=True)
    with pytest.raises(DataError, match="zero-length axis"):
        load_npy_input(str(p))
    np.save(p, np.arange(8, dtype=np.int64).reshape(2, 4))  # integers are always finite
    assert load_npy_input(str(p)).shape == (2, 4)


def test_unsized_datasets_are_refused_by_name_and_streamed_through_a_loader(mlp):
    """An IterableDataset has no len(): passed bare it is refused with the fix; in a DataLoader it is recorded."""
    x = torch.from_numpy(np.random.default_rng(1).random((5, 1, 8, 8), dtype=np.float32))

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(list(x))

    with pytest.raises(ConfigError, match="Stream has no length.*DataLoader"):
        analyze(mlp, Stream(), timesteps=2, batch_size=2)
    streamed = analyze(mlp, torch.utils.data.DataLoader(Stream(), batch_size=2), timesteps=2)
    direct = analyze(mlp, x, timesteps=2, batch_size=2)
    assert streamed.meta["samples"] == direct.meta["samples"] == 5
    assert streamed.layers.equals(direct.layers)
