"""`spikeport energy` and `spikeport compare` end to end (in-process), plus one-line errors."""

import json

import numpy as np
import pytest

from spikeport.cli import main


def test_energy_on_dataset_and_npy_then_compare(tmp_path, capsys):
    d1, d2, cmp = tmp_path / "d1", tmp_path / "d2", tmp_path / "cmp"
    assert main(["energy", "spiking_cnn_digits", "--dataset", "digits", "--samples", "24", "--batch-size", "10",
                 "--out", str(d1)]) == 0
    out = capsys.readouterr().out
    assert "24 samples, T=4" in out and "horowitz45" in out
    rep = json.loads((d1 / "report.json").read_text())
    assert rep["meta"]["samples"] == 24 and rep["meta"]["timesteps_from"] == "default"
    assert rep["meta"]["recorded_on"] == "IR graph (traced)"
    again = tmp_path / "again"
    assert main(["energy", "spiking_cnn_digits", "--dataset", "digits", "--samples", "24", "--batch-size", "10",
                 "--out", str(again)]) == 0
    for name in ("layers.csv", "timestep_rates.csv", "report.json"):
        assert (d1 / name).read_bytes() == (again / name).read_bytes(), name
    assert [r["layer"] for r in rep["layers"]][:2] == ["features.0", "features.2"]

    x = np.random.default_rng(0).random((10, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    toml = tmp_path / "chip.toml"
    toml.write_text('base = "lemaire"\ne_add_pj = 0.2\n')
    assert main(["energy", "spiking_cnn_digits", "--input", str(tmp_path / "x.npy"), "-T", "2", "--hardware",
                 str(toml), "--out", str(d2)]) == 0
    rep2 = json.loads((d2 / "report.json").read_text())
    assert rep2["hardware"]["name"] == "chip" and rep2["hardware"]["e_add_pj"] == 0.2
    assert rep2["meta"]["timesteps"] == 2 and rep2["meta"]["samples"] == 10
    assert rep2["totals"]["e_memory_pj"] > 0
    capsys.readouterr()
    assert main(["compare", str(d1), str(d2), "--out", str(cmp)]) == 0
    assert "energy_pj_ratio" in capsys.readouterr().out
    assert (cmp / "compare.html").is_file() and (cmp / "fig_compare_rates.png").is_file()


@pytest.mark.parametrize("setup,args,msg", [
    ("obj", ["--input", "{tmp}/obj.npy"], "not a plain numeric .npy array"),
    ("bad", ["--input", "{tmp}/bad.npy"], "samples have shape [1, 4, 4] but the model expects [1, 8, 8]"),
    (None, ["--input", "{tmp}/missing.npy"], "no such input file"),
    (None, ["--dataset", "digits", "--hardware", "nope"], "unknown energy model 'nope'"),
    (None, ["--dataset", "digits", "--samples", "0"], "--samples must be positive"),
    (None, ["--dataset", "digits", "--samples", "4", "--out", "/proc/nope"], "/proc/nope: "),
    (None, [], "no dataset recorded; pass --dataset"),
])
def test_energy_errors_are_one_line(tmp_path, capsys, setup, args, msg):
    if setup == "obj":
        with open(tmp_path / "obj.npy", "wb") as f:
            np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    if setup == "bad":
        np.save(tmp_path / "bad.npy", np.zeros((3, 1, 4, 4), np.float32))
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    before = sorted(p.name for p in tmp_path.iterdir())
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    code = main(["energy", "spiking_cnn_digits", *args])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and msg in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_energy_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "report.json").write_text("keep")
    code = main(["energy", "spiking_cnn_digits", "--dataset", "digits", "--out", str(out)])
    assert code != 0 and "pass --force" in capsys.readouterr().err
    assert (out / "report.json").read_text() == "keep"


def test_compare_needs_reports(tmp_path, capsys):
    assert main(["compare", str(tmp_path), str(tmp_path), "--out", str(tmp_path / "c")]) != 0
    assert "no report.json found" in capsys.readouterr().err
