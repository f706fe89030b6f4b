"""Exact op counting: hand-derived counts at borders, strides, padding, groups, zero weights and integer inputs."""

import pandas as pd
import pytest
import torch
from torch import nn

from spikeport.energy import OpRule, estimate, neurobench_ops, record_spikes, value_class
from spikeport.energy.record import SynapseRecord, UnmeasuredError
from spikeport.errors import ConfigError
from spikeport.models import layers as L
from spikeport.models.neurons import IF


def _counts(model: nn.Module, x: torch.Tensor, **kw) -> dict:
    with record_spikes(model, **kw) as rec, torch.no_grad():
        model(x)
    return estimate(rec).layers.set_index("layer").to_dict(orient="index")


def _one_spike(shape, *where, value=1.0, t=1, b=1):
    x = torch.zeros(t, b, *shape)
    x[(slice(None), slice(None), *where)] = value
    return x


def _ones_conv(cin=1, cout=1, k=3, **kw):
    conv = L.Conv2d(cin, cout, k, bias=False, **kw)
    nn.init.ones_(conv.weight)
    return conv


@pytest.mark.parametrize("kw,where,expected", [
    ({"padding": 1}, (0, 0, 0), 4),            # corner: 2x2 of the 3x3 taps are inside
    ({"padding": 1}, (0, 0, 2), 6),            # top edge
    ({"padding": 1}, (0, 1, 1), 9),            # interior
    ({"padding": 1, "stride": 2}, (0, 0, 0), 1),
    ({"padding": 1, "stride": 2}, (0, 1, 1), 4),
    ({"padding": 1, "stride": 2}, (0, 3, 3), 1),
    ({"padding": 0}, (0, 0, 0), 1),            # no padding: only the first window sees the corner
    ({"padding": 0}, (0, 1, 2), 4),
    ({"padding": 0}, (0, 3, 3), 1),
    ({"padding": 2, "dilation": 2}, (0, 0, 0), 4),
])
def test_conv_fanout_hand_derived(kw, where, expected):
    row = _counts(_ones_conv(**kw), _one_spike((1, 4, 4), *where))["Conv2d"]
    assert row["syn_acs"] == expected
    assert row["syn_macs"] == 0 and row["syn_int_acs"] == 0
    assert row["value_class"] == "binary"


def test_groups_and_zero_weights():
    conv = L.Conv2d(2, 4, 1, groups=2, bias=False)
    nn.init.ones_(conv.weight)
    x = _one_spike((2, 3, 3), 0, 1, 1)
    assert _counts(conv, x)["Conv2d"]["syn_acs"] == 2  # channel 0 only feeds its group's 2 outputs
    with torch.no_grad():
        conv.weight[1] = 0.0  # output channel 1 ignores input channel 0
    assert _counts(conv, x)["Conv2d"]["syn_acs"] == 1
    assert _counts(conv, _one_spike((2, 3, 3), 1, 1, 1))["Conv2d"]["syn_acs"] == 2
    dense = _counts(conv, x)["Conv2d"]["dense_macs"]
    assert dense == 4 * 9 * 1  # out elements x (C_in / groups) x k*k


def test_integer_signed_and_real_inputs():
    conv = _ones_conv(padding=1)
    row = _counts(conv, _one_spike((1, 4, 4), 0, 1, 1, value=2.0))["Conv2d"]
    assert (row["value_class"], row["syn_int_acs"], row["syn_acs"], row["syn_events_spk"]) == ("integer", 18, 0, 9)
    row = _counts(conv, _one_spike((1, 4, 4), 0, 1, 1, value=-1.0))["Conv2d"]
    assert (row["value_class"], row["syn_acs"]) == ("signed_binary", 9)
    row = _counts(conv, _one_spike((1, 4, 4), 0, 0, 0, value=0.5))["Conv2d"]
    assert (row["value_class"], row["syn_macs"], row["syn_acs"]) == ("real", 4, 0)
    assert row["approx_macs"] == 16 * 9  # the papers count the whole dense layer for real inputs


def test_per_sample_and_time_totals():
    conv = _ones_conv(padding=1)
    x = torch.zeros(3, 2, 1, 4, 4)
    x[0, 0, 0, 0, 0] = 1  # t0, sample 0: corner (4)
    x[2, 1, 0, 1, 1] = 1  # t2, sample 1: interior (9)
    x[2, 0, 0, 1, 1] = 1  # t2, sample 0: interior (9)
    with record_spikes(conv) as rec, torch.no_grad():
        conv(x)
    r = rec.records["Conv2d"]
    assert isinstance(r, SynapseRecord) and r.nonzero_t.tolist() == [1, 0, 2]
    rep = estimate(rec)
    assert rep.meta["samples"] == 2 and rep.meta["timesteps"] == 3
    assert rep.totals["syn_acs"] == (4 + 9 + 9) / 2
    assert rep.totals["dense_macs"] == 16 * 9 * 3  # per sample: T x outputs x taps
    fr = 3 / (3 * 2 * 16)
    assert rep.totals["approx_sops"] == pytest.approx(fr * 16 * 9 * 3)


def test_linear_counts_nonzero_weights_per_column():
    lin = L.Linear(3, 4, bias=True)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0, 2], [0, 0, 3], [1, 1, 0], [4, 0, 5]]))
    x = torch.tensor([[[1.0, 1.0, 0.0]]])  # features 0 (3 nonzero weights) and 1 (1)
    row = _counts(lin, x)["Linear"]
    assert row["syn_acs"] == 4 and row["dense_macs"] == 12


def test_pooling_adds_and_free_maxpool():
    model = nn.Sequential(L.AvgPool2d(2), L.AdaptiveAvgPool2d(1), L.MaxPool2d(1))
    x = torch.zeros(1, 1, 1, 4, 4)
    x[0, 0, 0, 0, 0] = x[0, 0, 0, 3, 3] = x[0, 0, 0, 1, 2] = 1
    rows = _counts(model, x)
    assert rows["0"]["elem_adds"] == 3  # one addition per spike (non-overlapping windows)
    assert rows["1"]["elem_adds"] == 3  # the 2x2 pooled map has 3 nonzeros
    assert "2" not in rows  # max pooling is free and not reported
    overlap = _counts(L.AvgPool2d(3, stride=1, padding=1), x[..., :2, :2].contiguous())["AvgPool2d"]
    assert overlap["elem_adds"] == 4  # the one spike at (0,0) lies in all four 3x3 windows of a 2x2 map


def test_neuron_rates_per_layer_channel_and_step():
    neuron = IF(v_threshold=0.5)
    x = torch.zeros(2, 4, 3, 2)
    x[0, :, 0] = 1.0  # channel 0 fires at t0 in every sample
    x[1, :2, 1, 0] = 1.0  # channel 1, one neuron of two, in half the samples at t1
    model = nn.Sequential(neuron)
    with record_spikes(model, count_active=True) as rec, torch.no_grad():
        rec_out = model(x)
    rep = estimate(rec)
    row = rep.layers.iloc[0]
    assert row["spikes"] == float(rec_out.sum()) / 4 == 2.5
    assert row["rate"] == 10 / 48
    assert rep.timestep_rates.loc["0"].tolist() == [8 / 24, 2 / 24]
    assert rep.channel_rates["0"] == [8 / 16, 2 / 16, 0.0]
    assert row["neuron_updates"] == 2 * 6 and row["active_updates"] == (8 + 2) / 4


def test_value_class():
    assert value_class(torch.tensor([0.0, 1.0, 1.0])) == "binary"
    assert value_class(torch.tensor([0.0, -1.0, 1.0])) == "signed_binary"
    assert value_class(torch.tensor([0.0, 2.0, 1.0])) == "integer"
    assert value_class(torch.tensor([0.0, 0.5])) == "real"
    assert value_class(torch.tensor([0.0, 1.0, 0.999])) == "real"
    assert value_class(torch.tensor([float("nan")])) == "real"


def test_user_rule_overrides_and_extends():
    class Doubler(nn.Module):
        def forward(self, x):
            return 2 * x

    model = nn.Sequential(Doubler(), _ones_conv(padding=1))
    x = _one_spike((1, 4, 4), 0, 1, 1)
    with pytest.raises(UnmeasuredError, match=r"'0' .*Doubler.*--allow-unmeasured"), record_spikes(model):
        model(x)
    with record_spikes(model, allow_unmeasured=True) as rec:
        model(x)
    assert [(n, t.rsplit(".", 1)[-1]) for n, t, _ in rec.unmeasured] == [("0", "Doubler")]
    rep = estimate(rec)
    row = rep.layers.set_index("layer").loc["0"]
    assert row["role"] == "unmeasured" and row["value_class"].startswith("unmeasured (non-binary outputs")
    assert pd.isna(row["elem_macs"]) and pd.isna(row["rate"])  # never 0
    assert any("UNMEASURED" in a and "lower bound" in a for a in rep.assumptions)
    rule = OpRule("custom", count=lambda m, n, ins, out: {"elem_macs": int((ins[0] != 0).sum())}, note="doubling")
    with record_spikes(model, rules={Doubler: rule}) as rec:
        model(x)
    rep = estimate(rec)
    assert rep.layers.set_index("layer").loc["0", "elem_macs"] == 1
    assert "doubling" in rep.assumptions
    assert rep.layers.set_index("layer").loc["1", "syn_int_acs"] == 18  # the doubled spike is an integer input
    with pytest.raises(ConfigError, match="needs a count function"):
        OpRule("custom")


def test_neurobench_view_separates_integer_inputs():
    conv = _ones_conv(padding=1)
    with record_spikes(conv) as rec:
        conv(_one_spike((1, 4, 4), 0, 1, 1, value=2.0))
    nb = neurobench_ops(rec)
    assert nb == {"Effective_MACs": 9.0, "Effective_ACs": 0.0, "Dense": 10 * 10}  # valid taps per axis 2+3+3+2


def test_temporal_shift_and_add_rules():
    from spikeport.converter import lower, trace
    from spikeport.models.methods import TemporalShift

    ts = TemporalShift(4, fold_div=4, split=(1, 2))  # channel 0 reads t+1, channel 1 reads t-1
    x = torch.zeros(3, 1, 4, 1, 1)
    x[:, 0, :, 0, 0] = 1.0  # every channel spikes at every step: 12 nonzeros
    model = nn.Sequential(ts)
    with record_spikes(model) as rec:
        model(x)
    row = estimate(rec).layers.iloc[0]
    assert row["elem_macs"] == row["elem_adds"] == 12 - 2  # ch0 loses its t=0 frame, ch1 its t=T-1 frame

    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = IF(), IF()

        def forward(self, x):
            return self.a(x) + self.b(x * 2)

    m = Res()
    lm = lower(trace(m, (3,)))
    x = torch.tensor([[[1.0, 0.0, 0.6]]])  # a fires on feature 0; b on features 0 and 2
    with record_spikes(lm) as rec:
        lm(x)
    rows = estimate(rec).layers.set_index("type")
    assert rows.loc["Add", "elem_adds"] == 1  # only feature 0 has two nonzero operands
    assert rec.graph_bound


@pytest.mark.parametrize("nd,cin,cout,k,stride,pad,dil,groups,size", [
    (1, 4, 6, 3, 2, 1, 1, 2, (9,)),
    (2, 4, 4, (3, 2), (2, 1), (1, 0), (1, 2), 4, (7, 6)),
    (2, 3, 6, 5, 3, 2, 1, 3, (11, 8)),
    (3, 2, 4, 3, (1, 2, 2), 1, 1, 1, (4, 5, 5)),
])
def test_analytic_conv_fanout_matches_autograd(nd, cin, cout, k, stride, pad, dil, groups, size):
    from spikeport.energy.rules import autograd_fanout, conv_fanout

    conv = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[nd](
        cin, cout, k, stride=stride, padding=pad, dilation=dil, groups=groups)
    with torch.no_grad():
        conv.weight[torch.rand(conv.weight.shape, generator=torch.Generator().manual_seed(nd)) < 0.3] = 0.0
    eff, valid = conv_fanout(conv, None, (cin, *size))
    ref_eff, ref_valid = autograd_fanout(conv, None, (cin, *size))
    assert torch.equal(eff, ref_eff) and torch.equal(valid, ref_valid)


@pytest.mark.parametrize("k,s,p,ceil,size", [(2, 2, 0, False, (5, 5)), (3, 2, 1, True, (6, 7)),
                                              (3, 1, 1, False, (4, 4)), (2, 2, 0, True, (5, 3))])
def test_pool_fanout_matches_window_counts(k, s, p, ceil, size):
    from spikeport.energy.rules import pool_fanout

    pool = torch.nn.AvgPool2d(k, s, p, ceil_mode=ceil)
    cnt, _ = pool_fanout(pool, None, (2, *size))
    x = torch.ones(1, 2, *size, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.avg_pool2d(x, k, s, p, ceil_mode=ceil, divisor_override=1).sum().backward()
    assert torch.equal(cnt, x.grad[0])


def test_graded_outputs_of_user_neurons_are_not_trusted():
    class HalfIF(IF):  # a user subclass: inherits the IF rule, but emits graded spikes from its 2nd call on
        calls = 0

        def forward(self, x):
            HalfIF.calls += 1
            s = super().forward(x)
            return s if HalfIF.calls == 1 else s * 0.5

    model = nn.Sequential(HalfIF(v_threshold=0.5), _ones_conv(padding=1))
    x = _one_spike((1, 4, 4), 0, 1, 1)
    with record_spikes(model) as rec, torch.no_grad():
        model(x)
        model(x)
    rows = estimate(rec).layers.set_index("layer")
    assert rows.loc["0", "value_class"] == "graded"
    assert rows.loc["1", "value_class"] == "binary+real"
    assert rows.loc["1", "syn_acs"] == rows.loc["1", "syn_macs"] == 9 / 2  # one call each, per sample
