"""Spot tensors and their order: shuffling depends only on the seed and the epoch."""

from __future__ import annotations

import numpy as np
import torch

from genar.train import spot_dataset, spot_loader
from genar.train._data import EpochShuffleSampler


def test_dataset_dtypes():
    data = spot_dataset(np.ones((4, 3), np.float64), np.zeros((4, 2)), np.arange(8).reshape(4, 2))
    features, coords, counts = data.tensors
    assert features.dtype == coords.dtype == torch.float32 and counts.dtype == torch.long
    assert len(spot_dataset(np.ones((4, 3)), np.zeros((4, 2))).tensors) == 2  # prediction needs no counts


def test_shuffling_depends_only_on_seed_and_epoch():
    a, b = EpochShuffleSampler(50, seed=1), EpochShuffleSampler(50, seed=1)
    first = list(a)
    list(b)  # b has been iterated before: the order does not depend on how often
    assert list(b) == first and sorted(first) == list(range(50))
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(EpochShuffleSampler(50, seed=2)) != first


def test_loader_keeps_order_without_shuffling():
    loader = spot_loader(spot_dataset(np.arange(10.0)[:, None], np.zeros((10, 2))), batch_size=4, shuffle=False)
    assert [batch[0].ravel().tolist() for batch in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
