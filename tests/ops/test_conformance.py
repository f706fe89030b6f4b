"""Conformance of the op registry: every registered op type implements each capability or refuses it with a reason.

Parametrised over :func:`spikeport.ops.all_specs` (a newly registered op is tested automatically once it has a
sample node in ``tests/converter/samples.py``):

* trace: every module adapter's class converts and runs back bit-identically (module -> IR -> executor);
* execute: the executor runs the sample node;
* energy: the recorded counts equal an independent count computed here;
* nir: IR -> NIR -> IR gives the same executor outputs;
* onnx / onnx_stream: onnxruntime runs the exported sample like the executor;
* loihi: a neuron's CUBA mapping reproduces the neuron's float equations exactly (float64);
* every refusal has a reason, and ``spikeport ops --refusals`` shows it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikeport.cli import main
from spikeport.converter import ir, lower, trace
from spikeport.energy import estimate, record_spikes
from spikeport.models import layers as L
from spikeport.models import methods as S
from spikeport.models.neurons import modules as N
from spikeport.ops import CAPABILITIES, LoihiMapping, Refused, all_specs, refusal
from spikeport.ops.spec import builtin_adapters

from ..converter.samples import sample_nodes, wrap

SPECS = all_specs()
SAMPLES = {type(n).__name__: (n, shapes) for n, shapes in sample_nodes()}


def _ids(specs):
    return [s.name for s in specs]


def _binary(shape, seed=0, p=0.3):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < p).float()


def _inputs(shapes, t=3, b=2, seed=0, binary=False):
    gen = torch.Generator().manual_seed(seed)
    if binary:
        return [(torch.rand(t, b, *s, generator=gen) < 0.4).float() for s in shapes]
    return [torch.rand(t, b, *s, generator=gen) * 2.0 for s in shapes]


def _graph(name):
    node, shapes = SAMPLES[name]
    return wrap(node, shapes), shapes


def test_every_registered_op_has_a_sample_and_every_capability_is_decided():
    missing = [s.name for s in SPECS if s.name not in SAMPLES]
    assert not missing, f"add a sample node for {missing} to tests/converter/samples.py"
    for spec in SPECS:
        for cap in CAPABILITIES:
            why = refusal(spec, cap)
            assert why is None or (isinstance(why, str) and len(why.strip()) > 10), (spec.name, cap, why)


def test_cli_shows_every_refusal(capsys):
    assert main(["ops", "--refusals"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for spec in SPECS:
        for cap in CAPABILITIES:
            why = refusal(spec, cap)
            if why:
                assert " ".join(why.split()) in out, (spec.name, cap)
    assert main(["ops", "LIF"]) == 0 and "loihi" in capsys.readouterr().out


# ---------------------------------------------------------------- trace: module -> IR -> executor
def _bn1(c):
    m = L.BatchNorm1d(c)
    with torch.no_grad():
        m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0), m.weight.uniform_(0.5, 1.5)
    return m.eval()


def _bn2(c):
    m = L.BatchNorm2d(c)
    with torch.no_grad():
        m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0), m.bias.uniform_(-0.2, 0.2)
    return m.eval()


MODULES = {  # module class of an adapter -> (example module (a multi-step subclass where needed), input shape)
    N.IF: lambda: (N.IF(v_threshold=0.6), (3, 4)),
    N.LIF: lambda: (N.LIF(tau=2.5, decay_input=False, v_reset=None), (3, 4)),
    N.PLIF: lambda: (N.PLIF(init_tau=3.0), (3, 4)),
    N.DALIF: lambda: (N.DALIF(per_channel=3), (3, 4)),
    N.CubaLIF: lambda: (N.CubaLIF(i_decay=0.3, v_decay=0.6), (3, 4)),
    nn.Linear: lambda: (L.Linear(6, 4), (6,)),
    nn.Conv1d: lambda: (L.Conv1d(2, 4, 3, stride=2, padding=1), (2, 9)),
    nn.Conv2d: lambda: (L.Conv2d(2, 4, 3, padding="same", groups=2), (2, 5, 5)),
    nn.ConvTranspose2d: lambda: (L.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1), (2, 4, 4)),
    nn.BatchNorm1d: lambda: (_bn1(5), (5,)),
    nn.BatchNorm2d: lambda: (_bn2(2), (2, 4, 4)),
    nn.MaxPool2d: lambda: (L.MaxPool2d(3, 2, 1, ceil_mode=True), (2, 7, 7)),
    nn.AvgPool2d: lambda: (L.AvgPool2d(2, 2, 1, count_include_pad=False), (2, 5, 5)),
    nn.AdaptiveAvgPool2d: lambda: (L.AdaptiveAvgPool2d((2, 1)), (2, 5, 4)),
    nn.Flatten: lambda: (L.Flatten(), (2, 3, 4)),
    nn.ReLU: lambda: (nn.ReLU(), (5,)),
    S.TemporalShift: lambda: (S.TemporalShift(8, fold_div=4), (8, 3, 3)),
    S.TemporalPositionEncoding: lambda: (S.TemporalPositionEncoding(3, 4), (4, 3, 3)),
    S.GCBlock: lambda: (S.GCBlock(4, 2), (4, 3, 3)),
    S.StepAttention: lambda: (S.StepAttention(3), (4, 3, 3)),
    S.FSTA: lambda: (S.FSTA(4, 3), (4, 8, 8)),
    S.STAABlock: lambda: (S.STAABlock(4, 3, reduction=2), (4, 3, 3)),
    nn.Dropout: lambda: (L.Dropout(0.5), (5,)),
    nn.Identity: lambda: (nn.Identity(), (5,)),
    S.TimeStepRandomDropout: lambda: (S.TimeStepRandomDropout(0.2), (4, 3, 3)),
}
RECORD_ONLY = (nn.Conv3d, nn.ConvTranspose1d, nn.MaxPool1d, nn.MaxPool3d, nn.Unflatten)  # counted, not traced
MORE_BYPASSES = (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)  # like nn.Dropout


def test_every_traceable_adapter_has_a_module_example():
    adapters = builtin_adapters()  # framework classes (named by string) are covered in tests/frameworks
    missing = [c.__qualname__ for c in adapters if isinstance(c, type) and c not in MODULES
               and c not in RECORD_ONLY + MORE_BYPASSES]
    assert not missing, f"add a module example for {missing}"
    assert all(adapters[c] is None for c in MORE_BYPASSES)


@pytest.mark.parametrize("cls", list(MODULES), ids=lambda c: c.__qualname__)
def test_trace_module_to_ir_and_back_is_exact(cls):
    torch.manual_seed(0)
    module, shape = MODULES[cls]()
    model = nn.Sequential(module).eval()
    g = trace(model, shape)
    x = torch.rand(3, 2, *shape) * 2.0
    with torch.no_grad():
        ref = model(x)
        got = lower(g)(x)
    assert torch.equal(got, ref), (cls.__qualname__, (got - ref).abs().max())


def test_record_only_modules_are_refused_by_the_tracer_but_counted():
    from spikeport.errors import GraphError

    conv = nn.Conv3d(1, 2, 3, padding=1)
    with pytest.raises(GraphError, match="no IR op represents it"):
        trace(nn.Sequential(conv), (1, 4, 4, 4))
    with record_spikes(conv) as rec:
        conv(_binary((2, 1, 4, 4, 4)))  # one leading axis: one timestep of 2 samples
    assert estimate(rec).layers.loc[0, "syn_acs"] > 0


# ---------------------------------------------------------------- execute
@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
def test_execute_runs_the_sample(spec):
    g, shapes = _graph(spec.name)
    node = SAMPLES[spec.name][0]
    t = getattr(node, "timesteps", 3)
    out = lower(g)(*_inputs(shapes, t=t)) if shapes else lower(g)(*_inputs([g.node("in").shape], t=t))
    want = node.out_shape(shapes) if shapes else node.shape
    assert tuple(out.shape[2:]) == tuple(want) and torch.isfinite(out).all()


# ---------------------------------------------------------------- energy: recorded == independent count
def _independent(spec, node, xs, out):
    """Independent per-sample counts for the sample node on inputs ``xs`` (T, B=2, ...) and its output."""
    role = spec.energy.role
    b = xs[0].shape[1]
    if role == "synapse":  # effective ops: binarized input x binarized weight, summed (NeuroBench's method)
        m = lower(wrap(node, [tuple(x.shape[2:]) for x in xs])).node_module(node.name)
        params = {k: (v != 0).double() if k == "weight" else torch.zeros_like(v, dtype=torch.float64)
                  for k, v in m.named_parameters()}
        y = torch.func.functional_call(m.double(), params, ((xs[0] != 0).double(),))
        return {"syn_acs": float(y.sum()) / b}
    if role == "pool":
        x = (xs[0] != 0).double().flatten(0, 1)
        if isinstance(node, ir.AdaptiveAvgPool):
            win = node.as_avg_pool(x.shape[1:]) or pytest.skip("non-uniform adaptive windows")
            k, s, p = win.kernel_size, win.stride, win.padding
        else:
            k, s, p = node.kernel_size, node.stride, node.padding
        ceil = getattr(node, "ceil_mode", False)
        return {"elem_adds": float(F.avg_pool2d(x, k, s, p, ceil_mode=ceil, divisor_override=1).sum()) / b}
    if role in ("neuron", "activation"):
        counts_out = bool(torch.equal(out, out.round())) and float(out.min()) >= 0  # spikes or spike counts
        counts = {"rate": float(out.double().mean()) if counts_out else float((out != 0).double().mean())}
        if role == "neuron":
            counts["neuron_updates"] = out[0].numel() / b * out.shape[0]
        return counts
    if role == "free":
        return {"syn_acs": 0.0, "elem_adds": 0.0, "elem_macs": 0.0}
    # custom ops
    if isinstance(node, ir.Add):
        n = sum((x != 0).int() for x in xs)
        return {"elem_adds": float((n - 1).clamp(min=0).sum()) / b}
    if isinstance(node, ir.Mul):  # binary operands: an AND per nonzero product (AC cost)
        return {"elem_adds": float((out != 0).sum()) / b}
    if isinstance(node, ir.Scale):
        return {"elem_macs": float((xs[0] != 0).sum()) / b}
    if isinstance(node, ir.TemporalShift):  # Z = (Y - X) / alpha: one MAC and one add per nonzero of Z
        z = (out - xs[0]) / float(node.alpha)
        return {"elem_macs": float((z.abs() > 1e-6).sum()) / b, "elem_adds": float((z.abs() > 1e-6).sum()) / b}
    if isinstance(node, ir.TemporalPositionEncoding):
        return {"elem_adds": float(xs[0].numel()) / b}
    return None  # attention ops: formula counts, checked in tests/energy


@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
def test_energy_counts_equal_an_independent_count(spec):
    if isinstance(spec.energy, Refused):
        pytest.skip(f"refused: {spec.energy.reason}")
    node, shapes = SAMPLES[spec.name]
    if not shapes:
        shapes = [node.shape]
    binary = spec.energy.role in ("synapse", "pool", "free", "custom")
    xs = _inputs(shapes, t=node.timesteps if hasattr(node, "timesteps") else 3, binary=binary)
    g = wrap(node, shapes)
    lm = lower(g)
    with torch.no_grad(), record_spikes(lm) as rec:
        out = lm(*xs)
    ref = _independent(spec, node, xs, out)
    if ref is None:
        pytest.skip("attention op: formula count (tests/energy/test_counting.py)")
    rows = estimate(rec).layers.set_index("layer")
    if spec.energy.role == "free":  # costs nothing: no row, and no op counted anywhere
        assert node.name not in rows.index and not any(rows[c].sum() for c in ref), spec.name
        return
    row = rows.loc[node.name]
    for col, want in ref.items():
        assert math.isclose(float(row[col]), want, rel_tol=1e-9, abs_tol=1e-9), (spec.name, col, row[col], want)


# ---------------------------------------------------------------- NIR: IR -> NIR -> IR
@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
def test_nir_round_trip_or_refusal(spec):
    from spikeport.converter.nir_io import from_nir, to_nir
    from spikeport.errors import UnsupportedNodeError

    node, shapes = SAMPLES[spec.name]
    why = refusal(spec, "nir_export", node)
    if isinstance(node, (ir.Input, ir.Output)):  # every graph holds them: round-trip a small one
        shapes = [(3,)]
        g = wrap(ir.Scale("s", scale=2.0), shapes)
    else:
        g = wrap(node, shapes)
    if why is not None:
        if isinstance(node, (ir.Add, ir.BatchNorm)):
            return  # elided into edges / folded into the synapse: tested in tests/converter/test_nir_io.py
        with pytest.raises(UnsupportedNodeError):
            to_nir(g, fold=False)
        return
    try:
        ng = to_nir(g, fold=False)
    except UnsupportedNodeError as e:  # this sample's parameters (e.g. soft reset) are not expressible
        assert spec.name in str(e) or "reset" in str(e)
        return
    back = from_nir(ng)
    xs = _inputs(shapes)
    with torch.no_grad():
        a, b2 = lower(g)(*xs), lower(back)(*xs)
    assert torch.allclose(a, b2, atol=1e-5), (spec.name, (a - b2).abs().max())


def test_nir_round_trip_of_neurons_with_hard_reset():
    from spikeport.converter.nir_io import from_nir, to_nir

    for node in (ir.IF("n", v_threshold=0.7), ir.LIF("n", tau=2.5, decay_input=False, v_reset=0.25),
                 ir.PLIF("n", inv_tau=np.array(0.4, np.float32)), ir.DALIF("n", alpha=0.9, beta=0.3, v_reset=0.1),
                 ir.CubaLIF("n", i_decay=0.25, v_decay=0.5)):
        g = wrap(node, [(4,)])
        back = from_nir(to_nir(g, fold=False))
        x = _inputs([(4,)], t=6)[0]
        assert torch.equal(lower(g)(x) != 0, lower(back)(x) != 0), node.op


# ---------------------------------------------------------------- ONNX
def _op_graph(spec):
    """A one-input graph around the op's sample (multi-input ops fed from one input; I/O: any graph)."""
    node, shapes = SAMPLES[spec.name]
    if isinstance(node, (ir.Input, ir.Output)):
        return wrap(ir.Scale("s", scale=2.0), [(3,)]), (3,), 3
    if len(shapes) != 1:
        inner = {"Add": ir.Add("n"), "Mul": ir.Mul("n"), "Concat": ir.Concat("n", axis=-1)}[spec.name]
        return _fan_in(inner, shapes[0]), shapes[0], 3
    return wrap(node, shapes), shapes[0], getattr(node, "timesteps", 3)


@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
def test_onnx_sequence_and_stream(spec, tmp_path):
    from spikeport.errors import UnsupportedNodeError
    from spikeport.targets.onnx import OnnxRunner, export_onnx, export_onnx_stream

    g, shape, t = _op_graph(spec)
    x = _inputs([shape], t=t, b=2, seed=1)[0]
    ref = lower(g)(x)
    r = export_onnx(g, tmp_path / "m.onnx", timesteps=t, input_shape=shape, check=False)
    got = OnnxRunner(r.path).run(x).logits
    assert torch.allclose(got, ref, atol=1e-5), spec.name
    if refusal(spec, "onnx_stream") is None:
        s = export_onnx_stream(g, tmp_path / "s.onnx", input_shape=shape, check=False)
        got = OnnxRunner(s.path).run(x).logits
        assert torch.allclose(got, ref, atol=1e-5), spec.name
    else:
        with pytest.raises(UnsupportedNodeError):
            export_onnx_stream(g, tmp_path / "s.onnx", input_shape=shape, check=False)


def _fan_in(inner, shape):
    from spikeport.converter import SpikeGraph

    g = SpikeGraph("fan")
    g.add(ir.Input("x", shape=shape))
    g.add(ir.Scale("a", scale=2.0), ["x"])
    g.add(ir.ReLU("b"), ["x"])
    g.add(inner, ["a", "b"])
    g.add(ir.Output("o"), [inner.name])
    return g.validate()


# ---------------------------------------------------------------- Loihi
NEURON_SPECS = [s for s in SPECS if isinstance(s.loihi, LoihiMapping) and s.loihi.role == "neuron"]


@pytest.mark.parametrize("spec", NEURON_SPECS, ids=_ids(NEURON_SPECS))
def test_loihi_neuron_mapping_reproduces_the_float_neuron(spec):
    """Linear -> neuron in float64 == the FloatLayer the Loihi mapping builds (same spikes, exactly)."""
    from spikeport.converter import SpikeGraph
    from spikeport.targets.lava.quantize import FloatLayer

    from ..targets.lava_float import float_spikes

    node = {"IF": ir.IF("n", v_threshold=0.8), "LIF": ir.LIF("n", tau=3.0, decay_input=True, v_threshold=0.3),
            "PLIF": ir.PLIF("n", inv_tau=np.array(0.3), decay_input=False),
            "DALIF": ir.DALIF("n", alpha=0.8, beta=0.6), "CubaLIF": ir.CubaLIF("n", i_decay=0.5, v_decay=0.25),
            "SinabsLIF": ir.SinabsLIF("n", alpha_mem=0.75, spike_threshold=0.8, spike="single", reset="reset")}
    n = node[spec.name]
    rng = np.random.default_rng(0)
    w, b = rng.normal(0.2, 0.7, (5, 6)), rng.normal(0, 0.1, 5)
    if spec.name == "CubaLIF":
        b = None  # Lava adds the bias to the voltage: refused with a current decay < 1
    g = SpikeGraph("one")
    g.add(ir.Input("x", shape=(6,)))
    g.add(ir.Linear("fc", weight=w, bias=b), ["x"])
    g.add(n, ["fc"])
    g.add(ir.Output("o"), ["n"])
    x = _binary((12, 3, 6), seed=2).double()
    ours = lower(g.validate())(x)
    mapped = float_spikes([FloatLayer("dense", w, b, spec.loihi.neuron(n))], x)[0]
    assert ours.sum() > 0 and torch.equal(ours, mapped), spec.name


LOIHI_REFUSED = [s for s in SPECS if isinstance(s.loihi, Refused)]


@pytest.mark.parametrize("spec", LOIHI_REFUSED, ids=_ids(LOIHI_REFUSED))
def test_loihi_refusal_reaches_the_export_error(spec):
    """The op placed before a Linear -> IF layer: deploy_network's error carries the op's refusal reason."""
    from spikeport.errors import UnsupportedNodeError
    from spikeport.targets.lava import deploy_network

    g, shape, _ = _op_graph(spec)
    out = g.in_edges("o")[0].src
    g.remove("o")
    prev = out
    if len(g.shape(out)) > 1:
        g.add(ir.Flatten("flat"), [out])
        prev = "flat"
    g.add(ir.Linear("fc", weight=np.ones((2, int(np.prod(g.shape(prev)))), np.float32)), [prev])
    g.add(ir.IF("spk"), ["fc"])
    g.add(ir.Output("o"), ["spk"])
    with pytest.raises(UnsupportedNodeError) as e:
        deploy_network(g.validate())
    node = g.node("n") if "n" in g else SAMPLES[spec.name][0]
    assert spec.loihi.why(node) in str(e.value), (spec.name, str(e.value))
