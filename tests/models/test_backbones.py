"""Backbones: block semantics, layer injection hooks, parameter formulas, fx traceability."""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.fx
from torch import nn

from spikeport.errors import ConfigError
from spikeport.models import layers as L
from spikeport.models.backbones import BasicBlock, SpikingResNet, SpikingVGG, create_resnet, num_params
from spikeport.models.backbones.digits_variants import (
    dalif_digits,
    fsta_digits,
    resnet_digits,
    staa_digits,
    tssnn_digits,
)
from spikeport.models.methods import FSTA, FSTALIF, METHOD_LEAF_MODULES, STAABlock, TemporalShift
from spikeport.models.neurons import DALIF, LIF, SpikingNeuron


# ---------------------------------------------------------------- parameter formulas (independent of the code)
def _conv(cin, cout, k=3):
    return cin * cout * k * k


def _bn(c):
    return 2 * c


def _block(cin, cout, stride):
    n = _conv(cin, cout) + _bn(cout) + _conv(cout, cout) + _bn(cout)
    if stride != 1 or cin != cout:
        n += _conv(cin, cout, 1) + _bn(cout)
    return n


def _resnet_params(stem, stages, blocks, in_ch=3, k=10, flat_hw=1):
    n, prev = 0, in_ch
    for c in stem:
        n += _conv(prev, c) + _bn(c)
        prev = c
    for i, (c, nb) in enumerate(zip(stages, blocks, strict=True)):
        for j in range(nb):
            n += _block(prev, c, 2 if (i > 0 and j == 0) else 1)
            prev = c
    return n + prev * flat_hw * k + k


def test_resnet_parameter_counts_match_formulas():
    # ResNet-18 (CIFAR) equals the well-known 11,173,962 of the reference PyTorch CIFAR ResNet-18.
    assert num_params(create_resnet("resnet18")) == 11_173_962 == _resnet_params((64,), (64, 128, 256, 512),
                                                                                  (2, 2, 2, 2))
    assert num_params(create_resnet("resnet19")) == _resnet_params((128,), (128, 256, 512), (3, 3, 2))
    assert num_params(create_resnet("resnet20")) == _resnet_params((64, 64, 64), (64, 128, 256, 512), (2, 2, 2, 2))
    assert num_params(resnet_digits()) == _resnet_params((16,), (16, 32), (1, 1), in_ch=1, flat_hw=16) == 24_506


def test_vgg11_parameter_count():
    # the reference CIFAR VGG-11 (conv biases, GAP-free 512->10 head) has 9,231,114; ours has no conv biases
    biases = 64 + 128 + 256 * 2 + 512 * 4
    assert num_params(SpikingVGG()) == 9_231_114 - biases


def test_seed_variant_parameter_deltas():
    base = num_params(resnet_digits())
    n_blocks, n_neurons = 2, 1 + 2 * 2
    assert num_params(tssnn_digits()) == base + 2 * n_blocks  # one alpha per TS module, two per block
    assert num_params(dalif_digits()) == base + 2 * n_neurons
    per_ch = dalif_digits(per_channel=True)
    assert num_params(per_ch) == base + 2 * (16 + 16 + 16 + 32 + 32)
    t = 3
    assert num_params(fsta_digits(timesteps=t)) == base + n_neurons * (2401 + t * t + 4)

    def staa(c):
        h = c // 4
        return t * c + (c + 1) + (c * h + h) + 2 * h + (h * c + c) + 2 * (t * t + t) + 2

    # stem neuron + each block's act1 are DA-LIF (2 each); each block's act2 is an STAA block
    assert num_params(staa_digits(timesteps=t)) == base + 2 * 3 + staa(16) + staa(32)


# ---------------------------------------------------------------- block semantics and hooks
def test_basic_block_residual_before_output_neuron():
    torch.manual_seed(0)
    blk = BasicBlock(4, 8, stride=2, act_layer=lambda c: LIF()).eval()
    x = (torch.rand(3, 2, 4, 6, 6) > 0.5).float()
    with torch.no_grad():
        y1 = blk.act1(blk.bn1(blk.conv1(x)))
        expected = blk.act2(blk.bn2(blk.conv2(y1)) + blk.shortcut(x))
        assert torch.equal(blk(x), expected)
    assert blk(x).shape == (3, 2, 8, 3, 3)
    ident = BasicBlock(4, 4, act_layer=lambda c: nn.ReLU())
    assert ident.shortcut is None


def test_avgconv_shortcut():
    blk = BasicBlock(4, 8, stride=2, act_layer=lambda c: LIF(), shortcut="avgconv")
    assert isinstance(blk.shortcut[0], L.AvgPool2d) and blk.shortcut[1].stride == (1, 1)
    with pytest.raises(ConfigError, match="shortcut"):
        BasicBlock(4, 8, act_layer=lambda c: LIF(), shortcut="zero")


def test_hooks_are_placed_where_documented():
    m = tssnn_digits()
    ts = [mod for mod in m.modules() if isinstance(mod, TemporalShift)]
    assert len(ts) == 4 and [t.channels for t in ts] == [16, 16, 16, 32]
    assert all(isinstance(b.pre1, TemporalShift) and isinstance(b.pre2, TemporalShift)
               for s in m.stages for b in s)
    f = fsta_digits()
    assert sum(isinstance(mod, FSTALIF) for mod in f.modules()) == 5
    assert not any(type(mod) is LIF and mod.tau == 2.0 for mod in f.modules())  # every LIF replaced
    s = staa_digits()
    assert [isinstance(b.act2, STAABlock) for st in s.stages for b in st] == [True, True]
    assert isinstance(s.stem[2], DALIF) and isinstance(s.stages[0][0].act1, DALIF)


def test_per_channel_dalif_gets_layer_width():
    m = dalif_digits(per_channel=True)
    widths = [mod.per_channel for mod in m.modules() if isinstance(mod, DALIF)]
    assert widths == [16, 16, 16, 32, 32]
    assert m(torch.rand(2, 3, 1, 8, 8)).shape == (2, 3, 10)


def test_model_api_and_head_shapes():
    m = resnet_digits(num_classes=7, input_shape=(2, 12, 10)).eval()
    assert m.default_input_shape == (2, 12, 10) and m.num_classes == 7 and m.timesteps is None
    x = torch.rand(2, 3, 2, 12, 10)
    feats = m.forward_features(x)
    assert feats.shape == (2, 3, 32, 6, 5) and m.num_features == 32 * 6 * 5
    assert torch.equal(m.forward_head(feats), m(x))
    assert m(x).shape == (2, 3, 7)
    v = SpikingVGG((8, "M", 16, "M"), num_classes=4, input_shape=(1, 8, 8))
    assert v(torch.rand(1, 2, 1, 8, 8)).shape == (1, 2, 4)


@pytest.mark.parametrize("kw", [{"input_shape": (8, 8)}, {"input_shape": (1, 0, 8)}, {"num_classes": 0},
                                {"head": "mlp"}, {"stage_blocks": (1,)}, {"stage_channels": ()}])
def test_resnet_bad_options(kw):
    with pytest.raises(ConfigError, match="SpikingResNet"):
        create_resnet("resnet_digits", **kw)


def test_vgg_bad_options():
    with pytest.raises(ConfigError, match="too small"):
        SpikingVGG(input_shape=(3, 8, 8))
    with pytest.raises(ConfigError, match="pool"):
        SpikingVGG(pool="median")
    with pytest.raises(ConfigError, match="cfg"):
        SpikingVGG(cfg=(8, "X"))


def test_ann_twin_uses_relu_everywhere():
    for factory in (resnet_digits, tssnn_digits, dalif_digits, partial(staa_digits, timesteps=1),
                    partial(fsta_digits, timesteps=1)):
        m = factory(neuron="relu")
        assert not any(isinstance(mod, SpikingNeuron) for mod in m.modules()), factory
        assert torch.isfinite(m(torch.rand(1, 2, 1, 8, 8))).all()


def test_pre_conv_in_vgg_skips_first_conv():
    v = SpikingVGG((8, "M", 16, "M"), input_shape=(1, 8, 8), pre_conv=partial(TemporalShift, fold_div=4))
    ts = [mod for mod in v.modules() if isinstance(mod, TemporalShift)]
    assert [t.channels for t in ts] == [8]


# ---------------------------------------------------------------- torch.fx
class _LeafTracer(torch.fx.Tracer):
    """Leaves: torch.nn built-ins, the multi-step layers, neurons and the seed leaf modules."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, L.MULTISTEP_LAYERS + (SpikingNeuron,) + METHOD_LEAF_MODULES):
            return True
        return super().is_leaf_module(m, qualname)


@pytest.mark.parametrize("factory", [resnet_digits, tssnn_digits, dalif_digits, partial(staa_digits, timesteps=2),
                                     partial(fsta_digits, timesteps=2),
                                     partial(SpikingVGG, (8, "M", 16, "M"), input_shape=(1, 8, 8)),
                                     partial(create_resnet, "resnet20", input_shape=(3, 16, 16))])
def test_fx_traceable_with_leaves(factory):
    torch.manual_seed(0)
    m = factory().eval()
    graph = _LeafTracer().trace(m)
    gm = torch.fx.GraphModule(m, graph)
    c, h, w = m.default_input_shape
    x = torch.rand(2, 2, c, h, w)
    with torch.no_grad():
        assert torch.equal(gm(x), m(x))
    targets = {n.target for n in graph.nodes if n.op == "call_module"}
    if isinstance(m, SpikingResNet) and any(isinstance(mod, FSTA) for mod in m.modules()):
        assert "stem.2.fsta" in targets and "stem.2.neuron" in targets  # FSTALIF is traced through
    n_add = sum(n.op == "call_function" and "add" in str(n.target) for n in graph.nodes)
    n_blocks = sum(isinstance(mod, BasicBlock) for mod in m.modules())
    assert n_add == n_blocks  # one residual add per block, nothing else outside the leaves
