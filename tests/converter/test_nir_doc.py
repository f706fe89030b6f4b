"""docs/nir.md is executable: the Python blocks of each framework's section run in order (skipped without it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "nir.md"
SECTIONS = {"snnTorch": "snntorch", "Norse": "norse", "sinabs": "sinabs", "SpikingJelly": "spikingjelly",
            "nirtorch (your own neurons)": "nirtorch", "lava-dl": "nir"}


def _sections() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in re.split(r"^## ", DOC.read_text(encoding="utf-8"), flags=re.M)[1:]:
        title, _, body = part.partition("\n")
        blocks = re.findall(r"```python\n(.*?)```", body, flags=re.S)
        if blocks:
            out[title.strip()] = blocks
    return out


def test_every_framework_section_has_examples():
    assert set(_sections()) == set(SECTIONS)


@pytest.mark.parametrize("title", list(SECTIONS))
def test_section_examples_run(title, tmp_path, monkeypatch):
    pytest.importorskip(SECTIONS[title])
    monkeypatch.chdir(tmp_path)
    ns: dict[str, object] = {"__name__": f"nir_doc_{SECTIONS[title]}"}
    for code in _sections()[title]:
        exec(compile(code, f"{DOC}:{title}", "exec"), ns)  # our own documentation
