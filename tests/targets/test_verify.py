"""Reference runner, comparison (ties vs real mismatches), verify driver, NIR target, CUDA path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeport.data import get_dataset
from spikeport.errors import ConfigError, ExportError, UnsupportedNodeError
from spikeport.models import create_model
from spikeport.models import layers as L
from spikeport.models.neurons import IF
from spikeport.runtime import resolve_device
from spikeport.targets.nir import NirRunner, export_nir
from spikeport.targets.onnx import export_onnx
from spikeport.targets.torch_runner import RunResult, TorchRunner
from spikeport.targets.verify import Comparator, compare, dataset_batches, random_batches, verify_export

from .calibrate import calibrate_batchnorm

NO_CUDA = not torch.cuda.is_available()


def calibrated(name: str) -> nn.Module:
    m = create_model(name)
    torch.manual_seed(0)
    return calibrate_batchnorm(m, torch.rand(2, 4, *m.default_input_shape) * 2)


class _Two(nn.Module):
    """Linear(2 -> 2) -> IF(threshold 1): neuron 0 sits exactly at a tie, neuron 1 far from threshold."""

    def __init__(self) -> None:
        super().__init__()
        self.default_input_shape = (2,)
        self.fc = L.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[0.5, 0.5], [3.0, 0.0]]))
        self.lif = IF(v_threshold=1.0)

    def forward(self, x):
        return self.lif(self.fc(x))


class _Flip:
    """A fake target: the reference's result with chosen spikes flipped."""

    runtime = "fake"

    def __init__(self, ref: TorchRunner, flips: list[tuple[int, int, int]]) -> None:
        self.ref, self.flips = ref, flips

    def run(self, x):
        r = self.ref.run(x)
        s = r.spikes["lif"].clone()
        for t, b, i in self.flips:
            s[t, b, i] = ~s[t, b, i]
        return RunResult(r.logits, {"lif": s}, self.runtime)


def _x() -> torch.Tensor:
    return torch.tensor([[[1.0, 1.0]], [[0.0, 0.0]]])  # T=2, B=1: H0 = 1.0 exactly at t=0


def test_margins_are_what_the_heaviside_sees():
    ref = TorchRunner(_Two())
    u = ref.margins(_x(), "lif")
    assert u[0, 0].tolist() == [0.0, 2.0]  # H - V_th
    r = ref.run(_x())
    assert torch.equal(r.spikes["lif"], u >= 0)


def test_comparator_separates_ties_from_real_mismatches():
    ref = TorchRunner(_Two())
    tie = compare(ref, _Flip(ref, [(0, 0, 0), (1, 0, 0)]), [(_x(), None)])
    assert tie.verdict == "ties" and tie.layers[0].tie_flips == 1  # t=1 is the flip's consequence, not primary
    assert tie.layers[0].mismatches == 2 and tie.layers[0].unexplained == 0
    real = compare(ref, _Flip(ref, [(0, 0, 1)]), [(_x(), None)])
    assert real.verdict == "mismatch" and real.layers[0].unexplained == 1
    exact = compare(ref, _Flip(ref, []), [(_x(), None)])
    assert exact.verdict == "exact" and exact.spikes_identical
    assert "verdict: exact" in exact.format()


def test_comparator_logits_and_accuracy():
    c = Comparator(["a"], "r", "t", atol=1e-5)
    logits = torch.tensor([[[0.0, 1.0], [2.0, 0.0]]])  # T=1, B=2 -> predictions [1, 0]
    s = {"a": torch.zeros(1, 2, 3, dtype=torch.bool)}
    c.update(None, RunResult(logits, s), RunResult(logits + torch.tensor([0.0, 2e-5]), s), torch.tensor([1, 1]))
    r = c.result
    assert r.verdict == "mismatch" and r.max_logit_error == pytest.approx(2e-5, rel=1e-2)
    assert (r.ref_accuracy, r.target_accuracy, r.pred_agree, r.samples) == (0.5, 0.5, 2, 2)
    d = r.to_dict()
    assert d["verdict"] == "mismatch" and d["layers"][0]["agreement"] == 1.0


def test_ir_and_module_references_agree():
    m = calibrated("resnet_digits")
    x = next(random_batches((1, 8, 8), timesteps=3, samples=4, seed=1, scale=2.0))[0]
    a, b = TorchRunner(m).run(x), TorchRunner(m, use_ir=False).run(x)
    assert list(a.spikes) == list(b.spikes) and len(a.spikes) == 5
    assert torch.equal(a.logits, b.logits) and all(torch.equal(a.spikes[k], b.spikes[k]) for k in a.spikes)
    assert any(v.any() for v in a.spikes.values())


def test_verify_onnx_on_labelled_digits(tmp_path):
    m = calibrated("spiking_cnn_digits")
    path = export_onnx(m, tmp_path / "m.onnx", timesteps=4, check=False).path
    split = get_dataset("digits", train=False)
    batches = dataset_batches(split, timesteps=4, samples=70, batch_size=32)
    c, ir_vs_model, model_vs_onnx = verify_export(m, path, batches)
    assert c.samples == c.labelled == 70 and c.verdict == "exact", c.describe()
    assert c.ref_accuracy == c.target_accuracy
    assert c.reference == "torch-cpu" and c.target == "onnxruntime"
    # the model itself ran beside its traced IR and the export: the same spikes in every layer
    assert ir_vs_model.target.startswith("original") and model_vs_onnx.target == "onnxruntime"
    assert ir_vs_model.verdict == model_vs_onnx.verdict == "exact", (ir_vs_model.describe(), model_vs_onnx.describe())
    assert [x.name for x in ir_vs_model.layers] == [x.name for x in c.layers] and not ir_vs_model.missing_layers


def test_nir_export_roundtrip_and_verify(tmp_path):
    m = calibrated("resnet_digits")
    r = export_nir(m, tmp_path / "m.nir", timesteps=3, scale=2.0)
    assert r.check.verdict == "exact", r.check.describe()
    assert r.check.max_logit_error <= 1e-5 and not r.check.missing_layers
    assert any(layer.ref_spikes for layer in r.check.layers)
    assert [p.name for p in tmp_path.iterdir()] == ["m.nir"]
    comps = verify_export(m, r.path, random_batches((1, 8, 8), timesteps=5, samples=6, scale=2.0))
    c = comps[0]
    assert c.target == "nir-import" and all(x.ok for x in comps), [x.describe() for x in comps]
    assert NirRunner(r.path).layers == TorchRunner(m).layers


def test_nir_refusals_and_failures_leave_nothing(tmp_path, monkeypatch):
    with pytest.raises(UnsupportedNodeError, match="features.6"):
        export_nir(create_model("spiking_cnn_digits", pool="max"), tmp_path / "m.nir")
    assert list(tmp_path.iterdir()) == []
    import nir

    def half(path, graph):
        with open(path, "wb") as f:
            f.write(b"\x89HDF partial")
        raise OSError("no space left")

    monkeypatch.setattr(nir, "write", half)
    with pytest.raises(OSError, match="no space left"):
        export_nir(create_model("spiking_mlp_digits"), tmp_path / "m.nir")
    assert list(tmp_path.iterdir()) == []


def test_nir_check_failure_removes_file(tmp_path, monkeypatch):
    import spikeport.targets.nir as tnir

    real = tnir.compare

    def worse(*a, **kw):
        c = real(*a, **kw)
        c.max_logit_error = 1.0
        return c

    monkeypatch.setattr(tnir, "compare", worse)
    with pytest.raises(ExportError, match="imported back disagrees"):
        export_nir(create_model("spiking_mlp_digits"), tmp_path / "m.nir")
    assert list(tmp_path.iterdir()) == []


def test_cross_device_comparison_path_runs_on_cpu(tmp_path):
    # the CUDA-vs-CPU comparison of `verify --device cuda`, exercised with cpu on both sides
    m = calibrated("spiking_cnn_digits")
    path = export_onnx(m, tmp_path / "m.onnx", timesteps=2, check=False).path
    comps = verify_export(m, path, random_batches((1, 8, 8), timesteps=2, samples=5, scale=2.0), compare_cpu=True)
    model = "original (torch, tb, cpu)"
    assert [(c.reference, c.target) for c in comps] == [("torch-cpu", "onnxruntime"), ("traced IR (torch-cpu)", model),
                                                        (model, "onnxruntime"), ("torch-cpu", "torch-cpu")]
    assert comps[-1].verdict == "exact" and comps[-1].max_logit_error == 0.0 and comps[-1].samples == 5


@pytest.mark.skipif(not NO_CUDA, reason="checks the error raised without CUDA")
def test_cuda_absent_is_a_clear_config_error(tmp_path):
    with pytest.raises(ConfigError, match="CUDA is not available.*use --device cpu"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        TorchRunner(create_model("spiking_mlp_digits"), device="cuda:0")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        verify_export(create_model("spiking_mlp_digits"), tmp_path / "missing.onnx", [], device="cuda")
    with pytest.raises(ConfigError, match="only cpu and cuda"):
        resolve_device("meta")
    with pytest.raises(ConfigError, match="not a device name"):
        resolve_device("gpu")


@pytest.mark.skipif(NO_CUDA, reason="needs a CUDA GPU")
def test_cuda_reference_matches_cpu(tmp_path):  # pragma: no cover - runs on GPU machines only
    m = calibrated("resnet_digits")
    path = export_onnx(m, tmp_path / "m.onnx", timesteps=3, check=False).path
    comps = verify_export(m, path, random_batches((1, 8, 8), timesteps=3, samples=16, scale=2.0), device="cuda")
    assert [c.reference for c in comps][::3] == ["torch-cuda", "torch-cpu"] and comps[-1].target == "torch-cuda"
    assert all(c.ok for c in comps), [c.describe() for c in comps]
    assert next(m.parameters()).device.type == "cpu"  # the caller's model was not moved
