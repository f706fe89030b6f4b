"""The Lava runtime contract (sidecar v2), `spikeport run`, eval of exported files, and the plain-Lava example."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeport.checkpoint import CheckpointInfo, save_checkpoint
from spikeport.cli import main
from spikeport.data.digits import load_digits_arrays
from spikeport.errors import ConfigError, DataError
from spikeport.models import create_model
from spikeport.targets.lava import (
    LoihiRunner,
    _compat,
    deploy_graph,
    read_deployment,
    readout_path,
    write_deployment,
)
from spikeport.targets.lava.contract import fresh_network_agreement
from spikeport.targets.nir import to_graph
from spikeport.targets.run import run_exported
from spikeport.targets.torch_runner import TorchRunner

from .test_lava_lower import T, _digits, _train

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "lava_plain_run.py"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The digits CNN (max pooling on the host), trained 2 epochs, exported by the CLI with its checkpoint."""
    d = tmp_path_factory.mktemp("contract")
    model = _train("spiking_cnn_digits", pool="max")
    ckpt = save_checkpoint(d / "cnn.pt", model, CheckpointInfo("spiking_cnn_digits", {"pool": "max"}, T, (1, 8, 8),
                                                               "direct", "digits"))
    assert main(["export", str(ckpt), "--target", "lava", "--out", str(d / "cnn.net"), "--no-check"]) == 0
    x, _ = load_digits_arrays(False)
    np.save(d / "x.npy", x)
    return model, ckpt, d / "cnn.net", d


def test_sidecar_carries_the_runtime_contract(exported):
    model, _, net, d = exported
    doc = json.loads(readout_path(net).read_text())
    assert doc["version"] == 2
    c = doc["runtime"]
    assert c["timesteps"] == T and c["network"]["kwargs"] == {"input_message_bits": 5, "reset_interval": T,
                                                             "reset_offset": 1}
    assert [(u["name"], u["block"], u["latency"]) for u in c["layers"]] == [("features.2", 0, 1),
                                                                             ("features.5", 1, 2)]
    assert c["stream"]["trailing_zero_steps"] == 2 and c["input"]["lava_shape"] == [8, 8, 1]
    assert c["input"]["integer"].startswith("round(x * 16)") and c["readout"]["reads"] == "features.5"
    assert c["readout"]["ops"] == ["MaxPool", "Flatten", "Linear"]
    assert read_deployment(net).timesteps == T and LoihiRunner(net).timesteps == T
    summary = json.loads((d / "cnn.net.summary.json").read_text())
    fresh = summary["lava_contract"]["fresh_network_spike_agreement"]["layers"]
    assert set(fresh) == {"features.2", "features.5"}
    md = (d / "cnn.net.summary.md").read_text()
    assert "## Lava runtime contract" in md and "reset_offset=1" in md and "without the reset schedule" in md


def test_bias_during_latency_is_measured_not_hidden(exported):
    """A fresh network per sample without the reset schedule lets biases integrate during the latency."""
    model, _, net, _ = exported
    dep = deploy_graph(to_graph(model))
    x, _ = _digits(False, 16)
    agree = fresh_network_agreement(dep, dep.encode_input(x))
    assert all(layer.bias is not None for layer in dep.network.layers)  # folded BatchNorm: every layer has a bias
    assert set(agree) == {"features.2", "features.5"} and min(agree.values()) < 1.0, agree


def test_sidecar_versions(tmp_path):
    dep = deploy_graph(to_graph(create_model("spiking_mlp_digits")))
    path, side = write_deployment(dep, tmp_path / "m.net", timesteps=3)
    doc = json.loads(side.read_text())
    assert read_deployment(path).timesteps == 3
    v1 = {k: v for k, v in doc.items() if k != "runtime"} | {"version": 1}
    side.write_text(json.dumps(v1))
    assert read_deployment(path).timesteps is None  # version 1 is still read; it has no T
    np.save(tmp_path / "x.npy", load_digits_arrays(False)[0][:3])
    with pytest.raises(ConfigError, match="does not record T; pass -T"):
        run_exported(path, np.load(tmp_path / "x.npy"))
    assert run_exported(path, np.load(tmp_path / "x.npy"), timesteps=3).predictions.shape == (3,)
    side.write_text(json.dumps(doc | {"version": 3}))
    with pytest.raises(DataError, match="version 3 is not supported .*re-export"):
        read_deployment(path)
    bad = json.loads(json.dumps(doc))
    bad["runtime"]["layers"][0]["latency"] = 5
    side.write_text(json.dumps(bad))
    with pytest.raises(DataError, match="latencies .* do not match"):
        read_deployment(path)


def test_cli_run_equals_eval(exported, capsys):
    """`spikeport run cnn.net` = `spikeport eval cnn.net` exactly; vs the float checkpoint: measured agreement."""
    model, ckpt, net, d = exported
    x = d / "x.npy"
    assert main(["run", str(net), "--input", str(x), "--out", str(d / "run.npy")]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["runtime"] == "loihi-reference" and line["timesteps"] == T and line["samples"] == 450
    assert main(["eval", str(net), "--dataset", "digits", "--predictions", str(d / "ev_net.json")]) == 0
    ev_net = json.loads((d / "ev_net.json").read_text())
    run_preds = np.load(d / "run.npy")
    assert ev_net["predictions"] == run_preds.tolist() == line["predictions"]
    assert main(["eval", str(ckpt), "--predictions", str(d / "ev_pt.json")]) == 0
    ev_pt = json.loads((d / "ev_pt.json").read_text())
    assert ev_pt["labels"] == ev_net["labels"] == load_digits_arrays(False)[1].tolist()
    agree = float(np.mean(np.asarray(ev_pt["predictions"]) == run_preds))
    # measured (2 epochs, seed 0): 443 of 450 test predictions equal (98.4%); fixed point flips a few close calls
    assert agree >= 0.97, agree
    assert abs(ev_net["accuracy"] - ev_pt["accuracy"]) <= 0.02
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["run", str(net), "--input", str(x), "--backend", "gpu"])
    assert main(["run", str(net), "--input", str(x), "--out", str(d / "p.txt")]) == 2
    assert ".json or .npy" in capsys.readouterr().err


def test_run_input_shapes_and_errors(exported, tmp_path):
    _, _, net, d = exported
    x = np.load(d / "x.npy")[:5]
    batch = run_exported(net, x).predictions
    assert run_exported(net, x[0]).predictions.tolist() == batch[:1].tolist()  # one frame
    seq = np.broadcast_to(x[None], (T, *x.shape))
    assert run_exported(net, seq).predictions.tolist() == batch.tolist()  # an encoded [T, B, ...] sequence
    with pytest.raises(DataError, match="T=4 steps but T=3 was asked"):
        run_exported(net, seq, timesteps=3)
    with pytest.raises(DataError, match="does not end with the export's per-step shape"):
        run_exported(net, np.zeros((2, 3, 3)))
    np.save(tmp_path / "o.npy", np.array([object()], dtype=object))
    assert main(["run", str(net), "--input", str(tmp_path / "o.npy")]) != 0


def test_run_onnx_and_nir(tmp_path, capsys):
    torch.manual_seed(0)
    model = create_model("spiking_mlp_digits").eval()
    x = load_digits_arrays(False)[0][:6]
    np.save(tmp_path / "x.npy", x)
    seq = torch.from_numpy(x).unsqueeze(0).expand(3, *x.shape)
    want = TorchRunner(model).run(seq).logits.mean(0).argmax(-1).tolist()
    from spikeport.targets.export import export_model

    export_model(model, "onnx", tmp_path / "m.onnx", timesteps=3, check=False)
    export_model(model, "nir", tmp_path / "m.nir", check=False)
    assert run_exported(tmp_path / "m.onnx", x).predictions.tolist() == want  # T baked into the file
    with pytest.raises(ConfigError, match="pass -T"):
        run_exported(tmp_path / "m.nir", x)
    assert main(["run", str(tmp_path / "m.nir"), "--input", str(tmp_path / "x.npy"), "-T", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["predictions"] == want
    with pytest.raises(ConfigError, match="applies to Loihi exports"):
        run_exported(tmp_path / "m.onnx", x, backend="lava")


@pytest.mark.lava
@pytest.mark.slow
def test_plain_lava_script_reproduces_the_export(exported, tmp_path, capsys):
    """examples/lava_plain_run.py (sidecar + netx + Lava processes only) = the export's spikes and predictions."""
    if not _compat.lava_available():
        pytest.skip("lava-nc / lava-dl not installed")
    model, _, net, d = exported
    x = np.load(d / "x.npy")[:3]
    np.save(tmp_path / "x3.npy", x)
    launcher = ("from spikeport.targets.lava import enable_lava; enable_lava(); import runpy, sys; "
                f"sys.argv = ['lava_plain_run.py', {str(net)!r}, '--input', {str(tmp_path / 'x3.npy')!r}, "
                f"'--spikes', {str(tmp_path / 'sp.npz')!r}]; runpy.run_path({str(SCRIPT)!r}, run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", launcher], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    script_preds = json.loads(out.stdout.strip().splitlines()[-1])["predictions"]
    spikes = dict(np.load(tmp_path / "sp.npz"))
    imports = [ln for ln in SCRIPT.read_text().splitlines() if ln.lstrip().startswith(("import ", "from "))]
    assert imports and not any("spikeport" in ln for ln in imports)  # the script uses no spikeport code
    seq = torch.from_numpy(x).unsqueeze(0).expand(T, *x.shape).contiguous()
    ref = LoihiRunner(net).run(seq)
    flt = TorchRunner(model).run(seq)
    for name, s in ref.spikes.items():
        assert np.array_equal(spikes[name], s.numpy().astype(np.int8)), name
        assert s.any(), name  # the layer fires: the comparison is not vacuous
        script_agree = float((torch.from_numpy(spikes[name]).bool() == flt.spikes[name]).double().mean())
        export_agree = float((s == flt.spikes[name]).double().mean())
        assert script_agree == export_agree
    assert script_preds == ref.logits.mean(0).argmax(-1).tolist()
    assert main(["run", str(net), "--input", str(tmp_path / "x3.npy"), "--backend", "lava"]) == 0
    assert json.loads(capsys.readouterr().out)["predictions"] == script_preds
