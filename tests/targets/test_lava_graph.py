"""Graph-shaped Loihi networks: residual fan-in, SEW adds, folded pooling, relays, OR neurons; reference vs Lava."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spikeport.cli import main
from spikeport.converter import SpikeGraph, ir
from spikeport.data import get_dataset
from spikeport.data.digits import load_digits_arrays
from spikeport.errors import DataError, ExportError, UnsupportedNodeError
from spikeport.models import create_model
from spikeport.ops import PoolWindow
from spikeport.targets.lava import (
    GraphExecutor,
    LoihiGraph,
    LoihiRunner,
    deploy_graph,
    load_network,
    loihi_summary,
    read_deployment,
    read_graph,
    run_graph_reference,
    run_reference,
    write_deployment,
)
from spikeport.targets.lava.fold import ConvSpec, compose_dense, fold_window_into_conv
from spikeport.targets.lava.graph import INPUT, Connection, Population
from spikeport.targets.nir import to_graph
from spikeport.training.trainer import TrainConfig, train

from .lava_float import as_float64, graph_spikes, lowered_float_graph

T = 4


def _trained(name: str, epochs: int, **kw):
    """Zoo model ``name`` trained by spikeport's trainer on digits (seed 0, T=4)."""
    torch.manual_seed(0)
    model = create_model(name, **kw)
    cfg = TrainConfig(epochs=epochs, timesteps=T, seed=0, progress=False, amp=False)
    train(model, get_dataset("digits", train=True), None, cfg)
    return model.eval()


@pytest.fixture(scope="module")
def resnet():
    return _trained("resnet_digits", 2)


@pytest.fixture(scope="module")
def vgg():
    return _trained("vgg_digits", 3)


def _dalif(resnet):
    """dalif_digits with the trained ResNet's synapses (same backbone) and DA-LIF's initial decays."""
    torch.manual_seed(0)
    m = create_model("dalif_digits")
    missing, unexpected = m.load_state_dict(resnet.state_dict(), strict=False)
    assert not unexpected and all(k.endswith(("tau_a", "tau_b")) for k in missing)
    return m.eval()


def _digits(n: int) -> torch.Tensor:
    x, _ = load_digits_arrays(False)
    x = torch.from_numpy(x[:n])
    return x.unsqueeze(0).expand(T, *x.shape).contiguous()


# ---------------------------------------------------------------- exact linear composition (float)
@pytest.mark.parametrize(("hw", "kp", "sp", "k", "s", "pad"), [
    ((8, 8), 2, 2, 3, 1, 1), ((8, 6), 2, 2, 3, 2, 1), ((9, 9), 3, 3, 1, 1, 0), ((8, 8), 4, 4, 2, 1, 0),
    ((7, 7), 3, 2, 3, 1, 0), ((8, 8), 2, 2, 1, 1, 0)])
def test_fold_pool_into_conv_equals_pool_then_conv(hw, kp, sp, k, s, pad):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 4, *hw, generator=gen, dtype=torch.float64)
    conv = ConvSpec(torch.randn(5, 4, k, k, generator=gen, dtype=torch.float64).numpy(), (s, s), (pad, pad))
    for weight in (1.0 / (kp * kp), 1.0):  # average and sum pooling
        folded = fold_window_into_conv(PoolWindow((kp, kp), (sp, sp), weight=weight), conv, hw, "test")
        want = conv.run(torch.nn.functional.avg_pool2d(x, kp, sp) * (kp * kp * weight))
        assert torch.allclose(folded.run(x), want, atol=1e-12, rtol=0), (hw, kp, sp, k, s, pad)


def test_fold_refuses_inexact_borders():
    conv = ConvSpec(np.ones((2, 2, 3, 3)), padding=(1, 1))
    with pytest.raises(ExportError, match="overlapping pooling windows"):
        fold_window_into_conv(PoolWindow((3, 3), (2, 2)), conv, (9, 9), "p into c")
    with pytest.raises(ExportError, match="drops input rows"):
        fold_window_into_conv(PoolWindow((2, 2), (2, 2)), conv, (7, 7), "p into c")
    with pytest.raises(ExportError, match="dilated convolution"):
        fold_window_into_conv(PoolWindow((2, 2), (2, 2)), ConvSpec(np.ones((2, 2, 3, 3)), dilation=(2, 2)),
                              (8, 8), "p into c")


def test_compose_dense_equals_pool_flatten_linear():
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(6, 4 * 2 * 2, generator=gen, dtype=torch.float64).numpy()
    ops = [ir.AvgPool("p", kernel_size=2, stride=2), ir.Flatten("f")]
    m = compose_dense(w, ops, [(4, 4, 4), (4, 2, 2)], (4, 4, 4))
    x = torch.rand(5, 4, 4, 4, generator=gen, dtype=torch.float64)
    want = torch.nn.functional.avg_pool2d(x, 2).flatten(1) @ torch.as_tensor(w).T
    assert m.shape == (6, 64) and torch.allclose(x.flatten(1) @ torch.as_tensor(m).T, want, atol=1e-12)


def _sew_graph() -> SpikeGraph:
    """SEW-style: spikes of two layers added before a synapse, then pooled, then a residual with identity."""
    gen = np.random.default_rng(3)
    g = SpikeGraph("sew")
    g.add(ir.Input("input", shape=(1, 8, 8)))
    g.add(ir.Conv2d("c1", weight=gen.normal(0.5, 0.4, (4, 1, 3, 3)), bias=gen.normal(0, 0.1, 4), padding=1), ["input"])
    g.add(ir.IF("n1"), ["c1"])
    g.add(ir.Conv2d("c2", weight=gen.normal(0.3, 0.5, (4, 4, 3, 3)), padding=1), ["n1"])
    g.add(ir.LIF("n2", tau=2.0), ["c2"])
    g.add(ir.Add("sew"), ["n1", "n2"])                                   # spikes + spikes (values 0, 1, 2)
    g.add(ir.AvgPool("pool", kernel_size=2, stride=2), ["sew"])         # pooled before the synapse
    g.add(ir.Conv2d("c3", weight=gen.normal(0.4, 0.5, (4, 4, 3, 3)), bias=gen.normal(0, 0.1, 4), padding=1),
          ["pool"])
    g.add(ir.SumPool("sp", kernel_size=2, stride=2), ["n2"])
    g.add(ir.Add("res"), ["c3", "sp"])                                   # identity shortcut (pooled) + current
    g.add(ir.IF("n3", v_threshold=0.8), ["res"])
    g.add(ir.Flatten("flat"), ["n3"])
    g.add(ir.Linear("fc", weight=gen.normal(0, 1, (3, 64))), ["flat"])
    g.add(ir.Output("output"), ["fc"])
    return g.validate()


@pytest.mark.parametrize("which", ["resnet", "vgg", "vgg_max", "dalif", "sew"])
def test_lowered_float_network_equals_the_model(which, request):
    """The rewrite (fan-in, SEW split, folded pooling, relays, OR neurons) is exact in float64."""
    if which == "resnet":
        g = to_graph(request.getfixturevalue("resnet"))
    elif which == "vgg":
        g = to_graph(request.getfixturevalue("vgg"))
    elif which == "vgg_max":
        m = create_model("vgg_digits", pool="max")
        m.load_state_dict(request.getfixturevalue("vgg").state_dict())
        g = to_graph(m.eval())
    elif which == "dalif":
        g = to_graph(_dalif(request.getfixturevalue("resnet")))
    else:
        g = _sew_graph()
    dep = deploy_graph(g)
    x = _digits(24).double()
    want = graph_spikes(as_float64(g), x)
    got = graph_spikes(lowered_float_graph(dep.float_graph), x)
    neurons = [p.name for p in dep.graph.neurons]
    assert neurons and all(torch.equal(got[n], want[n]) for n in neurons), which
    assert any(int(want[n].sum()) > 0 for n in neurons)
    if which in ("resnet", "sew", "dalif"):
        assert all(int(want[n].sum()) > 0 for n in neurons), {n: int(want[n].sum()) for n in neurons}


def test_resnet_lowering_structure(resnet):
    dep = deploy_graph(to_graph(resnet))
    g = dep.graph
    assert not dep.is_chain and isinstance(dep.network, LoihiGraph)
    pops = {p.name: (p.role, g.level(p.name)) for p in g.populations}
    assert pops == {"stem.2": ("neuron", 1), "stages.0.0.act1": ("neuron", 2), "stem.2.relay1": ("relay", 2),
                    "stages.0.0.act2": ("neuron", 3), "stages.1.0.act1": ("neuron", 4),
                    "stages.0.0.act2.relay1": ("relay", 4), "stages.1.0.act2": ("neuron", 5)}
    into = {c.synapse: (c.src, c.weight.shape, c.groups) for c in g.incoming("stages.0.0.act2")}
    assert into == {"stages.0.0.conv2": ("stages.0.0.act1", (16, 16, 3, 3), 1),
                    "identity": ("stem.2.relay1", (16, 1, 1, 1), 16)}  # depthwise 1x1, never a dense diagonal
    assert [c.synapse for c in g.incoming("stages.1.0.act2")] == ["stages.1.0.conv2", "stages.1.0.shortcut.0"]
    s = loihi_summary(dep)
    assert (s["relay_populations"], s["relay_neurons"], s["relay_synapses"]) == (2, 2048, 2048)
    assert s["neurons"] == 16 * 64 * 3 + 32 * 16 * 2 + 2048 and s["depth"] == 5
    assert s["max_fan_in"] == 32 * 9 + 16  # stages.1.0.act2: conv2 (32 x 3 x 3) + the 1x1 shortcut (16)
    assert s["format"] == "spikeport-loihi-graph" and s["fits_one_chip"]


def test_reference_timelines_and_chain_agree(resnet):
    """Lava's timeline on the contract's stream == the zero-latency run; the graph executor == the chain one."""
    dep = deploy_graph(to_graph(resnet))
    k = dep.encode_input(_digits(6))
    a = run_graph_reference(dep.graph, k, input_message_bits=5)
    b = run_graph_reference(dep.graph, k, input_message_bits=5, stream=True)
    assert all(torch.equal(a[n], b[n]) for n in a) and all(int(a[n].sum()) > 0 for n in a)
    # relays: the source one step later, every step (Lava timeline, no reset)
    raw = GraphExecutor(dep.graph, input_message_bits=5).run(k, lava_delay=True)
    assert torch.equal(raw["stem.2.relay1"][1:], raw["stem.2"][:-1]) and int(raw["stem.2.relay1"][0].sum()) == 0
    torch.manual_seed(0)
    chain = deploy_graph(to_graph(create_model("spiking_cnn_digits", pool="max"))).network
    kc = dep.encode_input(_digits(4)) * 3
    ref = run_reference(chain, kc, input_message_bits=5)
    lg = LoihiGraph.from_chain(chain)
    got = GraphExecutor(lg, input_message_bits=5).run(kc, lava_delay=True)
    assert all(torch.equal(got[chain.layers[i].name], ref[i]) for i in ref)
    assert lg.as_chain() is not None and [x.kind for x in lg.as_chain().layers] == [x.kind for x in chain.layers]


def test_or_neurons_are_max_pooling_of_spikes():
    gen = torch.Generator().manual_seed(2)
    pop = Population("a", (3, 6, 6), v_th_mant=0)
    orp = Population("or", (3, 3, 3))
    g = LoihiGraph((3, 6, 6), (pop, orp), (
        Connection("in", INPUT, "a", "conv", np.eye(3).reshape(3, 3, 1, 1).astype(int)),
        Connection("or", "a", "or", "conv", np.ones((3, 1, 2, 2), int), stride=(2, 2), groups=3)), "or")
    x = (torch.rand(5, 2, 3, 6, 6, generator=gen) < 0.3).to(torch.int64)
    out = run_graph_reference(g, x)
    assert torch.equal(out["a"].long(), x)
    want = torch.nn.functional.max_pool2d(x.flatten(0, 1).double(), 2).reshape(5, 2, 3, 3, 3)
    assert torch.equal(out["or"].double(), want)


def test_graph_validation_refuses_unbalanced_paths():
    a = Population("a", (2, 4, 4))
    b = Population("b", (2, 4, 4))
    ident = np.ones((2, 1, 1, 1), int)
    with pytest.raises(Exception, match="inputs arrive at different steps"):
        LoihiGraph((2, 4, 4), (a, b), (Connection("i-a", INPUT, "a", "conv", ident, groups=2),
                                       Connection("a-b", "a", "b", "conv", ident, groups=2),
                                       Connection("i-b", INPUT, "b", "conv", ident, groups=2)), "b")


# ---------------------------------------------------------------- refusals
def _graph(*nodes) -> SpikeGraph:
    g = SpikeGraph("bad")
    g.add(ir.Input("input", shape=(2, 8, 8)))
    for node, srcs in nodes:
        g.add(node, srcs)
    return g.validate()


def test_structural_refusals_name_node_and_reason():
    w = np.full((2, 2, 3, 3), 0.1)
    g = _graph((ir.Conv2d("c1", weight=w, padding=1), ["input"]), (ir.IF("n1"), ["c1"]),
               (ir.Conv2d("c2", weight=w, padding=1), ["n1"]), (ir.Conv2d("c3", weight=w, padding=1), ["c2"]),
               (ir.IF("n3"), ["c3"]), (ir.Output("output"), ["n3"]))
    with pytest.raises(UnsupportedNodeError, match="'c3' \\(Conv2d\\): Conv2d reads the synapse 'c2' directly"):
        deploy_graph(g)
    g = _graph((ir.Conv2d("c1", weight=w, padding=1), ["input"]), (ir.AvgPool("p", kernel_size=2, stride=2), ["c1"]),
               (ir.IF("n1"), ["p"]), (ir.Output("output"), ["n1"]))
    with pytest.raises(UnsupportedNodeError, match="'p' \\(AvgPool\\): AvgPool between the synapse 'c1'"):
        deploy_graph(g)
    g = _graph((ir.Conv2d("c1", weight=w, padding=1), ["input"]), (ir.IF("n1"), ["c1"]),
               (ir.Conv2d("c2", weight=w, padding=1), ["n1"]), (ir.IF("n2"), ["c2"]),
               (ir.Add("a"), ["n1", "n2"]), (ir.MaxPool("mp", kernel_size=2, stride=2), ["a"]),
               (ir.Conv2d("c3", weight=w, padding=1), ["mp"]), (ir.IF("n3"), ["c3"]), (ir.Output("output"), ["n3"]))
    with pytest.raises(UnsupportedNodeError, match="'mp' \\(MaxPool\\): max pooling of a value that is not binary"):
        deploy_graph(g)
    g = _graph((ir.Conv2d("c1", weight=w, padding=1), ["input"]), (ir.IF("n1"), ["c1"]),
               (ir.Conv2d("c2", weight=w, padding=1), ["n1"]), (ir.Add("a"), ["c2", "input"]),
               (ir.IF("n2"), ["a"]), (ir.Output("output"), ["n2"]))
    with pytest.raises(UnsupportedNodeError, match="graded input reaches 'n2' through paths of different lengths"):
        deploy_graph(g)
    dep = deploy_graph(g, input_scale=0)  # binary input: relayed like any spikes
    assert [p.name for p in dep.graph.populations] == ["n1", "input.relay1", "n2"]
    g = _graph((ir.AvgPool("p", kernel_size=3, stride=2, padding=1), ["input"]),
               (ir.Conv2d("c1", weight=w, padding=1), ["p"]), (ir.IF("n1"), ["c1"]), (ir.Output("output"), ["n1"]))
    with pytest.raises(UnsupportedNodeError, match="'p' \\(AvgPool\\): average pooling with padding"):
        deploy_graph(g)


def test_paper_method_refusals_state_the_deployable_share():
    for name, share, host in (("tssnn_digits", "1.7%", "stages.0.0.pre1"),
                              ("staa_digits", "57.0%", "stages.0.0.act2.pe"), ("fsta_digits", "1.7%", "stem.2.fsta")):
        with pytest.raises(UnsupportedNodeError) as info:
            deploy_graph(to_graph(create_model(name)))
        msg = str(info.value)
        assert "\n" not in msg and f"With them on the host, {share} of the synaptic operations" in msg, msg
        assert f"the host would run {host}" in msg and "among them the synapses" in msg


# ---------------------------------------------------------------- files, sidecar, CLI
def test_graph_file_roundtrip_and_errors(resnet, tmp_path):
    dep = deploy_graph(to_graph(resnet))
    path, side = write_deployment(dep, tmp_path / "r.net", timesteps=T)
    back = read_deployment(path)
    assert not back.is_chain and back.timesteps == T
    g0, g1 = dep.graph, back.graph
    assert [(p.name, p.role, p.shape, p.v_th_mant) for p in g0.populations] == \
           [(p.name, p.role, p.shape, p.v_th_mant) for p in g1.populations]
    assert all(np.array_equal(a.weight, b.weight) for a, b in zip(g0.connections, g1.connections, strict=True))
    doc = json.loads(side.read_text())
    c = doc["runtime"]
    assert doc["network"] == c["network"]["format"] == "spikeport-loihi-graph"
    assert c["network"]["build"] == "spikeport.targets.lava.load_network" and c["stream"]["trailing_zero_steps"] == 5
    assert {u["name"]: u["latency"] for u in c["layers"]}["stem.2.relay1"] == 2
    import h5py

    with h5py.File(path, "r+") as f:
        f["population/3/level"][()] = 7
    with pytest.raises(DataError, match="stored levels of stages.0.0.act2 disagree"):
        read_graph(path)
    (tmp_path / "junk.net").write_bytes(b"not hdf5")
    with pytest.raises(DataError):
        read_deployment(tmp_path / "junk.net")


def test_cli_export_and_run_resnet(resnet, tmp_path, capsys):
    from spikeport.checkpoint import CheckpointInfo, save_checkpoint

    ckpt = save_checkpoint(tmp_path / "r.pt", resnet, CheckpointInfo("resnet_digits", {}, T, (1, 8, 8), "direct",
                                                                     "digits"))
    out = tmp_path / "r.net"
    assert main(["export", str(ckpt), "--target", "lava", "--out", str(out), "--no-check"]) == 0
    capsys.readouterr()
    doc = json.loads((tmp_path / "r.net.summary.json").read_text())
    assert doc["deployability"]["lava"]["ok"] and doc["loihi"]["relay_neurons"] == 2048
    md = (tmp_path / "r.net.summary.md").read_text()
    assert "relay neurons added to equalise path latencies: 2048" in md and "stem.2.relay1" in md
    np.save(tmp_path / "x.npy", load_digits_arrays(False)[0][:40])
    assert main(["run", str(out), "--input", str(tmp_path / "x.npy")]) == 0
    preds = json.loads(capsys.readouterr().out)["predictions"]
    want = resnet(_digits(40)).mean(0).argmax(-1).tolist()
    assert np.mean(np.asarray(preds) == np.asarray(want)) >= 0.9  # fixed point vs float (measured: see report)


# ---------------------------------------------------------------- Lava
def _lava_equals_reference(dep, path, x):
    runner = LoihiRunner(path, backend="both")  # raises on any differing spike
    res = runner.run(x)
    assert runner.lava_checked == x.shape[1]
    assert all(int(s.sum()) > 0 for s in res.spikes.values()), {n: int(s.sum()) for n, s in res.spikes.items()}
    return res


@pytest.mark.lava
@pytest.mark.slow
def test_lava_equals_reference_resnet_dalif(netx, resnet, tmp_path):
    dep = deploy_graph(to_graph(resnet))
    path, _ = write_deployment(dep, tmp_path / "r.net", timesteps=T)
    _lava_equals_reference(dep, path, _digits(3))
    dep = deploy_graph(to_graph(_dalif(resnet)))
    path, _ = write_deployment(dep, tmp_path / "d.net", timesteps=T)
    _lava_equals_reference(dep, path, _digits(2))


@pytest.mark.lava
@pytest.mark.slow
def test_lava_equals_reference_vgg_avg_and_max(netx, vgg, tmp_path):
    dep = deploy_graph(to_graph(vgg))
    assert dep.is_chain  # average pooling folded: a plain netx chain
    assert [c.weight.shape for c in dep.graph.connections][1] == (32, 16, 6, 6)
    path, _ = write_deployment(dep, tmp_path / "v.net", timesteps=T)
    res = _lava_equals_reference(dep, path, _digits(3))  # netx
    run = load_network(path).run(load_digits_arrays(False)[0][:3])  # the same chain as standard Lava processes
    assert all(np.array_equal(run.spikes[n], res.spikes[n].numpy().astype(np.int8)) for n in res.spikes)
    m = create_model("vgg_digits", pool="max")
    m.load_state_dict(vgg.state_dict())
    dep = deploy_graph(to_graph(m.eval()))
    assert [p.role for p in dep.graph.populations] == ["neuron", "or", "neuron", "neuron", "or", "neuron"]
    path, _ = write_deployment(dep, tmp_path / "vm.net", timesteps=T)
    net = load_network(path)
    run = net.run(load_digits_arrays(False)[0][:3], record=[p.name for p in dep.graph.populations])
    ref = run_graph_reference(dep.graph, dep.encode_input(_digits(3)), input_message_bits=5)
    assert all(np.array_equal(run.spikes[n], ref[n].numpy()) for n in ref)
    assert all(ref[n].sum() > 0 for n in ref)
    assert run.predictions.tolist() == LoihiRunner(path).run(_digits(3)).logits.mean(0).argmax(-1).tolist()


def test_every_pool_and_or_op_declares_its_window():
    """Conformance over the registry: each op with a pool/or Loihi role gives a window (or a Refusal) per node."""
    from spikeport.ops import LoihiMapping, Refusal, all_specs
    from tests.converter.samples import sample_nodes

    samples = {type(n).__name__: (n, shapes) for n, shapes in sample_nodes()}
    specs = [s for s in all_specs() if isinstance(s.loihi, LoihiMapping) and s.loihi.role in ("pool", "or")]
    assert {s.name for s in specs} >= {"AvgPool", "SumPool", "AdaptiveAvgPool", "MaxPool"}
    for spec in specs:
        node, shapes = samples[spec.name]
        try:
            win = spec.loihi.window(node, tuple(shapes[0]))
        except Refusal as e:
            assert str(e), spec.name
            continue
        assert isinstance(win, PoolWindow) and win.weight > 0 and min(win.kernel) >= 1, spec.name
