"""NIR exchange: hand-written NIR files import and run with hand-checked outputs; export; exact round trips; errors."""

import itertools

import h5py
import nir
import numpy as np
import pytest
import torch

from spikeport.converter import SpikeGraph, ir, lower, trace
from spikeport.converter.nir_io import DEFAULT_DT, read_nir, to_nir, write_nir
from spikeport.errors import GraphError, SpikeportError, UnsupportedNodeError
from spikeport.models import create_model
from spikeport.models.loading import load_model

DT = DEFAULT_DT


def _run(graph, x):
    with torch.no_grad():
        return lower(graph)(x)


def _write(tmp_path, nodes, edges, name="g.nir", type_check=True):
    path = tmp_path / name
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges, type_check=type_check))
    return path


def _chain(*pairs):
    names = [n for n, _ in pairs]
    return dict(pairs), list(itertools.pairwise(names))


def test_affine_lif(tmp_path):
    nodes, edges = _chain(
        ("input", nir.Input(input_type=np.array([2]))),
        ("fc", nir.Affine(weight=np.array([[1.0, 0.0], [0.0, 2.0]], np.float32),
                          bias=np.array([0.0, 0.5], np.float32))),
        ("lif", nir.LIF(tau=np.full(2, 2 * DT), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2),
                        v_reset=np.zeros(2))),
        ("output", nir.Output(output_type=np.array([2]))))
    g = read_nir(_write(tmp_path, nodes, edges))
    lif = g.node("lif")
    assert isinstance(lif, ir.LIF) and lif.tau == 2.0 and lif.decay_input and lif.v_reset == 0.0
    # currents [1, 2.5]: neuron 0 charges 0.5, 0.75, 0.875, 0.9375 (never fires); neuron 1 reaches 1.25 every step
    out = _run(g, torch.ones(4, 1, 2))
    assert out[:, 0].tolist() == [[0.0, 1.0]] * 4


def test_conv_if_sumpool_flatten(tmp_path):
    nodes, edges = _chain(
        ("input", nir.Input(input_type=np.array([1, 4, 4]))),
        ("conv", nir.Conv2d(input_shape=(4, 4), weight=np.full((1, 1, 1, 1), 0.5, np.float32), stride=1, padding=0,
                            dilation=1, groups=1, bias=np.zeros(1, np.float32))),
        ("if", nir.IF(r=np.full((1, 4, 4), 1 / DT), v_threshold=np.full((1, 4, 4), 0.9), v_reset=np.zeros((1, 4, 4)))),
        ("pool", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))),
        ("flat", nir.Flatten(input_type={"input": np.array([1, 2, 2])}, start_dim=0, end_dim=-1)),
        ("output", nir.Output(output_type=np.array([4]))))
    g = read_nir(_write(tmp_path, nodes, edges))
    assert [n.op for n in g.nodes().values()] == ["Input", "Conv2d", "IF", "SumPool", "Flatten", "Output"]
    assert g.node("conv").bias is None and "if.gain" not in g  # r = 1/dt: no extra gain
    # membrane 0.5, 1.0 (spike), 0.5, 1.0 (spike); each 2x2 window sums 4 spikes
    out = _run(g, torch.ones(4, 1, 1, 4, 4))
    assert out[:, 0].tolist() == [[0.0] * 4, [4.0] * 4, [0.0] * 4, [4.0] * 4]


def test_cubalif_and_input_gains(tmp_path):
    def cuba(w_in):
        return nir.CubaLIF(tau_syn=np.array([2 * DT]), tau_mem=np.array([2 * DT]), r=np.array([2.0]),
                           v_leak=np.zeros(1), v_threshold=np.array([0.9]), v_reset=np.zeros(1), w_in=np.array([w_in]))

    nodes, edges = _chain(("input", nir.Input(input_type=np.array([1]))), ("cuba", cuba(2.0)),
                          ("output", nir.Output(output_type=np.array([1]))))
    g = read_nir(_write(tmp_path, nodes, edges))
    c = g.node("cuba")
    assert (c.i_decay, c.v_decay) == (0.5, 0.5) and "cuba.gain" not in g
    # I: .6, .9, .45, .225; V: .6, 1.2 (spike -> 0), .45, .45
    x = torch.tensor([0.6, 0.6, 0.0, 0.0]).view(4, 1, 1)
    assert _run(g, x).flatten().tolist() == [0.0, 1.0, 0.0, 0.0]
    nodes["cuba"] = cuba(4.0)  # w_in twice the neutral value: a x2 gain in front of the neuron
    g = read_nir(_write(tmp_path, nodes, edges, "gain.nir"))
    assert g.node("cuba.gain").scale == pytest.approx(2.0)
    # I: 1.2 -> V 1.2 spike; then I .6/.3/.15 and V .6/.6/.45
    assert _run(g, torch.tensor([0.6, 0, 0, 0]).view(4, 1, 1)).flatten().tolist() == [1.0, 0.0, 0.0, 0.0]


def test_avgpool_scale_threshold(tmp_path):
    nodes, edges = _chain(
        ("input", nir.Input(input_type=np.array([1, 2, 2]))),
        ("pool", nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))),
        ("scale", nir.Scale(scale=np.full((1, 1, 1), 2.0))),
        ("thr", nir.Threshold(threshold=np.full((1, 1, 1), 0.9))),
        ("output", nir.Output(output_type=np.array([1, 1, 1]))))
    g = read_nir(_write(tmp_path, nodes, edges))
    x = torch.tensor([[1.0, 1.0], [1.0, 0.0]]).view(1, 1, 1, 2, 2).repeat(2, 1, 1, 1, 1)
    x[1] = 0.2  # mean .2 * 2 = .4 < .9
    assert _run(g, x).flatten().tolist() == [1.0, 0.0]


def test_recurrent_cycle_and_nested_subgraph(tmp_path):
    nodes = {"input": nir.Input(input_type=np.array([1])),
             "if": nir.IF(r=np.array([1 / DT]), v_threshold=np.array([1.0]), v_reset=np.zeros(1)),
             "rec": nir.Linear(weight=np.array([[0.5]], np.float32)),
             "output": nir.Output(output_type=np.array([1]))}
    edges = [("input", "if"), ("if", "rec"), ("rec", "if"), ("if", "output")]
    g = read_nir(_write(tmp_path, nodes, edges))
    assert [e.recurrent for e in g.in_edges("if.sum")] == [False, True]
    # v: .6, 1.2 (spike), .6 + .5 = 1.1 (spike), ...
    assert _run(g, torch.full((5, 1, 1), 0.6)).flatten().tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]

    inner = nir.NIRGraph(nodes={"i": nir.Input(input_type=np.array([2])),
                                "aff": nir.Affine(weight=np.array([[1.0, 2.0]], np.float32),
                                                  bias=np.array([0.5], np.float32)),
                                "o": nir.Output(output_type=np.array([1]))}, edges=[("i", "aff"), ("aff", "o")])
    nodes = {"input": nir.Input(input_type=np.array([2])), "sub": inner,
             "output": nir.Output(output_type=np.array([1]))}
    g = read_nir(_write(tmp_path, nodes, [("input", "sub"), ("sub", "output")], "nested.nir"))
    assert g.topological_order() == ["input", "sub.aff", "output"]
    assert _run(g, torch.tensor([[[1.0, 2.0]]])).item() == 5.5


def test_export_reads_back_and_runs_identically(tmp_path):
    torch.manual_seed(0)
    model = create_model("spiking_mlp_digits").eval()
    path = write_nir(trace(model), tmp_path / "mlp.nir")
    back = nir.read(path)
    types = {k: type(v).__name__ for k, v in back.nodes.items()}
    assert types == {"input": "Input", "features.0": "Flatten", "features.1": "Affine", "features.2": "LIF",
                     "features.3": "Affine", "features.4": "LIF", "head": "Affine", "output": "Output"}
    assert np.allclose(back.nodes["features.2"].tau, 2.0 * DT) and np.all(back.nodes["features.2"].r == 1.0)
    x = torch.rand(6, 2, 1, 8, 8) * 3
    with torch.no_grad():
        assert torch.equal(_run(read_nir(path), x), model(x))
    loaded = load_model(str(path))
    assert loaded.kind == "nir" and loaded.input_shape == (1, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))


@pytest.mark.parametrize("neuron,kw", [
    ("if", {"v_threshold": 0.7}),
    ("lif", {"tau": 1.7, "decay_input": False, "v_reset": 0.1}),
    ("lif", {"tau": 3.3}),
    ("cuba_lif", {"i_decay": 0.3, "v_decay": 0.7, "v_threshold": 0.4}),
])
def test_round_trip_is_exact(neuron, kw, tmp_path):
    graph = trace(create_model("spiking_mlp_digits", neuron=neuron, neuron_kw=kw).eval())
    back = read_nir(write_nir(graph, tmp_path / "rt.nir"))
    assert back.topological_order() == graph.topological_order()
    for name, node in graph.nodes().items():
        assert back.node(name).same_as(node), name
    x = torch.rand(5, 2, 1, 8, 8) * 3
    assert torch.equal(_run(back, x), _run(graph, x))


def test_unrepresentable_nodes_are_all_listed():
    graph = trace(create_model("spiking_cnn_digits", pool="max", neuron_kw={"v_reset": None}))
    with pytest.raises(UnsupportedNodeError) as e:
        to_nir(graph, fold=False)
    msg = str(e.value)
    assert "5 node(s) not representable" in msg and "\n" not in msg
    for name, why in [("features.1", "BatchNorm"), ("features.2", "soft reset"), ("features.4", "BatchNorm"),
                      ("features.5", "soft reset"), ("features.6", "MaxPool has no NIR primitive")]:
        assert f"'{name}'" in msg and why in msg
    with pytest.raises(UnsupportedNodeError, match="TemporalShift has no NIR primitive"):
        to_nir(trace(create_model("tssnn_digits")))


def test_bad_files_give_one_line_errors(tmp_path):
    text = tmp_path / "text.nir"
    text.write_text("hello")
    with pytest.raises(GraphError, match="text.nir: not a NIR file \\(not HDF5\\)"):
        read_nir(text)
    with pytest.raises(GraphError, match="no such NIR file"):
        read_nir(tmp_path / "missing.nir")
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = 1
    with pytest.raises(GraphError, match="not a NIR graph \\(no 'node' group\\)"):
        read_nir(plain)

    nodes, edges = _chain(("input", nir.Input(input_type=np.array([1]))),
                          ("lif", nir.LIF(tau=np.ones(1), r=np.ones(1), v_leak=np.zeros(1), v_threshold=np.ones(1))),
                          ("output", nir.Output(output_type=np.array([1]))))
    path = _write(tmp_path, nodes, edges, "unknown.nir")
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif/type"]
        f.create_dataset("node/nodes/lif/type", data="Hodgkin", dtype=h5py.string_dtype())
    with pytest.raises(GraphError, match="unknown NIR node type\\(s\\): 'lif' \\(type 'Hodgkin'\\)"):
        read_nir(path)

    nodes["lif"] = nir.LI(tau=np.ones(1), r=np.ones(1), v_leak=np.zeros(1))
    with pytest.raises(GraphError, match="NIR node 'lif' has type 'LI', which spikeport cannot import"):
        read_nir(_write(tmp_path, nodes, edges, "li.nir"))

    nodes, edges = _chain(("input", nir.Input(input_type=np.array([3]))),
                          ("a1", nir.Affine(weight=np.ones((2, 3), np.float32), bias=np.zeros(2, np.float32))),
                          ("a2", nir.Affine(weight=np.ones((4, 5), np.float32), bias=np.zeros(4, np.float32))),
                          ("output", nir.Output(output_type=np.array([4]))))
    with pytest.raises(GraphError, match=r"mismatch.nir: shape mismatch on edge a1\.out \[2\] -> a2\.in \[\.\.\., 5\]"):
        read_nir(_write(tmp_path, nodes, edges, "mismatch.nir", type_check=False))


def test_corrupt_parameters_and_bytes_name_node_or_file(tmp_path):
    nodes, edges = _chain(("input", nir.Input(input_type=np.array([1, 4, 4]))),
                          ("pool", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                                 padding=np.array([0, 0]))),
                          ("output", nir.Output(output_type=np.array([1, 2, 2]))))
    path = _write(tmp_path, nodes, edges, "nan.nir")
    good = path.read_bytes()
    with h5py.File(path, "r+") as f:
        del f["node/nodes/pool/stride"]
        f["node/nodes/pool/stride"] = np.array([np.nan, 2.0])
    with pytest.raises(GraphError, match=r"nan.nir: NIR node 'pool' \(SumPool2d\): 'stride' has 1 NaN/Inf value"):
        read_nir(path)
    path.write_bytes(good[:len(good) // 2])  # truncated HDF5
    with pytest.raises(GraphError, match="nan.nir"):
        read_nir(path)


@pytest.mark.parametrize("node,field,value", [("fc", "weight", np.nan), ("fc", "bias", np.inf),
                                              ("lif", "tau", -np.inf), ("lif", "v_threshold", np.nan)])
def test_non_finite_parameters_are_refused_naming_file_node_and_field(tmp_path, node, field, value):
    nodes, edges = _chain(
        ("input", nir.Input(input_type=np.array([2]))),
        ("fc", nir.Affine(weight=np.eye(2, dtype=np.float32), bias=np.zeros(2, np.float32))),
        ("lif", nir.LIF(tau=np.full(2, 2 * DT), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2),
                        v_reset=np.zeros(2))),
        ("output", nir.Output(output_type=np.array([2]))))
    path = _write(tmp_path, nodes, edges, "bad.nir")
    read_nir(path)  # the unedited file imports
    with h5py.File(path, "r+") as f:
        key = f"node/nodes/{node}/{field}"
        v = f[key][()]
        v.flat[-1] = value
        del f[key]
        f[key] = v
    with pytest.raises(GraphError, match=rf"bad.nir: NIR node '{node}' \(\w+\): '{field}' has 1 NaN/Inf value"):
        read_nir(path)


def test_ir_arrays_must_be_finite():
    with pytest.raises(GraphError, match=r"node 'fc' \(Linear\): field 'weight' must contain only finite values "
                                         r"\(1 of 4 are NaN or Inf\)"):
        ir.Linear("fc", weight=np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(GraphError, match=r"field 'bias' must contain only finite"):
        ir.Conv2d("c", weight=np.ones((2, 1, 1, 1)), bias=np.array([0.0, np.inf]))
    assert ir.Linear("ok", weight=np.ones((2, 2), np.int64)).weight.dtype == np.int64


def test_hdf5_crash_in_probe_is_refused_and_the_caller_survives(tmp_path):
    import os
    import signal

    from spikeport._hdf5_guard import check_hdf5_readable
    from spikeport.errors import DataError

    path = tmp_path / "x.nir"
    path.write_bytes(b"")
    with pytest.raises(GraphError, match=r"x.nir: corrupt NIR file: libhdf5 crashed reading it \(SIGSEGV\)"):
        check_hdf5_readable(path, "NIR", lambda p: os.kill(os.getpid(), signal.SIGSEGV), error=GraphError)
    with pytest.raises(DataError, match=r"x.nir: reading this netx file did not finish in 0.2 s"):
        check_hdf5_readable(path, "netx", lambda p: signal.pause(), timeout=0.2)
    check_hdf5_readable(path, "NIR", lambda p: 1 / 0)  # exceptions are left to the real read


def test_factory_that_raises_is_one_line(tmp_path):
    src = tmp_path / "net.py"
    src.write_text("def build():\n    raise RuntimeError('boom')\n")
    with pytest.raises(SpikeportError) as e:
        load_model(f"{src}:build")
    assert str(src) in str(e.value) and "boom" in str(e.value) and "\n" not in str(e.value)


def test_export_to_nir_graph_object():
    g = SpikeGraph("small")
    g.add(ir.Input("x", shape=(2,)))
    g.add(ir.Linear("fc", weight=np.ones((2, 2), np.float32)), ["x"])
    g.add(ir.Scale("half", scale=0.5), ["fc"])  # folded into the weights by default
    g.add(ir.DALIF("d", alpha=0.8, beta=0.25, v_reset=0.2), ["half"])
    g.add(ir.Output("y"), ["d"])
    ng = to_nir(g.validate())
    assert set(ng.nodes) == {"x", "fc", "d", "y"} and isinstance(ng.nodes["fc"], nir.Linear)
    assert np.all(ng.nodes["fc"].weight == 0.5)
    d = ng.nodes["d"]
    assert np.allclose(d.tau, DT / 0.75) and np.allclose(d.r, 0.8 / 0.75) and np.all(d.v_leak == 0)
