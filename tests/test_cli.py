"""CLI behaviour: help on every command, one-line errors, no partial files."""

import json
import subprocess
import sys

import pytest

from spikeport.cli import build_parser, main


def run_cli(*args, cwd=None):
    p = subprocess.run([sys.executable, "-m", "spikeport.cli", *args], capture_output=True, text=True, cwd=cwd,
                       timeout=300)
    return p.returncode, p.stdout, p.stderr


def test_help_on_every_command(capsys):
    parser = build_parser()
    names = list(parser._subparsers._group_actions[0].choices)
    assert {"zoo", "train", "eval", "demo"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert "usage: spikeport" in capsys.readouterr().out


def test_zoo_lists_param_counts(capsys):
    assert main(["zoo", "--tag", "digits"]) == 0
    out = capsys.readouterr().out
    assert "spiking_cnn_digits" in out and "9,978" in out


@pytest.mark.parametrize("args,msg", [
    (["train", "nosuchmodel", "--out", "{tmp}/x.pt"], "unknown model 'nosuchmodel'"),
    (["train", "spiking_cnn_digits", "-T", "0", "--out", "{tmp}/x.pt"], "timesteps must be a positive integer"),
    (["train", "spiking_cnn_digits", "--epochs", "1", "--out", "/proc/nope/x.pt"], "cannot create output directory"),
    (["train", "spiking_cnn_digits", "--dataset", "mnist", "--out", "{tmp}/x.pt"], "unknown dataset 'mnist'"),
    (["train", "spiking_cnn_digits", "--kd", "kl", "--out", "{tmp}/x.pt"], "needs --teacher"),
    (["eval", "{tmp}/missing.pt"], "no such checkpoint file"),
    (["eval", "{tmp}/garbage.pt"], "not a spikeport checkpoint"),
    (["train", "spiking_cnn_digits", "--device", "cuda:0", "--out", "{tmp}/x.pt"], None),
])
def test_bad_input_one_line_error(tmp_path, capsys, args, msg):
    (tmp_path / "garbage.pt").write_bytes(b"\x00garbage")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    if msg is not None:
        assert msg in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_existing_output_needs_force(tmp_path, capsys):
    out = tmp_path / "x.pt"
    out.write_text("keep")
    assert main(["train", "spiking_cnn_digits", "--out", str(out)]) != 0
    assert "--force" in capsys.readouterr().err
    assert out.read_text() == "keep"


def test_wrong_input_shape_for_checkpoint(tmp_path, capsys):
    ck = tmp_path / "m.pt"
    assert main(["train", "spiking_mlp_digits", "-T", "2", "--epochs", "1", "--no-progress", "--out", str(ck)]) == 0
    capsys.readouterr()
    assert main(["eval", str(ck), "--timesteps", "-3"]) != 0
    assert "timesteps must be a positive integer" in capsys.readouterr().err


def test_train_eval_subprocess_round_trip(tmp_path):
    ck = tmp_path / "cnn.pt"
    code, out, err = run_cli("train", "spiking_cnn_digits", "-T", "2", "--epochs", "2", "--no-progress",
                             "--out", str(ck))
    assert code == 0, err
    trained = json.loads(out.strip().splitlines()[-1])
    code, out, err = run_cli("eval", str(ck))
    assert code == 0, err
    ev = json.loads(out)
    assert ev["accuracy"] == pytest.approx(trained["test_acc"], abs=1e-9)
    assert ev["samples"] == 450 and ev["timesteps"] == 2


def test_debug_shows_traceback(tmp_path):
    code, _, err = run_cli("eval", str(tmp_path / "missing.pt"), "--debug")
    assert code != 0 and "Traceback" in err
