"""The embedded sklearn digits dataset: fixed stratified split, scaled values."""

from __future__ import annotations

import numpy as np
import torch

from spikeport.data import get_dataset, list_datasets
from spikeport.data.digits import load_digits_arrays


def test_split_sizes_shapes_and_range():
    tr = get_dataset("digits", train=True)
    te = get_dataset("digits", train=False)
    assert (tr.input_shape, tr.num_classes, tr.temporal, tr.name) == ((1, 8, 8), 10, False, "digits")
    assert len(tr.dataset) == 1347 and len(te.dataset) == 450
    x, y = tr.dataset[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    for split in (tr, te):
        xs = split.dataset.tensors[0]
        assert xs.min().item() == 0.0 and xs.max().item() == 1.0  # 0..16 scaled by 1/16


def test_split_is_stratified_and_disjoint():
    x_tr, y_tr = load_digits_arrays(train=True)
    x_te, y_te = load_digits_arrays(train=False)
    n_tr, n_te = np.bincount(y_tr, minlength=10), np.bincount(y_te, minlength=10)
    total = n_tr + n_te
    assert total.sum() == 1797
    assert np.all(np.abs(n_te - 0.25 * total) <= 1)  # each class keeps its 25% share in the test split
    # train + test is a partition of the 1797 images (compared as multisets of rows)
    from sklearn.datasets import load_digits

    full = (load_digits().images.astype(np.float32) / 16.0).reshape(1797, -1)
    both = np.concatenate([x_tr, x_te]).reshape(1797, -1)
    assert sorted(r.tobytes() for r in both) == sorted(r.tobytes() for r in full)


def test_split_is_deterministic():
    a = get_dataset("digits", train=False, seed=0).dataset.tensors
    b = get_dataset("digits", train=False, seed=123).dataset.tensors  # the split never depends on `seed`
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    x1, y1 = load_digits_arrays(train=True)
    x2, y2 = load_digits_arrays(train=True)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)


def test_registry_lists_all_loaders():
    assert {"digits", "cifar10", "cifar100", "cifar10dvs", "dvs128gesture"} <= set(list_datasets())
