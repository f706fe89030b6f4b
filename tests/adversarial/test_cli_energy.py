"""`spikeport energy` and `spikeport compare` against hostile models, inputs, hardware profiles and outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("spikeport.commands.energy")

OUT = "{work}/rep"
QUICK = ["--samples", "4", "--no-progress"]


def _inputs(d):
    """Hostile ``--input`` arrays next to one valid one."""
    arrays = {
        "ok.npy": np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32),
        "shape.npy": np.zeros((4, 3, 8, 8), np.float32),
        "str.npy": np.array(["a", "b"]),
        "empty.npy": np.zeros((0, 1, 8, 8), np.float32),
        "flat.npy": np.zeros((64,), np.float32),
    }
    for name, arr in arrays.items():
        np.save(d / name, arr)
    np.save(d / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (d / "garbage.npy").write_bytes(b"\x93NUMPY\x09\x00garbage")
    (d / "trunc.npy").write_bytes((d / "ok.npy").read_bytes()[:200])
    (d / "text.npy").write_text("1,2,3\n")


@pytest.fixture
def inputs(tmp_path):
    d = tmp_path / "inputs"
    d.mkdir()
    _inputs(d)
    return d


@pytest.mark.parametrize("model,opts,text", [
    ("{assets}/missing.pt", [], "missing.pt: no such checkpoint file"),
    ("{assets}/empty.pt", [], "empty.pt: empty file"),
    ("{assets}/trunc.pt", [], "trunc.pt: truncated or corrupt"),
    ("{assets}/garbage.pt", [], "garbage.pt: not a spikeport checkpoint"),
    ("{assets}/evil.pt", [], "evil.pt: refused"),
    ("{assets}/nan.pt", [], "nan.pt: weight"),
    ("{assets}/shape.pt", [], "shape.pt: weights do not fit"),
    ("{assets}/encoder_bad.pt", [], "encoder_bad.pt"),
    ("{assets}/t_zero.pt", [], "t_zero.pt"),
    ("{assets}/text.pt", [], "text.pt"),
    ("nosuchmodel", [], "unknown model 'nosuchmodel'"),
    ("spiking_mlp_digits", ["--model-arg", "bogus=1"], "bad arguments ['bogus']"),
    ("spiking_mlp_digits", [], "no dataset recorded"),
    ("{assets}/missing.py:factory", [], "missing.py: no such Python file"),
    ("{inputs}/ok.npy", [], "unrecognised model file type '.npy'"),
    ("{assets}/tiny.pt", ["-T", "0"], "timesteps must be a positive integer"),
    ("{assets}/tiny.pt", ["-T", "-2"], "timesteps must be a positive integer"),
    ("{assets}/tiny.pt", ["-T", str(10**9)], "GiB"),
    ("{assets}/tiny.pt", ["--samples", "0"], "--samples must be positive"),
    ("{assets}/tiny.pt", ["--batch-size", "0"], "--batch-size must be positive"),
    ("{assets}/tiny.pt", ["--encoder", "bogus"], "unknown encoder 'bogus'"),
    ("{assets}/tiny.pt", ["--input-shape", "3,32,32"], "[3, 32, 32]"),
    ("{assets}/tiny.pt", ["--dataset", "mnist"], "unknown dataset 'mnist'"),
    ("{assets}/tiny.pt", ["--dataset", "cifar10"], "pass data_dir"),
    ("{assets}/tiny.pt", ["--hardware", "nosuchchip"], "unknown energy model 'nosuchchip'"),
    ("{assets}/tiny.pt", ["--input", "{inputs}/missing.npy"], "missing.npy: no such input file"),
    ("{assets}/tiny.pt", ["--input", "{inputs}/shape.npy"], "shape.npy: samples have shape [3, 8, 8]"),
    ("{assets}/tiny.pt", ["--input", "{inputs}/str.npy"], "str.npy: expected a numeric array"),
    ("{assets}/tiny.pt", ["--input", "{inputs}/obj.npy"], "obj.npy: not a plain numeric .npy"),
    ("{assets}/tiny.pt", ["--input", "{inputs}/empty.npy"], "empty.npy: expected samples"),
    ("{assets}/tiny.pt", ["--input", "{inputs}/flat.npy"], "flat.npy"),
    ("{assets}/tiny.pt", ["--input", "{inputs}/garbage.npy"], "garbage.npy"),
    ("{assets}/tiny.pt", ["--input", "{inputs}/trunc.npy"], "trunc.npy"),
    ("{assets}/tiny.pt", ["--input", "{inputs}/text.npy"], "text.npy"),
    ("{assets}/tiny.pt", ["--input", "{assets}/tiny.pt"], "tiny.pt"),
    ("{assets}/tiny.pt", ["--input", "{inputs}/ok.npy", "--temporal"], "ok.npy: samples have shape [8, 8]"),
])
def test_bad_inputs(adv, assets, work, inputs, model, opts, text):
    def fill(s):
        return str(s).replace("{assets}", str(assets)).replace("{inputs}", str(inputs)).replace("{work}", str(work))

    args = ["energy", fill(model), "--out", fill(OUT), *QUICK, *map(fill, opts)]
    adv.bad(args, fill(text), dirs=(work, assets, inputs))
    assert not (assets / "PWNED").exists()


@pytest.mark.parametrize("content,text", [
    (None, "no such energy model file"),
    ("[energy\n", "invalid TOML"),
    ("[energy]\ne_ac_pj = 1\n", "unknown key(s) energy"),
    ("e_ac_pj = -1\n", "e_ac_pj must be a finite number >= 0"),
    ("e_ac_pj = nan\n", "e_ac_pj must be a finite number >= 0"),
    ("e_ac_pj = 1e400\n", "e_ac_pj must be a finite number >= 0"),
    ("e_ac_pj = 'abc'\n", "e_ac_pj must be a finite number >= 0"),
    ("sram = 5\n", "sram must be a list"),
    ("word_bytes = 0\n", "word_bytes must be a positive integer"),
    ("notes = 5\n", "bad energy model fields"),
    pytest.param(b"\xff\xfe\x00", "UTF-8", id="not_utf8"),
])
def test_malformed_hardware_toml(adv, assets, work, content, text):
    hw = work / "chip.toml"
    if isinstance(content, bytes):
        hw.write_bytes(content)
    elif content is not None:
        hw.write_text(content)
    adv.bad(["energy", assets / "tiny.pt", "--hardware", hw, "--out", work / "rep", *QUICK], "chip.toml", text,
            dirs=(work,))


def test_hardware_toml_unknown_base_names_file(adv, assets, work):
    hw = work / "chip.toml"
    hw.write_text('base = "nosuch"\n')
    adv.bad(["energy", assets / "tiny.pt", "--hardware", hw, "--out", work / "rep", *QUICK], "chip.toml",
            dirs=(work,))


@pytest.mark.parametrize("content", [
    pytest.param("", id="empty_file"),
    pytest.param("neuron_ops = -1\n", id="neuron_ops_not_bool"),
])
def test_meaningless_hardware_profile_refused(adv, assets, work, content):
    hw = work / "chip.toml"
    hw.write_text(content)
    adv.bad(["energy", assets / "tiny.pt", "--hardware", hw, "--out", work / "rep", *QUICK], "chip.toml",
            dirs=(work,))


@pytest.mark.parametrize("arr", [
    pytest.param(np.full((2, 1, 8, 8), np.nan, np.float32), id="nan"),
    pytest.param(np.full((2, 1, 8, 8), np.inf, np.float32), id="inf"),
    pytest.param(np.zeros((2, 0, 1, 8, 8), np.float32), id="temporal_T0"),
])
def test_non_finite_or_empty_time_input_refused(adv, assets, work, arr):
    np.save(work / "x.npy", arr)
    temporal = ["--temporal"] if arr.ndim == 5 else []
    before = adv.listing(work)
    res = adv.run(["energy", assets / "tiny.pt", "--input", work / "x.npy", *temporal, "--out", work / "rep", *QUICK])
    adv.assert_clean_failure(res, "x.npy")
    assert adv.listing(work) == before


def test_weights_with_checkpoint_model_refused(adv, assets, work):
    adv.bad(["energy", assets / "tiny.pt", "--weights", assets / "evil.pt", "--out", work / "rep", *QUICK],
            "--weights", dirs=(work,))


# ------------------------------------------------------------------ outputs


def test_output_paths(adv, assets, work):
    (work / "afile").write_text("x")
    adv.bad(["energy", assets / "tiny.pt", "--out", work / "afile", *QUICK], "afile", dirs=(work,))
    adv.bad(["energy", assets / "tiny.pt", "--out", work / "afile" / "sub", *QUICK], "afile/sub", dirs=(work,))


def test_existing_report_needs_force(adv, assets, work):
    out = work / "rep"
    assert adv.run(["energy", assets / "tiny.pt", "--out", out, *QUICK]).code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    adv.bad(["energy", assets / "tiny.pt", "--out", out, *QUICK], "already exists", "--force", dirs=(work,))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert adv.run(["energy", assets / "tiny.pt", "--out", out, "--force", *QUICK]).code == 0


def test_failure_mid_report_leaves_nothing(adv, assets, work, monkeypatch):
    import spikeport.energy.report as report

    def broken(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "render_html", broken)
    res = adv.run(["energy", assets / "tiny.pt", "--out", work / "rep", *QUICK])
    adv.assert_clean_failure(res, "No space left on device")
    assert not (work / "rep").exists() or list((work / "rep").iterdir()) == []


# ------------------------------------------------------------------ compare


@pytest.fixture(scope="module")
def two_reports(tmp_path_factory, assets):
    from spikeport.cli import main

    d = tmp_path_factory.mktemp("reports")
    for t in ("1", "2"):
        assert main(["energy", str(assets / "tiny.pt"), "-T", t, "--out", str(d / f"t{t}"), *QUICK]) == 0
    return d


def test_compare_bad_inputs(adv, two_reports, work):
    a, b = two_reports / "t1", two_reports / "t2"
    (work / "afile").write_text("x")
    (work / "emptydir").mkdir()
    (work / "badjson").mkdir()
    (work / "badjson" / "report.json").write_text("{not json")
    (work / "wrongjson").mkdir()
    (work / "wrongjson" / "report.json").write_text(json.dumps({"hello": 1}))
    (work / "listjson").mkdir()
    (work / "listjson" / "report.json").write_text("[1, 2]")
    dirs = (work, two_reports)
    adv.bad(["compare", a, "--out", work / "c"], "at least two", dirs=dirs)
    adv.bad(["compare", a, work / "missing", "--out", work / "c"], "missing", dirs=dirs)
    adv.bad(["compare", a, work / "emptydir", "--out", work / "c"], "emptydir", dirs=dirs)
    adv.bad(["compare", a, work / "afile", "--out", work / "c"], "afile", dirs=dirs)
    adv.bad(["compare", a, work / "badjson", "--out", work / "c"], "badjson", dirs=dirs)
    adv.bad(["compare", a, work / "wrongjson", "--out", work / "c"], "wrongjson", dirs=dirs)
    adv.bad(["compare", a, work / "listjson", "--out", work / "c"], "listjson", dirs=dirs)
    adv.bad(["compare", a, b, "--label", "x", "--out", work / "c"], "labels", dirs=dirs)
    adv.bad(["compare", a, b, "--out", work / "afile" / "c"], "afile/c", dirs=dirs)
    adv.bad(["compare", a, b], "--out", dirs=dirs, argparse_error=True)
    out = work / "c"
    assert adv.run(["compare", a, b, "--out", out]).code == 0
    before = adv.listing(work)
    adv.bad(["compare", a, b, "--out", out], "already exists", "--force", dirs=dirs)
    assert adv.listing(work) == before
