"""One policy for every export check: silent layers make it vacuous (never exact), a failed check writes nothing.

* vacuous: a spike layer with fewer than ``--min-spikes`` reference spikes on the check data; export and
  verify exit non-zero unless ``--allow-silent``, and every output still says ``vacuous``;
* failed: the target disagrees; export writes nothing (no file, sidecar or summary) unless
  ``--allow-mismatch``, which keeps the file and puts the failed verdict in the summary and on stderr.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

from spikeport.checkpoint import CheckpointInfo, save_checkpoint
from spikeport.cli import main
from spikeport.commands import export as export_cmd
from spikeport.commands._common import ZOO_SEED
from spikeport.errors import ConfigError, ExportError
from spikeport.models import MODELS, create_model, list_models
from spikeport.targets import verify as V
from spikeport.targets.torch_runner import RunResult, TorchRunner

from .calibrate import calibrate_batchnorm


def _listing(d):
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def _run(capsys, args):
    capsys.readouterr()
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


# ----------------------------------------------------------------------------- the Comparison itself
def _comparison(ref_spikes: list[int], flip: bool = False, min_spikes: int = 1, allow_silent: bool = False):
    """One batch through a Comparator: layer i's reference has ``ref_spikes[i]`` spikes; the target copies it."""
    c = V.Comparator([f"l{i}" for i in range(len(ref_spikes))], "ref", "tgt", min_spikes=min_spikes,
                     allow_silent=allow_silent)
    spikes = {}
    for i, n in enumerate(ref_spikes):
        s = torch.zeros(2, 1, 8, dtype=torch.bool)
        s.view(-1)[:n] = True
        spikes[f"l{i}"] = s
    tgt = {k: v.clone() for k, v in spikes.items()}
    if flip:
        tgt["l0"][0, 0, 7] = ~tgt["l0"][0, 0, 7]
    logits = torch.zeros(2, 1, 3)
    c.update(torch.zeros(2, 1, 4), RunResult(logits, spikes), RunResult(logits, tgt))
    return c.result


def test_silent_layers_make_the_verdict_vacuous_never_exact():
    ok = _comparison([3, 5])
    assert ok.verdict == "exact" and ok.ok and ok.silent_layers == []
    silent = _comparison([3, 0])
    assert silent.silent_layers == ["l1"] and silent.agreement_verdict == "exact"
    assert silent.verdict == "vacuous" and not silent.ok and silent.agrees
    line = silent.describe()
    assert line.startswith("vacuous for layers: l1 (1 of 2 spike layers emitted no reference spike")
    assert "exact" not in line and "exact" not in silent.format()
    d = silent.to_dict()
    assert (d["verdict"], d["silent_layers"], d["min_spikes"], d["ok"]) == ("vacuous", ["l1"], 1, False)
    assert [layer["ref_spikes"] for layer in d["layers"]] == [3, 0]
    allowed = _comparison([3, 0], allow_silent=True)
    assert allowed.ok and allowed.verdict == "vacuous" and allowed.to_dict()["allow_silent"]


def test_min_spikes_is_the_stated_threshold():
    assert V.DEFAULT_MIN_SPIKES == 1
    assert _comparison([3, 5], min_spikes=4).silent_layers == ["l0"]
    assert _comparison([3, 5], min_spikes=3).silent_layers == []


def test_a_quantized_check_below_its_pass_mark_says_failed():
    c = V.Comparator(["a"], "ref", "loihi", approximate="fixed point", min_pred_agreement=0.95)
    s = {"a": torch.ones(1, 4, 2, dtype=torch.bool)}
    ref, tgt = torch.zeros(1, 4, 3), torch.zeros(1, 4, 3)
    ref[..., 0] = 1.0
    tgt[..., 0] = 1.0
    tgt[0, 0, 1] = 2.0  # one of 4 predictions differs: 75% < 95%
    c.update(None, RunResult(ref, s), RunResult(tgt, s))
    r = c.result
    assert r.verdict == "quantized" and not r.agrees and not r.ok
    assert r.describe().startswith("quantized, FAILED (3/4 predictions agree, below the 95% pass mark): ")
    r.min_pred_agreement = 0.75
    assert r.ok and r.describe().startswith("quantized: 100.000% of spikes agree")
    assert "fewer than 4 reference spikes" in _comparison([3, 5], min_spikes=4).describe()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="--min-spikes must be an integer >= 1"):
            V.Comparator(["a"], "r", "t", min_spikes=bad)


def test_a_disagreement_is_a_failure_whatever_the_silent_layers():
    c = _comparison([3, 0], flip=True, allow_silent=True)
    assert c.verdict == "mismatch" and not c.ok and not c.vacuous
    with pytest.raises(ExportError, match="the export check failed: onnxruntime disagrees"):
        V.enforce_check(c, "m.onnx", what="onnxruntime")
    V.enforce_check(c, "m.onnx", allow_mismatch=True)  # kept: the verdict stays 'mismatch' in the summary
    with pytest.raises(ExportError, match=r"m.onnx: the export check is vacuous for layers: l1 .*--allow-silent"):
        V.enforce_check(_comparison([3, 0]), "m.onnx")


def test_cli_defaults_are_the_library_constants():
    assert export_cmd.DEFAULT_MIN_SPIKES == V.DEFAULT_MIN_SPIKES
    assert export_cmd.DEFAULT_CHECK_SAMPLES == V.DEFAULT_CHECK_SAMPLES
    assert export_cmd.DEFAULT_MIN_PRED_AGREEMENT == V.DEFAULT_MIN_PRED_AGREEMENT


# ----------------------------------------------------------------------------- every untrained zoo model
def _zoo_t(name: str) -> int:
    m = create_model(name)
    return getattr(m, "timesteps", None) or (1 if "cifar" in MODELS.tags(name) else 2)


FULL_CYCLE = {"vgg11"}
"""CIFAR-size models that also run the (slow, ~5-10 s each) --allow-silent export and verify; every digits model
does; the other CIFAR models run the refusal only (their full cycle is the same code on a bigger graph)."""


def _cost(name: str) -> list:
    return [pytest.mark.slow] if name in FULL_CYCLE else []


@pytest.mark.parametrize("name", [pytest.param(n, marks=_cost(n)) for n in list_models()])
def test_untrained_zoo_model_export_and_verify(tmp_path, capsys, name):
    """Whether the check is vacuous is counted independently (the torch reference on the same seeded inputs)."""
    t = _zoo_t(name)
    torch.manual_seed(ZOO_SEED)  # the weights `spikeport export NAME` builds
    model = create_model(name).eval()
    data = V.random_check_data(model.default_input_shape, timesteps=t)
    silent = V.silent_reference_layers(TorchRunner(model), data.batches)
    out = tmp_path / "m.onnx"
    export = ["export", name, "--target", "onnx", "--out", out, "-T", t]
    verify = ["verify", name, out, "--samples", "5", "-T", t]
    if not silent:  # this untrained model spikes in every layer on the check data: an ordinary export
        code, text, _ = _run(capsys, export)
        assert code == 0 and "vacuous" not in text
        assert json.loads((tmp_path / "m.onnx.summary.json").read_text())["check"]["verdict"] in ("exact", "ties")
        return
    code, text, err = _run(capsys, export)
    assert code == 2 and text == "" and os.listdir(tmp_path) == []
    assert "the export check would be vacuous for layers: " + silent[0] in err and "--allow-silent" in err
    if "cifar" in MODELS.tags(name) and name not in FULL_CYCLE:
        return
    code, text, err = _run(capsys, [*export, "--allow-silent"])
    assert code == 0 and "vacuous for layers: " + silent[0] in text and "exact" not in text
    assert "check is VACUOUS, file kept because of --allow-silent" in err
    doc = json.loads((tmp_path / "m.onnx.summary.json").read_text())
    assert doc["check"]["verdict"] == "vacuous" and doc["check"]["silent_layers"] == silent
    assert doc["check_data"] == data.description
    md = (tmp_path / "m.onnx.summary.md").read_text()
    assert "verdict: vacuous for layers: " in md and "verdict: exact" not in md
    code, text, _ = _run(capsys, verify)
    assert code == 1 and "verdict: vacuous for layers: " in text and "verdict: exact" not in text
    code, text, _ = _run(capsys, [*verify, "--allow-silent", "--json", tmp_path / "v.json"])
    assert code == 0 and "verdict: vacuous for layers: " in text
    v, *original = json.loads((tmp_path / "v.json").read_text())["comparisons"]
    assert v["verdict"] == "vacuous" and v["ok"] and v["silent_layers"]
    assert [c["verdict"] for c in original] == ["vacuous", "vacuous"] and all(c["ok"] for c in original)


# ----------------------------------------------------------------------------- a failed check, every target
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """spiking_cnn_digits with calibrated BatchNorm, saved as trained on digits: it spikes on its test split."""
    torch.manual_seed(0)
    m = create_model("spiking_cnn_digits")
    calibrate_batchnorm(m, torch.rand(4, 16, 1, 8, 8))
    path = tmp_path_factory.mktemp("ck") / "snn.pt"
    save_checkpoint(path, m, CheckpointInfo("spiking_cnn_digits", {}, 4, (1, 8, 8), "direct", "digits"))
    return path


def _break_runtime(monkeypatch, target: str) -> None:
    """Make the target's runtime wrong: every logit of class 0 raised by 10 (predictions and logits change)."""
    if target.startswith("onnx"):
        from spikeport.targets.onnx import OnnxRunner as cls
    elif target == "nir":
        from spikeport.targets.nir import NirRunner as cls
    else:
        import spikeport.targets.lava as lava_pkg
        from spikeport.targets.lava.runner import LoihiRunner as cls

        monkeypatch.setattr(lava_pkg, "lava_available", lambda: False)  # no Lava run: its own test is slow
    real = cls.run

    def wrong(self, x):
        r = real(self, x)
        r.logits = r.logits.clone()
        r.logits[..., 0] += 10.0
        return r

    monkeypatch.setattr(cls, "run", wrong)


@pytest.mark.parametrize("target,suffix", [("onnx", ".onnx"), ("onnx-stream", ".onnx"), ("nir", ".nir"),
                                           ("lava", ".net")])
def test_failed_check_writes_nothing_unless_allow_mismatch(tmp_path, capsys, monkeypatch, ckpt, target, suffix):
    work = tmp_path / "out"
    work.mkdir()
    out = work / f"m{suffix}"
    _break_runtime(monkeypatch, target)
    args = ["export", ckpt, "--target", target, "--out", out, "--check-samples", "12"]
    code, text, err = _run(capsys, args)
    assert code == 2 and text == "" and len(err.strip().splitlines()) == 1
    assert "the export check failed" in err and "digits test split, first 12 samples" in err
    assert "nothing was written (pass --allow-mismatch" in err
    assert _listing(work) == []  # no file, sidecar, summary or staging leftover

    code, text, err = _run(capsys, [*args, "--allow-mismatch"])
    verdict = "quantized" if target == "lava" else "mismatch"
    assert code == 0 and f"check vs torch on digits test split, first 12 samples, direct encoding, T=4: {verdict}" \
        in text
    assert "warning" in err and "check FAILED, file kept because of --allow-mismatch" in err and verdict in err
    names = {"m" + suffix, f"m{suffix}.summary.json", f"m{suffix}.summary.md"}
    assert set(_listing(work)) == names | ({"m.net.loihi.json"} if target == "lava" else set())
    doc = json.loads((work / f"m{suffix}.summary.json").read_text())
    assert doc["check"]["verdict"] == verdict and doc["check"]["ok"] is False
    assert doc["check"]["labelled"] == 12 and doc["check_data"].startswith("digits test split, first 12 samples")
    assert doc["check_failures"] == ["check FAILED, file kept because of --allow-mismatch"]
    md = (work / f"m{suffix}.summary.md").read_text()
    assert f"verdict: {verdict}" in md and "**check FAILED, file kept because of --allow-mismatch**" in md


@pytest.mark.lava
@pytest.mark.slow
def test_lava_check_says_vacuous_when_layers_are_silent(tmp_path, capsys):
    """An untrained MLP: the float-vs-Loihi check is vacuous (refused, then kept with --allow-silent), and the
    Lava run (4 samples, Lava itself) says vacuous for the same silent layer instead of 'spikes identical'."""
    from spikeport.targets.export import describe_lava_check
    from spikeport.targets.lava import lava_available

    if not lava_available():
        pytest.skip("lava-nc / lava-dl not installed")
    out = tmp_path / "m.net"
    args = ["export", "spiking_mlp_digits", "--target", "lava", "--out", out, "-T", 2]
    code, _, err = _run(capsys, args)
    assert code == 2 and "the export check is vacuous for layers: " in err and os.listdir(tmp_path) == []
    code, text, err = _run(capsys, [*args, "--allow-silent"])
    assert code == 0 and "vacuous for layers: " in text
    doc = json.loads((tmp_path / "m.net.summary.json").read_text())
    silent = doc["check"]["silent_layers"]
    lc = doc["lava_check"]
    assert silent and lc["verdict"] == "vacuous" and lc["samples"] == 4
    assert set(lc["silent_layers"]) >= set(silent) and all(lc["layer_spikes"][n] == 0 for n in lc["silent_layers"])
    line = describe_lava_check(lc)
    assert line.startswith("Lava Loihi2SimCfg(fixed_pt) vs spikeport's Loihi reference on 4 samples: vacuous for")
    assert "spikes identical (" not in line and line in (tmp_path / "m.net.summary.md").read_text()
    assert "Lava check is VACUOUS, file kept because of --allow-silent" in err
