"""Passes: BN folding (outputs within 1e-5), dead nodes, scalar constant folding, sample shape propagation."""

import numpy as np
import pytest
import torch
from torch import nn

from spikeport.converter import SpikeGraph, ir, lower, trace
from spikeport.converter.passes import fold_batchnorm, fold_constants, propagate_shapes, remove_dead_nodes, run_passes
from spikeport.errors import GraphError
from spikeport.models import create_model
from spikeport.models import layers as L


def _random_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
    return model


def _record(exe, names, x):
    out, hooks = {}, []
    for n in names:
        hooks.append(exe.node_module(n).register_forward_hook(lambda m, a, y, n=n: out.__setitem__(n, y)))
    with torch.no_grad():
        exe(x)
    for h in hooks:
        h.remove()
    return out


def test_fold_bn_conv_matches_within_1e5_and_leaves_input_alone():
    torch.manual_seed(0)
    graph = trace(_random_bn(create_model("spiking_cnn_digits").eval()))
    nodes_before = graph.nodes()
    folded, modified = fold_batchnorm(graph)
    assert modified and not folded.nodes_of_type(ir.BatchNorm)
    assert folded.node_meta("features.0")["folded_bn"] == ["features.1"]
    assert graph.nodes().keys() == nodes_before.keys()  # input graph untouched
    assert all(graph.node(n) is nodes_before[n] for n in nodes_before)
    x = torch.rand(3, 2, 1, 8, 8)
    ref = _record(lower(graph), ["features.1", "features.4"], x)
    got = _record(lower(folded), ["features.0", "features.3"], x)
    assert (ref["features.1"] - got["features.0"]).abs().max() < 1e-5
    assert (ref["features.4"] - got["features.3"]).abs().max() < 1e-5
    again, modified = fold_batchnorm(folded)
    assert not modified and len(again) == len(folded)


def test_fold_bn_linear_and_conv1d():
    torch.manual_seed(0)
    g = SpikeGraph("lin")
    m = _random_bn(nn.ModuleDict({"fc": L.Linear(5, 4), "bn": L.BatchNorm1d(4), "conv": L.Conv1d(2, 3, 3),
                                  "bn2": L.BatchNorm1d(3)}))
    from spikeport.converter.tracer import convert_module

    def node(name):
        (n,) = convert_module(m[name], name)
        return n

    g.add(ir.Input("x", shape=(5,)))
    g.add(node("fc"), ["x"])
    g.add(node("bn"), ["fc"])
    g.add(ir.Output("y"), ["bn"])
    g.add(ir.Input("x2", shape=(2, 6), index=1))
    g.add(node("conv"), ["x2"])
    g.add(node("bn2"), ["conv"])
    g.add(ir.Output("y2", index=1), ["bn2"])
    folded, modified = fold_batchnorm(g.validate())
    assert modified and not folded.nodes_of_type(ir.BatchNorm)
    x, x2 = torch.randn(2, 3, 5), torch.randn(2, 3, 2, 6)
    with torch.no_grad():
        for a, b in zip(lower(g)(x, x2), lower(folded)(x, x2), strict=True):
            assert (a - b).abs().max() < 1e-5


def test_bn_with_two_consumers_of_the_conv_is_not_folded():
    g = SpikeGraph("two")
    g.add(ir.Input("x", shape=(3,)))
    g.add(ir.Linear("fc", weight=np.eye(3, dtype=np.float32)), ["x"])
    g.add(ir.BatchNorm("bn", mean=np.zeros(3), var=np.ones(3)), ["fc"])
    g.add(ir.Add("sum"), ["bn", "fc"])
    g.add(ir.Output("y"), ["sum"])
    folded, modified = fold_batchnorm(g.validate())
    assert not modified and folded.nodes_of_type(ir.BatchNorm)


def test_remove_dead_nodes():
    g = SpikeGraph("dead")
    g.add(ir.Input("x", shape=(3,)))
    g.add(ir.ReLU("used"), ["x"])
    g.add(ir.Scale("unused", scale=2.0), ["x"])
    g.add(ir.ReLU("unused2"), ["unused"])
    g.add(ir.Output("y"), ["used"])
    out, modified = remove_dead_nodes(g.validate())
    assert modified and out.topological_order() == ["x", "used", "y"] and "unused" in g
    assert out.meta["removed_dead_nodes"] == ["unused", "unused2"]
    assert remove_dead_nodes(out)[1] is False


def test_fold_constants():
    rng = np.random.default_rng(0)
    g = SpikeGraph("const")
    g.add(ir.Input("x", shape=(4,)))
    g.add(ir.Scale("s1", scale=2.0), ["x"])
    g.add(ir.Scale("s2", scale=0.25), ["s1"])
    g.add(ir.Linear("fc", weight=rng.normal(size=(3, 4)).astype(np.float32),
                    bias=rng.normal(size=3).astype(np.float32)), ["s2"])
    g.add(ir.Scale("s3", scale=3.0), ["fc"])
    g.add(ir.Scale("one", scale=1.0), ["s3"])
    g.add(ir.LIF("n", v_threshold=0.5), ["one"])
    g.add(ir.Output("y"), ["n"])
    folded, modified = fold_constants(g.validate())
    assert modified and folded.topological_order() == ["x", "fc", "n", "y"]
    assert folded.node_meta("fc")["folded_scale"] == ["s1", "s3"]  # s2 was merged into s1 first
    fc = folded.node("fc")
    assert np.allclose(fc.weight, g.node("fc").weight * 0.5 * 3.0) and np.allclose(fc.bias, g.node("fc").bias * 3.0)
    x = torch.randn(4, 2, 4)
    rec_a = _record(lower(g), ["one"], x)["one"]
    rec_b = _record(lower(folded), ["fc"], x)["fc"]
    assert (rec_a - rec_b).abs().max() < 1e-5


def test_run_passes_on_a_model_keeps_outputs():
    torch.manual_seed(0)
    model = _random_bn(create_model("resnet_digits").eval())
    graph = trace(model)
    out, modified = run_passes(graph)
    assert modified and not out.nodes_of_type(ir.BatchNorm) and len(out) < len(graph)
    x = torch.rand(2, 2, 1, 8, 8)
    with torch.no_grad():
        assert (lower(out)(x) - model(x)).abs().max() < 1e-4


def test_propagate_shapes_records_and_names_failures():
    graph = trace(create_model("spiking_cnn_digits"))
    out, modified = propagate_shapes(graph, timesteps=2, batch=3)
    assert modified and out.node_meta("features.6")["sample_shape"] == (32, 4, 4)
    assert out.node_meta("head")["dtype"] == "torch.float32" and "sample_shape" not in graph.node_meta("head")
    g = SpikeGraph("pe")
    g.add(ir.Input("x", shape=(2, 3, 3)))
    g.add(ir.TemporalPositionEncoding("pe", pos=np.zeros((4, 2, 1, 1), np.float32)), ["x"])
    g.add(ir.Output("y"), ["pe"])
    with pytest.raises(GraphError, match="node 'pe'"):
        propagate_shapes(g, timesteps=1)
    assert propagate_shapes(g, torch.zeros(4, 1, 2, 3, 3))[0].node_meta("pe")["sample_shape"] == (2, 3, 3)
