"""DDP on CPU (gloo): two ranks end with identical weights; torchrun drives the CLI; env handling."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from spikeport.errors import ConfigError
from spikeport.training import distributed as dist

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")

N_TRAIN = 256


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from torch.utils.data import Subset

    from spikeport.data import DatasetSplit, get_dataset
    from spikeport.models import create_model
    from spikeport.training import TrainConfig, train

    with dist.distributed_session("cpu") as info:
        full = get_dataset("digits", train=True)
        split = DatasetSplit(Subset(full.dataset, range(N_TRAIN)), full.input_shape, full.num_classes, False, "digits")
        torch.manual_seed(100 + rank)  # different init per rank: DDP must broadcast rank 0's
        model = create_model("spiking_cnn_digits")
        init = {k: v.clone() for k, v in model.state_dict().items()}
        res = train(model, split, None, TrainConfig(epochs=2, timesteps=2, batch_size=32, lr=1e-2, progress=False,
                                                    seed=0))
        torch.save({"init": init, "final": model.state_dict(), "history": res.history,
                    "info": {"rank": info.rank, "world_size": info.world_size, "backend": info.backend,
                             "main": dist.is_main_process()}},
                   Path(out_dir) / f"rank{rank}.pt")
    assert not dist.is_distributed()  # the session destroyed the group


def test_two_cpu_ranks_end_with_identical_weights(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["info"] == {"rank": 0, "world_size": 2, "backend": "gloo", "main": True}
    assert r1["info"] == {"rank": 1, "world_size": 2, "backend": "gloo", "main": False}
    assert r0["final"].keys() == r1["final"].keys()
    for k in r0["final"]:  # parameters via DDP all-reduce, BN statistics via the final broadcast
        assert torch.equal(r0["final"][k], r1["final"][k]), k
    moved = [k for k in r0["final"] if r0["final"][k].is_floating_point()
             and not torch.equal(r0["final"][k], r0["init"][k])]
    assert "head.weight" in moved and "features.0.weight" in moved
    # epoch metrics are summed over both shards, so both ranks report the same numbers
    assert r0["history"] == r1["history"] and len(r0["history"]) == 2
    assert r0["history"][1]["train_loss"] < r0["history"][0]["train_loss"]


def test_torchrun_cli_trains_and_only_rank0_writes(tmp_path):
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "spikeport.cli", "train", "spiking_cnn_digits", "-T", "1", "--epochs", "1", "--batch-size", "128",
           "--no-progress", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, proc.stdout  # only rank 0 prints
    rec = json.loads(lines[0])
    assert rec["world_size"] == 2 and rec["checkpoint"] == str(out)
    from spikeport.checkpoint import load_checkpoint

    model, info = load_checkpoint(out)
    assert info.model == "spiking_cnn_digits" and info.timesteps == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.pt"]  # no stray temporaries from rank 1


def test_init_from_env_single_process_and_errors(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert dist.init_from_env("cpu") is None
    monkeypatch.setenv("WORLD_SIZE", "1")
    with dist.distributed_session("cpu") as info:
        assert info is None and dist.is_main_process() and dist.world_size() == 1
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_PORT", "29500")
    with pytest.raises(ConfigError, match="MASTER_ADDR not set; launch with `torchrun"):
        dist.init_from_env("cpu")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="WORLD_SIZE='two' is not an integer"):
        dist.init_from_env("cpu")


def test_helpers_are_identities_without_a_group():
    assert not dist.is_distributed() and dist.rank() == 0
    assert dist.all_reduce_sum([1.0, 2.5], torch.device("cpu")) == [1.0, 2.5]
    dist.barrier()
    dist.broadcast_buffers(torch.nn.BatchNorm1d(3))
    dist.cleanup()
