"""Brief, seeded training of the fixture models on digits (shared by the tests and benchmarks/frameworks_matrix.py)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from . import fixture_models as M

T = 6
FACTORY_FILE = Path(M.__file__).resolve()
EPOCHS = {"sj_mlp": 8, "sj_cnn": 8, "snn_seq": 8, "snn_loop": 8, "norse_cells": 10, "sinabs_cnn": 8,
          "sinabs_mlp": 8, "slayer_mlp": 10}
LR = {"slayer_mlp": 3e-3, "norse_cells": 1e-2}


@dataclass
class Trained:
    name: str
    layout: str
    weights: Path
    accuracy: float
    seconds: float

    @property
    def spec(self) -> str:
        return f"{FACTORY_FILE}:{self.name}"

    def load(self):  # the user's model, as `spikeport ... file.py:factory --weights` builds it
        from spikeport.models.loading import load_model

        return load_model(self.spec, weights=str(self.weights), time_layout=self.layout)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def digits(train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from spikeport.data.digits import load_digits_arrays

    x, y = load_digits_arrays(train)
    return torch.from_numpy(x), torch.from_numpy(y)


def encode(x: torch.Tensor, t: int = T) -> torch.Tensor:
    return x.unsqueeze(0).repeat(t, *([1] * x.dim()))


def train(name: str, out: Path) -> Trained:
    """Train ``name`` a few epochs (seed 0, one thread), save its state dict to ``out/name.pt``."""
    from spikeport.frameworks import ForeignModel

    with one_thread():
        torch.manual_seed(0)
        net = getattr(M, name)()
        model = ForeignModel(net, M.LAYOUTS[name], (1, 8, 8))
        xtr, ytr = digits(True)
        opt = torch.optim.Adam(net.parameters(), lr=LR.get(name, 5e-3))
        gen = torch.Generator().manual_seed(0)
        t0 = time.perf_counter()
        net.train()
        for _ in range(EPOCHS[name]):
            perm = torch.randperm(len(xtr), generator=gen)
            for i in range(0, len(xtr), 64):
                j = perm[i:i + 64]
                loss = F.cross_entropy(model(encode(xtr[j])).sum(0), ytr[j])
                opt.zero_grad()
                loss.backward()
                opt.step()
        seconds = time.perf_counter() - t0
        net.eval()
        xte, yte = digits(False)
        with torch.no_grad():
            acc = float((model(encode(xte)).sum(0).argmax(-1) == yte).float().mean())
        torch.save(net.state_dict(), out / f"{name}.pt")
    (out / f"{name}.json").write_text(json.dumps({"accuracy": acc, "seconds": seconds}))
    return Trained(name, M.LAYOUTS[name], out / f"{name}.pt", acc, seconds)


def cached(name: str, out: Path) -> Trained:
    meta = json.loads((out / f"{name}.json").read_text())
    return Trained(name, M.LAYOUTS[name], out / f"{name}.pt", meta["accuracy"], meta["seconds"])
