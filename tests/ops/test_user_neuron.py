"""A hand-written neuron declared with ``@spiking_neuron``: traced, executed bit-identically, counted, exported."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeport.converter import lower, trace
from spikeport.energy import estimate, record_spikes
from spikeport.errors import UnsupportedNodeError
from spikeport.models import layers as L
from spikeport.ops import refusal, spec_of, spiking_neuron, unregister_op


def heaviside(u: torch.Tensor) -> torch.Tensor:
    return (u >= 0).to(u.dtype)


@pytest.fixture
def neuron_cls():
    @spiking_neuron(params=("beta", "threshold"), ops=(1, 2), name="TestUserLIF")
    class UserLIF(nn.Module):
        def __init__(self, beta: float = 0.85, threshold: float = 0.6) -> None:
            super().__init__()
            self.beta = beta
            self.threshold = nn.Parameter(torch.tensor(threshold))  # a tensor parameter works as well

        @staticmethod
        def step(x, v, *, beta, threshold, spike):
            h = beta * v + x
            s = spike(h - threshold)
            return s, h - s * threshold  # soft reset

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            v, out = torch.zeros_like(x[0]), []
            for t in range(x.shape[0]):
                s, v = self.step(x[t], v, beta=self.beta, threshold=self.threshold, spike=heaviside)
                out.append(s)
            return torch.stack(out)

    yield UserLIF
    unregister_op(UserLIF.spikeport_op)


def test_declared_neuron_traces_runs_exactly_and_is_counted(neuron_cls, tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(L.Flatten(), L.Linear(16, 12), neuron_cls(), L.Linear(12, 3)).eval()
    x = torch.rand(7, 5, 1, 4, 4) * 2
    g = trace(model, (1, 4, 4))
    assert g.node("2").op == "TestUserLIF"
    with torch.no_grad():
        assert torch.equal(lower(g)(x), model(x))
    with torch.no_grad(), record_spikes(model) as rec:  # the hook recorder knows the module too
        model(x)
    r = estimate(rec).layers.set_index("layer").loc["2"]
    with torch.no_grad():
        spikes = model[2](model[1](model[0](x)))
    assert r["role"] == "neuron" and r["rate"] == int(spikes.sum()) / spikes.numel() and r["rate"] > 0
    spec = spec_of(neuron_cls.spikeport_op)
    assert refusal(spec, "onnx") is None and "no NIR mapping declared" in refusal(spec, "nir_export")
    from spikeport.targets.nir import export_nir
    from spikeport.targets.onnx import export_onnx

    r = export_onnx(model, tmp_path / "m.onnx", timesteps=7, input_shape=(1, 4, 4), check=False)
    from spikeport.targets.onnx import OnnxRunner

    assert torch.allclose(OnnxRunner(r.path).run(x).logits, model(x).detach(), atol=1e-5)
    with pytest.raises(UnsupportedNodeError, match="no NIR mapping declared for TestUserLIF"):
        export_nir(model, tmp_path / "m.nir", input_shape=(1, 4, 4))


def test_declaration_errors_name_the_fix():
    from spikeport.errors import GraphError

    with pytest.raises(GraphError, match=r"needs a static method step\(x, state"):
        spiking_neuron(params=("beta",))(type("NoStep", (nn.Module,), {}))
    with pytest.raises(GraphError, match="params must be attribute names"):
        spiking_neuron(params=("not a name",))
