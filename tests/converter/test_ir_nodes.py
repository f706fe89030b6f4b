"""IR nodes: dict/JSON round trips for every type, frozen data, validation errors, shape rules vs torch."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spikeport.converter import ir
from spikeport.converter.ir.node import encode_value
from spikeport.errors import GraphError

from .samples import sample_nodes

SAMPLES = sample_nodes()


def test_samples_cover_every_node_type():
    assert {type(n).__name__ for n, _ in SAMPLES} == set(ir.NODE_TYPES) - {"NeuronNode"}


@pytest.mark.parametrize("node,shapes", SAMPLES, ids=[n.op for n, _ in SAMPLES])
def test_dict_and_json_round_trip(node, shapes):
    back = ir.IRNode.from_dict(node.to_dict())
    assert back.same_as(node) and back is not node
    text = json.dumps(node.to_jsonable())
    again = ir.IRNode.from_jsonable(json.loads(text))
    assert again.same_as(node)
    for k, v in node.arrays().items():
        assert getattr(again, k).dtype == v.dtype
    assert again.out_shape(shapes) == node.out_shape(shapes)


def test_nodes_are_frozen_and_arrays_read_only():
    w = np.ones((2, 3), np.float32)
    node = ir.Linear("fc", weight=w)
    w[0, 0] = 5.0  # the node holds its own copy
    assert node.weight[0, 0] == 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.name = "other"
    with pytest.raises(ValueError):
        node.weight[0, 0] = 2.0
    assert node.replace(bias=np.zeros(2, np.float32)).bias is not None and node.bias is None


def test_large_arrays_are_exact_in_json():
    a = np.random.default_rng(1).normal(size=(40, 3)).astype(np.float32)
    enc = encode_value(a)
    assert "b64" in enc["__ndarray__"]
    node = ir.IRNode.from_jsonable(json.loads(json.dumps(ir.Linear("fc", weight=a).to_jsonable())))
    assert np.array_equal(node.weight, a) and node.weight.dtype == np.float32


@pytest.mark.parametrize("make,field", [
    (lambda: ir.Conv2d("c", weight=np.zeros((2, 1, 3, 3)), stride=0), "stride"),
    (lambda: ir.Conv2d("c", weight=np.zeros((2, 1, 3))), "weight"),
    (lambda: ir.Linear("fc", weight=np.zeros((2, 3)), bias=np.zeros(3)), "bias"),
    (lambda: ir.LIF("n", tau=-1.0), "tau"),
    (lambda: ir.IF("n", v_threshold=0.0), "v_threshold"),
    (lambda: ir.CubaLIF("n", i_decay=1.5), "i_decay"),
    (lambda: ir.BatchNorm("bn", mean=np.zeros(3), var=np.ones(2)), "var"),
    (lambda: ir.IF("n", v_threshold=float("nan")), "v_threshold"),
    (lambda: ir.MaxPool("p", kernel_size=2, stride=2, padding=2), "padding"),
    (lambda: ir.Input("x", shape=(0, 3)), "shape"),
    (lambda: ir.TemporalShift("t", channels=4, n_future=3, n_past=2), "n_past"),
])
def test_validation_names_node_and_field(make, field):
    with pytest.raises(GraphError, match=rf"node '\w+' \(\w+\): field '{field}'"):
        make()


def test_from_dict_errors_name_the_node():
    with pytest.raises(GraphError, match="node 'a': unknown IR node type 'Bogus'"):
        ir.IRNode.from_dict({"type": "Bogus", "name": "a"})
    with pytest.raises(GraphError, match=r"node 'a' \(LIF\): unknown field\(s\) colour"):
        ir.IRNode.from_dict({"type": "LIF", "name": "a", "colour": 1})
    with pytest.raises(GraphError, match="IRNode is abstract"):
        ir.IRNode("x")


@pytest.mark.parametrize("node,shape,fn", [
    (ir.Conv2d("c", weight=np.zeros((4, 2, 3, 3), np.float32), stride=2, padding=1, dilation=2), (2, 9, 8),
     lambda x: F.conv2d(x, torch.zeros(4, 2, 3, 3), stride=2, padding=1, dilation=2)),
    (ir.ConvTranspose2d("t", weight=np.zeros((2, 3, 3, 3), np.float32), stride=2, padding=1, output_padding=1),
     (2, 4, 5), lambda x: F.conv_transpose2d(x, torch.zeros(2, 3, 3, 3), stride=2, padding=1, output_padding=1)),
    (ir.Conv1d("c", weight=np.zeros((3, 2, 4), np.float32), stride=3), (2, 11),
     lambda x: F.conv1d(x, torch.zeros(3, 2, 4), stride=3)),
    (ir.MaxPool("m", kernel_size=3, stride=2, padding=1, ceil_mode=True), (1, 8, 9),
     lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True)),
    (ir.AvgPool("a", kernel_size=2, stride=2, ceil_mode=True, count_include_pad=False), (1, 7, 7),
     lambda x: F.avg_pool2d(x, 2, 2, ceil_mode=True, count_include_pad=False)),
    (ir.AdaptiveAvgPool("a", output_size=(3, 2)), (2, 7, 5), lambda x: F.adaptive_avg_pool2d(x, (3, 2))),
    (ir.Flatten("f", start_dim=1, end_dim=2), (2, 3, 4, 5), lambda x: x.flatten(2, 3)),
])
def test_out_shape_matches_torch(node, shape, fn):
    assert node.out_shape([shape]) == tuple(fn(torch.zeros(1, *shape)).shape[1:])


def test_input_shape_errors_say_what_was_expected():
    conv = ir.Conv2d("c", weight=np.zeros((4, 2, 3, 3), np.float32))
    with pytest.raises(ir.InputShapeError, match=r"expected \[2, H, W\], got \[3, 8, 8\]") as e:
        conv.out_shape([(3, 8, 8)])
    assert e.value.port == 0 and e.value.expected == "[2, H, W]"
    with pytest.raises(GraphError, match="takes 1 input"):
        conv.out_shape([(2, 8, 8), (2, 8, 8)])
    per_channel = ir.DALIF("d", alpha=np.ones(3, np.float32), beta=np.ones(3, np.float32))
    assert per_channel.out_shape([(3, 4, 4)]) == (3, 4, 4)
    with pytest.raises(ir.InputShapeError, match="leading-aligned"):
        per_channel.out_shape([(4, 4, 4)])
    with pytest.raises(ir.InputShapeError, match="must match input 0"):
        ir.Add("a").out_shape([(3,), (4,)])
    assert ir.Concat("c", axis=0).out_shape([(2, 3), (4, 3)]) == (6, 3)


def test_introspection():
    conv = ir.Conv2d("c", weight=np.zeros((4, 2, 3, 3), np.float32), bias=np.zeros(4, np.float32))
    assert conv.num_params == 4 * 2 * 9 + 4 and conv.fan_in() == 18 and conv.family == "synapse"
    assert ir.LIF("n").num_params == 0 and ir.LIF("n").stateful and not ir.Add("a").stateful
    assert ir.TemporalShift("t", channels=4, n_future=0, n_past=2).causal
    assert not ir.TemporalShift("t", channels=4, n_future=1, n_past=2).causal
    assert "weight=<4x2x3x3>" in repr(conv)
    a, b = ir.BatchNorm("bn", mean=np.array([1.0]), var=np.array([3.0]), weight=np.array([2.0]),
                        bias=np.array([0.5]), eps=1.0).scale_shift()
    assert a[0] == pytest.approx(1.0) and b[0] == pytest.approx(-0.5)
