"""Property-based tests of the IR: random small nets survive trace, BN folding and a NIR file round trip.

Hypothesis draws the architecture (Linear/Conv2d stacks with optional
BatchNorm, LIF or IF neurons, widths, kernels, thresholds, time constants,
T, batch) and a seed for the weights; values come from torch's RNG so that no
membrane sits exactly on a threshold. Runs are derandomized (fixed examples)
and bounded to a few seconds.
"""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import nn

from spikeport.converter import ir, lower, nir_io, trace
from spikeport.converter.passes import fold_batchnorm
from spikeport.models import layers as L
from spikeport.models.neurons.modules import IF, LIF

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ATOL = 1e-5


class RandomNet(nn.Sequential):
    """A drawn stack; ``default_input_shape`` lets ``trace`` find the input."""

    def __init__(self, input_shape: tuple[int, ...], *layers: nn.Module) -> None:
        super().__init__(*layers)
        self.default_input_shape = input_shape


@st.composite
def neuron(draw, soft_reset: bool) -> nn.Module:
    v_th = draw(st.sampled_from([0.5, 0.75, 1.0, 1.5]))
    v_reset = None if soft_reset and draw(st.booleans()) else 0.0
    if draw(st.booleans()):
        return LIF(tau=draw(st.sampled_from([1.5, 2.0, 3.0, 4.0])), v_threshold=v_th, v_reset=v_reset)
    return IF(v_threshold=v_th, v_reset=v_reset)


@st.composite
def random_net(draw, soft_reset: bool = True) -> tuple[RandomNet, int]:
    """``(net, seed)``: conv blocks then linear blocks, ending in an analog Linear (+ BatchNorm) readout."""
    conv = draw(st.booleans())
    layers: list[nn.Module] = []
    if conv:
        c, hw = draw(st.integers(1, 3)), draw(st.sampled_from([4, 5, 6]))
        shape: tuple[int, ...] = (c, hw, hw)
        for _ in range(draw(st.integers(1, 2))):
            out, k = draw(st.integers(1, 4)), draw(st.sampled_from([1, 3]))
            layers.append(L.Conv2d(c, out, k, padding=k // 2, bias=draw(st.booleans())))
            if draw(st.booleans()):
                layers.append(L.BatchNorm2d(out))
            if draw(st.integers(0, 2)):  # 1 in 3 blocks stays analog, so errors are not hidden by spiking
                layers.append(draw(neuron(soft_reset)))
            c = out
        if hw % 2 == 0 and draw(st.booleans()):
            layers.append(L.AvgPool2d(2))
            hw //= 2
        layers.append(L.Flatten())
        features = c * hw * hw
    else:
        features = draw(st.integers(2, 12))
        shape = (features,)
    for _ in range(draw(st.integers(0, 2))):
        out = draw(st.integers(2, 10))
        layers.append(L.Linear(features, out, bias=draw(st.booleans())))
        if draw(st.booleans()):
            layers.append(L.BatchNorm1d(out))
        if draw(st.integers(0, 2)):
            layers.append(draw(neuron(soft_reset)))
        features = out
    classes = draw(st.integers(1, 5))
    layers.append(L.Linear(features, classes))
    if draw(st.booleans()):
        layers.append(L.BatchNorm1d(classes))
    return RandomNet(shape, *layers), draw(st.integers(0, 2**31 - 1))


def _init(net: RandomNet, seed: int) -> torch.Generator:
    """Random weights and BatchNorm statistics from ``seed`` (float64, eval mode)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 1.5 / m.weight[0].numel() ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.3)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.2)
                m.weight.copy_(torch.rand(n, generator=g) * 1.5 + 0.25)
                m.bias.copy_(torch.randn(n, generator=g) * 0.3)
    return g


def _run(net: RandomNet, seed: int, t: int, b: int):
    g = _init(net, seed)
    x = torch.rand((t, b, *net.default_input_shape), generator=g, dtype=torch.float64) * 2.0
    net = net.double().eval()
    with torch.no_grad():
        return net, x, net(x)


def _lowered(graph, x):
    with torch.no_grad():
        return lower(graph).double().eval()(x)


@SETTINGS
@given(random_net(), st.integers(1, 4), st.integers(1, 3))
def test_trace_then_lower_reproduces_the_model(drawn, t, b):
    net, seed = drawn
    net, x, ref = _run(net, seed, t, b)
    out = _lowered(trace(net), x)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


@SETTINGS
@given(random_net(), st.integers(1, 4), st.integers(1, 3))
def test_batchnorm_folding_preserves_outputs(drawn, t, b):
    net, seed = drawn
    net, x, ref = _run(net, seed, t, b)
    graph = trace(net)
    had_bn = bool(graph.nodes_of_type(ir.BatchNorm))
    event(f"{len(graph.nodes_of_type(ir.BatchNorm))} BatchNorm node(s)")
    folded, modified = fold_batchnorm(graph)
    assert modified == had_bn
    assert not folded.nodes_of_type(ir.BatchNorm), "every BatchNorm here follows a Conv2d/Linear"
    assert len(folded.nodes()) == len(graph.nodes()) - len(graph.nodes_of_type(ir.BatchNorm))
    torch.testing.assert_close(_lowered(folded, x), ref, atol=ATOL, rtol=0)
    torch.testing.assert_close(_lowered(graph, x), ref, atol=ATOL, rtol=0)  # the input graph is untouched


@SETTINGS
@given(random_net(soft_reset=False), st.integers(1, 4), st.integers(1, 2))
def test_nir_file_round_trip_preserves_outputs(tmp_path_factory, drawn, t, b):
    net, seed = drawn
    net, x, ref = _run(net, seed, t, b)
    path = tmp_path_factory.mktemp("nir") / "net.nir"
    nir_io.write_nir(trace(net), path)
    back = nir_io.read_nir(path)
    torch.testing.assert_close(_lowered(back, x), ref, atol=ATOL, rtol=0)
