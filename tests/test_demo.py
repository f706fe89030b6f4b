import json

from spikeport.cli import main
from spikeport.energy.report import REPORT_FILES


def _check_energy_step(out, summary, printed):
    """The demo's energy step wrote the full report and its totals agree with report.json."""
    rep = out / "energy"
    assert sorted(p.name for p in rep.iterdir()) == sorted(REPORT_FILES)
    report = json.loads((rep / "report.json").read_text())
    tot, energy = report["totals"], summary["energy"]
    assert report["meta"]["timesteps"] == 2 and report["meta"]["samples"] == energy["samples"] == 450
    h = energy["hardware"]["horowitz45"]
    assert h["energy_uj"] == tot["energy_pj"] / 1e6 > 0
    assert h["acs"] == tot["syn_acs"] + tot["syn_int_acs"] and h["macs"] == tot["syn_macs"] > 0
    assert 0.0 < h["firing_rate"] == tot["firing_rate"] < 1.0
    # the same recording priced by the other models: same op counts, different energy
    for hw in ("lemaire", "loihi"):
        other = energy["hardware"][hw]
        assert (other["acs"], other["macs"], other["spikes"]) == (h["acs"], h["macs"], h["spikes"])
        assert other["energy_uj"] > 0 and other["energy_uj"] != h["energy_uj"]
    assert "uJ per inference (horowitz45)" in printed and "mean firing rate" in printed
    md = (out / "summary.md").read_text()
    assert "## Energy per inference" in md and "| horowitz45 |" in md


def test_demo_short_run_writes_summary(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "2", "-T", "2", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["training"]["timesteps"] == 2
    assert 0.5 < summary["training"]["snn_test_acc"] <= 1.0
    assert (out / "snn.pt").stat().st_size > 0 and (out / "ann.pt").stat().st_size > 0
    assert "| spiking_cnn_digits | LIF | 2 |" in (out / "summary.md").read_text()
    _check_energy_step(out, summary, capsys.readouterr().out)
    # a non-empty output folder is not reused without --force
    capsys.readouterr()
    assert main(["demo", "--out", str(out), "--epochs", "1"]) != 0
    assert "--force" in capsys.readouterr().err

