"""The CLI on framework models (file.py:factory --weights --time-layout), and a wrong adapter caught by verification
against the original model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spikeport.cli import main

pytestmark = pytest.mark.peers


def _run(capsys, args):
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _model_args(tr):
    return [tr.spec, "--weights", tr.weights, "--time-layout", tr.layout, "--input-shape", "1,8,8"]


def test_energy_inspect_eval_on_a_per_step_snntorch_model(model_of, capsys, tmp_path):
    tr = model_of("snn_seq")
    code, out, err = _run(capsys, ["inspect", *_model_args(tr)])
    assert code == 0 and "SnnTorchLeaky" in out, err
    code, out, err = _run(capsys, ["energy", *_model_args(tr), "--dataset", "digits", "-T", "6", "--samples", "64",
                                   "--out", tmp_path / "e"])
    assert code == 0, err
    layers = {r["layer"]: r for r in json.loads((tmp_path / "e" / "report.json").read_text())["layers"]}
    assert layers["2"]["rate"] > 0 and layers["4"]["rate"] > 0
    code, out, err = _run(capsys, ["eval", *_model_args(tr), "--dataset", "digits", "-T", "6"])
    assert code == 0, err
    assert json.loads(out)["accuracy"] == pytest.approx(tr.accuracy, abs=1e-6)  # the same 450 samples, T=6


def test_the_wrong_time_layout_is_named(model_of, capsys, tmp_path):
    tr = model_of("snn_seq")
    args = [tr.spec, "--weights", tr.weights, "--input-shape", "1,8,8"]  # no --time-layout: [T, B, ...] assumed
    code, _, err = _run(capsys, ["inspect", *args])
    assert code == 2 and "--time-layout step" in err and "Flatten(start_dim=1" in err
    code, _, err = _run(capsys, ["energy", *args, "--dataset", "digits", "-T", "6", "--samples", "8", "--out",
                                 tmp_path / "e"])
    assert code == 2 and "fed as [T, B, ...] (time layout 'tb')" in err and "--time-layout" in err
    tr = model_of("sinabs_mlp")  # runs on [T, B, ...] without error, but sinabs would treat T as the batch
    args = [tr.spec, "--weights", tr.weights, "--input-shape", "1,8,8", "--dataset", "digits", "-T", "6"]
    code, _, err = _run(capsys, ["eval", *args])
    assert code == 2 and "module '2' (sinabs.layers.lif.LIF) takes [B, T, ...] but received [6, 256, 32]" in err
    assert "pass --time-layout bt" in err


def test_sinabs_state_buffers_are_dropped_with_a_note(model_of, capsys, tmp_path):
    tr = model_of("sinabs_cnn")
    assert any(k.endswith(".v_mem") for k in torch.load(tr.weights, weights_only=True))
    code, out, err = _run(capsys, ["export", *_model_args(tr), "--target", "onnx", "-T", "6", "--dataset", "digits",
                                   "--out", tmp_path / "m.onnx"])
    assert code == 0, err
    assert "note:" in err and "ignored 2 saved neuron state buffer(s) (1.v_mem, 5.v_mem)" in err
    assert "the model itself vs its IR: exact, vs the file: exact" in out
    doc = json.loads((tmp_path / "m.onnx.summary.json").read_text())
    assert [c["verdict"] for c in doc["original_checks"]] == ["exact", "exact"]
    code, out, err = _run(capsys, ["verify", *_model_args(tr), tmp_path / "m.onnx", "--dataset", "digits",
                                   "--samples", "64"])
    assert code == 0, err
    assert out.count("verdict: exact") == 3 and "original (sinabs, bt-flat, cpu)" in out


def test_a_wrong_adapter_fails_against_the_original(model_of, capsys, tmp_path):
    """PLIF read as tau = 2 (its initial value) instead of its learned tau: the export reproduces that wrong IR
    exactly, so only the comparison with the model itself can catch it, and does."""
    from spikingjelly.activation_based.neuron import ParametricLIFNode

    from spikeport.converter import ir, register_handler, unregister_handler

    tr = model_of("sj_mlp")
    plif = tr.load().model.spikeport_inner[4]
    assert abs(float(torch.sigmoid(plif.w.detach())) - 0.5) > 1e-3  # it learned its time constant

    def wrong(m, name):
        return ir.PLIF(name, inv_tau=np.array(0.5, np.float32), decay_input=m.decay_input, v_reset=m.v_reset,
                       start_at_reset=True)

    register_handler(ParametricLIFNode, wrong)
    try:
        export = ["export", *_model_args(tr), "--target", "onnx", "-T", "6", "--dataset", "digits",
                  "--out", tmp_path / "m.onnx"]
        code, _, err = _run(capsys, export)
        assert code == 2 and "the traced IR (the torch reference) vs the original model disagrees" in err
        assert not (tmp_path / "m.onnx").exists()
        code, out, err = _run(capsys, [*export, "--allow-mismatch"])
        assert code == 0 and "original model vs IR check FAILED" in err
        code, out, _ = _run(capsys, ["verify", *_model_args(tr), tmp_path / "m.onnx", "--dataset", "digits",
                                     "--samples", "64"])
        assert code == 1
        first, ir_vs_model, model_vs_file = out.split("reference: ")[1:]
        assert "verdict: exact" in first  # the file reproduces the (wrong) IR ...
        assert "verdict: mismatch" in ir_vs_model and "verdict: mismatch" in model_vs_file  # ... not the model
    finally:
        unregister_handler(ParametricLIFNode)


def test_a_loop_over_time_is_measured_by_hooks_and_refused_elsewhere(model_of, capsys, tmp_path):
    tr = model_of("snn_loop")
    args = [tr.spec, "--weights", tr.weights, "--input-shape", "1,8,8"]
    code, out, err = _run(capsys, ["energy", *args, "--dataset", "digits", "-T", "6", "--samples", "32",
                                   "--out", tmp_path / "e"])
    assert code == 0, err
    rep = json.loads((tmp_path / "e" / "report.json").read_text())
    assert {r["layer"] for r in rep["layers"]} >= {"fc1", "lif1", "fc2", "lif2"}
    code, _, err = _run(capsys, ["export", *args, "--target", "onnx", "--out", tmp_path / "m.onnx"])
    assert code == 2 and "loop over time steps" in err and "--time-layout step" in err


def test_ops_lists_the_framework_classes_of_each_op(capsys):
    code, out, _ = _run(capsys, ["ops", "SnnTorchLeaky"])
    assert code == 0 and "modules: snntorch._neurons.leaky.Leaky" in out
    assert "nir_import yes: LIF (--nir-from snntorch)" in out  # its NIR dialect (docs/nir.md)
    code, out, _ = _run(capsys, ["ops", "LIF"])
    assert code == 0 and "spikingjelly.activation_based.neuron.lif.LIFNode" in out
