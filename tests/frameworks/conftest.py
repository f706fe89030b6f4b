"""Session fixtures: the framework fixture models, trained once per test run (seeded, about 10 s in all).

With pytest-xdist the workers share one training: the first trains under a file lock, the others load.
"""

from __future__ import annotations

import os

import pytest
from filelock import FileLock

from . import fixture_models as M
from .training import Trained, cached, train

FRAMEWORK_MODULES = {"sj_mlp": "spikingjelly", "sj_cnn": "spikingjelly", "snn_seq": "snntorch",
                     "snn_loop": "snntorch", "norse_cells": "norse", "sinabs_cnn": "sinabs", "sinabs_mlp": "sinabs",
                     "slayer_mlp": "lava.lib.dl.slayer"}


def _available(name: str) -> bool:
    import importlib.util

    mod = FRAMEWORK_MODULES[name]
    if mod.startswith("lava"):
        from spikeport.targets.lava import enable_lava, lava_available

        if not lava_available():
            return False
        enable_lava()
    return importlib.util.find_spec(mod.split(".")[0]) is not None


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict[str, Trained]:
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    root = (tmp_path_factory.getbasetemp().parent / f"framework-fixtures-{run}") if run else \
        tmp_path_factory.mktemp("framework-fixtures")
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    with FileLock(str(root / "train.lock")):
        for name in M.LAYOUTS:
            if not _available(name):
                continue
            out[name] = cached(name, root) if (root / f"{name}.json").exists() else train(name, root)
    return out


@pytest.fixture
def model_of(trained):
    def get(name: str) -> Trained:
        if name not in trained:
            pytest.skip(f"{FRAMEWORK_MODULES[name]} is not installed (pip install 'spikeport[frameworks]')")
        return trained[name]

    return get
