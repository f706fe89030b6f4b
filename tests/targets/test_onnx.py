"""ONNX target: every zoo model exports, onnxruntime reproduces the torch reference exactly.

Models get calibrated BatchNorm statistics (one train-mode pass over random
inputs) so that their neurons actually fire; otherwise "spikes identical" would
hold trivially for all-zero spike maps. CIFAR-size models run at 8x8 inputs
(VGG-11 needs 32x32 for its 5 pools), batch 1, T=1 unless the model fixes T.
Some deep layers still stay silent on the few probe inputs: those exports pass
``allow_silent=True`` and their verdict is ``vacuous`` (the numbers must still be
exact), never ``exact``.
"""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from spikeport.errors import DataError, ExportError, UnsupportedNodeError
from spikeport.models import MODELS, create_model, list_models
from spikeport.models import layers as L
from spikeport.models.neurons import CubaLIF
from spikeport.targets import onnx as tonnx
from spikeport.targets.onnx import OnnxRunner, export_onnx, export_onnx_stream, read_onnx_meta
from spikeport.targets.torch_runner import TorchRunner
from spikeport.targets.verify import compare

from .calibrate import calibrate_batchnorm

# streaming export for every streamable digits model and one CIFAR-size one (the other CIFAR backbones are made
# of the same node types; their sequence export is tested below)
STREAMABLE = {"resnet20", "resnet_digits", "dalif_digits", "spiking_cnn_digits", "spiking_mlp_digits"}


def calibrated(name: str, seed: int = 0) -> nn.Module:
    """Zoo model with BatchNorm statistics from one pass over random inputs (so neurons fire)."""
    small = "digits" not in name and name != "vgg11"
    m = create_model(name, **({"input_shape": (3, 8, 8)} if small else {}))
    torch.manual_seed(seed)
    t = getattr(m, "timesteps", None) or 2
    return calibrate_batchnorm(m, torch.rand(t, 4, *m.default_input_shape) * 2)


def _cost(name: str) -> list:
    return [pytest.mark.slow] if "cifar" in MODELS.tags(name) else []


def _assert_exact(check, min_active_layers: int = 1) -> None:
    assert check is not None
    assert check.agreement_verdict == "exact", check.describe()
    # a layer without reference spikes makes the verdict vacuous, never exact
    assert check.verdict == ("vacuous" if check.silent_layers else "exact"), check.describe()
    assert check.spikes_identical and check.max_logit_error <= 1e-5
    assert not check.missing_layers
    # the comparison is not vacuous: spikes happened
    assert sum(1 for layer in check.layers if layer.ref_spikes > 0) >= min_active_layers, check.format()


@pytest.mark.parametrize("name", [pytest.param(n, marks=_cost(n)) for n in list_models()])
def test_zoo_sequence_export_matches_torch(tmp_path, name):
    m = calibrated(name)
    t = getattr(m, "timesteps", None) or (1 if "cifar" in MODELS.tags(name) else 2)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    r = export_onnx(m, tmp_path / "m.onnx", timesteps=t, batch=1, scale=2.0, allow_silent=True)
    _assert_exact(r.check)
    assert r.check.samples == 1 + 2  # batch 1 and batch 2: the batch axis is dynamic
    # every spiking layer is a graph output; the model is untouched
    meta = read_onnx_meta(r.path)
    assert meta["kind"] == "sequence" and meta["timesteps"] == t
    outputs = [o.name for o in onnx.load(str(r.path)).graph.output]
    assert outputs == ["logits"] + [o for o, _ in meta["spikes"]]
    assert len(meta["spikes"]) == len(TorchRunner(m).layers) >= 2
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in before.items())
    assert not any(mod._forward_hooks for mod in m.modules())
    assert list(tmp_path.iterdir()) == [tmp_path / "m.onnx"]


@pytest.mark.parametrize("name", [pytest.param(n, marks=_cost(n)) for n in sorted(STREAMABLE)])
def test_zoo_stream_export_matches_torch(tmp_path, name):
    m = calibrated(name)
    r = export_onnx_stream(m, tmp_path / "s.onnx", timesteps=2, batch=1, scale=2.0, allow_silent=True)
    _assert_exact(r.check)
    meta = r.meta
    assert meta["kind"] == "stream" and len(meta["states"]) == len(meta["spikes"])  # one membrane per neuron layer
    assert all(s["batch_axis"] == 0 for s in meta["states"])


@pytest.mark.parametrize("name", ["tssnn_digits", "staa_digits", "fsta_digits"])
def test_stream_refuses_sequence_nodes_listing_them(tmp_path, name):
    with pytest.raises(UnsupportedNodeError) as e:
        export_onnx_stream(create_model(name), tmp_path / "s.onnx")
    msg = str(e.value)
    assert "stages.0.0" in msg and "--target onnx" in msg
    if name != "staa_digits":
        assert "non-causal" in msg
    assert list(tmp_path.iterdir()) == []


def test_stream_runs_longer_sequences_than_the_check(tmp_path):
    m = calibrated("resnet_digits")
    path = export_onnx_stream(m, tmp_path / "s.onnx", check=False).path
    g = torch.Generator().manual_seed(3)
    batches = [(torch.rand(9, 5, 1, 8, 8, generator=g) * 2, None)]
    _assert_exact(compare(TorchRunner(m), OnnxRunner(path), batches))


class _Cuba(nn.Module):
    """Linear -> CubaLIF (two state tensors: current and voltage) -> Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.default_input_shape = (6,)
        self.fc1, self.fc2 = L.Linear(6, 12), L.Linear(12, 3)
        self.lif = CubaLIF(i_decay=0.3, v_decay=0.2, v_threshold=0.4)

    def forward(self, x):
        return self.fc2(self.lif(self.fc1(x)))


def test_cuba_state_is_two_named_tensors(tmp_path):
    torch.manual_seed(0)
    m = _Cuba().eval()
    r = export_onnx_stream(m, tmp_path / "c.onnx", timesteps=6, batch=3)
    _assert_exact(r.check)
    assert [s["input"] for s in r.meta["states"]] == ["state.lif.i", "state.lif.v"]
    s = export_onnx(m, tmp_path / "q.onnx", timesteps=6, batch=3)
    _assert_exact(s.check)


@pytest.mark.parametrize("kind", ["sequence", "stream"])
def test_dynamo_exporter_also_exact(tmp_path, kind):
    m = calibrated("spiking_cnn_digits")
    fn = export_onnx if kind == "sequence" else export_onnx_stream
    r = fn(m, tmp_path / "d.onnx", timesteps=3, exporter="dynamo", scale=2.0)
    _assert_exact(r.check)
    assert r.meta["exporter"] == "dynamo"


def test_without_spike_outputs_only_logits(tmp_path):
    m = calibrated("spiking_mlp_digits")
    r = export_onnx(m, tmp_path / "m.onnx", timesteps=2, spikes=False, scale=2.0, allow_silent=True)
    assert [o.name for o in onnx.load(str(r.path)).graph.output] == ["logits"]
    assert r.check.max_logit_error <= 1e-5 and r.check.layers and r.check.missing_layers


def test_sequence_graph_refuses_other_timesteps(tmp_path):
    m = calibrated("spiking_mlp_digits")
    run = OnnxRunner(export_onnx(m, tmp_path / "m.onnx", timesteps=3, check=False).path)
    with pytest.raises(DataError, match="exported for T=3"):
        run.run(torch.rand(4, 1, 1, 8, 8))
    with pytest.raises(DataError, match="expects inputs"):
        run.run(torch.rand(3, 1, 1, 7, 7))


def test_failure_mid_write_leaves_nothing(tmp_path, monkeypatch):
    real = torch.onnx.export

    def half(module, args, f, **kw):
        with open(f, "wb") as fh:
            fh.write(b"\x08\x07partial onnx bytes")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(torch.onnx, "export", half)
    m = calibrated("spiking_mlp_digits")
    with pytest.raises(ExportError, match="disk on fire"):
        export_onnx(m, tmp_path / "m.onnx", timesteps=2, allow_silent=True)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(torch.onnx, "export", real)
    (tmp_path / "m.onnx").write_bytes(b"old")
    monkeypatch.setattr(tonnx, "_finish", lambda *a: (_ for _ in ()).throw(ExportError("checker says no")))
    with pytest.raises(ExportError, match="checker says no"):
        export_onnx(m, tmp_path / "m.onnx", timesteps=2, allow_silent=True)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"] and (tmp_path / "m.onnx").read_bytes() == b"old"


def test_wrong_runtime_result_fails_the_check(tmp_path, monkeypatch):
    real_run = OnnxRunner.run

    def skewed(self, x):
        r = real_run(self, x)
        r.logits = r.logits + 1e-3
        return r

    monkeypatch.setattr(OnnxRunner, "run", skewed)
    with pytest.raises(ExportError, match="disagrees with the torch reference"):
        export_onnx(calibrated("spiking_mlp_digits"), tmp_path / "m.onnx", timesteps=2, allow_silent=True)
    assert list(tmp_path.iterdir()) == []


def test_foreign_onnx_is_refused(tmp_path):
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    g = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    onnx.save(onnx.helper.make_model(g), str(tmp_path / "f.onnx"))
    with pytest.raises(DataError, match="no spikeport metadata"):
        OnnxRunner(tmp_path / "f.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(DataError, match="not a readable ONNX file"):
        read_onnx_meta(tmp_path / "bad.onnx")


def test_untraceable_model_exports_as_module(tmp_path):
    class Odd(nn.Module):  # data-dependent python control flow: torch.fx cannot trace it
        def __init__(self):
            super().__init__()
            self.default_input_shape = (4,)
            self.fc, self.lif = L.Linear(4, 5), CubaLIF(0.5, 0.5, v_threshold=0.2)

        def forward(self, x):
            y = self.lif(self.fc(x))
            return y * 2 if x.sum() > -1e9 else y

    torch.manual_seed(1)
    m = Odd().eval()
    ref = copy.deepcopy(m.state_dict())
    r = export_onnx(m, tmp_path / "o.onnx", timesteps=3)
    assert r.meta["ir"] is False and r.meta["spikes"] == [["spikes.lif", "lif"]]
    _assert_exact(r.check)
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in ref.items())
    with pytest.raises(ExportError, match="needs the model's IR"):
        export_onnx_stream(m, tmp_path / "s.onnx")
    assert np.isfinite(r.check.max_logit_error)


def _ir_cases():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "converter"))
    from samples import sample_nodes, wrap  # tests/converter/samples.py

    for node, shapes in sample_nodes():
        if len(shapes) == 1:
            yield pytest.param(wrap(node, shapes), id=node.op)


@pytest.mark.parametrize("graph", list(_ir_cases()))
def test_every_single_input_ir_node_exports_exactly(tmp_path, graph):
    t = next((n.timesteps for n in graph.nodes().values() if hasattr(n, "timesteps")), 3)
    r = export_onnx(graph, tmp_path / "g.onnx", timesteps=t, batch=2, scale=3.0)
    assert r.check.verdict == "exact", r.check.describe()
    # TorchScript cannot export adaptive pooling to a non-dividing size: "auto" falls back to dynamo
    assert r.meta["exporter"] == ("dynamo" if "aap" in graph.nodes() else "torchscript")
    from spikeport.ops import refusal, spec_of

    if not any(refusal(spec_of(n), "onnx_stream", n) for n in graph.nodes().values()):
        s = export_onnx_stream(graph, tmp_path / "s.onnx", timesteps=t, batch=2, scale=3.0)
        assert s.check.verdict == "exact", s.check.describe()


def test_recurrent_edge_state_is_exported(tmp_path):
    from spikeport.converter import SpikeGraph, ir

    g = SpikeGraph("rec")
    g.add(ir.Input("x", shape=(3,)))
    g.add(ir.Add("sum"), ["x", "fb"], recurrent=[False, True])
    g.add(ir.LIF("n", tau=2.0, v_threshold=0.5), ["sum"])
    g.add(ir.Scale("fb", scale=0.7), ["n"])
    g.add(ir.Output("y"), ["n"])
    for fn in (export_onnx, export_onnx_stream):
        r = fn(g.validate(), tmp_path / f"{fn.__name__}.onnx", timesteps=7, batch=2)
        _assert_exact(r.check)
    assert {s["node"] for s in r.meta["states"]} == {"n", "fb:out"}


def test_multi_input_graph_is_refused(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "converter"))
    from samples import sample_nodes, wrap  # tests/converter/samples.py

    node, shapes = next((n, s) for n, s in sample_nodes() if n.op == "Mul")
    with pytest.raises(ExportError, match="2 inputs"):
        export_onnx(wrap(node, shapes), tmp_path / "m.onnx")
