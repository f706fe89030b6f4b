"""Datasets: sklearn digits (embedded default), CIFAR-10/100 and DVS event data from local files.

Every dataset is registered in :data:`DATASETS` as a factory
``fn(*, train: bool, data_dir: str | None, seed: int, **kw) -> DatasetSplit``.
Static datasets yield ``(x[C,H,W] float32, label)``; the model pipeline encodes
them over T (see :mod:`spikeport.models.encoders`). Event datasets are
*temporal*: they yield ``(x[T,C,H,W] float32, label)`` frames already binned in time.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch.utils.data import Dataset

from spikeport._registry import Registry

__all__ = ["DATASETS", "DatasetSplit", "get_dataset", "list_datasets"]


@dataclass(frozen=True)
class DatasetSplit:
    """A dataset split plus what a model needs to know about it.

    Attributes:
        dataset: a torch ``Dataset`` of ``(x, label)`` pairs.
        input_shape: shape of one sample ``x`` without the time axis (C, H, W) or (F,).
        num_classes: number of labels.
        temporal: True when samples already carry a leading time axis ``[T, ...]``.
        name: registry name of the dataset.
    """

    dataset: Dataset
    input_shape: tuple[int, ...]
    num_classes: int
    temporal: bool
    name: str


DATASETS: Registry = Registry("dataset")


def get_dataset(name: str, *, train: bool, data_dir: str | None = None, seed: int = 0, **kw) -> DatasetSplit:
    """Build split ``train``/test of dataset ``name`` (see :data:`DATASETS`)."""
    _load_builtin(_MODULE_OF.get(name))
    return DATASETS.get(name)(train=train, data_dir=data_dir, seed=seed, **kw)


def list_datasets() -> list[str]:
    _load_builtin()
    return DATASETS.names()


# Which built-in module registers which dataset: only that module is imported on use.
_MODULE_OF = {"digits": "digits", "cifar10": "cifar", "cifar100": "cifar", "cifar10dvs": "dvs", "dvs128gesture": "dvs"}


def _load_builtin(only: str | None = None) -> None:
    # Import for registration side effects; kept lazy so `import spikeport.data` is cheap.
    from spikeport._imports import optional_import

    for mod in (only,) if only else sorted(set(_MODULE_OF.values())):
        optional_import(f"spikeport.data.{mod}")  # None: a loader not present in this build
