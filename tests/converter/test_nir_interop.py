"""NIR interop with the frameworks' own exporters and importers (fast version of benchmarks/nir_interop.py).

Tiny seeded digits models (hidden 16, 6 samples, T = 8) per producer: the producer's own simulation is the
reference; its exporter's graph read by spikeport with the producer preset must give identical spikes and
predictions (and the same through a file), spikeport's energy recorder the same per-layer firing rates, and
spikeport's NIR written for the producer's importer must either be read back to identical spikes or be
refused with the named reason. Each framework is skipped when it is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
_MODULES = {"snntorch": "snntorch", "norse": "norse", "sinabs": "sinabs", "spikingjelly": "spikingjelly",
            "nirtorch": "nirtorch", "lava-dl": "lava"}


def _load(name: str):
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def bench():
    return _load("nir_producers"), _load("nir_interop")


# producer, model, variant, what spikeport's export for the producer's importer gives: "exact", or the refusal
CASES = [
    ("snntorch", "mlp", "subtract", "snnTorch's subtract reset, applied one step late"),
    ("snntorch", "cnn", "zero", "exact"),
    ("norse", "mlp", "lif", "exact"),
    ("norse", "mlp", "iaf", "exact"),
    ("sinabs", "mlp", "iaf", "clips IF membranes at min_v_mem = -threshold, this layer does not"),
    ("sinabs", "mlp", "lif_raw", "exact"),
    ("spikingjelly", "cnn", "if", "exact"),
    ("nirtorch", "mlp", "lif", "exact"),
    ("lava-dl", "mlp", "upstream", "n/a"),
]


def _skip_unless(producer: str, p) -> None:
    pytest.importorskip(_MODULES[producer])
    if not p.available():
        pytest.skip(f"{producer} is not usable here")


@pytest.mark.parametrize("producer,kind,variant,export", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_producer_exports_read_exactly_and_spikeport_writes_what_they_read(bench, producer, kind, variant, export):
    prod, interop = bench
    p = prod.PRODUCERS[producer]
    _skip_unless(producer, p)
    x, _ = prod.digits_inputs(6, 8, kind == "cnn")
    res = interop.measure(p, kind, variant, x, prod.random_weights(kind, 16), x)
    imp = res["import"]
    assert "error" not in imp, imp
    assert all(layer["ref_spikes"] > 0 for layer in imp["layers"]), imp["layers"]  # never vacuous
    assert imp["spikes"] == 1.0 and imp["pred"] == 1.0 and imp["file_equal"] is True, imp
    assert res["energy"]["equal"], res["energy"]  # spikeport energy's rates = the framework's own
    out = res["export"]
    if export == "exact":
        assert "spikes" in out and out["spikes"] == 1.0 and out["pred"] == 1.0, out
    elif export == "n/a":
        assert "n/a" in out
    else:
        assert export in out.get("refused", ""), out


def test_spikeport_energy_of_a_producer_file_reports_its_firing_rates(bench, tmp_path):
    """``spikeport energy model.nir --nir-from snntorch``: per-layer rates equal snnTorch's own; the report says
    how the file was read and warns about the reset it cannot state."""
    prod, _ = bench
    p = prod.PRODUCERS["snntorch"]
    _skip_unless("snntorch", p)
    import nir

    from spikeport.cli import main

    x, _ = prod.digits_inputs(6, 8, False)
    model = p.build("mlp", "subtract", prod.random_weights("mlp", 16), [0.5, 2.0])
    own = p.own(model, x)
    nir.write(tmp_path / "snn.nir", p.export(model, "mlp", x))
    np.save(tmp_path / "x.npy", x[0].numpy())  # direct encoding repeats each sample T times
    assert main(["energy", str(tmp_path / "snn.nir"), "--nir-from", "snntorch", "--input", str(tmp_path / "x.npy"),
                 "-T", "8", "--out", str(tmp_path / "report"), "--no-progress"]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    rates = [row["rate"] for row in report["layers"] if row["role"] == "neuron"]
    assert rates == pytest.approx([float(s.astype(np.float64).mean()) for s in own.spikes], rel=1e-12), rates
    assert min(rates) > 0
    text = " ".join(report["assumptions"])
    assert "read as snntorch (given): dt = 0.0001 s per step (snntorch preset)" in text
    assert "WARNING: reset:" in text and "--nir-reset zero" in text
