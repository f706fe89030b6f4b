"""`spikeport inspect`, `export` and `verify` against hostile models, exported files and output paths."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("spikeport.commands.export")
pytest.importorskip("spikeport.commands.verify")
pytest.importorskip("spikeport.commands.inspect")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, assets):
    """Valid exports of the tiny checkpoint plus hostile copies (truncated, garbage, NaN weights, wrong shape)."""
    import h5py
    import onnx
    from onnx import numpy_helper

    from spikeport.cli import main

    d = tmp_path_factory.mktemp("exported")
    for target, name in (("onnx", "m.onnx"), ("nir", "m.nir")):
        assert main(["export", str(assets / "tiny.pt"), "--target", target, "--out", str(d / name)]) == 0
    for ext in ("onnx", "nir"):
        raw = (d / f"m.{ext}").read_bytes()
        (d / f"trunc.{ext}").write_bytes(raw[: len(raw) // 3])
        (d / f"garbage.{ext}").write_bytes(bytes(range(256)) * 8)
        (d / f"empty.{ext}").write_bytes(b"")
    shutil.copy(d / "m.nir", d / "nan.nir")
    with h5py.File(d / "nan.nir", "r+") as f:
        for k in f["node/nodes"]:
            if "weight" in f[f"node/nodes/{k}"]:
                key = f"node/nodes/{k}/weight"
                w = f[key][()]
                del f[key]
                f.create_dataset(key, data=np.full_like(w, np.nan))
                break
    m = onnx.load(d / "m.onnx")
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 99
    onnx.save(m, d / "shape.onnx")
    m = onnx.load(d / "m.onnx")
    init = m.graph.initializer[0]
    init.CopyFrom(numpy_helper.from_array(np.full_like(numpy_helper.to_array(init), np.nan), init.name))
    onnx.save(m, d / "nan.onnx")
    return d


# ------------------------------------------------------------------ inspect


@pytest.mark.parametrize("model,opts,text", [
    ("{assets}/evil.pt", [], "evil.pt: refused"),
    ("{assets}/trunc.pt", [], "trunc.pt: truncated or corrupt"),
    ("{assets}/nan.pt", [], "nan.pt: weight"),
    ("{assets}/missing.pt", [], "missing.pt"),
    ("nosuchmodel", [], "unknown model 'nosuchmodel'"),
    ("spiking_mlp_digits", ["--input-shape", "3,32,32"], "shape mismatch"),
    ("{exp}/missing.nir", [], "missing.nir: no such NIR file"),
    ("{exp}/trunc.nir", [], "trunc.nir"),
    ("{exp}/garbage.nir", [], "garbage.nir: not a NIR file"),
    ("{exp}/empty.nir", [], "empty.nir"),
    ("{exp}/m.onnx", [], "m.onnx: unrecognised model file type '.onnx'"),
    ("{assets}/tiny.pt", ["--json", "{work}/afile/g.json"], "afile"),
    ("{assets}/tiny.pt", ["--graph", "{work}/existing.graphml"], "--force"),
    ("{assets}/tiny.pt", ["--png", "{work}/adir"], "adir"),
])
def test_inspect_bad_inputs(adv, assets, exported, work, model, opts, text):
    (work / "afile").write_text("x")
    (work / "existing.graphml").write_text("keep")
    (work / "adir").mkdir()

    def fill(s):
        return s.replace("{assets}", str(assets)).replace("{exp}", str(exported)).replace("{work}", str(work))

    adv.bad(["inspect", fill(model), *map(fill, opts)], fill(text), dirs=(work, exported, assets))
    assert (work / "existing.graphml").read_text() == "keep"


@pytest.mark.parametrize("command", [
    ["inspect", "{exp}/nan.nir"],
    ["export", "{exp}/nan.nir", "--target", "onnx", "--out", "{work}/x.onnx"],
    ["energy", "{exp}/nan.nir", "--dataset", "digits", "--samples", "2", "--no-progress", "--out", "{work}/rep"],
], ids=["inspect", "export", "energy"])
def test_nan_weights_in_nir_refused(adv, exported, work, command):
    args = [c.replace("{exp}", str(exported)).replace("{work}", str(work)) for c in command]
    adv.bad(args, "nan.nir", dirs=(work,))


# ------------------------------------------------------------------ export


@pytest.mark.parametrize("model,opts,text", [
    ("{assets}/evil.pt", [], "evil.pt: refused"),
    ("{assets}/garbage.pt", [], "garbage.pt"),
    ("{assets}/nan.pt", [], "nan.pt: weight"),
    ("{assets}/shape.pt", [], "shape.pt: weights do not fit"),
    ("{assets}/tiny.pt", ["-T", "0"], "--timesteps must be a positive integer"),
    ("{assets}/tiny.pt", ["-T", "-5"], "--timesteps must be a positive integer"),
    ("{exp}/garbage.nir", [], "garbage.nir"),
    ("{assets}/tiny.pt", ["--out", "{work}/afile/x.onnx"], "afile"),
    ("{assets}/tiny.pt", ["--out", "/proc/x.onnx"], "/proc/x.onnx"),
    ("{assets}/tiny.pt", ["--out", "{work}/adir"], "adir"),
    ("{assets}/tiny.pt", ["--out", "{work}/existing.onnx"], "--force"),
])
def test_export_bad_inputs(adv, assets, exported, work, model, opts, text):
    (work / "afile").write_text("x")
    (work / "adir").mkdir()
    (work / "existing.onnx").write_text("keep")

    def fill(s):
        return s.replace("{assets}", str(assets)).replace("{exp}", str(exported)).replace("{work}", str(work))

    out = [] if "--out" in opts else ["--out", str(work / "x.onnx")]
    adv.bad(["export", fill(model), "--target", "onnx", *out, *map(fill, opts)], fill(text),
            dirs=(work, exported, assets))
    assert (work / "existing.onnx").read_text() == "keep"


def test_export_bad_target_is_an_argparse_error(adv, assets, work):
    adv.bad(["export", assets / "tiny.pt", "--target", "tflite", "--out", work / "x"], "invalid choice",
            dirs=(work,), argparse_error=True)


@pytest.mark.parametrize("target", ["onnx", "nir"])
def test_export_failure_mid_write_leaves_nothing(adv, assets, work, monkeypatch, target):
    """The disk fills up while the last summary file is written: the export and the JSON summary go too."""
    import spikeport.targets.export as export

    real = export.atomic_write_text

    def full_disk(path, text):
        if str(path).endswith(".md"):
            Path(path).with_name(Path(path).name + ".partial").write_text(text[:10])  # what a crash would leave
            Path(path).with_name(Path(path).name + ".partial").unlink()
            raise OSError(28, "No space left on device")
        return real(path, text)

    monkeypatch.setattr(export, "atomic_write_text", full_disk)
    old = work / "old.txt"
    old.write_text("unrelated")
    res = adv.run(["export", assets / "tiny.pt", "--target", target, "--out", work / f"x.{target}"])
    adv.assert_clean_failure(res, "No space left on device")
    assert sorted(p.name for p in work.iterdir()) == ["old.txt"]


def test_export_force_failure_keeps_nothing_half_written(adv, assets, work, monkeypatch):
    """With --force over an old export, a failing check must not leave a half-new file set."""
    import spikeport.targets.export as export

    out = work / "x.onnx"
    assert adv.run(["export", assets / "tiny.pt", "--target", "onnx", "--out", out]).code == 0
    before = {p.name: p.read_bytes() for p in work.iterdir()}

    def full_disk(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "atomic_write_text", full_disk)
    res = adv.run(["export", assets / "tiny.pt", "--target", "onnx", "--out", out, "--force", "-T", "3"])
    adv.assert_clean_failure(res, "No space left on device")
    after = {p.name: p.read_bytes() for p in work.iterdir()}
    assert set(after) <= set(before), f"new files left: {set(after) - set(before)}"
    assert all(after[n] == before[n] for n in after if n.endswith(".json")), "summary changed without its export"


def test_export_absurd_t_refused(adv, assets, work):
    adv.bad(["export", assets / "tiny.pt", "--target", "onnx", "-T", str(10**9), "--out", work / "x.onnx"], "GiB",
            dirs=(work,))


# ------------------------------------------------------------------ verify


@pytest.mark.parametrize("exported_name,opts,text", [
    ("missing.onnx", [], "missing.onnx: no such exported file"),
    ("trunc.onnx", [], "trunc.onnx: not a readable ONNX file"),
    ("garbage.onnx", [], "garbage.onnx: not a readable ONNX file"),
    ("empty.onnx", [], "empty.onnx"),
    ("trunc.nir", [], "trunc.nir"),
    ("garbage.nir", [], "garbage.nir: not a NIR file"),
    ("empty.nir", [], "empty.nir"),
    ("m.net", [], "m.net"),
    ("m.onnx", ["--samples", "0"], "--samples"),
    ("m.onnx", ["--batch-size", "0"], "--batch-size"),
    ("m.onnx", ["-T", "0"], "--timesteps must be a positive integer"),
    ("m.onnx", ["--dataset", "mnist"], "unknown dataset 'mnist'"),
    ("m.onnx", ["--dataset", "cifar10"], "pass data_dir"),
    ("m.onnx", ["--json", "{work}/afile/v.json"], "afile"),
    ("m.onnx", ["--json", "{work}/existing.json"], "--force"),
])
def test_verify_bad_inputs(adv, assets, exported, work, exported_name, opts, text):
    (work / "afile").write_text("x")
    (work / "existing.json").write_text("keep")
    opts = [o.replace("{work}", str(work)) for o in opts]
    adv.bad(["verify", assets / "tiny.pt", exported / exported_name, "--samples", "4", *opts],
            text.replace("{work}", str(work)), dirs=(work, exported))
    assert (work / "existing.json").read_text() == "keep"


def test_verify_hostile_model(adv, assets, exported, work):
    adv.bad(["verify", assets / "evil.pt", exported / "m.onnx"], "evil.pt: refused", dirs=(work,))
    adv.bad(["verify", assets / "tiny.pt", exported / "m.onnx", "--device", "bogus"], "unknown device",
            dirs=(work,), argparse_error=True)
    assert not (assets / "PWNED").exists()


@pytest.mark.parametrize("model,exported_name", [
    pytest.param("spiking_cnn_digits", "m.onnx", id="model_does_not_match_export"),
    pytest.param("{assets}/tiny.pt", "shape.onnx", id="onnx_input_shape_edited"),
])
def test_verify_mismatched_pair(adv, assets, exported, work, model, exported_name):
    adv.bad(["verify", model.replace("{assets}", str(assets)), exported / exported_name, "--samples", "4"],
            exported_name, dirs=(work,))


@pytest.mark.parametrize("opts", [["--atol", "nan"], ["--atol", "-1"], ["--tie-eps", "-1"], ["--tie-eps", "inf"]],
                         ids=["atol_nan", "atol_negative", "tie_eps_negative", "tie_eps_inf"])
def test_verify_bad_tolerances(adv, assets, exported, work, opts):
    adv.bad(["verify", assets / "tiny.pt", exported / "m.onnx", "--samples", "4", *opts], opts[0], dirs=(work,))


def test_export_force_failure_keeps_old_set_consistent(adv, assets, work, monkeypatch):
    import spikeport.targets.export as export

    out = work / "x.onnx"
    assert adv.run(["export", assets / "tiny.pt", "--target", "onnx", "--out", out]).code == 0
    before = out.read_bytes()

    def full_disk(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "atomic_write_text", full_disk)
    adv.run(["export", assets / "tiny.pt", "--target", "onnx", "--out", out, "--force", "-T", "3"])
    assert out.read_bytes() == before
