"""Energy never guesses: an unknown neuron stops `spikeport energy`, or is reported "unmeasured" everywhere."""

from __future__ import annotations

import json
import textwrap

import pandas as pd

from spikeport.cli import main

FACTORY = textwrap.dedent('''
    import torch
    from torch import nn


    class MyALIF(nn.Module):
        """A hand-written leaky neuron spikeport has no rule for (loops over T inside forward)."""

        def __init__(self, n):
            super().__init__()
            self.beta = nn.Parameter(torch.full((n,), 0.9))

        def forward(self, x):
            v, out = torch.zeros_like(x[0]), []
            for t in range(x.shape[0]):
                v = self.beta * v + x[t]
                s = (v >= 1.0).float()
                v = v - s
                out.append(s)
            return torch.stack(out)


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.flat, self.fc1, self.sn1, self.fc2 = nn.Flatten(2), nn.Linear(64, 32), MyALIF(32), nn.Linear(32, 10)

        def forward(self, x):
            return self.fc2(self.sn1(self.fc1(self.flat(x))))


    def build():
        torch.manual_seed(0)
        net = Net()
        with torch.no_grad():
            net.fc1.weight.mul_(4.0)  # make the unknown neuron fire
        return net
''')


def _run(tmp_path, *extra):
    (tmp_path / "mynet.py").write_text(FACTORY)
    return main(["energy", f"{tmp_path / 'mynet.py'}:build", "--dataset", "digits", "--samples", "40",
                 "--input-shape", "1,8,8", "--out", str(tmp_path / "rep"), *extra])


def test_unknown_neuron_stops_energy_naming_the_class(tmp_path, capsys):
    assert _run(tmp_path) == 2
    err = capsys.readouterr().err
    assert "MyALIF" in err and "'sn1'" in err and "--allow-unmeasured" in err and "register" in err
    assert not (tmp_path / "rep").exists()


def test_allow_unmeasured_marks_the_layer_in_every_output(tmp_path, capsys):
    assert _run(tmp_path, "--allow-unmeasured") == 0
    out = capsys.readouterr().out
    assert "firing rate unmeasured" in out and "UNMEASURED" in out and "lower bound" in out
    rep = tmp_path / "rep"
    csv = pd.read_csv(rep / "layers.csv").set_index("layer")
    row = csv.loc["sn1"]
    assert row["role"] == "unmeasured" and row["value_class"].startswith("unmeasured (binary outputs")
    assert row[["rate", "syn_acs", "neuron_updates", "spikes", "energy_pj"]].isna().all()  # never 0
    doc = json.loads((rep / "report.json").read_text())
    (layer,) = [r for r in doc["layers"] if r["layer"] == "sn1"]
    assert layer["role"] == "unmeasured" and layer["rate"] is None and layer["energy_pj"] is None
    assert doc["totals"]["firing_rate"] is None and any("UNMEASURED" in a for a in doc["assumptions"])
    md = (rep / "report.md").read_text()
    assert "UNMEASURED" in md and "| sn1 | MyALIF | unmeasured (binary outputs" in md
    assert "| unmeasured | unmeasured |" in md
    html = (rep / "report.html").read_text()
    assert "UNMEASURED" in html and "<td>sn1</td><td>MyALIF</td><td>unmeasured (binary outputs" in html
    assert "<td>unmeasured</td>" in html
