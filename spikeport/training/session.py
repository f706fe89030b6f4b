"""Train a zoo model on a named dataset and save a checkpoint (used by the CLI and the demo)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from torch import nn

from spikeport.checkpoint import CheckpointInfo, save_checkpoint
from spikeport.data import DATASETS, get_dataset, list_datasets
from spikeport.errors import ConfigError
from spikeport.models import MODELS, create_model, list_models
from spikeport.training.distributed import is_main_process
from spikeport.training.trainer import TrainConfig, TrainResult, train

__all__ = ["TrainedModel", "fit_zoo_model", "load_teacher"]


@dataclass
class TrainedModel:
    model: nn.Module
    result: TrainResult
    info: CheckpointInfo
    path: Path | None


def load_teacher(spec: str, device: str) -> tuple[nn.Module, int]:
    """Load a teacher (checkpoint; usually an ANN trained with ``--ann``) and its timesteps."""
    from spikeport.models.loading import load_model

    lm = load_model(spec, device=device)
    if lm.kind != "checkpoint":
        raise ConfigError(f"teacher '{spec}' must be a trained checkpoint (train one with `spikeport train ... --ann`)")
    return lm.model, lm.timesteps or 1


def fit_zoo_model(model_name: str, *, dataset: str = "digits", data_dir: str | None = None, cfg: TrainConfig,
                  model_kwargs: dict[str, Any] | None = None, ann: bool = False, teacher: str | None = None,
                  out: str | Path | None = None) -> TrainedModel:
    """Build ``model_name`` for ``dataset``, train it with ``cfg`` and save it to ``out``.

    ``ann=True`` replaces every spiking neuron by ReLU and trains at T=1 (the ANN
    reference / distillation teacher of the same shape).
    """
    kwargs = dict(model_kwargs or {})
    list_models()  # populate the registry
    data_kw: dict[str, Any] = {}
    list_datasets()
    if dataset in DATASETS.names(tag="events"):  # event data are binned into exactly T frames
        data_kw["T"] = cfg.timesteps
    tr = get_dataset(dataset, train=True, data_dir=data_dir, seed=cfg.seed, **data_kw)
    te = get_dataset(dataset, train=False, data_dir=data_dir, seed=cfg.seed, **data_kw)
    kwargs.setdefault("num_classes", tr.num_classes)
    kwargs.setdefault("input_shape", tuple(tr.input_shape))
    if ann:
        kwargs["neuron"] = "relu"
        if tr.temporal:
            raise ConfigError(f"--ann needs a static dataset; '{dataset}' is temporal")
        cfg = replace(cfg, timesteps=1, encoder="direct")
    if "timesteps" in inspect.signature(MODELS.get(model_name)).parameters:  # STAA/FSTA are built for one T
        kwargs["timesteps"] = cfg.timesteps
    model = create_model(model_name, **kwargs)
    teacher_model = None
    if teacher is not None:
        teacher_model, t_steps = load_teacher(teacher, cfg.device)
        cfg = replace(cfg, teacher_timesteps=t_steps)
    result = train(model, tr, te, cfg, teacher=teacher_model)
    encoder = "none" if tr.temporal else cfg.encoder
    info = CheckpointInfo(model=model_name, model_kwargs=kwargs, timesteps=cfg.timesteps,
                          input_shape=tuple(tr.input_shape), encoder=encoder, dataset=dataset,
                          metrics=result.metrics)
    path = None
    if out is not None and is_main_process():  # under DDP only rank 0 writes
        path = save_checkpoint(out, model, info)
    elif out is not None:
        path = Path(out)
    return TrainedModel(model.eval(), result, info, path)
