"""BPTT training loop with surrogate gradients (CPU and CUDA share the same code).

Per-step logits ``[T, B, K]`` are produced by the model on encoded input; the
prediction is the mean over T. AdamW (or SGD with momentum) + cosine schedule;
AMP (bf16 autocast) on CUDA only. When ``torch.distributed`` is initialised
(``torchrun``, see :mod:`spikeport.training.distributed`), the model is wrapped in
DistributedDataParallel, each rank reads its shard, epoch metrics are summed over
ranks and rank 0's BatchNorm statistics are copied to every rank at the end.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Sized
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from spikeport.data import DatasetSplit
from spikeport.errors import ConfigError
from spikeport.models.encoders import ENCODERS, check_timesteps
from spikeport.runtime import resolve_device, to_sequence
from spikeport.training import distributed as dist
from spikeport.training.losses import create_loss, needs_teacher

__all__ = ["TrainConfig", "TrainResult", "train", "evaluate", "seed_everything", "OPTIMIZERS", "SEED_MAX"]

log = logging.getLogger(__name__)

OPTIMIZERS = ("adamw", "sgd")
SEED_MAX = 2**32 - 1  # numpy's limit; torch takes more, but one range for every RNG keeps runs reproducible


@dataclass(frozen=True)
class TrainConfig:
    """Training options (all validated on construction)."""

    epochs: int = 30
    timesteps: int = 4
    batch_size: int = 64
    lr: float = 5e-3
    weight_decay: float = 1e-2
    optimizer: str = "adamw"
    momentum: float = 0.9
    encoder: str = "direct"
    loss: str = "ce"
    loss_options: dict[str, Any] = field(default_factory=dict)
    teacher_timesteps: int = 1
    seed: int = 0
    device: str = "cpu"
    amp: bool = True
    progress: bool = True
    num_workers: int = 0

    def __post_init__(self) -> None:
        check_timesteps(self.timesteps)
        check_timesteps(self.teacher_timesteps, "teacher timesteps")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs <= 0:
            raise ConfigError(f"epochs must be a positive integer, got {self.epochs!r}")
        if self.batch_size <= 0:
            raise ConfigError(f"batch size must be positive, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"learning rate must be positive, got {self.lr}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ConfigError(f"weight decay must be a finite number >= 0, got {self.weight_decay}; "
                              "pass e.g. --weight-decay 0.01 (0 disables it)")
        if not (self.momentum >= 0 and math.isfinite(self.momentum)):
            raise ConfigError(f"momentum must be a finite number >= 0, got {self.momentum}; pass e.g. --momentum 0.9")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= SEED_MAX:
            raise ConfigError(f"seed must be an integer in [0, {SEED_MAX}], got {self.seed!r}; pass e.g. --seed 0")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer '{self.optimizer}'; use one of {', '.join(OPTIMIZERS)}")
        if self.encoder != "none" and self.encoder not in ENCODERS:
            ENCODERS.get(self.encoder)


@dataclass
class TrainResult:
    """Per-epoch history and the final test metrics."""

    history: list[dict[str, float]]
    test_acc: float
    test_loss: float
    train_acc: float
    seconds: float

    @property
    def metrics(self) -> dict[str, float]:
        return {"test_acc": self.test_acc, "test_loss": self.test_loss, "train_acc": self.train_acc,
                "train_seconds": self.seconds}


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch Generator for data order."""
    random.seed(seed)
    np.random.seed(seed % (SEED_MAX + 1))
    torch.manual_seed(seed)
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _loader(split: DatasetSplit, batch_size: int, shuffle: bool, generator: torch.Generator | None,
            num_workers: int) -> DataLoader:
    sampler: Sampler[int] | None = None
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(split.dataset, shuffle=shuffle,
                                     seed=int(generator.initial_seed()) if generator else 0)
        shuffle = False
    return DataLoader(split.dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler, generator=generator,
                      num_workers=num_workers, drop_last=False)


def _autocast(device: torch.device, amp: bool):
    if device.type == "cuda" and amp:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


@torch.no_grad()
def evaluate(model: nn.Module, split: DatasetSplit, *, timesteps: int, encoder: str = "direct",
             device: str | torch.device = "cpu", batch_size: int = 256, seed: int = 0, samples: int | None = None,
             keep_predictions: bool = False) -> dict[str, Any]:
    """Accuracy and CE loss of mean-over-time logits on ``split``.

    Args:
        samples: evaluate only the first ``samples`` of the split (in order; default all).
        keep_predictions: also return ``predictions`` and ``labels`` (int64 tensors, in split order): the argmax
            over classes of the mean over T of the logits.
    """
    from torch.utils.data import Subset

    dev = resolve_device(str(device))
    model = model.to(dev).eval()
    g = torch.Generator().manual_seed(seed)
    data = split.dataset
    if samples is not None:
        if samples <= 0:
            raise ConfigError(f"samples must be positive, got {samples}")
        if not isinstance(data, Sized):
            raise ConfigError(f"dataset '{split.name}' has no length to take the first {samples} samples of")
        data = Subset(data, range(min(samples, len(data))))
    correct, total, loss_sum = 0, 0, 0.0
    preds: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    for x, y in DataLoader(data, batch_size=batch_size, shuffle=False):
        x, y = x.to(dev), y.to(dev)
        out = model(to_sequence(x, split.temporal, timesteps, encoder, _gen_for(g, dev))).float().mean(0)
        loss_sum += float(nn.functional.cross_entropy(out, y, reduction="sum"))
        correct += int((out.argmax(1) == y).sum())
        total += y.numel()
        if keep_predictions:
            preds.append(out.argmax(1).cpu())
            labels.append(y.cpu())
    if total == 0:
        raise ConfigError(f"dataset '{split.name}' is empty")
    result: dict[str, Any] = {"acc": correct / total, "loss": loss_sum / total, "n": float(total)}
    if keep_predictions:
        result["predictions"] = torch.cat(preds).to(torch.int64)
        result["labels"] = torch.cat(labels).to(torch.int64)
    return result


def _gen_for(g: torch.Generator, dev: torch.device) -> torch.Generator | None:
    # Rate encoding draws on the CPU generator only for CPU tensors; CUDA uses the global CUDA RNG.
    return g if dev.type == "cpu" else None


def train(model: nn.Module, train_split: DatasetSplit, test_split: DatasetSplit | None, cfg: TrainConfig,
          teacher: nn.Module | None = None,
          on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> TrainResult:
    """Train ``model`` in place with BPTT and return history + final test metrics.

    Args:
        model: maps ``[T, B, ...]`` to per-step logits ``[T, B, K]``.
        train_split, test_split: datasets (see :mod:`spikeport.data`).
        cfg: options.
        teacher: frozen teacher for distillation losses (called on input encoded over
            ``cfg.teacher_timesteps``; its logits are averaged over time).
        on_epoch: callback ``(epoch, metrics)`` after every epoch.
    """
    import time

    from tqdm.auto import tqdm

    dev = resolve_device(cfg.device)
    if needs_teacher(cfg.loss) and teacher is None:
        raise ConfigError(f"loss '{cfg.loss}' is a distillation loss and needs a teacher (--teacher CKPT)")
    gen = seed_everything(cfg.seed)
    loss_fn = create_loss(cfg.loss, **cfg.loss_options)
    model = model.to(dev)
    net: nn.Module = model
    distributed = dist.is_distributed()
    if distributed:
        net = dist.wrap_ddp(model, dev)
    if teacher is not None:
        teacher = teacher.to(dev).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    loader = _loader(train_split, cfg.batch_size, True, gen, cfg.num_workers)
    opt: torch.optim.Optimizer
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * max(1, len(loader)))
    enc_gen = _gen_for(torch.Generator().manual_seed(cfg.seed + 1 + dist.rank()), dev)  # own noise per rank
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    is_main = not distributed or torch.distributed.get_rank() == 0
    # disable=None: tqdm hides the bar when stderr is not a terminal (logs, CI)
    bar = tqdm(range(cfg.epochs), desc="train", unit="epoch", disable=None if (cfg.progress and is_main) else True,
               leave=False)
    seen: float  # counts: ints, floats once summed over ranks
    correct: float
    for epoch in bar:
        if distributed and hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        net.train()
        seen, correct, loss_sum = 0, 0, 0.0
        for x, y in loader:
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            seq = to_sequence(x, train_split.temporal, cfg.timesteps, cfg.encoder, enc_gen)
            t_logits = None
            if teacher is not None:
                with torch.no_grad():
                    t_in = to_sequence(x, train_split.temporal, cfg.teacher_timesteps, cfg.encoder, enc_gen)
                    t_logits = teacher(t_in).float().mean(0)
            with _autocast(dev, cfg.amp):
                out = net(seq)
            out = out.float()
            loss = loss_fn(out, y, t_logits)
            if not torch.isfinite(loss):
                raise ConfigError(f"loss became {float(loss)} at epoch {epoch + 1}; lower --lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            seen += y.numel()
            loss_sum += float(loss.detach()) * y.numel()
            correct += int((out.detach().mean(0).argmax(1) == y).sum())
        if distributed:  # metrics over every rank's shard
            seen, correct, loss_sum = dist.all_reduce_sum([seen, correct, loss_sum], dev)
        row = {"epoch": float(epoch + 1), "train_loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1)}
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row['train_acc']:.3f}")
        if on_epoch is not None:
            on_epoch(epoch, row)
    if distributed:  # BatchNorm statistics drift per rank (own shards): keep rank 0's everywhere
        dist.broadcast_buffers(model)
    test = {"acc": float("nan"), "loss": float("nan")}
    if test_split is not None:
        test = evaluate(model, test_split, timesteps=cfg.timesteps, encoder=cfg.encoder, device=dev, seed=cfg.seed)
    log.info("trained %d epochs: test acc %.4f", cfg.epochs, test["acc"])
    return TrainResult(history=history, test_acc=test["acc"], test_loss=test["loss"],
                       train_acc=history[-1]["train_acc"], seconds=time.perf_counter() - t0)
