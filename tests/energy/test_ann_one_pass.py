"""The ANN comparison is one forward pass: torch's FLOP counter on one timestep gives the report's ANN MACs."""

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from spikeport.data import get_dataset
from spikeport.energy import estimate, write_report
from spikeport.energy.analyze import record_model, recording_target
from spikeport.models import create_model
from spikeport.models.encoders import encode


def _one_step_macs(model, x_one_step):
    """MACs per sample of one forward pass over ``x [1, B, ...]`` (FLOPs / 2, counted by torch)."""
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x_one_step)
    return fc.get_total_flops() / 2 / x_one_step.shape[1]


@pytest.mark.parametrize("name,t", [("spiking_cnn_digits", 4), ("resnet_digits", 3)])
def test_ann_macs_are_one_pass_of_the_flop_counter(name, t):
    """The demo CNN and the ResNet-style digits model, recorded on the test split as `spikeport energy` does."""
    torch.manual_seed(0)
    model = create_model(name).eval()
    split = get_dataset("digits", train=False)
    data, in_shape = torch.utils.data.Subset(split.dataset, range(24)), tuple(split.input_shape)
    x, _ = next(iter(torch.utils.data.DataLoader(data, batch_size=24)))
    target, _ = recording_target(model, in_shape)
    rec = record_model(target, data, timesteps=t, encoder="direct", batch_size=64, device="cpu", seed=0,
                       progress=False)
    rep = estimate(rec, "horowitz45")
    macs = _one_step_macs(model, encode(x.float(), 1, "direct"))
    assert macs > 0
    assert rep.totals["ann_macs"] == pytest.approx(macs, rel=1e-12)
    # the SNN runs every synapse at each of the T steps; the ANN once
    assert rep.totals["dense_macs"] == pytest.approx(t * macs, rel=1e-12)
    assert rep.totals["ann_energy_pj"] == pytest.approx(macs * 4.6, rel=1e-12)
    assert rep.totals["ann_over_snn"] == pytest.approx(macs * 4.6 / rep.totals["energy_pj"], rel=1e-12)


def test_every_report_output_states_the_one_pass_definition(tmp_path):
    torch.manual_seed(0)
    model = create_model("spiking_cnn_digits").eval()
    split = get_dataset("digits", train=False)
    target, _ = recording_target(model, tuple(split.input_shape))
    rec = record_model(target, split, timesteps=4, encoder="direct", batch_size=128, device="cpu", seed=0,
                       samples=32, progress=False)
    for hw in ("horowitz45", "lemaire", "loihi"):
        rep = estimate(rec, hw)
        e_mac = rep.hardware.e_mac_pj
        assert rep.totals["ann_energy_pj"] == pytest.approx(rep.totals["ann_macs"] * e_mac)
        assert rep.totals["ann_macs"] * 4 == pytest.approx(rep.totals["dense_macs"])
        assert any(a.startswith("ann_energy_pj: the ANN of the same shape") and "runs once per inference" in a
                   for a in rep.assumptions)
    write_report(rep, tmp_path / "r")
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    assert doc["totals"]["ann_macs"] == rep.totals["ann_macs"]
    assert any("one forward pass" in a for a in doc["assumptions"])
    for f in ("report.md", "report.html"):
        assert "one forward pass" in (tmp_path / "r" / f).read_text()
    assert "one forward pass" in rep.summary() and f"{rep.totals['ann_over_snn']:.3g}" in rep.summary()
