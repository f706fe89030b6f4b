"""sklearn's 8x8 handwritten digits: the embedded default dataset (no download).

1797 grey images with values 0..16, scaled to [0, 1], shape (1, 8, 8), 10 classes.
The train/test split is stratified with a fixed seed (25% test), so every run
and every machine sees the same split.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

from spikeport.data import DATASETS, DatasetSplit

__all__ = ["load_digits_arrays", "digits"]

TEST_FRACTION = 0.25


def load_digits_arrays(train: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x[N,1,8,8] float32 in [0,1], y[N] int64)`` for the chosen split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_FRACTION, stratify=y, random_state=seed)
    return (x_tr, y_tr) if train else (x_te, y_te)


@DATASETS.register(name="digits")
def digits(*, train: bool, data_dir: str | None = None, seed: int = 0) -> DatasetSplit:
    """sklearn digits split (``data_dir`` is ignored: the data ship with scikit-learn)."""
    x, y = load_digits_arrays(train, seed=0)  # the split is fixed; `seed` drives training only
    ds = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    return DatasetSplit(dataset=ds, input_shape=(1, 8, 8), num_classes=10, temporal=False, name="digits")
