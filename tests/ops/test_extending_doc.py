"""docs/extending.md is executable: its Python blocks, run in order, add a neuron type end to end."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

from spikeport.ops import all_specs, find_spec, unregister_op

DOC = Path(__file__).resolve().parents[2] / "docs" / "extending.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_worked_example_runs(tmp_path, monkeypatch, capsys):
    from spikeport.cli import main

    blocks = _blocks()
    assert len(blocks) == 4
    monkeypatch.chdir(tmp_path)
    module = types.ModuleType("extending_doc")  # a real module: dataclasses resolve annotations through it
    monkeypatch.setitem(sys.modules, module.__name__, module)
    ns = module.__dict__
    try:
        for code in blocks:
            exec(compile(code, str(DOC), "exec"), ns)  # our own documentation
        node_type = ns["AdaptiveLIF"]
        assert find_spec(node_type) is not None and (tmp_path / "alif.onnx").is_file()
        assert not (tmp_path / "alif.nir").exists()  # refused: nothing written
        assert main(["ops", "AdaptiveLIF"]) == 0
        out = capsys.readouterr().out
        assert "no adaptive-threshold neuron" in out and "netx CUBA neurons have no threshold adaptation" in out
    finally:
        if "AdaptiveLIF" in ns:
            unregister_op(ns["AdaptiveLIF"])
        if "SoftLIF" in ns:
            unregister_op(ns["SoftLIF"].spikeport_op)
    assert all(s.name not in ("AdaptiveLIF", "SoftLIF") for s in all_specs())
