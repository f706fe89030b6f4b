"""`spikeport export` / `spikeport verify`: outputs, summaries, overwrite policy, atomicity, one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

import spikeport.targets.export as texport
from spikeport.checkpoint import CheckpointInfo, save_checkpoint
from spikeport.cli import main
from spikeport.models import create_model

from .calibrate import calibrate_batchnorm


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A digits checkpoint with calibrated BatchNorm (its neurons fire on digits)."""
    m = create_model("spiking_cnn_digits")
    torch.manual_seed(0)
    calibrate_batchnorm(m, torch.rand(4, 16, 1, 8, 8))
    path = tmp_path_factory.mktemp("ck") / "snn.pt"
    save_checkpoint(path, m, CheckpointInfo("spiking_cnn_digits", {}, 4, (1, 8, 8), "direct", "digits"))
    return path


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_export_onnx_writes_file_and_summaries(tmp_path, capsys, ckpt):
    out = tmp_path / "m.onnx"
    assert main(["export", str(ckpt), "--target", "onnx", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "wrote" in text and "T=4" in text and "exact" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.summary.json", "m.onnx.summary.md"]
    doc = json.loads((tmp_path / "m.onnx.summary.json").read_text())
    assert doc["target"] == "onnx" and doc["timesteps"] == 4 and doc["kind"] == "sequence"
    assert doc["check"]["verdict"] == "exact" and doc["check"]["spikes_identical"]
    assert set(doc["deployability"]) == {"onnx", "onnx-stream", "nir", "lava"}
    assert doc["deployability"]["onnx-stream"]["ok"] and doc["deployability"]["nir"]["ok"]  # avg pool: NIR ok
    assert doc["graph"]["spiking_layers"] == 2
    md = (tmp_path / "m.onnx.summary.md").read_text()
    assert "| features.2 | 100.0000% |" in md and "## Deployability" in md

    # verify the export on the labelled test split
    js = tmp_path / "v.json"
    assert main(["verify", str(ckpt), str(out), "--samples", "40", "--json", str(js)]) == 0
    text = capsys.readouterr().out
    assert "digits test split" in text and "features.5" in text and "verdict: exact" in text
    assert "accuracy: reference" in text
    v = json.loads(js.read_text())["comparisons"][0]
    assert v["labelled"] == 40 and v["ref_accuracy"] == v["target_accuracy"] and v["verdict"] == "exact"


def test_existing_output_needs_force(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"keep me")
    args = ["export", "spiking_mlp_digits", "--target", "onnx", "--out", str(out), "-T", "2", "--allow-silent"]
    assert main(args) == 2
    assert "already exists; pass --force" in _err(capsys)
    assert out.read_bytes() == b"keep me" and [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
    out.unlink()
    (tmp_path / "m.onnx.summary.md").write_text("old summary")
    assert main(args) == 2 and "m.onnx.summary.md: already exists" in _err(capsys)
    assert main(args + ["--force"]) == 0
    assert out.stat().st_size > 1000 and "# Export summary" in (tmp_path / "m.onnx.summary.md").read_text()


def test_failure_mid_write_leaves_nothing(tmp_path, capsys, monkeypatch):
    def half(module, args, f, **kw):
        with open(f, "wb") as fh:
            fh.write(b"\x08\x07 half an onnx file")
        raise RuntimeError("writer crashed")

    monkeypatch.setattr(torch.onnx, "export", half)
    assert main(["export", "spiking_mlp_digits", "--target", "onnx", "--out", str(tmp_path / "m.onnx"),
                 "--allow-silent"]) == 2
    assert "writer crashed" in _err(capsys)
    assert list(tmp_path.iterdir()) == []


def test_failure_in_summary_rolls_back_export(tmp_path, capsys, monkeypatch):
    real = texport.atomic_write_text

    def flaky(path, text):
        if str(path).endswith(".md"):
            raise OSError(28, "No space left on device", str(path))
        return real(path, text)

    monkeypatch.setattr(texport, "atomic_write_text", flaky)
    assert main(["export", "spiking_mlp_digits", "--target", "onnx-stream", "--out", str(tmp_path / "s.onnx"),
                 "--allow-silent"]) == 2
    assert "No space left" in _err(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args,msg", [
    (["tssnn_digits", "--target", "onnx-stream"], "stages.0.0.pre1 (TemporalShift, non-causal)"),
    (["spiking_cnn_digits", "--model-arg", "pool=max", "--target", "nir"], "'features.6' (MaxPool"),
    (["spiking_mlp_digits", "--target", "onnx", "-T", "0"], "--timesteps must be a positive integer"),
    (["nosuch", "--target", "onnx"], "unknown model 'nosuch'"),
])
def test_export_errors_are_one_line(tmp_path, capsys, args, msg):
    assert main(["export", *args, "--out", str(tmp_path / "x.out")]) == 2
    assert msg in _err(capsys)
    assert list(tmp_path.iterdir()) == []


def test_export_nir_and_verify(tmp_path, capsys, ckpt):
    out = tmp_path / "m.nir"
    assert main(["export", str(ckpt), "--target", "nir", "--out", str(out), "-T", "3"]) == 0
    text = capsys.readouterr().out
    assert "exact" in text and "digits test split, first 32 samples, direct encoding, T=3" in text
    doc = json.loads((tmp_path / "m.nir.summary.json").read_text())
    assert doc["check"]["verdict"] == "exact" and doc["check"]["labelled"] == 32 and not doc["check"]["silent_layers"]
    assert doc["check_data"].startswith("digits test split") and doc["check_failures"] == []
    assert "data: digits test split, first 32 samples" in (tmp_path / "m.nir.summary.md").read_text()
    assert main(["verify", str(ckpt), str(out), "--samples", "8", "-T", "3"]) == 0
    text = capsys.readouterr().out
    assert "digits test split" in text and "nir-import" in text and "features.5" in text


def test_verify_errors(tmp_path, capsys):
    (tmp_path / "x.onnx").write_bytes(b"junk")
    assert main(["verify", "spiking_mlp_digits", str(tmp_path / "x.onnx")]) == 2
    assert "not a readable ONNX file" in _err(capsys)
    assert main(["verify", "spiking_mlp_digits", str(tmp_path / "none.onnx")]) == 2
    assert "no such exported file" in _err(capsys)
    (tmp_path / "y.txt").write_text("?")
    assert main(["verify", "spiking_mlp_digits", str(tmp_path / "y.txt")]) == 2
    assert "unknown export type" in _err(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_verify_device_cuda_without_gpu(tmp_path, capsys):
    assert main(["export", "spiking_mlp_digits", "--target", "onnx", "--out", str(tmp_path / "m.onnx"),
                 "--allow-silent"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:  # refused while parsing --device, before any work
        main(["verify", "spiking_mlp_digits", str(tmp_path / "m.onnx"), "--device", "cuda"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "cuda" in err.lower() and "--device cpu" in err


@pytest.mark.parametrize("target,bad", [("onnx", "dt"), ("nir", "exporter"), ("lava", "spikes"),
                                        ("onnx-stream", "min_agreement")])
def test_unknown_target_option_is_a_clear_error(tmp_path, target, bad):
    from spikeport.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"unknown option\(s\) {bad} for export target '{target}' \(it accepts: "):
        texport.export_model(create_model("spiking_mlp_digits"), target, tmp_path / "m.out", **{bad: 1})
    assert list(tmp_path.iterdir()) == []
    assert set(texport.target_options(target)) >= {"check", "check_data", "allow_mismatch", "allow_silent"}
