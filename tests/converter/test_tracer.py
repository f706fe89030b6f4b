"""Tracer: handler lookup and precedence, functional ops, bypass, unknown-module errors."""

import numpy as np
import pytest
import torch
from torch import nn

from spikeport.converter import ir, lower, register_handler, trace, unregister_handler
from spikeport.converter.tracer import resolve_handler
from spikeport.errors import GraphError
from spikeport.models import layers as L
from spikeport.models.neurons import IF, LIF


class Residual(nn.Module):
    """fc -> neuron, plus skip, * 0.5, cat, flatten: exercises the call_function/call_method paths."""

    def __init__(self):
        super().__init__()
        self.fc = L.Linear(6, 6)
        self.drop = nn.Dropout(0.3)
        self.act = IF(v_threshold=0.5)
        self.default_input_shape = (2, 3)

    def forward(self, x):
        x = torch.flatten(x, 2)
        y = self.act(self.drop(self.fc(x))) + x
        y = 0.5 * y
        z = torch.cat([y, x.relu()], dim=-1)
        return z.contiguous() / 4


def test_functional_ops_trace_and_match():
    m = Residual().eval()
    g = trace(m)
    ops = [n.op for n in g.nodes().values()]
    assert ops == ["Input", "Flatten", "Linear", "IF", "Add", "Scale", "ReLU", "Concat", "Scale", "Output"]
    assert "drop" not in g  # Dropout is bypassed
    assert g.node_meta("fc")["module_type"] == "spikeport.models.layers.Linear"
    assert g.shape("output") == (12,) and g.node("flatten").start_dim == 0
    x = torch.rand(3, 2, 2, 3) * 2
    with torch.no_grad():
        assert torch.equal(lower(g)(x), m(x))


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))

    def forward(self, x):
        return x * self.w


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(L.Linear(3, 3), Custom())
        self.default_input_shape = (3,)

    def forward(self, x):
        return self.body(x)


def test_unknown_module_error_names_path_type_and_fix():
    with pytest.raises(GraphError) as e:
        trace(Net())
    msg = str(e.value)
    assert "unknown module 'body.1'" in msg and "test_tracer.Custom" in msg
    assert "register_handler(Custom)" in msg and "extra_handlers={Custom: handler_or_None}" in msg
    assert "\n" not in msg


def test_extra_handlers_bypass_and_convert():
    g = trace(Net(), extra_handlers={Custom: None})
    assert [n.op for n in g.nodes().values()] == ["Input", "Linear", "Output"]
    g = trace(Net(), extra_handlers={Custom: lambda m, name: ir.Scale(name, scale=m.w.detach().numpy())})
    assert isinstance(g.node("body.1"), ir.Scale) and g.node_meta("body.1")["module"] == "body.1"


def test_handler_precedence_extra_over_user_over_builtin():
    lin = L.Linear(3, 3)
    builtin = resolve_handler(lin)
    seen = []

    def user(m, name):
        seen.append("user")
        return ir.Linear(name, weight=np.zeros((3, 3), np.float32))

    register_handler(nn.Linear)(user)  # a user handler for the torch base class ...
    try:
        assert resolve_handler(lin) is user  # ... overrides the built-in for spikeport's subclass
        with pytest.raises(GraphError, match="already registered; pass replace=True"):
            register_handler(nn.Linear, user)
        g = trace(Net(), extra_handlers={Custom: None})
        assert seen == ["user"] and not g.node("body.0").weight.any()
        def extra(m, name):
            return ir.ReLU(name)

        g = trace(Net(), extra_handlers={Custom: None, L.Linear: extra})
        assert isinstance(g.node("body.0"), ir.ReLU) and seen == ["user"]
    finally:
        unregister_handler(nn.Linear)
    assert resolve_handler(lin) is builtin


def test_composite_handler_returns_a_chain():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = L.Linear(3, 3)

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()
            self.default_input_shape = (3,)

        def forward(self, x):
            return self.block(x)

    def handler(m, name):
        return [ir.Scale(f"{name}.pre", scale=2.0), ir.Linear(f"{name}.lin", weight=m.lin.weight.detach().numpy()),
                ir.IF(f"{name}.act")]

    g = trace(M(), extra_handlers={Block: handler})
    assert g.topological_order() == ["input", "block.pre", "block.lin", "block.act", "output"]


def test_refuses_overridden_forward_and_time_axis_ops():
    class MyConv(L.Conv2d):
        def forward(self, x):
            return super().forward(x) * 2

    class M(nn.Module):
        def __init__(self, mod):
            super().__init__()
            self.mod = mod
            self.default_input_shape = (1, 4, 4)

        def forward(self, x):
            return self.mod(x)

    with pytest.raises(GraphError, match=r"module 'mod' .*MyConv\) overrides forward\(\) of Conv2d"):
        trace(M(MyConv(1, 1, 3)))

    class LIF2(LIF):
        def step(self, x, v):
            return super().step(x * 2, v)

    with pytest.raises(GraphError, match="overrides step"):
        trace(M(LIF2()))
    with pytest.raises(GraphError, match=r"Flatten\(start_dim=1, end_dim=-1\) merges the time/batch axes"):
        trace(M(nn.Flatten()))

    class MeanT(nn.Module):
        def forward(self, x):
            return x.mean(0)

    with pytest.raises(GraphError, match="unsupported operation mean .*inside module 'mod'"):
        trace(M(MeanT()))


def test_untraceable_module_is_named():
    class Loop(nn.Module):
        def forward(self, x):
            return torch.stack([x[t] for t in range(x.shape[0])])

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.loop = Loop()
            self.default_input_shape = (3,)

        def forward(self, x):
            return self.loop(x)

    with pytest.raises(GraphError, match=r"cannot trace through module 'loop' .*Register a handler for Loop"):
        trace(M())


def test_trace_does_not_change_the_model_and_needs_a_shape():
    m = Residual().train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    trace(m)
    assert m.training and all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    with pytest.raises(GraphError, match="has no default_input_shape; pass input_shape"):
        trace(nn.Sequential(L.Linear(2, 2)))
    assert trace(nn.Sequential(L.Linear(2, 2)), (2,)).shape("output") == (2,)
