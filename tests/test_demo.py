import json

from spikeport.cli import main


def test_demo_short_run_writes_summary(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "2", "-T", "2", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["training"]["timesteps"] == 2
    assert 0.5 < summary["training"]["snn_test_acc"] <= 1.0
    assert (out / "snn.pt").stat().st_size > 0 and (out / "ann.pt").stat().st_size > 0
    assert "| spiking_cnn_digits | LIF | 2 |" in (out / "summary.md").read_text()
    # a non-empty output folder is not reused without --force
    capsys.readouterr()
    assert main(["demo", "--out", str(out), "--epochs", "1"]) != 0
    assert "--force" in capsys.readouterr().err
