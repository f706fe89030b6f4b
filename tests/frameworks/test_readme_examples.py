"""README "Your own model": every bash block runs as written (one per framework), from a scratch folder."""

from __future__ import annotations

import re
import runpy
import shlex
import sys
from pathlib import Path

import pytest
import torch

from spikeport.cli import main

from .training import one_thread

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.peers


def _blocks() -> dict[str, list[str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Your own model", 1)[1].split("\n## ", 1)[0]
    out = {}
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        lines = [ln for ln in block.strip().splitlines() if ln.strip()]
        out[lines[0].lstrip("# ").split(":")[0]] = lines[1:]
    return out


BLOCKS = _blocks()
NEEDS = {"SpikingJelly": "spikingjelly", "snnTorch": "snntorch", "Norse": "norse", "sinabs": "sinabs",
         "lava-dl SLAYER": "lava"}


def test_one_block_per_framework():
    assert set(BLOCKS) == set(NEEDS)
    for name, lines in BLOCKS.items():
        assert lines[0].startswith("python examples/frameworks/"), name
        assert {ln.split()[1] for ln in lines[1:]} >= {"energy", "export", "verify"}, name


@pytest.mark.parametrize("name", list(NEEDS))
def test_readme_block_runs(name, tmp_path, monkeypatch, capsys):
    if NEEDS[name] == "lava":
        from spikeport.targets.lava import enable_lava, lava_available

        if not lava_available():
            pytest.skip("lava-dl is not installed")
        enable_lava()
    else:
        pytest.importorskip(NEEDS[name])
    monkeypatch.chdir(tmp_path)
    with one_thread():  # two test workers share two cores
        _run_block(name, monkeypatch, capsys)


def _run_block(name, monkeypatch, capsys):
    for line in BLOCKS[name]:
        args = [str(REPO / a) if a.startswith("examples/") else a for a in shlex.split(line)]
        if args[0] == "python":
            monkeypatch.setattr(sys, "argv", args[1:])
            torch.manual_seed(0)
            runpy.run_path(args[1], run_name="__main__")
            continue
        assert args[0] == "spikeport"
        code = main(args[1:])
        cap = capsys.readouterr()
        assert code == 0, (line, cap.err)
        if args[1] == "verify":
            assert cap.out.count("verdict: exact") == 3, cap.out
        if args[1] == "export":
            assert "the model itself vs its IR: exact, vs the file: exact" in cap.out, cap.out
