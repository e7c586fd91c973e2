"""Tensors of spots for training and prediction (no AnnData here)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset


def spot_dataset(features: np.ndarray, coords: np.ndarray, counts: np.ndarray | None = None) -> TensorDataset:
    """Dataset of ``(features, coords[, counts])`` rows: float32 features and coordinates, int64 counts."""
    tensors = [torch.as_tensor(features, dtype=torch.float32), torch.as_tensor(coords, dtype=torch.float32)]
    if counts is not None:
        tensors.append(torch.as_tensor(counts, dtype=torch.long))
    return TensorDataset(*tensors)


def spot_loader(dataset: TensorDataset, *, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """Single-process loader; shuffling draws from its own seeded generator, not the global RNG."""
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=0)
