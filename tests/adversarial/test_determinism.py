"""Same command + same seed => byte-identical outputs (reports, exports, graphs, checkpoints)."""

from __future__ import annotations

import pytest
import torch

from spikeport.checkpoint import CheckpointInfo, save_checkpoint


def _files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def _twice(adv, tmp_path, make_args) -> tuple[dict, dict]:
    outs = []
    for run in ("a", "b"):
        d = tmp_path / run
        d.mkdir()
        res = adv.run(make_args(d))
        assert res.code == 0, res.err
        outs.append(_files(d) if not (d / "rep").is_dir() else _files(d / "rep"))
    return outs[0], outs[1]


def test_save_checkpoint_is_byte_identical(tmp_path):
    from spikeport.models import create_model

    torch.manual_seed(0)
    model = create_model("spiking_mlp_digits", hidden=(4,))
    info = CheckpointInfo(model="spiking_mlp_digits", model_kwargs={"hidden": [4]}, timesteps=2,
                          input_shape=(1, 8, 8), dataset="digits", metrics={"test_acc": 0.5})
    a = save_checkpoint(tmp_path / "a.pt", model, info).read_bytes()
    b = save_checkpoint(tmp_path / "sub" / "b.pt", model, info).read_bytes()
    assert a == b


@pytest.mark.parametrize("encoder", ["direct", "rate"])
def test_energy_reports_are_byte_identical(adv, assets, tmp_path, encoder):
    pytest.importorskip("spikeport.commands.energy")
    a, b = _twice(adv, tmp_path, lambda d: ["energy", assets / "tiny.pt", "--encoder", encoder, "--seed", "3",
                                            "--samples", "16", "--no-progress", "--out", d / "rep"])
    assert set(a) >= {"layers.csv", "timestep_rates.csv", "report.json", "report.md"}
    for name in a:
        assert a[name] == b[name], f"{name} differs between two identical runs"


def test_energy_seed_matters_for_rate_coding(adv, assets, tmp_path):
    pytest.importorskip("spikeport.commands.energy")
    reports = []
    for seed in ("1", "2"):
        d = tmp_path / seed
        assert adv.run(["energy", assets / "tiny.pt", "--encoder", "rate", "--seed", seed, "--samples", "16",
                        "--no-progress", "--out", d]).code == 0
        reports.append((d / "timestep_rates.csv").read_bytes())
    assert reports[0] != reports[1]


def test_compare_is_byte_identical(adv, assets, tmp_path):
    pytest.importorskip("spikeport.commands.compare")
    reps = []
    for t in ("1", "2"):
        d = tmp_path / f"t{t}"
        assert adv.run(["energy", assets / "tiny.pt", "-T", t, "--samples", "8", "--no-progress", "--out", d]).code == 0
        reps.append(d)
    a, b = _twice(adv, tmp_path, lambda d: ["compare", *reps, "--out", d / "rep"])
    assert a and a == b


@pytest.mark.parametrize("target", ["onnx", "onnx-stream", "nir"])
def test_exports_are_byte_identical(adv, assets, tmp_path, target):
    pytest.importorskip("spikeport.commands.export")
    a, b = _twice(adv, tmp_path, lambda d: ["export", assets / "tiny.pt", "--target", target, "--out",
                                            d / f"model.{target}"])
    assert len(a) == 3 and a == b  # model file + summary.json + summary.md


def test_inspect_graph_files_are_byte_identical(adv, assets, tmp_path):
    pytest.importorskip("spikeport.commands.inspect")
    a, b = _twice(adv, tmp_path, lambda d: ["inspect", assets / "tiny.pt", "--json", d / "g.json", "--graph",
                                            d / "g.graphml"])
    assert set(a) == {"g.json", "g.graphml"} and a == b


def test_train_twice_same_seed_same_weights(adv, tmp_path):
    """Same `train --seed`: same weights and same checkpoint contents (bar the wall-clock metrics.train_seconds)."""
    torch.manual_seed(1234)  # two runs in one process start from different global RNG states,
    ckpts = []               # as two processes do under torch 2.14
    for run, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        out = tmp_path / f"{run}.pt"
        res = adv.run(["train", "spiking_mlp_digits", "--model-arg", "hidden=(4,)", "-T", "1", "--epochs", "1",
                       "--seed", seed, "--no-progress", "--out", out])
        assert res.code == 0, res.err
        ckpt = torch.load(out, weights_only=True)
        assert ckpt["metrics"].pop("train_seconds") > 0
        ckpts.append(ckpt)
        torch.rand(3)
    (a, b, c), sd = ckpts, ckpts[0]["state_dict"]
    assert sd.keys() == b["state_dict"].keys()
    for k in sd:
        assert torch.equal(sd[k], b["state_dict"][k]), f"{k} differs"
    assert {k: v for k, v in a.items() if k != "state_dict"} == {k: v for k, v in b.items() if k != "state_dict"}
    assert not torch.equal(sd["head.weight"], c["state_dict"]["head.weight"])  # --seed 8: other weights
