"""Equality with NeuroBench 2.3's SynapticOperations (Effective_ACs / Effective_MACs / Dense) on the same data."""

import pytest
import torch
from torch import nn

from spikeport.energy import neurobench_ops, record_spikes
from spikeport.models import create_model
from spikeport.models import layers as L
from spikeport.models.neurons import IF, LIF

from ..frameworks.matrix import neurobench_synops

neurobench = pytest.importorskip("neurobench")
pytestmark = pytest.mark.peers


def ours(net: nn.Module, batches: list[torch.Tensor]) -> dict:
    with record_spikes(net) as rec, torch.no_grad():
        for x in batches:
            net(x)
    return neurobench_ops(rec)


def _prune(model: nn.Module, frac: float, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(3.0)
                m.weight[torch.rand(m.weight.shape, generator=g) < frac] = 0.0
    return model.eval()


def conv_net() -> nn.Module:
    torch.manual_seed(1)
    return _prune(nn.Sequential(
        L.Conv2d(2, 4, 3, padding=1, groups=2), IF(v_threshold=0.5),
        L.Conv2d(4, 6, 3, stride=2, padding=1, bias=False), LIF(tau=2.0, v_threshold=0.3),
        L.Conv2d(6, 6, 2, padding=0, dilation=1), IF(v_threshold=0.2, v_reset=None),
        L.AvgPool2d(2), L.Flatten(), L.Linear(6, 5)), 0.3, 1)


def mlp() -> nn.Module:
    torch.manual_seed(2)
    return _prune(nn.Sequential(L.Flatten(), L.Linear(18, 16), IF(v_threshold=0.5), L.Linear(16, 8),
                                LIF(v_threshold=0.3), L.Linear(8, 3)), 0.25, 2)


def _data(shape, seed, signed=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    if signed:  # signed spikes {-1, 0, 1}
        return torch.randint(-1, 2, shape, generator=g).float()
    return x * (torch.rand(shape, generator=g) > 0.4)  # real values with exact zeros


@pytest.mark.parametrize("net_fn,shape,signed", [
    (conv_net, (3, 4, 2, 7, 7), False),
    (conv_net, (2, 5, 2, 7, 7), True),
    (mlp, (4, 6, 2, 3, 3), False),
])
def test_equal_to_neurobench(net_fn, shape, signed):
    net = net_fn()
    batches = [_data(shape, s, signed) for s in range(3)]
    nb = neurobench_synops(net, batches)
    mine = ours(net, batches)
    assert mine["Effective_ACs"] > 0 and nb["Dense"] > 0
    assert mine == pytest.approx(nb, rel=0, abs=1e-9)


def test_equal_to_neurobench_on_zoo_model():
    torch.manual_seed(0)
    net = _prune(create_model("spiking_cnn_digits"), 0.1, 3)
    batches = [_data((4, 8, 1, 8, 8), s) for s in range(2)]
    nb, mine = neurobench_synops(net, batches), ours(net, batches)
    assert mine["Effective_ACs"] > 0
    assert mine == pytest.approx(nb, rel=0, abs=1e-9)
