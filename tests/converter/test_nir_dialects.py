"""NIR time semantics: dt / integration / producer presets, metadata, plausibility checks, in-memory graphs."""

import json
import math

import nir
import numpy as np
import pytest
import torch

from spikeport.converter import SpikeGraph, ir, lower, trace
from spikeport.converter.nir_io import (
    from_nir,
    import_notes,
    load_nir,
    read_nir,
    resolve,
    to_nir,
    write_nir,
)
from spikeport.errors import ConfigError, GraphError, UnsupportedNodeError
from spikeport.models import create_model


def _chain(*pairs, metadata=None):
    names = [n for n, _ in pairs]
    return nir.NIRGraph(nodes=dict(pairs), edges=list(zip(names[:-1], names[1:], strict=True)),
                        metadata=metadata or {}, type_check=True)


def _lif(n, tau, r=1.0, vth=1.0, v_leak=0.0, v_reset=0.0):
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, r), v_leak=np.full(n, v_leak), v_threshold=np.full(n, vth),
                   v_reset=np.full(n, v_reset))


def _lif_graph(tau, r=1.0, metadata=None, w=1.0):
    return _chain(("input", nir.Input(input_type=np.array([1]))),
                  ("fc", nir.Linear(weight=np.full((1, 1), w, np.float32))),
                  ("lif", _lif(1, tau, r)),
                  ("output", nir.Output(output_type=np.array([1]))), metadata=metadata)


def _spikes(g, x, steps):
    with torch.no_grad():
        return lower(g)(torch.full((steps, 1, 1), x)).flatten().tolist()


# ---------------------------------------------------------------- precedence of the reading options
def test_resolve_precedence_and_origins():
    sem, warn = resolve({})
    assert (sem.producer, sem.producer_from, sem.dt, sem.dt_from, sem.integration) == \
        ("spikingjelly", "default", 1e-4, "preset", "euler")
    assert warn == []
    sem, warn = resolve({"source": "spikeport", "dt": np.float64(1e-3), "integration": "exact"})
    assert (sem.producer, sem.dt, sem.dt_from, sem.integration, sem.integration_from) == \
        ("spikeport", 1e-3, "metadata", "exact", "metadata")
    sem, warn = resolve({"source": "spikeport", "dt": 1e-3}, dt=2e-3)
    assert sem.dt == 2e-3 and sem.dt_from == "option"
    assert any("records dt = 0.001 s but dt = 0.002 s was given" in w for w in warn)
    sem, warn = resolve({"source": "spikeport", "dt": 1e-3}, producer="norse")
    assert (sem.dt, sem.dt_from) == (1e-3, "preset") and "written by spikeport" in warn[0]
    sem, warn = resolve({}, producer="nirtorch")
    assert sem.dt == 1e-4 and sem.dt_from == "default" and "nirtorch records no dt" in warn[0]
    assert resolve({}, producer="sinabs")[0].dt == 1.0 and resolve({}, producer="sinabs")[0].integration == "exact"
    assert resolve({}, producer="nirtorch", integration="exact")[0].integration_from == "option"


def test_unstated_properties_are_assumptions_with_a_warning_and_an_option():
    sem, warn = resolve({}, producer="snntorch")
    assert sem.assumption("reset") == "subtract" and sem.to_dict()["assumed"]["reset"]["from"] == "preset"
    assert len(warn) == 1 and "cannot say which" in warn[0] and "--nir-reset zero" in warn[0]
    sem, warn = resolve({}, producer="snntorch", reset="zero")
    assert sem.assumption("reset") == "zero" and warn == [] and "reset = zero (given)" in sem.describe()
    sem, warn = resolve({}, producer="sinabs", assume={"norm_input": "False"})
    assert sem.options()["assume"] == {"norm_input": "false", "min_v_mem": "none"}
    assert len(warn) == 1 and "--nir-assume min_v_mem=-threshold" in warn[0]
    assert resolve({}, producer="norse")[0].assumed == ()


@pytest.mark.parametrize("kwargs,match", [
    ({"producer": "brian2"}, "unknown producer"),
    ({"integration": "rk4"}, "expected one of euler, exact"),
    ({"producer": "sinabs", "integration": "euler"}, "sinabs's neurons integrate with the exact rule"),
    ({"producer": "norse", "reset": "zero"}, "the norse reading has no such assumption"),
    ({"producer": "sinabs", "assume": {"norm_input": "maybe"}}, "expected one of true, false"),
    ({"dt": 0.0}, "positive number of seconds"),
    ({"dt": float("nan")}, "positive number of seconds"),
])
def test_bad_or_contradictory_options_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        resolve({}, **kwargs)


# ---------------------------------------------------------------- metadata written and honoured
@pytest.mark.parametrize("dt", [1e-4, 1e-3, 1.0])
def test_exports_record_dt_and_read_back_exactly_at_any_dt(tmp_path, dt):
    torch.manual_seed(0)
    graph = trace(create_model("spiking_mlp_digits", neuron="cuba_lif", neuron_kw={"i_decay": 0.3}).eval())
    ng = to_nir(graph, dt)
    assert ng.metadata["dt"] == dt and ng.metadata["integration"] == "euler" and ng.metadata["source"] == "spikeport"
    back = read_nir(write_nir(graph, tmp_path / "m.nir", dt))  # no dt given: the metadata's
    assert back.meta["dt"] == dt and back.meta["nir"]["semantics"]["dt_from"] == "metadata"
    x = torch.rand(6, 3, 1, 8, 8) * 3
    with torch.no_grad():
        assert torch.equal(lower(back)(x), lower(graph)(x))
    assert from_nir(ng).meta["nir"]["semantics"]["producer"] == "spikeport"  # in memory too


# ---------------------------------------------------------------- integration rules
def test_exact_integration_follows_the_exponential_step():
    dt, tau = 1e-3, 2e-3
    g = from_nir(_lif_graph(tau, metadata={}), dt, producer="spikeport", integration="exact")
    a = math.exp(-dt / tau)
    node = g.node("lif")
    assert isinstance(node, ir.PLIF) and node.inv_tau == pytest.approx(1 - a, rel=1e-12)
    # input 1.5: v = 1.5 (1 - a^t) = 0.590, 0.948, 1.165 (a = e^-0.5): the first spike at step 3
    assert _spikes(g, 1.5, 3) == [0.0, 0.0, 1.0]
    strict = from_nir(_lif_graph(tau), dt, producer="nirtorch", integration="exact")  # NIR's text: v > threshold
    box = strict.node("lif")
    assert isinstance(box, ir.NorseLIFBox) and float(box.tau_mem_inv) * dt == pytest.approx(1 - a, rel=1e-6)
    assert _spikes(strict, 1.5, 3) == [0.0, 0.0, 1.0]
    g_euler = from_nir(_lif_graph(tau), dt, producer="spikeport")
    assert isinstance(g_euler.node("lif"), ir.LIF) and g_euler.node("lif").tau == 2.0
    assert _spikes(g_euler, 1.5, 3) == [0.0, 1.0, 0.0]  # Euler: 0.75, 1.125
    assert _spikes(g_euler, 1.1, 3) == [0.0, 0.0, 0.0]  # 0.55, 0.825, 0.9625
    assert _spikes(g, 1.1, 3) == [0.0, 0.0, 0.0]  # 0.433, 0.695, 0.853


def test_exact_cuba_lif_decays():
    node = nir.CubaLIF(tau_syn=np.full(1, 2e-3), tau_mem=np.full(1, 4e-3), r=np.full(1, 1.0),
                       v_leak=np.zeros(1), v_threshold=np.full(1, 1.0), v_reset=np.zeros(1), w_in=np.full(1, 1.0))
    g = from_nir(_chain(("input", nir.Input(input_type=np.array([1]))), ("c", node),
                        ("output", nir.Output(output_type=np.array([1])))), 1e-3, integration="exact",
                 producer="spikeport")
    c = g.node("c")
    di, dv = -math.expm1(-0.5), -math.expm1(-0.25)
    assert c.i_decay == pytest.approx(di) and c.v_decay == pytest.approx(dv)
    assert g.node("c.gain").scale == pytest.approx(di * dv)


# ---------------------------------------------------------------- plausibility checks
def test_tau_below_dt_under_euler_names_node_field_and_fixes():
    with pytest.raises(GraphError) as e:
        from_nir(_lif_graph(2e-6))
    msg = str(e.value)
    assert "NIR node 'lif' (LIF): tau = 2e-06 s < dt = 0.0001 s" in msg and "--nir-from norse" in msg
    assert "\n" not in msg
    from_nir(_lif_graph(2e-6), integration="exact", producer="nirtorch")  # exact decay: fine


def test_a_layer_that_cannot_fire_within_t_steps_is_a_warning_naming_node_and_fields():
    # Norse/sinabs write IF r = 1 ("add the input once per step"); read at dt = 1e-4 it is a gain of 1e-4
    g = from_nir(_chain(("input", nir.Input(input_type=np.array([2]))),
                        ("fc", nir.Affine(weight=np.full((3, 2), 0.5, np.float32), bias=np.zeros(3, np.float32))),
                        ("if1", nir.IF(r=np.ones(3), v_threshold=np.ones(3), v_reset=np.zeros(3))),
                        ("output", nir.Output(output_type=np.array([3])))))
    # the largest possible drive is 0.5 + 0.5 = 1 per step, times 1e-4: 10,000 steps to threshold
    assert g.meta["nir"]["reach"] == {"if1": None}
    _, warnings = import_notes(g, timesteps=16)
    silent = [w for w in warnings if "the layer is silent" in w]
    assert len(silent) == 1 and "NIR node 'if1' (IF: r=1, v_threshold=1, v_reset=0)" in silent[0]
    assert "within 1,000 steps" in silent[0] and "T = 16" in silent[0]
    hint = [w for w in warnings if "r = 1 is how Norse and sinabs write" in w]
    assert len(hint) == 1 and "'if1'" in hint[0]
    # the same file read as sinabs/Norse would read it (gain 1 per step): fires at step 1, no warning
    g1 = from_nir(g_graph := _chain(("input", nir.Input(input_type=np.array([2]))),
                                    ("fc", nir.Affine(weight=np.full((3, 2), 0.5, np.float32),
                                                      bias=np.zeros(3, np.float32))),
                                    ("if1", nir.IF(r=np.ones(3), v_threshold=np.ones(3), v_reset=np.zeros(3))),
                                    ("output", nir.Output(output_type=np.array([3])))), dt=1.0)
    assert g1.meta["nir"]["reach"] == {"if1": 1} and import_notes(g1, 16)[1] == []
    assert g_graph.metadata == {}  # the caller's graph is not modified


def test_reach_is_the_first_step_under_the_largest_drive():
    g = from_nir(_lif_graph(4e-4, w=0.5))  # LIF tau 4 steps, drive 0.5/step: v = 0.5 (1 - 0.75^t) < 1: never
    assert g.meta["nir"]["reach"] == {"lif": None}
    g = from_nir(_lif_graph(4e-4, w=2.0))  # drive 2: v = 0.5, 0.875, 1.156: step 3
    assert g.meta["nir"]["reach"] == {"lif": 3}
    assert import_notes(g, timesteps=2)[1][0].startswith("NIR node 'lif' (LIF: tau=0.0004")
    assert "before step 3 (T = 2)" in import_notes(g, timesteps=2)[1][0]
    assert import_notes(g, timesteps=3)[1] == []


def test_time_constants_in_steps_and_snntorch_gains_are_recognised():
    _, warnings = import_notes(from_nir(_lif_graph(10.0)))
    assert any("tau = 10 looks like a time constant in steps" in w and "--nir-from sinabs" in w for w in warnings)
    beta = np.float32(0.9)  # snnTorch: tau = dt / (1 - beta), r = tau / dt in float32
    tau = np.float32(1e-4) / (np.float32(1) - beta)
    g = _lif_graph(float(tau), r=float(np.float32(tau) / np.float32(1e-4)))
    _, warnings = import_notes(from_nir(g))
    assert any("what snnTorch's exporter writes" in w for w in warnings)
    _, warnings = import_notes(from_nir(g, producer="snntorch"))
    assert not any("what snnTorch's exporter writes" in w for w in warnings)  # no hint once a producer is given


# ---------------------------------------------------------------- graphs in memory
def test_in_memory_graph_with_torch_tensors_and_none_nodes():
    g = _lif_graph(2e-4)
    g.nodes["lif"].tau = torch.full((1,), 2e-4, dtype=torch.float64)  # exporters leave tensors in the fields
    g.nodes["fc"].weight = torch.ones(1, 1)
    m = load_nir(g)
    assert isinstance(g.nodes["lif"].tau, torch.Tensor)  # not modified
    assert m.graph.node("lif").tau == 2.0
    with torch.no_grad():
        assert m(torch.full((2, 1, 1), 3.0)).flatten().tolist() == [1.0, 1.0]
    g.nodes["fc"] = None
    with pytest.raises(GraphError, match="NIR node 'fc' is None: the exporter could not map that module"):
        load_nir(g)
    with pytest.raises(GraphError, match="expected a nir.NIRGraph, got dict"):
        from_nir({"nodes": {}})


def test_import_assumptions_state_the_default_and_its_reason():
    assumptions, _ = import_notes(from_nir(_lif_graph(2e-4)))
    assert assumptions[0].startswith("NIR import: read as spikingjelly (default): dt = 0.0001 s per step "
                                     "(spikingjelly preset), euler integration")
    assert "does not record which tool wrote it" in assumptions[1] and "--nir-from" in assumptions[1]
    assert import_notes(SpikeGraph("plain")) == ([], [])


# ---------------------------------------------------------------- writing for another importer
def test_consumers_fix_dt_and_refuse_what_they_would_misread():
    g = trace(create_model("spiking_mlp_digits", neuron="if").eval())
    ng = to_nir(g, consumer="snntorch")
    assert ng.metadata["dt"] == 1e-4 and ng.metadata["written_for"] == "snntorch"
    lif = ng.nodes["features.2"]
    assert isinstance(lif, nir.LIF) and np.all(1 - 1e-4 / lif.tau == 1.0) and np.allclose(lif.r * 1e-4 / lif.tau, 1)
    x = torch.rand(5, 2, 1, 8, 8) * 3
    with torch.no_grad():  # spikeport reads its snnTorch-shaped file back to the same spikes
        assert torch.equal(lower(from_nir(ng))(x), lower(g)(x))
    with pytest.raises(ConfigError, match="snntorch's importer always uses dt = 0.0001 s"):
        to_nir(g, 1e-3, consumer="snntorch")
    assert to_nir(g, consumer="norse").metadata["dt"] == 1e-3
    lif_g = trace(create_model("spiking_mlp_digits", neuron="lif", neuron_kw={"decay_input": False}).eval())
    with pytest.raises(UnsupportedNodeError, match="Norse's LIFBoxCell ignores r"):
        to_nir(lif_g, consumer="norse")
    with pytest.raises(UnsupportedNodeError, match="sinabs' from_nir builds multi-spike neurons"):
        to_nir(g, consumer="sinabs")
    with pytest.raises(ConfigError, match="unknown importer"):
        to_nir(g, consumer="brian2")


# ---------------------------------------------------------------- command line
def _norse_like_file(path):
    """An IF layer written as Norse and sinabs write it (r = 1: add the input once per step)."""
    nir.write(path, _chain(("input", nir.Input(input_type=np.array([4]))),
                           ("fc", nir.Affine(weight=np.full((3, 4), 0.5, np.float32), bias=np.zeros(3, np.float32))),
                           ("if1", nir.IF(r=np.ones(3), v_threshold=np.ones(3), v_reset=np.zeros(3))),
                           ("output", nir.Output(output_type=np.array([3])))))
    return path


def test_inspect_and_energy_say_how_the_file_was_read_and_warn(tmp_path, capsys):
    from spikeport.cli import main

    path = _norse_like_file(tmp_path / "n.nir")
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "NIR import: read as spikingjelly (default): dt = 0.0001 s per step" in out
    assert "WARNING: NIR node 'if1' (IF: r=1, v_threshold=1, v_reset=0): no neuron of this layer can fire" in out
    assert main(["inspect", str(path), "--nir-from", "norse"]) == 0
    out = capsys.readouterr().out
    assert "read as norse (given): dt = 0.001 s per step (norse preset)" in out and "WARNING" not in out
    np.save(tmp_path / "x.npy", np.ones((3, 4), np.float32))
    assert main(["energy", str(path), "--input", str(tmp_path / "x.npy"), "-T", "4", "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "WARNING: NIR node 'if1'" in captured.err and "(T = 4)" in captured.err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["assumptions"][0].startswith("NIR import: read as spikingjelly (default)")
    assert any(a.startswith("WARNING: NIR node 'if1'") for a in report["assumptions"])
    assert report["meta"]["nir_import"]["dt"] == 1e-4
    assert "WARNING: NIR node 'if1'" in (tmp_path / "r" / "report.md").read_text()
    # read as Norse reads it: the same input fires every step, and nothing is left to warn about
    assert main(["energy", str(path), "--nir-from", "norse", "--input", str(tmp_path / "x.npy"), "-T", "4",
                 "--out", str(tmp_path / "r2"), "--no-progress"]) == 0
    report = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert [row["rate"] for row in report["layers"] if row["role"] == "neuron"] == [1.0]
    assert not any(a.startswith("WARNING") for a in report["assumptions"])


def test_nir_options_are_refused_for_other_models_and_targets(tmp_path, capsys):
    from spikeport.cli import main

    assert main(["inspect", "spiking_mlp_digits", "--nir-from", "norse"]) == 2
    assert "--nir-from: these options say how a .nir file is read" in capsys.readouterr().err
    assert main(["export", "spiking_mlp_digits", "--target", "onnx", "--nir-for", "norse",
                 "--out", str(tmp_path / "m.onnx")]) == 2
    assert "--nir-for norse: applies to --target nir only" in capsys.readouterr().err
    assert main(["inspect", str(_norse_like_file(tmp_path / "n.nir")), "--nir-assume", "norm_input"]) == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err


def test_export_for_an_importer_records_it_and_the_summary_says_how_to_read_it(tmp_path, capsys):
    from spikeport.cli import main

    torch.manual_seed(0)
    out = tmp_path / "m.nir"
    assert main(["export", "spiking_mlp_digits", "--target", "nir", "--nir-for", "norse", "--out", str(out),
                 "--allow-silent"]) == 0
    meta = nir.read(out).metadata
    assert float(meta["dt"]) == 1e-3 and str(meta["written_for"]) == "norse" and str(meta["source"]) == "spikeport"
    summary = json.loads(out.with_name("m.nir.summary.json").read_text())
    assert summary["nir"]["dt"] == 1e-3 and "norse.torch.from_nir" in summary["nir"]["read_with"]
    assert "batch size 1" in summary["nir"]["batch_sizes"]
    # a spikeport file read back by the CLI uses its own dt: verify finds the same spikes
    capsys.readouterr()
    assert main(["verify", "spiking_mlp_digits", str(out), "--samples", "8", "--allow-silent"]) == 0
    assert "read as spikeport (file metadata): dt = 0.001 s per step (file metadata)" in capsys.readouterr().out


def test_ops_lists_the_nir_types_each_op_reads_and_under_which_preset(capsys):
    from spikeport.cli import main

    assert main(["ops", "SnnTorchLeaky"]) == 0
    out = capsys.readouterr().out
    assert "modules: snntorch._neurons.leaky.Leaky" in out
    assert "nir_import yes: LIF (--nir-from snntorch), IF (--nir-from snntorch|norse|nirtorch)" in out
    assert main(["ops", "LIF"]) == 0
    assert "nir_import yes: LIF (default reading)" in capsys.readouterr().out


def test_the_cli_choices_are_the_library_presets_and_importers():
    """The parser lists them without importing the converter (which loads torch at every command's start)."""
    from spikeport.commands._common import NIR_INTEGRATIONS, NIR_PRODUCERS
    from spikeport.commands.export import NIR_IMPORTERS
    from spikeport.converter.nir_io import CONSUMERS, INTEGRATIONS, PRODUCERS

    assert NIR_PRODUCERS == PRODUCERS and NIR_INTEGRATIONS == INTEGRATIONS
    assert tuple(CONSUMERS) == NIR_IMPORTERS
