"""Energy models (constants, TOML), report files (determinism, atomic/force), comparison."""

import json

import pytest
import torch

from spikeport.energy import analyze, compare_reports, estimate, get_hardware, load_hardware_toml, write_report
from spikeport.energy.hardware import EnergyModel
from spikeport.energy.report import FIGURE_FILES, REPORT_FILES
from spikeport.errors import ConfigError
from spikeport.models import create_model

ROW = {"syn_acs": 100.0, "syn_int_acs": 10.0, "syn_macs": 20.0, "elem_adds": 5.0, "elem_macs": 2.0,
       "neuron_updates": 50.0, "active_updates": 30.0, "spikes": 7.0, "approx_sops": 90.0, "approx_macs": 25.0,
       "syn_events_spk": 105.0, "syn_events_real": 20.0, "in_events": 12.0, "in_elements_real": 16.0,
       "out_elements_real": 32.0, "weights": 3000.0, "in_item": 16.0, "out_item": 64.0, "neurons": 0.0}


def test_builtin_models_charge_their_constants():
    e = get_hardware("horowitz45").layer_energy(ROW)
    assert e["ac"] == pytest.approx(0.9 * 115) and e["mac"] == pytest.approx(4.6 * 22)
    assert e["neuron"] == e["memory"] == e["spike"] == 0
    assert get_hardware("horowitz45").paper_energy(ROW) == pytest.approx(4.6 * 25 + 0.9 * 90)
    lo = get_hardware("loihi").layer_energy(ROW)
    assert lo["ac"] + lo["mac"] == pytest.approx(23.6 * 137)
    assert lo["neuron"] == pytest.approx(81 * 30 + 52 * 20) and lo["spike"] == pytest.approx(1.7 * 7)
    lem = get_hardware("lemaire")
    e = lem.layer_energy(ROW, neuron_ops=(1, 3))
    assert e["neuron"] == pytest.approx(50 * (3.1 + 3 * 0.1))
    # weights 12 KB -> 20 pJ tier; potentials 256 B, inputs 64 B, outputs 256 B, FIFO 4000 B -> 10 pJ tier
    expected = 125 * 20 + (2 * 105 + 2 * 50) * 10 + 16 * 10 + 32 * 10 + (12 + 7) * 10
    assert e["memory"] == pytest.approx(expected)
    assert lem.access_pj(2 * 1024 * 1024) == 100.0  # beyond the last tier: the last tier's cost
    assert any("DISPUTED" in a for a in get_hardware("loihi").assumptions())
    assert any("20 pJ" in s and "100 pJ" in s for s in lem.sources)


def test_toml_models(tmp_path):
    f = tmp_path / "chip.toml"
    f.write_text('base = "horowitz45"\ne_ac_pj = 0.5\nsources = ["datasheet"]\n')
    m = load_hardware_toml(f)
    assert (m.name, m.e_ac_pj, m.e_mac_pj, m.sources) == ("chip", 0.5, 4.6, ("datasheet",))
    assert get_hardware(str(f)) == m
    f.write_text('name = "mem"\ne_ac_pj = 1\nmemory = true\nsram = [[1024, 5.0], [65536, 50.0]]\n')
    assert load_hardware_toml(f).access_pj(2048) == 50.0
    for text, msg in [("e_ac = 1\n", "unknown key"), ("e_ac_pj = -1\n", "must be a finite number >= 0"),
                      ("e_ac_pj = \n", "invalid TOML"), ('memory = true\n', "needs sram tiers"),
                      ('sram = [[100, 1.0], [50, 2.0]]\n', "increasing")]:
        f.write_text(text)
        with pytest.raises(ConfigError, match=msg):
            load_hardware_toml(f)
    with pytest.raises(ConfigError, match="unknown energy model 'horowitz'.*horowitz45"):
        get_hardware("horowitz")
    with pytest.raises(ConfigError):
        EnergyModel(name="")


def _report(seed=0, t=4, hw="horowitz45"):
    from spikeport.data import get_dataset

    torch.manual_seed(0)
    model = create_model("spiking_cnn_digits")
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(3.0)
    split = get_dataset("digits", train=False)
    return analyze(model, split, timesteps=t, hardware=hw, encoder="rate", samples=48, batch_size=20, seed=seed,
                   meta={"model": "spiking_cnn_digits"})


def test_report_files_deterministic_and_self_contained(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    rep = _report()
    write_report(rep, a)
    write_report(_report(), b)
    for name in ("layers.csv", "timestep_rates.csv", "report.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert sorted(p.name for p in a.iterdir()) == sorted(REPORT_FILES)
    page = (a / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(FIGURE_FILES) and "<script" not in page
    for f in FIGURE_FILES:
        assert (a / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((a / "report.json").read_text())
    assert data["meta"]["samples"] == 48 and data["hardware"]["e_mac_pj"] == 4.6
    assert data["totals"]["spikes"] > 0 and data["totals"]["energy_pj"] == pytest.approx(
        sum(r["energy_pj"] for r in data["layers"]))
    assert any("4.6 pJ" in s for s in data["assumptions"])
    md = (a / "report.md").read_text()
    assert "## Assumptions" in md and "| features.0 |" in md
    last = (a / "layers.csv").read_text().strip().splitlines()[-1]
    assert last.startswith("TOTAL,")
    # a different seed changes the rate-coded input, so the counts differ
    assert _report(seed=1).totals["syn_acs"] != rep.totals["syn_acs"]


def test_existing_files_need_force(tmp_path):
    rep = _report()
    write_report(rep, tmp_path)
    before = (tmp_path / "report.json").read_bytes()
    (tmp_path / "report.md").write_text("keep")
    with pytest.raises(ConfigError, match="already exists; pass --force"):
        write_report(rep, tmp_path)
    assert (tmp_path / "report.md").read_text() == "keep"
    write_report(rep, tmp_path, force=True)
    assert (tmp_path / "report.json").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_compare_reports(tmp_path):
    r4, r2 = _report(t=4), _report(t=2, hw="loihi")
    write_report(r4, tmp_path / "t4")
    write_report(r2, tmp_path / "t2")
    table = compare_reports([tmp_path / "t4", tmp_path / "t2"], tmp_path / "cmp")
    assert list(table["timesteps"]) == [4, 2]
    assert table["energy_pj_ratio"][0] == 1.0
    assert table["energy_pj_ratio"][1] == pytest.approx(r2.totals["energy_pj"] / r4.totals["energy_pj"])
    out = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert "different energy models" in out["note"]
    assert (tmp_path / "cmp" / "fig_compare_rates.png").stat().st_size > 1000
    with pytest.raises(ConfigError, match="at least two"):
        compare_reports([tmp_path / "t4"])


def test_estimate_needs_samples():
    from spikeport.energy import record_spikes

    model = create_model("spiking_mlp_digits")
    with record_spikes(model) as rec:
        pass
    with pytest.raises(ConfigError, match="no samples were recorded"):
        estimate(rec)
