"""Fixtures shared by the target tests."""

import pytest

from spikeport.targets.lava import _compat


@pytest.fixture(scope="module")
def netx():
    """lava-dl's netx with spikeport's compatibility patches applied; skips the test when Lava is not installed."""
    pytest.importorskip("lava")
    if not _compat.lava_available():
        pytest.skip("lava-nc / lava-dl not installed")
    return _compat.enable_lava()
