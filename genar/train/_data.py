"""Tensors of spots for training and prediction (no AnnData here)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset


def spot_dataset(features: np.ndarray, coords: np.ndarray, counts: np.ndarray | None = None) -> TensorDataset:
    """Dataset of ``(features, coords[, counts])`` rows: float32 features and coordinates, int64 counts."""
    tensors = [torch.as_tensor(features, dtype=torch.float32), torch.as_tensor(coords, dtype=torch.float32)]
    if counts is not None:
        tensors.append(torch.as_tensor(counts, dtype=torch.long))
    return TensorDataset(*tensors)


class EpochShuffleSampler(Sampler[int]):
    """A random order of ``n`` rows that depends only on ``seed`` and the epoch.

    Lightning calls :meth:`set_epoch` before every epoch, so a run resumed at epoch *k* sees the same orders as an
    uninterrupted one (a generator seeded once would not: its state after *k* epochs is not in the checkpoint).
    """

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the order of ``epoch``."""
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n


def spot_loader(dataset: TensorDataset, *, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """Single-process loader; shuffling is seeded per epoch (:class:`EpochShuffleSampler`), not the global RNG."""
    sampler = EpochShuffleSampler(len(dataset), seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=0)
