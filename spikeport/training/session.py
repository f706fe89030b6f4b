"""Train a zoo model on a named dataset and save a checkpoint (used by the CLI and the demo)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from torch import nn

from spikeport.checkpoint import CheckpointInfo, save_checkpoint
from spikeport.data import DATASETS, DatasetSplit, get_dataset, list_datasets
from spikeport.errors import ConfigError
from spikeport.models import MODELS, create_model, list_models
from spikeport.training.distributed import is_main_process
from spikeport.training.trainer import TrainConfig, TrainResult, seed_everything, train

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


def _check_model_fits_data(kwargs: dict[str, Any], split: DatasetSplit, dataset: str) -> None:
    """Refuse model options that cannot work on ``dataset`` (before torch fails mid-training)."""
    shape = kwargs.get("input_shape")
    if shape is not None:
        given = tuple(shape) if isinstance(shape, (tuple, list)) else None
        if given != tuple(split.input_shape):
            want = ",".join(str(s) for s in split.input_shape)
            raise ConfigError(f"model option input_shape={shape!r} does not match dataset '{dataset}' samples "
                              f"{tuple(split.input_shape)}; drop it or pass --model-arg input_shape=({want})")
    classes = kwargs.get("num_classes")
    if isinstance(classes, int) and not isinstance(classes, bool) and classes < split.num_classes:
        raise ConfigError(f"model option num_classes={classes!r} is too small for dataset '{dataset}' "
                          f"({split.num_classes} classes); drop it or pass --model-arg num_classes={split.num_classes}")


def fit_zoo_model(model_name: str, *, dataset: str = "digits", data_dir: str | None = None, cfg: TrainConfig,
                  model_kwargs: dict[str, Any] | None = None, ann: bool = False, teacher: str | None = None,
                  out: str | Path | None = None) -> TrainedModel:
    """Build ``model_name`` for ``dataset``, train it with ``cfg`` and save it to ``out``.

    ``ann=True`` replaces every spiking neuron by ReLU and trains at T=1 (the ANN
    reference / distillation teacher of the same shape). The initial weights are
    drawn after seeding with ``cfg.seed``, so equal options give equal weights.

    Raises:
        ConfigError: ``model_kwargs`` whose ``input_shape`` differs from the dataset's
            samples or whose ``num_classes`` is below the dataset's class count.
    """
    kwargs = dict(model_kwargs or {})
    list_models()  # populate the registry
    data_kw: dict[str, Any] = {}
    list_datasets()
    if dataset in DATASETS.names(tag="events"):  # event data are binned into exactly T frames
        data_kw["T"] = cfg.timesteps
    tr = get_dataset(dataset, train=True, data_dir=data_dir, seed=cfg.seed, **data_kw)
    te = get_dataset(dataset, train=False, data_dir=data_dir, seed=cfg.seed, **data_kw)
    _check_model_fits_data(kwargs, tr, dataset)
    kwargs.setdefault("num_classes", tr.num_classes)
    kwargs.setdefault("input_shape", tuple(tr.input_shape))
    if ann:
        kwargs["neuron"] = "relu"
        if tr.temporal:
            raise ConfigError(f"--ann needs a static dataset; '{dataset}' is temporal")
        cfg = replace(cfg, timesteps=1, encoder="direct")
    if "timesteps" in inspect.signature(MODELS.get(model_name)).parameters:  # STAA/FSTA are built for one T
        kwargs["timesteps"] = cfg.timesteps
    seed_everything(cfg.seed)  # the initial weights follow --seed too (train() seeds again for data order)
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
