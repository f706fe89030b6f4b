"""Dense MACs equal half of torch's FLOP count on the ANN twins; recorder state does not grow with samples."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from spikeport.converter import lower, trace
from spikeport.energy import estimate, record_spikes
from spikeport.energy.record import NeuronRecord
from spikeport.models import create_model


@pytest.mark.parametrize("name", ["resnet19", "resnet18", "vgg11"])
def test_dense_macs_are_half_the_flops_of_the_ann(name):
    torch.manual_seed(0)
    model = create_model(name, neuron="relu").eval()
    x = torch.rand(1, 1, 3, 32, 32)  # T=1, B=1, CIFAR shape
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x)
    with torch.no_grad(), record_spikes(model) as rec:
        model(x)
    rep = estimate(rec)
    assert rep.totals["dense_macs"] == fc.get_total_flops() / 2
    assert not rec.unmeasured
    # the ANN's first conv sees real input and every later synapse sees ReLU outputs (real): MACs only
    assert rep.totals["syn_acs"] == 0 and rep.totals["syn_macs"] > 0


def test_recorder_state_is_flat_in_the_number_of_samples():
    torch.manual_seed(0)
    model = create_model("resnet_digits").eval()
    g = torch.Generator().manual_seed(0)
    sizes = []
    for n_batches in (1, 4):
        with torch.no_grad(), record_spikes(model) as rec:
            for _ in range(n_batches):
                model(torch.rand(4, 16, 1, 8, 8, generator=g) * 2)
        sizes.append(rec.state_nbytes())
        assert rec.samples == 16 * n_batches
    assert sizes[0] == sizes[1]
    # far below one batch of one layer's spikes: nothing proportional to the data is kept
    assert sizes[0] < 4 * 16 * 16 * 8 * 8 * 4


def test_graph_and_module_recordings_agree():
    torch.manual_seed(0)
    model = create_model("resnet_digits").eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(4.0)
    lm = lower(trace(model))
    x = torch.rand(4, 8, 1, 8, 8) * 2
    with torch.no_grad(), record_spikes(model) as r1:
        y1 = model(x)
    with torch.no_grad(), record_spikes(lm) as r2:
        y2 = lm(x)
    assert torch.equal(y1, y2)
    a, b = estimate(r1), estimate(r2)
    assert b.totals["spikes"] == a.totals["spikes"] > 0
    assert b.totals["syn_acs"] == a.totals["syn_acs"] > 0
    assert b.totals["elem_adds"] > a.totals["elem_adds"]  # the traced graph also counts the residual adds
    assert {r.type_name for r in r2.nodes(NeuronRecord)} == {"LIF"}
    from spikeport.converter.ir import LIF as IRLIF

    with torch.no_grad(), record_spikes(model, graph=lm.graph) as r3:  # original modules, rules by IR node type
        model(x)
    assert r3.graph_bound and all(isinstance(r.node, IRLIF) for r in r3.nodes(NeuronRecord))
    assert estimate(r3).totals["syn_acs"] == a.totals["syn_acs"]
