"""Whole models in every layout the adapters take, beyond the trained fixtures: the traced IR reproduces the model
itself bit for bit (every layer's spikes and the output) on inputs that make every layer spike.

Covers SpikingJelly single-step models, Norse's sequence ``LIF``, sinabs ``LIF`` with a synaptic current and
``min_v_mem``, and SLAYER ``Input``, ``Conv`` and ``Pool`` blocks.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeport.converter import lower, trace
from spikeport.frameworks import ForeignModel
from spikeport.frameworks.runner import OriginalRunner
from spikeport.targets.torch_runner import TorchRunner

pytestmark = pytest.mark.peers


def _scaled(build, gain: float) -> nn.Module:
    torch.manual_seed(0)
    net = build()
    with torch.no_grad():
        for m in net.modules():
            w = getattr(m, "weight", None)
            if isinstance(w, torch.Tensor) and w.requires_grad and w.dim() > 1:
                w.mul_(gain)
    return net.eval()


def _same(net: nn.Module, layout: str, shape: tuple[int, ...], t: int = 6, b: int = 5, scale: float = 1.0):
    model = ForeignModel(net, layout, shape)
    x = torch.rand(t, b, *shape, generator=torch.Generator().manual_seed(1)) * scale
    orig = OriginalRunner(model).run(x)
    ir = TorchRunner(lower(trace(model))).run(x)
    assert orig.spikes and set(orig.spikes) <= set(ir.spikes), (list(orig.spikes), list(ir.spikes))
    for name, s in orig.spikes.items():
        assert torch.equal(s, ir.spikes[name]), name
        assert 0 < int(s.sum()) < s.numel(), (name, int(s.sum()))
    assert torch.equal(orig.logits, ir.logits)
    return trace(model)


def test_spikingjelly_single_step_model_called_per_step():
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import layer, neuron

    net = _scaled(lambda: nn.Sequential(layer.Conv2d(1, 4, 3, padding=1), neuron.IFNode(v_reset=None),
                                        layer.MaxPool2d(2), layer.Flatten(), layer.Linear(64, 10),
                                        neuron.LIFNode(tau=3.0, v_reset=-0.2)), 3.0)
    g = _same(net, "step", (1, 8, 8), scale=2.0)
    assert g.meta["time_layout"] == "step"


def test_norse_sequence_lif_in_a_sequential_state():
    pytest.importorskip("norse")
    from norse.torch import LIF, LIFParameters, SequentialState

    p = LIFParameters(tau_syn_inv=torch.tensor(400.0), tau_mem_inv=torch.tensor(300.0), v_leak=torch.tensor(0.05),
                      v_reset=torch.tensor(-0.1))
    net = _scaled(lambda: SequentialState(nn.Linear(12, 16), LIF(p), nn.Linear(16, 4), LIF(p)), 8.0)
    _same(net, "tb", (12,), t=10, scale=2.0)


def test_sinabs_lif_with_synaptic_current_and_min_v_mem():
    pytest.importorskip("sinabs")
    import sinabs.layers as sl
    from sinabs.activation import MaxSpike

    net = _scaled(lambda: nn.Sequential(nn.Linear(12, 16), sl.LIF(tau_mem=5.0, tau_syn=2.0, min_v_mem=-0.5,
                                                                      spike_fn=MaxSpike(2)),
                                        nn.Linear(16, 4), sl.IAF(spike_threshold=torch.tensor(0.5))), 6.0)
    _same(net, "bt", (12,), t=10, scale=2.0)


def test_slayer_input_conv_pool_blocks():
    from spikeport.targets.lava import enable_lava, lava_available

    if not lava_available():
        pytest.skip("lava-dl is not installed")
    enable_lava()
    import lava.lib.dl.slayer as slayer

    p = {"threshold": 0.5, "current_decay": 0.2, "voltage_decay": 0.1}

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList([
                slayer.block.cuba.Input(dict(p), weight=1.5),
                slayer.block.cuba.Conv(dict(p), 1, 4, 3, padding=1, weight_scale=3),
                slayer.block.cuba.Pool(dict(p), 2, weight_scale=1),
                slayer.block.cuba.Flatten(),
                slayer.block.cuba.Dense(dict(p), 64, 10, weight_scale=3)])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for b in self.blocks:
                x = b(x)
            return x

    torch.manual_seed(0)
    g = _same(Net().eval(), "time-last", (1, 8, 8), t=8)
    ops = [n.op for n in g.nodes().values()]
    assert ops.count("SlayerCUBA") == 4 and ops.count("Delay") == 4 and "Quantize" in ops and "SlayerPool" in ops
