"""`spikeport inspect`: node table, GraphML/JSON/PNG outputs, NIR input, one-line errors."""

from spikeport.cli import main
from spikeport.converter import SpikeGraph, trace
from spikeport.converter.nir_io import write_nir
from spikeport.models import create_model


def test_inspect_writes_table_and_files(tmp_path, capsys):
    j, gml, png = tmp_path / "g.json", tmp_path / "g.graphml", tmp_path / "g.png"
    assert main(["inspect", "resnet_digits", "--json", str(j), "--graph", str(gml), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:2] == ["name", "op"] and "fan-in" in out and "params" in out
    row = next(line for line in out.splitlines() if line.startswith("stages.0.0.conv1 "))
    assert row.split()[1:5] == ["Conv2d", "stem.2", "16x8x8", "16x8x8"] and row.split()[-1] == "144"
    assert "23 nodes" in out and "24,506 parameters" in out
    ref = trace(create_model("resnet_digits"))
    for g in (SpikeGraph.read_json(j), SpikeGraph.read_graphml(gml)):
        assert g.topological_order() == ref.topological_order()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["inspect", "resnet_digits", "--png", str(png)]) == 2  # no silent overwrite
    assert "already exists; pass --force" in capsys.readouterr().err


def test_inspect_nir_file_and_errors(tmp_path, capsys):
    path = write_nir(trace(create_model("spiking_mlp_digits")), tmp_path / "m.nir")
    assert main(["inspect", str(path)]) == 0
    assert "features.2" in capsys.readouterr().out
    bad = tmp_path / "bad.nir"
    bad.write_text("x")
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"spikeport inspect: error: {bad}: not a NIR file (not HDF5); expected a file written by nir.write"
