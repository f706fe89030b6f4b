"""Data-parallel (DDP) helpers for ``torchrun``.

``torchrun --nproc_per_node N -m spikeport.cli train ...`` sets ``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`distributed_session`
reads them, joins the process group (``gloo`` on CPU, ``nccl`` on CUDA, one GPU per
local rank), and on exit waits for every rank and destroys the group. Inside,
:func:`spikeport.training.trainer.train` wraps the model in
``DistributedDataParallel`` and gives each rank its shard of the data; only rank 0
(:func:`is_main_process`) writes files.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from spikeport.errors import ConfigError

__all__ = ["DistInfo", "env_world_size", "is_distributed", "is_main_process", "rank", "world_size", "barrier",
           "init_from_env", "cleanup", "distributed_session", "wrap_ddp", "broadcast_buffers", "all_reduce_sum"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: str  # the device this rank trains on, e.g. "cpu" or "cuda:1"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer (set by torchrun)") from None


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset)."""
    return _env_int("WORLD_SIZE", 1)


def is_distributed() -> bool:
    """True inside an initialised process group."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    return torch.distributed.get_rank() if is_distributed() else 0


def world_size() -> int:
    return torch.distributed.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 (or when not distributed): the process that writes outputs."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    if is_distributed():
        torch.distributed.barrier()


def init_from_env(device: str = "cpu", timeout_s: float = 600.0) -> DistInfo | None:
    """Join the process group described by torchrun's env vars when ``WORLD_SIZE > 1``.

    Args:
        device: ``cpu`` (backend gloo) or ``cuda`` / ``cuda:N`` (backend nccl; each
            rank uses GPU ``LOCAL_RANK``).
        timeout_s: collective timeout.

    Returns:
        ``None`` for a single-process run, else this rank's :class:`DistInfo`.

    Raises:
        ConfigError: torch built without distributed support, missing env vars,
            or more local ranks than GPUs.
    """
    ws = env_world_size()
    if ws <= 1:
        return None
    if not torch.distributed.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed; run without torchrun")
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
    if missing:
        raise ConfigError(f"WORLD_SIZE={ws} but {', '.join(missing)} not set; launch with "
                          "`torchrun --nproc_per_node N -m spikeport.cli train ...`")
    rk, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device 'cuda' requested but no CUDA GPU is available; use --device cpu")
        if local >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPU(s); lower --nproc_per_node")
        torch.cuda.set_device(local)
        backend, dev_name = "nccl", f"cuda:{local}"
    elif dev.type == "cpu":
        backend, dev_name = "gloo", "cpu"
    else:
        raise ConfigError(f"device '{device}' is not supported for distributed training; use cpu or cuda")
    if not is_distributed():
        torch.distributed.init_process_group(backend=backend, init_method="env://", rank=rk, world_size=ws,
                                             timeout=datetime.timedelta(seconds=timeout_s))
    log.info("joined process group: rank %d/%d (local %d, %s, %s)", rk, ws, local, backend, dev_name)
    return DistInfo(rank=rk, world_size=ws, local_rank=local, backend=backend, device=dev_name)


def cleanup() -> None:
    """Wait for every rank, then destroy the process group (no-op when not distributed)."""
    if is_distributed():
        try:
            torch.distributed.barrier()
        finally:
            torch.distributed.destroy_process_group()


@contextlib.contextmanager
def distributed_session(device: str = "cpu") -> Iterator[DistInfo | None]:
    """``with distributed_session(args.device) as info:`` join (if launched by torchrun) and clean up.

    On an exception the group is destroyed without the final barrier (the other
    ranks then fail on their next collective instead of waiting forever).
    """
    info = init_from_env(device)
    try:
        yield info
    except BaseException:
        if info is not None and is_distributed():
            torch.distributed.destroy_process_group()
        raise
    if info is not None:
        cleanup()


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """Wrap ``model`` in ``DistributedDataParallel`` (``static_graph=True``).

    A static graph lets DDP handle parameters that a model registers but never
    uses (e.g. FSTA's spare scalars) without ``find_unused_parameters``; the set of
    used parameters must not change between iterations.
    """
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, static_graph=True)


@torch.no_grad()
def broadcast_buffers(model: nn.Module, src: int = 0) -> None:
    """Copy every buffer (e.g. BatchNorm running statistics) from rank ``src`` to all ranks."""
    if not is_distributed():
        return
    for buf in model.buffers():
        torch.distributed.broadcast(buf, src)


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum a few Python numbers over all ranks (identity when not distributed)."""
    if not is_distributed():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    return [float(v) for v in t.tolist()]
